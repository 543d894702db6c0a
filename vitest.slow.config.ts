import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run the TypeScript sources; `#platform` (package.json "imports")
// points Node at the built file, so point it at its source instead.
const platform = fileURLToPath(new URL('./src/platform/node.ts', import.meta.url));

// The slow run (`npm run test:slow`): only the `*.slow.test.ts` files, the
// heavy cases whose slices the default run keeps.
export default defineConfig({
  resolve: { alias: { '#platform': platform } },
  test: {
    include: ['test/**/*.slow.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
