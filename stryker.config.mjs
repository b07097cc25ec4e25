// @ts-check
/**
 * Mutation testing (`npm run mutation`, not run in CI: it takes a while). See docs/mutation.md.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
const config = {
  testRunner: 'vitest',
  vitest: {
    // Only the in-process test files: see EXCLUDED_FROM_MUTATION there.
    configFile: 'vitest.mutation.config.ts',
    // Tests reach most modules through the gateway and the simulator, not by importing them.
    related: false,
  },
  coverageAnalysis: 'perTest',
  // A mutant in code that runs when a module loads (constant tables, top-level `new Set`) is
  // "static": every test would have to run for it, ~3 minutes each. They are reported as ignored.
  ignoreStatic: true,
  checkers: [],
  // Vitest does not type-check, and the default would prepend `// @ts-nocheck` to every file in the
  // sandbox, which test/atlas/codegen.test.ts (generated code is byte-for-byte the generator's) sees.
  disableTypeChecks: false,
  concurrency: 2,
  // Tests use real sockets on 127.0.0.1; a mutant that loops forever is caught by the timeout.
  timeoutMS: 5_000,
  timeoutFactor: 1.5,
  mutate: [
    'src/jobs/**/*.ts',
    'src/callers/**/*.ts',
    'src/graphql/access.ts',
    'src/graphql/errors.ts',
    'src/errors/**/*.ts',
    '!src/errors/index.ts',
    'src/backup/backup-router.ts',
    'src/backup/family-cache.ts',
    'src/backup/backup-service.ts',
    'src/atlas/credentials/**/*.ts',
  ],
  ignorePatterns: ['reports', 'bench/results', 'chaos/results', 'coverage', 'dist', '.git'],
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};

export default config;
