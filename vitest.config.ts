import { defineConfig } from 'vitest/config';

// The default run (`npm test`): every test file but the heavy ones, whose
// small seeded slices stay here. `*.slow.test.ts` (the full fuzzes,
// exhaustive crash points, soaks) run under vitest.slow.config.ts
// (`npm run test:slow`), which CI runs too.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/**/*.slow.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
