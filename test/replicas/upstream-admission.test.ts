import { describe, expect, it, vi } from 'vitest';
import { GatewayError } from '../../src/errors/index.js';
import { UpstreamAdmission } from '../../src/replicas/upstream-admission.js';
import { SEED } from '../../src/simulator/seed.js';
import { gate, hold } from '../support/held-calls.js';
import { startStack, type GraphQLAnswer } from '../support/stack.js';

// Issue #19, a tail that holds under saturation: past the pool's sockets plus a bounded queue, an
// Atlas call is shed at once with OVERLOADED instead of waiting. The simulator holds calls on a gate
// the test opens, so the queue is full by count, never by timing.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const SNAPSHOT = `{ snapshot(projectId: "${P}", clusterName: "${F.clusterName}", id: "${F.completedSnapshotId}") { id status } }`;

describe('UpstreamAdmission', () => {
  it('admits sockets + maxQueued calls, sheds the next unsent with OVERLOADED, and admits again once one ends', () => {
    const admission = new UpstreamAdmission({ sockets: 2, maxQueued: 1, retryAfterMs: 2500 });
    for (let i = 0; i < 3; i++) admission.beforeSend();
    expect(admission.inFlight).toBe(3);
    let refused: unknown;
    try {
      admission.beforeSend();
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(GatewayError);
    expect((refused as GatewayError).code).toBe('OVERLOADED');
    expect((refused as GatewayError).status).toBe(503);
    expect((refused as GatewayError).extensions).toEqual({ retryable: true, retryAfterMs: 2500 });
    expect(admission.inFlight).toBe(3);
    expect(admission.shed).toBe(1);
    admission.onExchange();
    admission.beforeSend();
    expect(admission.inFlight).toBe(3);
    expect(admission.shed).toBe(1);
  });

  it('never counts below zero (an exchange it did not admit)', () => {
    const admission = new UpstreamAdmission({ sockets: 1, maxQueued: 0 });
    admission.onExchange();
    expect(admission.inFlight).toBe(0);
    admission.beforeSend();
    expect(() => admission.beforeSend()).toThrow(GatewayError);
  });
});

describe('the gateway under a full upstream queue', () => {
  it('answers the request past 2 sockets + 1 queued with OVERLOADED (503, Retry-After), sends nothing for it, and serves again when the held calls end', async () => {
    const { sleep, release } = gate();
    const stack = await startStack({
      sim: { sleep },
      env: { GATEWAY_UPSTREAM_MAX_QUEUED: '1' },
      gateway: { atlas: { pool: { connections: 2 } } },
    });
    // The token and the cluster's family first, so each query below is exactly one Atlas call.
    expect((await stack.query(SNAPSHOT)).errors).toBeUndefined();
    expect(stack.gateway.upstream.inFlight()).toBe(0);

    const reads = () =>
      stack.sim.stats().requests.filter((r) => r.operationId === 'getGroupFlexClusterBackupSnapshot').length;
    expect(reads()).toBe(1);
    hold(stack.sim, 'getGroupFlexClusterBackupSnapshot', { times: 3 });
    const held = [stack.query(SNAPSHOT), stack.query(SNAPSHOT), stack.query(SNAPSHOT)];
    // Two on the pool's sockets (held by the simulator), one waiting in the pool's queue.
    await vi.waitFor(() => expect(stack.gateway.upstream.inFlight()).toBe(3));

    let res: Response | undefined;
    const calls = await stack.upstreamCalls(async () => {
      res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: SNAPSHOT }),
      });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(503);
    expect(res!.headers.get('retry-after')).toBe('1');
    const shed = (await res!.json()) as Omit<GraphQLAnswer, 'status'>;
    expect(shed.errors?.map((e) => e.extensions)).toEqual([
      { code: 'OVERLOADED', retryable: true, retryAfterMs: 1000 },
    ]);
    expect(stack.gateway.upstream.shed()).toBe(1);
    expect(stack.gateway.upstream.inFlight()).toBe(3);
    const metrics = await stack.gateway.registry.metrics();
    expect(metrics).toMatch(/^gateway_upstream_shed_total 1$/m);
    expect(metrics).toMatch(/^gateway_upstream_in_flight 3$/m);

    release();
    const answers = await Promise.all(held);
    expect(answers.map((a) => [a.status, a.errors])).toEqual([
      [200, undefined],
      [200, undefined],
      [200, undefined],
    ]);
    expect(reads()).toBe(1 + 3);
    expect(stack.gateway.upstream.inFlight()).toBe(0);
    expect((await stack.query(SNAPSHOT)).errors).toBeUndefined();
    expect(reads()).toBe(1 + 3 + 1);
    expect(stack.gateway.upstream.shed()).toBe(1);
  });
});
