import { defineConfig } from 'vitest/config';

// The slow run (`npm run test:slow`): only the `*.slow.test.ts` files, the
// heavy cases whose slices the default run keeps.
export default defineConfig({
  test: {
    include: ['test/**/*.slow.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
