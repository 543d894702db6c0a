import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run the TypeScript sources; `#platform` (package.json "imports")
// points Node at the built file, so point it at its source instead.
const platform = fileURLToPath(new URL('./src/platform/node.ts', import.meta.url));

// The default run (`npm test`): every test file but the heavy ones, whose
// small seeded slices stay here. `*.slow.test.ts` (the full fuzzes,
// exhaustive crash points, soaks) run under vitest.slow.config.ts
// (`npm run test:slow`), which CI runs too.
export default defineConfig({
  resolve: { alias: { '#platform': platform } },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/**/*.slow.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
