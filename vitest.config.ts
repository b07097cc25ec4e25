import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Node resolves `graphql` (no "exports" field) to its CommonJS build for every importer; vite would
    // resolve our sources' import to the ESM build, so graphql-ws and yoga, loaded natively, would see
    // another GraphQLError class than ours (graphql-ws checks onSubscribe's errors with instanceof).
    // One copy, as in production.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Closes what tests registered with test/support/disposer.ts `track` (servers, clients, timers).
    setupFiles: ['test/support/setup.ts'],
    // Real sockets on 127.0.0.1 only; a test that leaves a handle open fails the run instead of hanging it.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    teardownTimeout: 5_000,
    pool: 'forks',
  },
});
