import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemoryIdempotencyStore,
  type IdempotencyStore,
  type IdempotentResult,
} from '../../src/jobs/idempotency-store.js';
import { RedisIdempotencyStore } from '../../src/jobs/redis-idempotency-store.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { ManualClock } from '../../src/simulator/index.js';

// Both stores against the same contract. The Redis one uses the machine's Redis on 127.0.0.1:6379
// (.ci/run starts it when it is not running) under a key prefix of its own, removed afterwards.
let redis: SharedRedis;
beforeAll(async () => {
  redis = connectRedis({ url: 'redis://127.0.0.1:6379', prefix: `test-idem-${randomUUID()}:` });
  if (!redis.ready()) await once(redis.client, 'ready');
});
afterAll(async () => {
  const keys = await redis.client.keys(`${redis.prefix}*`);
  if (keys.length) await redis.client.del(...keys);
  await redis.close();
});

const stores: [string, () => IdempotencyStore][] = [
  ['memory', () => new MemoryIdempotencyStore({ clock: new ManualClock() })],
  ['Redis', () => new RedisIdempotencyStore(redis, { clock: new ManualClock(), waitPollMs: 10 })],
];

const unresolvedResult = (before: string[]): IdempotentResult => ({
  fingerprint: 'fp',
  projectId: 'p',
  clusterName: 'c',
  jobId: '',
  unresolved: { before, snapshotId: 's', deliveryType: 'DOWNLOAD' },
});

/** A key whose first request ended with an unknown outcome; answers the unresolved result as stored. */
async function leftUnresolved(store: IdempotencyStore, key: string): Promise<IdempotentResult> {
  const first = await store.claim(key, 'fp');
  if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
  first.settle(unresolvedResult(['a']));
  for (;;) {
    const seen = await store.claim(key, 'fp');
    if (seen.state === 'done') return seen.result;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each(stores)('%s idempotency store: retaking an unresolved key', (_name, make) => {
  it('gives the key to exactly one of concurrent retakes; the others wait for what it records', async () => {
    const store = make();
    const key = randomUUID();
    const unresolved = await leftUnresolved(store, key);
    expect(unresolved.unresolved).toBeDefined();
    const turns = await Promise.all([0, 1, 2].map(() => store.retake(key, 'fp', unresolved)));
    const winners = turns.filter((t) => t.state === 'new');
    expect(winners).toHaveLength(1);
    expect(turns.filter((t) => t.state === 'inflight')).toHaveLength(2);
    const resolved: IdempotentResult = {
      fingerprint: 'fp',
      projectId: 'p',
      clusterName: 'c',
      jobId: 'job-1',
    };
    (winners[0] as Extract<(typeof turns)[number], { state: 'new' }>).settle(resolved);
    for (const t of turns) if (t.state === 'inflight') expect(await t.wait).toMatchObject({ jobId: 'job-1' });
    const later = await store.claim(key, 'fp');
    expect(later).toMatchObject({ state: 'done', result: { jobId: 'job-1' } });
    // A retake of the old unresolved result now answers what the key holds.
    expect(await store.retake(key, 'fp', unresolved)).toMatchObject({
      state: 'done',
      result: { jobId: 'job-1' },
    });
  });

  it('keeps the key unresolved when the one who retook it still cannot tell, and frees it on request', async () => {
    const store = make();
    const key = randomUUID();
    const unresolved = await leftUnresolved(store, key);
    const turn = await store.retake(key, 'fp', unresolved);
    if (turn.state !== 'new') throw new Error('expected the turn');
    turn.settle(unresolved);
    const again = await store.claim(key, 'fp');
    expect(again).toMatchObject({ state: 'done', result: { unresolved: { before: ['a'] } } });
    const second = await store.retake(key, 'fp', (again as { result: IdempotentResult }).result);
    if (second.state !== 'new') throw new Error('expected the turn again');
    second.settle(undefined);
    expect((await store.claim(key, 'fp')).state).toBe('new');
  });
});
