import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineSignal, securityPlugins, useExecutionTimeout } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, startSecureStack } from '../support/security-gateway.js';

const P = SEED.projects.payments.id;

// The deadline's timer is the test's: it fires when the test says, once the simulator holds the slow
// upstream call (counted by the fault's hits), never by racing a real 500 ms against a real 2 s.
const timers = new ManualTimers();
let stack: Stack;
beforeAll(async () => {
  stack = await startSecureStack(
    { executionTimeoutMs: 0 },
    { plugins: [...securityPlugins({ executionTimeoutMs: 0 }), useExecutionTimeout(500, timers)] },
  );
});
afterAll(async () => {
  stack.sim.faults.clear();
  await stack.close();
});

/** Slow cluster lists (2 s each: the deadline, fired by the test, comes first). */
function slowClusters(): void {
  stack.sim.faults.add({ operationId: 'listGroupClusters', latencyMs: 2000 });
  stack.sim.faults.add({ operationId: 'listGroupFlexClusters', latencyMs: 2000 });
}
const held = () => stack.sim.faults.list().reduce((n, f) => n + f.hits, 0);

describe('the execution timeout', () => {
  it('stops an operation whose upstream is slower than the deadline, with a retryable error', async () => {
    slowClusters();
    try {
      const pending = post(stack, { query: `{ project(id: "${P}") { name clusters { name } } }` });
      await expect.poll(held, { timeout: 15_000 }).toBeGreaterThan(0);
      expect(timers.delays.at(-1)).toBe(500);
      expect(timers.fire()).toBe(1);
      const res = await pending;
      expect(res.status).toBe(504);
      expect(res.json?.errors).toEqual([
        {
          message:
            'The operation did not finish within 500 ms and was stopped; ask for less (fewer clusters, a smaller `first`) or retry later.',
          extensions: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, timeoutMs: 500 },
        },
      ]);
    } finally {
      stack.sim.faults.clear();
    }
  });

  it('lets an operation within the deadline finish, and clears its timer', async () => {
    const asked = timers.delays.length;
    const res = await post(stack, { query: `{ project(id: "${P}") { name } }` });
    expect(res.status).toBe(200);
    expect(firstError(res)).toBeUndefined();
    expect(timers.delays.slice(asked)).toEqual([500]);
    expect(timers.pending).toBe(0);
  });

  it('aborts the deadline signal of the request, for its upstream calls', async () => {
    slowClusters();
    try {
      // A GET carries no body, so the request yoga sees is this very object.
      const request = new Request(
        `http://gateway.test/graphql?query=${encodeURIComponent(`{ project(id: "${P}") { clusters { name } } }`)}`,
        { headers: { 'x-graphql-csrf': '1', accept: 'application/graphql-response+json' } },
      );
      expect(deadlineSignal(request)).toBeUndefined(); // not executing yet
      const pending = stack.gateway.yoga.fetch(request);
      await expect.poll(held, { timeout: 15_000 }).toBeGreaterThan(0);
      expect(deadlineSignal(request)?.aborted).toBe(false);
      expect(timers.fire()).toBe(1);
      const res = await pending;
      expect(res.status).toBe(504);
      const signal = deadlineSignal(request);
      expect(signal?.aborted).toBe(true);
      expect((signal?.reason as Error).message).toMatch(/did not finish within 500 ms/);
    } finally {
      stack.sim.faults.clear();
    }
  });
});
