import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineSignal } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, startSecureStack } from '../support/security-gateway.js';

const P = SEED.projects.payments.id;

let stack: Stack;
beforeAll(async () => {
  stack = await startSecureStack({ executionTimeoutMs: 500 });
});
afterAll(async () => {
  stack.sim.faults.clear();
  await stack.close();
});

describe('the execution timeout', () => {
  it('stops an operation whose upstream is slower than the deadline, with a retryable error', async () => {
    stack.sim.faults.add({ operationId: 'listGroupClusters', latencyMs: 2000 });
    stack.sim.faults.add({ operationId: 'listGroupFlexClusters', latencyMs: 2000 });
    try {
      const res = await post(stack, { query: `{ project(id: "${P}") { name clusters { name } } }` });
      expect(res.status).toBe(504);
      expect(res.json?.errors?.[0]).toEqual({
        message:
          'The operation did not finish within 500 ms and was stopped; ask for less (fewer clusters, a smaller `first`) or retry later.',
        extensions: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, timeoutMs: 500 },
      });
    } finally {
      stack.sim.faults.clear();
    }
  });

  it('lets an operation within the deadline finish', async () => {
    const res = await post(stack, { query: `{ project(id: "${P}") { name } }` });
    expect(res.status).toBe(200);
    expect(firstError(res)).toBeUndefined();
  });

  it('aborts the deadline signal of the request, for its upstream calls', async () => {
    stack.sim.faults.add({ operationId: 'listGroupClusters', latencyMs: 2000 });
    stack.sim.faults.add({ operationId: 'listGroupFlexClusters', latencyMs: 2000 });
    try {
      // A GET carries no body, so the request yoga sees is this very object.
      const request = new Request(
        `http://gateway.test/graphql?query=${encodeURIComponent(`{ project(id: "${P}") { clusters { name } } }`)}`,
        { headers: { 'x-graphql-csrf': '1', accept: 'application/graphql-response+json' } },
      );
      expect(deadlineSignal(request)).toBeUndefined(); // not executing yet
      const res = await stack.gateway.yoga.fetch(request);
      expect(res.status).toBe(504);
      const signal = deadlineSignal(request);
      expect(signal?.aborted).toBe(true);
      expect((signal?.reason as Error).message).toMatch(/did not finish within 500 ms/);
    } finally {
      stack.sim.faults.clear();
    }
  });
});
