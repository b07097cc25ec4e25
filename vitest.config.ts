import { defineConfig } from 'vitest/config';

export default defineConfig({
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
