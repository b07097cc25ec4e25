import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The test files Stryker runs against each mutant (`npm run mutation`, see docs/mutation.md): those
 * that exercise the mutated modules (src/jobs, src/callers, src/errors, src/graphql/access+errors,
 * src/backup routing/service/family cache, src/atlas/credentials) in this process.
 *
 * Left out (they all still run in `npm test`):
 * - tests that start child processes or browsers (test/ops/dockerfile, test/ops/shutdown,
 *   test/config/index-start, test/scale, test/browser, test/chaos): the mutant is not active in the
 *   child, and they are slow;
 * - tests of other modules that only pass through the mutated ones (test/simulator, test/ops,
 *   test/security except production, test/config except callers and gateway-from-config);
 * - source-text checks: test/config/load-config scans src/ for `process.env`, which Stryker's
 *   instrumented copies contain; test/atlas/codegen compares generated code byte for byte.
 */
export const MUTATION_TEST_FILES = [
  'test/jobs/**/*.test.ts',
  'test/callers/**/*.test.ts',
  'test/backup/**/*.test.ts',
  'test/atlas/**/*.test.ts',
  'test/errors/**/*.test.ts',
  'test/graphql/**/*.test.ts',
  'test/security/production.test.ts',
  'test/config/callers.test.ts',
  'test/config/gateway-from-config.test.ts',
];

// Not mergeConfig: it would concatenate `include` with the base's `test/**/*.test.ts`.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: MUTATION_TEST_FILES,
    exclude: ['**/node_modules/**', 'test/atlas/codegen.test.ts'],
    // A mutant that makes a request hang fails its test soon (killed) instead of running into
    // Stryker's timeout, which restarts the worker.
    testTimeout: 8_000,
    // Modules are loaded once per worker instead of once per test file: a mutant run costs its tests,
    // not ~40 s of imports. Mutants are switched on at run time, so the shared modules are the same.
    isolate: false,
    hookTimeout: 8_000,
  },
});
