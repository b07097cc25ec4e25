import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Claim, ClaimIntent, IdempotentResult } from '../../src/jobs/idempotency-store.js';
import { RedisIdempotencyStore, type WithoutRedis } from '../../src/jobs/redis-idempotency-store.js';
import type { SharedRedis } from '../../src/replicas/redis.js';
import { ManualClock } from '../../src/time/clock.js';
import type { Timers } from '../../src/time/timers.js';
import { until } from '../support/private-redis.js';

// Issue #21: the Redis idempotency store's own behaviour, key by key, against the Redis on
// 127.0.0.1:6379 under a prefix of each test's own (its keys deleted, its connections closed after).
// The store reads `redis.client` and `redis.ready()` on every use, so a test swaps in a client that
// cannot send (commands fail) or says Redis is not ready, without touching the shared server.

const URL = 'redis://127.0.0.1:6379';
const TTL = 60_000;
const LEASE = 9_000;

/** Lease-renewal timers the test fires by hand. */
class ManualTimers implements Timers {
  pending = new Map<number, { fn: () => void; ms: number }>();
  #next = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.#next++;
    this.pending.set(this.#next, { fn, ms });
    return this.#next;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fire(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const t of due) t.fn();
  }
}

interface Harness {
  redis: SharedRedis & { up: boolean; broken: boolean };
  real: Redis;
  prefix: string;
  clock: ManualClock;
  timers: ManualTimers;
  lines: { level: number; msg: string; [k: string]: unknown }[];
  store(
    withoutRedis?: WithoutRedis,
    extra?: { recoveryMs?: number; maxLocalKeys?: number },
  ): RedisIdempotencyStore;
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function harness(): Promise<Harness> {
  const prefix = `test-redis-store-${randomUUID()}:`;
  const real = new Redis(URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  // Never connected, no offline queue: every command fails at once, like a Redis that went away. A
  // command would make a lazy client connect, so it points where nothing listens and never retries.
  const dead = new Redis('redis://127.0.0.1:1', {
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  dead.on('error', () => undefined);
  await until(() => real.status === 'ready', 'redis ready');
  const stores: RedisIdempotencyStore[] = [];
  const redis: Harness['redis'] = {
    up: true,
    broken: false,
    get client(): Redis {
      return redis.broken ? dead : real;
    },
    subscriber: real,
    prefix,
    ready: () => redis.up,
    close: async () => undefined,
  };
  const lines: Harness['lines'] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Harness['lines'][number]);
        done();
      },
    }),
  );
  const clock = new ManualClock();
  const timers = new ManualTimers();
  open.push(async () => {
    for (const s of stores) s.close();
    const keys = await real.keys(`${prefix}*`);
    if (keys.length > 0) await real.del(...keys);
    real.disconnect();
    dead.disconnect();
  });
  return {
    redis,
    real,
    prefix,
    clock,
    timers,
    lines,
    store: (withoutRedis = 'refuse', extra = {}) => {
      const s = new RedisIdempotencyStore(redis, {
        clock,
        timers,
        ttlMs: TTL,
        leaseMs: LEASE,
        waitPollMs: 5,
        withoutRedis,
        logger,
        ...extra,
      });
      stores.push(s);
      return s;
    },
  };
}

const INTENT: ClaimIntent = {
  projectId: 'p1',
  clusterName: 'c1',
  snapshotId: 's1',
  deliveryType: 'RESTORE',
  target: { projectId: 'p2', clusterName: 'c2' },
};

const result = (jobId: string, fingerprint = 'fp'): IdempotentResult => ({
  fingerprint,
  projectId: 'p1',
  clusterName: 'c1',
  jobId,
});

function held(c: Claim) {
  if (c.state !== 'new') throw new Error(`expected a new claim, got ${c.state}`);
  return c;
}

async function json(real: Redis, key: string): Promise<Record<string, unknown> | null> {
  const v = await real.get(key);
  return v === null ? null : (JSON.parse(v) as Record<string, unknown>);
}

/** Waits until the store's background work (epoch check, write-back) has written `key`. */
async function written(real: Redis, key: string) {
  for (let i = 0; i < 500; i++) {
    if ((await real.exists(key)) === 1) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${key} never written`);
}

describe('RedisIdempotencyStore: keys and TTLs', () => {
  it('a claim writes its value (fingerprint, owner, intent) for the TTL and a lease idem-lease:<key> holding the owner', async () => {
    const h = await harness();
    const s = h.store();
    held(await s.claim('k1', 'fp', INTENT));
    const k = `${h.prefix}idem:k1`;
    const value = await json(h.real, k);
    expect(value).toEqual({ fingerprint: 'fp', owner: expect.any(String) as string, intent: INTENT });
    const pttl = await h.real.pttl(k);
    expect(pttl).toBeGreaterThan(TTL - 5_000);
    expect(pttl).toBeLessThanOrEqual(TTL);
    const lease = `${h.prefix}idem-lease:${k}`;
    expect(await h.real.get(lease)).toBe(value!.owner);
    const lpttl = await h.real.pttl(lease);
    expect(lpttl).toBeGreaterThan(LEASE - 5_000);
    expect(lpttl).toBeLessThanOrEqual(LEASE);
    expect(await h.real.get(`${h.prefix}idem-epoch`)).toEqual(expect.any(String));
    // Renewed every third of the lease.
    expect([...h.timers.pending.values()].map((t) => t.ms)).toEqual([LEASE / 3]);
  });

  it('a claim without intent stores none', async () => {
    const h = await harness();
    held(await h.store().claim('k0', 'fp'));
    expect(Object.keys((await json(h.real, `${h.prefix}idem:k0`))!).sort()).toEqual(['fingerprint', 'owner']);
  });

  it('posting() writes postedAt ahead of the POST, keeping the TTL, and renews the lease', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('k2', 'fp', INTENT));
    const k = `${h.prefix}idem:k2`;
    const lease = `${h.prefix}idem-lease:${k}`;
    await h.real.pexpire(k, 30_000);
    await h.real.del(lease);
    await c.posting(1234);
    const value = await json(h.real, k);
    expect(value).toEqual({
      fingerprint: 'fp',
      owner: expect.any(String) as string,
      intent: INTENT,
      postedAt: 1234,
    });
    expect(await h.real.pttl(k)).toBeLessThanOrEqual(30_000);
    expect(await h.real.get(lease)).toBe(value!.owner);
  });

  it('settle writes the result for resultTtlMs, drops the lease and binds idem-job:<jobId> to the key', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('k3', 'fp', INTENT, { resultTtlMs: 20_000 }));
    c.settle(result('job-3'));
    expect(h.timers.pending.size).toBe(0);
    const k = `${h.prefix}idem:k3`;
    const b = `${h.prefix}idem-job:job-3`;
    await written(h.real, b);
    expect(await json(h.real, k)).toEqual({ fingerprint: 'fp', result: result('job-3') });
    const pttl = await h.real.pttl(k);
    expect(pttl).toBeGreaterThan(15_000);
    expect(pttl).toBeLessThanOrEqual(20_000);
    expect(await h.real.exists(`${h.prefix}idem-lease:${k}`)).toBe(0);
    expect(await h.real.get(b)).toBe('k3');
    expect(await h.real.pttl(b)).toBeLessThanOrEqual(20_000);
    // The same key again: its result.
    expect(await s.claim('k3', 'fp')).toEqual({ state: 'done', result: result('job-3') });
  });

  it('settle(undefined) frees the key and its lease', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('k4', 'fp'));
    const k = `${h.prefix}idem:k4`;
    c.settle(undefined);
    for (let i = 0; i < 200 && (await h.real.exists(k)) === 1; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(await h.real.exists(k)).toBe(0);
    expect(await h.real.exists(`${h.prefix}idem-lease:${k}`)).toBe(0);
    held(await s.claim('k4', 'fp'));
  });
});

describe('RedisIdempotencyStore: leases', () => {
  it('the holder renews its lease every third of leaseMs until settled', async () => {
    const h = await harness();
    const s = h.store();
    held(await s.claim('r1', 'fp'));
    const k = `${h.prefix}idem:r1`;
    const lease = `${h.prefix}idem-lease:${k}`;
    const owner = await h.real.get(lease);
    await h.real.del(lease);
    h.timers.fire();
    await written(h.real, lease);
    expect(await h.real.get(lease)).toBe(owner);
    await until(() => h.timers.pending.size === 1, 'next renewal');
  });

  it('a holder whose key was taken over stops renewing', async () => {
    const h = await harness();
    const s = h.store();
    held(await s.claim('r2', 'fp'));
    const k = `${h.prefix}idem:r2`;
    await h.real.set(k, JSON.stringify({ fingerprint: 'fp', owner: 'someone-else' }));
    await h.real.del(`${h.prefix}idem-lease:${k}`);
    h.timers.fire();
    await new Promise((r) => setTimeout(r, 50));
    expect(h.timers.pending.size).toBe(0);
    expect(await h.real.exists(`${h.prefix}idem-lease:${k}`)).toBe(0);
  });

  it('a closed store stops renewing; its claim, once the lease is gone, is an orphan with its intent and postedAt', async () => {
    const h = await harness();
    const a = h.store();
    const c = held(await a.claim('o1', 'fp', INTENT));
    await c.posting(777);
    a.close();
    expect(h.timers.pending.size).toBe(0);
    await expect(c.posting(778)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(a.claim('o1', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    const k = `${h.prefix}idem:o1`;
    await h.real.del(`${h.prefix}idem-lease:${k}`); // the lease ran out
    const b = h.store();
    const answer = await b.claim('o1', 'fp');
    expect(answer).toEqual({
      state: 'done',
      result: {
        fingerprint: 'fp',
        projectId: 'p1',
        clusterName: 'c1',
        jobId: '',
        unresolved: {
          snapshotId: 's1',
          deliveryType: 'RESTORE',
          target: INTENT.target,
          postedAt: 777,
          orphaned: true,
        },
      },
    });
    if (answer.state !== 'done') throw new Error('not done');
    // Retaking it: one new holder, which keeps the intent and postedAt.
    const r = held(await b.retake('o1', 'fp', answer.result));
    const value = await json(h.real, k);
    expect(value).toEqual({
      fingerprint: 'fp',
      owner: expect.any(String) as string,
      intent: INTENT,
      postedAt: 777,
    });
    expect(await h.real.get(`${h.prefix}idem-lease:${k}`)).toBe(value!.owner);
    // A second retake of the same orphan sees it held.
    const again = await h.store().retake('o1', 'fp', answer.result);
    expect(again.state).toBe('inflight');
    r.settle(result('job-o1'));
    if (again.state === 'inflight') expect(await again.wait).toEqual(result('job-o1'));
    await expect(a.retake('o1', 'fp', answer.result)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('an orphan without intent is unresolved with empty fields', async () => {
    const h = await harness();
    const k = `${h.prefix}idem:o2`;
    const s = h.store();
    held(await s.claim('warm', 'fp')); // the epoch exists
    await h.real.set(k, JSON.stringify({ fingerprint: 'fp', owner: 'gone' }), 'PX', TTL);
    expect(await s.claim('o2', 'fp')).toEqual({
      state: 'done',
      result: {
        fingerprint: 'fp',
        projectId: '',
        clusterName: '',
        jobId: '',
        unresolved: { snapshotId: '', deliveryType: 'RESTORE', orphaned: true },
      },
    });
  });

  it('a retake of a result not handed out by Redis claims the key as usual', async () => {
    const h = await harness();
    const s = h.store();
    const unresolved: IdempotentResult = {
      ...result(''),
      unresolved: { snapshotId: 's1', deliveryType: 'DOWNLOAD' },
    };
    held(await s.retake('x1', 'fp', unresolved));
    expect(await json(h.real, `${h.prefix}idem:x1`)).toEqual({
      fingerprint: 'fp',
      owner: expect.any(String) as string,
    });
  });
});

describe('RedisIdempotencyStore: waiting for another holder', () => {
  it('another replica waits in flight and gets the result once settled', async () => {
    const h = await harness();
    const a = h.store();
    const c = held(await a.claim('w1', 'fp'));
    const w = await h.store().claim('w1', 'fp-other');
    expect(w.state).toBe('inflight');
    if (w.state !== 'inflight') return;
    expect(w.fingerprint).toBe('fp');
    // The holder's own store waits on its outcome.
    const own = await a.claim('w1', 'fp');
    if (own.state !== 'inflight') throw new Error('not inflight');
    c.settle(result('job-w1'));
    expect(await own.wait).toEqual(result('job-w1'));
    expect(await w.wait).toEqual(result('job-w1'));
  });

  it('a wait sees the holder die (lease gone) as an orphan, and a freed key as undefined', async () => {
    const h = await harness();
    const a = h.store();
    held(await a.claim('w2', 'fp', INTENT));
    held(await a.claim('w3', 'fp'));
    const b = h.store();
    const w2 = await b.claim('w2', 'fp');
    const w3 = await b.claim('w3', 'fp');
    if (w2.state !== 'inflight' || w3.state !== 'inflight') throw new Error('not inflight');
    a.close();
    await h.real.del(`${h.prefix}idem-lease:${h.prefix}idem:w2`);
    await h.real.del(`${h.prefix}idem:w3`);
    expect((await w2.wait)?.unresolved).toEqual({
      snapshotId: 's1',
      deliveryType: 'RESTORE',
      target: INTENT.target,
      orphaned: true,
    });
    expect(await w3.wait).toBeUndefined();
  });
  it('a wait rides out failing Redis commands and still gets the result', async () => {
    const h = await harness();
    const a = h.store();
    const c = held(await a.claim('w4', 'fp'));
    const w = await h.store().claim('w4', 'fp');
    if (w.state !== 'inflight') throw new Error('not inflight');
    h.redis.broken = true;
    await new Promise((r) => setTimeout(r, 30));
    h.redis.broken = false;
    c.settle(result('job-w4'));
    expect(await w.wait).toEqual(result('job-w4'));
  });
});

describe('RedisIdempotencyStore: bind and boundTo', () => {
  it('the first owner of a job wins; idem-job:<jobId> holds it for the TTL', async () => {
    const h = await harness();
    const s = h.store();
    expect(await s.bind('j1', 'key-a')).toBe(true);
    expect(await s.bind('j1', 'key-b')).toBe(false);
    expect(await s.bind('j1', 'key-a')).toBe(true);
    expect(await h.real.get(`${h.prefix}idem-job:j1`)).toBe('key-a');
    const pttl = await h.real.pttl(`${h.prefix}idem-job:j1`);
    expect(pttl).toBeGreaterThan(TTL - 5_000);
    expect(pttl).toBeLessThanOrEqual(TTL);
    expect(await s.boundTo(['j1', 'j2'])).toEqual(['key-a', undefined]);
    expect(await s.boundTo([])).toEqual([]);
  });

  it('while Redis is not ready, bindings are this process’s own and boundTo answers them', async () => {
    const h = await harness();
    const s = h.store();
    h.redis.up = false;
    expect(await s.bind('j3', 'key-a')).toBe(true);
    expect(await s.bind('j3', 'key-b')).toBe(false);
    expect(await s.boundTo(['j3', 'j4'])).toEqual(['key-a', undefined]);
    expect(await h.real.exists(`${h.prefix}idem-job:j3`)).toBe(0);
    h.redis.up = true;
    // Redis's binding first, the local one where Redis has none.
    await h.real.set(`${h.prefix}idem-job:j4`, 'key-r');
    expect(await s.boundTo(['j3', 'j4'])).toEqual(['key-a', 'key-r']);
  });
});

describe('RedisIdempotencyStore: refuse mode (STORE_UNAVAILABLE)', () => {
  it('claim and retake are refused while Redis is not ready; a best-effort claim stays local', async () => {
    const h = await harness();
    const s = h.store();
    h.redis.up = false;
    await expect(s.claim('u1', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(
      s.retake('u1', 'fp', { ...result(''), unresolved: { snapshotId: 's', deliveryType: 'DOWNLOAD' } }),
    ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    const c = held(await s.claim('u1', 'fp', undefined, { localWhenUnavailable: true }));
    c.settle(result('job-u1'));
    expect(await s.claim('u1', 'fp', undefined, { localWhenUnavailable: true })).toEqual({
      state: 'done',
      result: result('job-u1'),
    });
    expect(await h.real.exists(`${h.prefix}idem:u1`)).toBe(0);
    expect(h.lines.filter((l) => l.idempotency === 'single-replica')).toEqual([]);
    // A best-effort retake stays local too.
    const unresolved: IdempotentResult = {
      ...result(''),
      unresolved: { snapshotId: 's', deliveryType: 'DOWNLOAD' },
    };
    held(await s.claim('u2', 'fp', undefined, { localWhenUnavailable: true })).settle(unresolved);
    const r = held(await s.retake('u2', 'fp', unresolved, { localWhenUnavailable: true }));
    r.settle(result('job-u2'));
    expect(await s.claim('u2', 'fp', undefined, { localWhenUnavailable: true })).toEqual({
      state: 'done',
      result: result('job-u2'),
    });
    expect(await h.real.exists(`${h.prefix}idem:u2`)).toBe(0);
  });

  it('a failing Redis command refuses the claim, the retake and the write-ahead', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('f1', 'fp'));
    h.redis.broken = true;
    await expect(s.claim('f2', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(c.posting(1)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    h.redis.broken = false;
    // Taken over meanwhile: the write-ahead is refused too.
    await h.real.set(`${h.prefix}idem:f1`, JSON.stringify({ fingerprint: 'fp', owner: 'other' }));
    await expect(c.posting(2)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await h.real.del(`${h.prefix}idem:f1`, `${h.prefix}idem-lease:${h.prefix}idem:f1`);
    const o = await h.store().claim('f1', 'fp'); // free again
    held(o);
  });

  it('a settle Redis refused (taken over) is logged', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('t1', 'fp'));
    await h.real.set(`${h.prefix}idem:t1`, JSON.stringify({ fingerprint: 'fp', owner: 'other' }));
    c.settle(result('job-t1'));
    await until(() => h.lines.some((l) => l.idempotency === 'settle-refused'), 'settle-refused');
    expect(h.lines.find((l) => l.idempotency === 'settle-refused')).toMatchObject({
      key: `${h.prefix}idem:t1`,
      level: 40,
    });
  });
});

describe('RedisIdempotencyStore: single-replica mode', () => {
  it('keys kept locally while Redis is away are written back (value, TTL, binding) when it returns', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    held(await s.claim('warm', 'fp')).settle(undefined);
    h.redis.up = false;
    const c = held(await s.claim('s1', 'fp'));
    held(await s.claim('s2', 'fp')).settle(undefined); // freed: nothing to write
    expect(h.lines.filter((l) => l.idempotency === 'single-replica')).toHaveLength(1);
    const inflight = await s.claim('s1', 'fp');
    expect(inflight.state).toBe('inflight');
    c.settle(result('job-s1'));
    expect(await s.claim('s1', 'fp')).toEqual({ state: 'done', result: result('job-s1') });
    expect(await h.real.exists(`${h.prefix}idem:s1`)).toBe(0);
    h.clock.advance(10_000);
    h.redis.up = true;
    h.real.emit('ready');
    await written(h.real, `${h.prefix}idem-job:job-s1`);
    expect(await json(h.real, `${h.prefix}idem:s1`)).toEqual({ fingerprint: 'fp', result: result('job-s1') });
    const pttl = await h.real.pttl(`${h.prefix}idem:s1`);
    expect(pttl).toBeGreaterThan(TTL - 15_000);
    expect(pttl).toBeLessThanOrEqual(TTL - 10_000);
    expect(await h.real.get(`${h.prefix}idem-job:job-s1`)).toBe('s1');
    expect(await h.real.exists(`${h.prefix}idem:s2`)).toBe(0);
    await until(() => h.lines.some((l) => l.idempotency === 'written-back'), 'written-back');
    expect(h.lines.find((l) => l.idempotency === 'written-back')).toMatchObject({ keys: 1 });
    // The key is Redis's again: what Redis holds answers.
    await h.real.set(`${h.prefix}idem:s1`, JSON.stringify({ fingerprint: 'fp', result: result('job-r') }));
    expect(await s.claim('s1', 'fp')).toEqual({ state: 'done', result: result('job-r') });
  });

  it('a key that got another job in Redis meanwhile is a logged conflict; Redis keeps its own', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    held(await s.claim('warm', 'fp')).settle(undefined);
    h.redis.up = false;
    held(await s.claim('c1', 'fp')).settle(result('job-local'));
    await h.real.set(
      `${h.prefix}idem:c1`,
      JSON.stringify({ fingerprint: 'fp', result: result('job-redis') }),
    );
    h.redis.up = true;
    h.real.emit('ready');
    await until(() => h.lines.some((l) => l.idempotency === 'conflict'), 'conflict');
    expect(h.lines.find((l) => l.idempotency === 'conflict')).toMatchObject({
      key: `${h.prefix}idem:c1`,
      redisJobId: 'job-redis',
      localJobId: 'job-local',
    });
    expect((await json(h.real, `${h.prefix}idem:c1`))?.result).toEqual(result('job-redis'));
  });

  it('a failing Redis command falls back to a local claim; a result whose write failed is written when Redis returns', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    const c = held(await s.claim('d1', 'fp'));
    const freed = held(await s.claim('d2', 'fp'));
    h.redis.broken = true;
    held(await s.claim('d3', 'fp')); // local
    c.settle(result('job-d1'));
    freed.settle(undefined);
    await new Promise((r) => setTimeout(r, 20));
    h.redis.broken = false;
    h.real.emit('ready');
    await written(h.real, `${h.prefix}idem-job:job-d1`);
    expect(await json(h.real, `${h.prefix}idem:d1`)).toEqual({ fingerprint: 'fp', result: result('job-d1') });
    for (let i = 0; i < 200 && (await h.real.exists(`${h.prefix}idem:d2`)) === 1; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await h.real.exists(`${h.prefix}idem:d2`)).toBe(0);
  });

  it('bug: in single-replica mode an unresolved key kept locally could never be retaken while Redis was away', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    h.redis.up = false;
    const unresolved: IdempotentResult = {
      ...result(''),
      unresolved: { snapshotId: 's', deliveryType: 'DOWNLOAD' },
    };
    held(await s.claim('l1', 'fp')).settle(unresolved);
    const got = await s.claim('l1', 'fp');
    if (got.state !== 'done') throw new Error('not done');
    const r = held(await s.retake('l1', 'fp', got.result));
    r.settle(result('job-l1'));
    expect(await s.claim('l1', 'fp')).toEqual({ state: 'done', result: result('job-l1') });
  });

  it('only maxLocalKeys results are remembered', async () => {
    const h = await harness();
    const s = h.store('single-replica', { maxLocalKeys: 1 });
    h.redis.up = false;
    held(await s.claim('m1', 'fp')).settle(result('job-m1'));
    held(await s.claim('m2', 'fp')).settle(result('job-m2'));
    h.redis.up = true;
    h.real.emit('ready');
    await written(h.real, `${h.prefix}idem:m2`);
    await until(() => h.lines.some((l) => l.idempotency === 'written-back'), 'written-back');
    expect(await h.real.exists(`${h.prefix}idem:m1`)).toBe(0);
  });
});

describe('RedisIdempotencyStore: Redis lost its data', () => {
  it('a new epoch refuses claims for recoveryMs while held claims and results are written back', async () => {
    const h = await harness();
    const s = h.store('refuse', { recoveryMs: 60_000 });
    const c = held(await s.claim('e1', 'fp', INTENT));
    held(await s.claim('e2', 'fp')).settle(result('job-e2'));
    await written(h.real, `${h.prefix}idem-job:job-e2`);
    const owner = await h.real.get(`${h.prefix}idem-lease:${h.prefix}idem:e1`);
    // Redis restarted without its data.
    const keys = await h.real.keys(`${h.prefix}*`);
    await h.real.del(...keys);
    await expect(s.claim('e3', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await until(() => h.lines.some((l) => l.idempotency === 'redis-lost-keys'), 'redis-lost-keys');
    await written(h.real, `${h.prefix}idem:e2`);
    const rec = await h.real.pttl(`${h.prefix}idem-recovering`);
    expect(rec).toBeGreaterThan(50_000);
    expect(rec).toBeLessThanOrEqual(60_000);
    expect(h.lines.find((l) => l.idempotency === 'redis-lost-keys')).toMatchObject({ recoveryMs: 60_000 });
    expect(await json(h.real, `${h.prefix}idem:e1`)).toEqual({ fingerprint: 'fp', owner, intent: INTENT });
    expect(await h.real.get(`${h.prefix}idem-lease:${h.prefix}idem:e1`)).toBe(owner);
    expect(await json(h.real, `${h.prefix}idem:e2`)).toEqual({ fingerprint: 'fp', result: result('job-e2') });
    // Recovering: refused (nothing sent) until the marker goes.
    await expect(s.claim('e3', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(h.store().claim('e3', 'fp')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await h.real.del(`${h.prefix}idem-recovering`);
    held(await s.claim('e3', 'fp'));
    c.settle(result('job-e1'));
  });
});

// Issue #21, the survivors of the store's own run: what a refused request is told, a key this
// replica holds or kept asked again while Redis is away, write-backs without a `ready` event, lease
// renewals that fail, a closed store, and a wait that gives up.
describe('RedisIdempotencyStore: what a refused keyed request is told', () => {
  const because = (reason: string) => ({
    code: 'STORE_UNAVAILABLE',
    message: `The idempotency store is unavailable (${reason}); nothing was sent to Atlas. Retry with the same idempotencyKey.`,
    extensions: { retryable: true },
  });

  it('the reason: shutting down, unreachable, not answering, taken over, getting its keys back', async () => {
    const h = await harness();
    const unresolved: IdempotentResult = {
      ...result(''),
      unresolved: { snapshotId: 's', deliveryType: 'DOWNLOAD' },
    };
    // Not ready.
    const s = h.store();
    h.redis.up = false;
    await expect(s.claim('m1', 'fp')).rejects.toMatchObject(because('Redis is unreachable'));
    await expect(s.retake('m1', 'fp', unresolved)).rejects.toMatchObject(because('Redis is unreachable'));
    h.redis.up = true;
    // Commands failing.
    const c = held(await s.claim('m2', 'fp', INTENT));
    h.redis.broken = true;
    await expect(s.claim('m3', 'fp')).rejects.toMatchObject(because('Redis did not answer'));
    await expect(c.posting(1)).rejects.toMatchObject(because('Redis did not answer'));
    h.redis.broken = false;
    // Taken over before the write-ahead.
    await h.real.set(`${h.prefix}idem:m2`, JSON.stringify({ fingerprint: 'fp', owner: 'other' }));
    await expect(c.posting(2)).rejects.toMatchObject(because('another request took the key over'));
    // An orphan handed out by Redis, retaken while commands fail.
    await h.real.set(`${h.prefix}idem:m4`, JSON.stringify({ fingerprint: 'fp', owner: 'gone' }), 'PX', TTL);
    const orphan = await s.claim('m4', 'fp');
    if (orphan.state !== 'done') throw new Error('expected the orphan');
    h.redis.broken = true;
    await expect(s.retake('m4', 'fp', orphan.result)).rejects.toMatchObject(because('Redis did not answer'));
    h.redis.broken = false;
    // Redis getting its keys back.
    await h.real.set(`${h.prefix}idem-recovering`, '1', 'PX', TTL);
    await expect(s.claim('m5', 'fp')).rejects.toMatchObject(
      because('Redis lost its keys (restarted without persistence) and the replicas are writing them back'),
    );
    await h.real.del(`${h.prefix}idem-recovering`);
    // Shutting down.
    const d = held(await s.claim('m6', 'fp'));
    s.close();
    const closing = because('this replica is shutting down');
    await expect(s.claim('m6', 'fp')).rejects.toMatchObject(closing);
    await expect(s.retake('m6', 'fp', unresolved)).rejects.toMatchObject(closing);
    await expect(d.posting(3)).rejects.toMatchObject(closing);
  });
});

describe('RedisIdempotencyStore: single-replica mode, keys between Redis and this process', () => {
  it('a key this replica holds in Redis, asked again while Redis is away, is in flight: no second claim', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    const c = held(await s.claim('h1', 'fp1'));
    h.redis.up = false;
    const again = await s.claim('h1', 'fp1');
    if (again.state !== 'inflight') throw new Error(`expected inflight, got ${again.state}`);
    expect(again.fingerprint).toBe('fp1');
    c.settle(result('job-h1', 'fp1'));
    expect(await again.wait).toEqual(result('job-h1', 'fp1'));
  });

  it('a key kept locally is answered locally until written back, even once Redis is ready again', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    held(await s.claim('warm', 'fp')).settle(undefined);
    h.redis.up = false;
    held(await s.claim('k1', 'fp')).settle(result('job-k1'));
    const k2 = held(await s.claim('k2', 'fp'));
    // Ready again, before any write-back: Redis does not know k1 yet, this replica does.
    h.redis.up = true;
    expect(await s.claim('k1', 'fp')).toEqual({ state: 'done', result: result('job-k1') });
    expect(await h.real.exists(`${h.prefix}idem:k1`)).toBe(0);
    // A local key settled once Redis is ready is written at once (with the others kept meanwhile).
    k2.settle(result('job-k2'));
    await written(h.real, `${h.prefix}idem:k2`);
    await written(h.real, `${h.prefix}idem:k1`);
    expect(await json(h.real, `${h.prefix}idem:k2`)).toEqual({ fingerprint: 'fp', result: result('job-k2') });
  });

  it('a local result is answered for its TTL, not at its last millisecond', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    h.redis.up = false;
    held(await s.claim('t1', 'fp')).settle(result('job-t1'));
    h.clock.advance(TTL - 1);
    expect((await s.claim('t1', 'fp')).state).toBe('done');
    h.clock.advance(1);
    expect((await s.claim('t1', 'fp')).state).toBe('new');
  });

  it('an expired local key is not written back, and does not stop the others', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    held(await s.claim('warm', 'fp')).settle(undefined);
    h.redis.up = false;
    held(await s.claim('x1', 'fp')).settle(result('job-x1'));
    h.clock.advance(TTL / 2);
    held(await s.claim('x2', 'fp')).settle(result('job-x2'));
    // x1's TTL ends exactly now.
    h.clock.advance(TTL / 2);
    h.redis.up = true;
    h.real.emit('ready');
    await written(h.real, `${h.prefix}idem:x2`);
    await until(() => h.lines.some((l) => l.idempotency === 'written-back'), 'written-back');
    expect(await h.real.exists(`${h.prefix}idem:x1`)).toBe(0);
    expect(h.lines.find((l) => l.idempotency === 'written-back')).toMatchObject({ keys: 1 });
  });
});

describe('RedisIdempotencyStore: writes that failed are made at the next claim', () => {
  it('a free whose write failed, then a result whose write failed: each is made when a claim finds Redis answering again', async () => {
    const h = await harness();
    const s = h.store();
    const lease = (k: string) => `${h.prefix}idem-lease:${h.prefix}idem:${k}`;
    const f = held(await s.claim('f1', 'fp'));
    h.redis.broken = true;
    f.settle(undefined);
    await new Promise((r) => setImmediate(r));
    h.redis.broken = false;
    expect(await h.real.exists(`${h.prefix}idem:f1`, lease('f1'))).toBe(2);
    held(await s.claim('f2', 'fp')); // no `ready` event: the claim finds Redis answering
    for (let i = 0; i < 200 && (await h.real.exists(`${h.prefix}idem:f1`)) === 1; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await h.real.exists(`${h.prefix}idem:f1`, lease('f1'))).toBe(0);

    const r = held(await s.claim('r1', 'fp'));
    h.redis.broken = true;
    r.settle(result('job-r1'));
    await new Promise((res) => setImmediate(res));
    h.redis.broken = false;
    held(await s.claim('r2', 'fp'));
    await written(h.real, `${h.prefix}idem-job:job-r1`);
    expect(await json(h.real, `${h.prefix}idem:r1`)).toEqual({ fingerprint: 'fp', result: result('job-r1') });
    // Settles Redis took are no conflict: nothing of the kind is logged.
    expect(h.lines.filter((l) => l.idempotency === 'settle-refused' || l.idempotency === 'conflict')).toEqual(
      [],
    );
  });
});

describe('RedisIdempotencyStore: lease renewals', () => {
  it('a renewal keeps the claim as it is, and a failed one is tried again at the next third', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('n1', 'fp', INTENT));
    const k = `${h.prefix}idem:n1`;
    const lease = `${h.prefix}idem-lease:${k}`;
    const value = await h.real.get(k);
    await h.real.pexpire(lease, 1_000);
    h.timers.fire();
    await until(() => h.timers.pending.size === 1, 'renewed');
    expect(await h.real.pttl(lease)).toBeGreaterThan(1_000);
    expect(await h.real.get(k)).toBe(value);
    // Redis away at a renewal: the next one is scheduled all the same, and renews.
    h.redis.broken = true;
    h.timers.fire();
    await until(() => h.timers.pending.size === 1, 'rescheduled');
    h.redis.broken = false;
    await h.real.pexpire(lease, 1_000);
    h.timers.fire();
    await until(() => h.timers.pending.size === 1, 'renewed again');
    expect(await h.real.pttl(lease)).toBeGreaterThan(1_000);
    c.settle(result('job-n1'));
    expect(h.timers.pending.size).toBe(0);
  });
});

describe('RedisIdempotencyStore: a closed store, bindings while Redis is away, a wait that gives up', () => {
  it('a closed store no longer answers Redis coming back (no epoch check, no recovery marker)', async () => {
    const h = await harness();
    const s = h.store();
    held(await s.claim('z1', 'fp')).settle(undefined);
    s.close();
    await h.real.del(`${h.prefix}idem-epoch`);
    h.real.emit('ready');
    // Any command the store sent on `ready` went out before this one, on the same connection.
    expect(await h.real.exists(`${h.prefix}idem-epoch`, `${h.prefix}idem-recovering`)).toBe(0);
  });

  it('while Redis is not ready, boundTo does not ask it (its commands would fail)', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    h.redis.up = false;
    h.redis.broken = true;
    expect(await s.bind('job-b', 'k-b')).toBe(true);
    expect(await s.boundTo(['job-b', 'job-c'])).toEqual(['k-b', undefined]);
  });

  it('a wait gives up once Redis has been unreachable for 10 leases (500 polls here): the caller claims again', async () => {
    const h = await harness();
    const opts = { clock: h.clock, timers: h.timers, leaseMs: 50, waitPollMs: 1 };
    const a = new RedisIdempotencyStore(h.redis, opts);
    const b = new RedisIdempotencyStore(h.redis, opts);
    try {
      held(await a.claim('w1', 'fp'));
      const waiting = await b.claim('w1', 'fp');
      if (waiting.state !== 'inflight') throw new Error('expected inflight');
      h.redis.broken = true;
      expect(await waiting.wait).toBeUndefined();
    } finally {
      h.redis.broken = false;
      a.close();
      b.close();
    }
  });
});

describe('RedisIdempotencyStore: what this replica recorded in Redis, while Redis is away or lost it', () => {
  it('single-replica: a key settled through Redis is answered from this replica while Redis is away: no second job', async () => {
    const h = await harness();
    const s = h.store('single-replica');
    held(await s.claim('a1', 'fp')).settle(result('job-a1'));
    await written(h.real, `${h.prefix}idem-job:job-a1`);
    h.redis.up = false;
    expect(await s.claim('a1', 'fp')).toEqual({ state: 'done', result: result('job-a1') });
  });

  it('a held claim Redis lost (its last second, same epoch) is written back with its lease when Redis is back', async () => {
    const h = await harness();
    const s = h.store();
    const c = held(await s.claim('l1', 'fp', INTENT));
    const k = `${h.prefix}idem:l1`;
    const lease = `${h.prefix}idem-lease:${k}`;
    const value = await h.real.get(k);
    const owner = await h.real.get(lease);
    await h.real.del(k, lease);
    h.real.emit('ready');
    await written(h.real, lease);
    expect(await h.real.get(k)).toBe(value);
    expect(await h.real.get(lease)).toBe(owner);
    // Still held: another replica waits instead of taking it over as an orphan.
    const other = await h.store().claim('l1', 'fp');
    expect(other.state).toBe('inflight');
    c.settle(result('job-l1'));
  });
});
