import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { MemoryWebhookOutbox } from '../../src/webhooks/memory-webhook-outbox.js';
import { RedisWebhookOutbox } from '../../src/webhooks/redis-webhook-outbox.js';
import type { DeliverySubject, WebhookOutbox } from '../../src/webhooks/webhook-outbox.js';
import { track } from '../support/disposer.js';
import { until } from '../support/private-redis.js';

// The outbox alone, as two replicas share it: each "replica" its own connection pair to the machine's
// Redis on 127.0.0.1:6379, every test under a key prefix of its own. Times are plain numbers passed
// in (the replicas' clock); only XAUTOCLAIM's idle time is Redis's own, and the tests that need it
// set it to 0 so no test waits.

const URL = 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
let admin: SharedRedis;

beforeAll(async () => {
  admin = track(connectRedis({ url: URL, prefix: 'unused:' }), 'admin Redis');
  await until(() => admin.ready(), 'Redis on 127.0.0.1:6379');
});
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await admin.client.keys(`${prefix}*`);
    if (keys.length) await admin.client.del(...keys);
  }
});

async function replicas(n: number, claimIdleMs = 60_000): Promise<RedisWebhookOutbox[]> {
  const prefix = `test-wh-outbox-${randomUUID()}:`;
  prefixes.push(prefix);
  const out: RedisWebhookOutbox[] = [];
  for (let i = 0; i < n; i++) {
    const redis = track(connectRedis({ url: URL, prefix }), `replica ${i} Redis`);
    await until(() => redis.ready(), 'Redis ready');
    out.push(new RedisWebhookOutbox(redis, { claimIdleMs }));
  }
  return out;
}

const subject = (n: number): DeliverySubject => ({
  eventId: `evt_${n}`,
  type: 'com.example.atlas-backup.job.completed',
  jobId: `${n}`.padStart(24, '0'),
  projectId: 'a'.repeat(24),
  clusterName: 'c',
});
const T = 1_700_000_000_000;

describe.each([
  ['Redis', async () => (await replicas(1))[0]!],
  ['memory', async () => new MemoryWebhookOutbox()],
] as [string, () => Promise<WebhookOutbox>][])('the %s outbox', (_name, make) => {
  it('takes an event once, hands it to one claim, and keeps its record after delivery', async () => {
    const o = await make();
    expect(await o.enqueue('h', subject(1), '{"a":1}', T)).toBe('added');
    expect(await o.enqueue('h', subject(1), '{"a":1}', T + 1)).toBe('duplicate');
    const [c] = await o.claim('h', 'r1', 5, T);
    expect(c).toMatchObject({ eventId: 'evt_1', body: '{"a":1}', attempts: 0 });
    expect(await o.claim('h', 'r1', 5, T)).toEqual([]);
    await o.settle('h', c!, { kind: 'delivered', statusCode: 204 }, T + 5);
    expect(await o.backlog('h')).toBe(0);
    expect(await o.deliveries('h', { first: 10 })).toMatchObject([
      { eventId: 'evt_1', status: 'DELIVERED', attempts: 1, lastStatusCode: 204, deliveredAt: T + 5 },
    ]);
    // Delivered is still known: the same change seen again is no new event.
    expect(await o.enqueue('h', subject(1), '{"a":1}', T + 10)).toBe('duplicate');
  });

  it('schedules a retry, hands it out only once due, and dead-letters it', async () => {
    const o = await make();
    await o.enqueue('h', subject(2), 'b', T);
    const [c] = await o.claim('h', 'r1', 1, T);
    await o.settle(
      'h',
      c!,
      { kind: 'retry', statusCode: 500, error: 'HTTP 500', nextAttemptAt: T + 1000 },
      T,
    );
    expect(await o.nextRetryAt('h')).toBe(T + 1000);
    expect(await o.claim('h', 'r1', 1, T + 999)).toEqual([]);
    const [again] = await o.claim('h', 'r1', 1, T + 1000);
    expect(again).toMatchObject({ eventId: 'evt_2', attempts: 1, ref: { kind: 'retry' } });
    await o.settle('h', again!, { kind: 'dead', statusCode: null, error: 'timeout' }, T + 1001);
    expect(await o.deliveries('h', { statuses: ['DEAD_LETTERED'], first: 10 })).toMatchObject([
      {
        status: 'DEAD_LETTERED',
        attempts: 2,
        lastStatusCode: null,
        lastError: 'timeout',
        deadLetteredAt: T + 1001,
      },
    ]);
    expect(await o.claim('h', 'r1', 1, T + 10_000_000)).toEqual([]);
  });
});

describe('the Redis outbox across replicas', () => {
  it('enqueues a change seen by several replicas at once exactly once', async () => {
    const rs = await replicas(3);
    const results = await Promise.all(rs.map((o) => o.enqueue('h', subject(3), 'c', T)));
    expect(results.sort()).toEqual(['added', 'duplicate', 'duplicate']);
    expect(await rs[0]!.backlog('h')).toBe(1);
  });

  it('gives each new event to one replica', async () => {
    const [a, b] = await replicas(2);
    for (let i = 0; i < 10; i++) await a!.enqueue('h', subject(100 + i), `${i}`, T);
    const [x, y] = await Promise.all([a!.claim('h', 'a', 10, T), b!.claim('h', 'b', 10, T)]);
    const ids = [...x, ...y].map((c) => c.eventId);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
  });

  it('takes over what a dead replica claimed and never settled (XAUTOCLAIM, and the retry lease)', async () => {
    // claimIdleMs 0: an entry pending at all counts as abandoned, so the test does not wait.
    const [dead, alive] = await replicas(2, 0);
    await dead!.enqueue('h', subject(4), 'first try', T);
    await dead!.enqueue('h', subject(5), 'retry', T);
    const claimed = await dead!.claim('h', 'dead', 2, T);
    expect(claimed.map((c) => c.eventId)).toEqual(['evt_4', 'evt_5']);
    // evt_5 failed once and is leased as a retry when the replica dies; evt_4 stays pending in the stream.
    await dead!.settle(
      'h',
      claimed[1]!,
      { kind: 'retry', statusCode: 502, error: 'HTTP 502', nextAttemptAt: T },
      T,
    );
    expect((await dead!.claim('h', 'dead', 1, T)).map((c) => c.eventId)).toEqual(['evt_5']);

    const taken = await alive!.claim('h', 'alive', 5, T + 1);
    expect(taken.map((c) => c.eventId).sort()).toEqual(['evt_4', 'evt_5']);
    for (const c of taken) await alive!.settle('h', c, { kind: 'delivered', statusCode: 200 }, T + 2);
    expect(await alive!.backlog('h')).toBe(0);
    expect(
      (await alive!.deliveries('h', { first: 5 })).map((d) => [d.eventId, d.status, d.attempts]).sort(),
    ).toEqual([
      ['evt_4', 'DELIVERED', 1],
      ['evt_5', 'DELIVERED', 2],
    ]);
  });

  it('leaves a live replica its claims while they are younger than claimIdleMs', async () => {
    const [a, b] = await replicas(2, 60_000);
    await a!.enqueue('h', subject(6), 'x', T);
    expect(await a!.claim('h', 'a', 1, T)).toHaveLength(1);
    expect(await b!.claim('h', 'b', 1, T)).toEqual([]);
  });

  it('hands a released delivery to the next replica at once, without counting an attempt', async () => {
    const [a, b] = await replicas(2);
    await a!.enqueue('h', subject(7), 'y', T);
    const [c] = await a!.claim('h', 'a', 1, T);
    await a!.release('h', c!, T + 3);
    const [again] = await b!.claim('h', 'b', 1, T + 3);
    expect(again).toMatchObject({ eventId: 'evt_7', attempts: 0, ref: { kind: 'retry' } });
  });
});
