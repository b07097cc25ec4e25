import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  idempotencyStoreKey,
  MemoryIdempotencyStore,
  StoreUnavailableError,
  type IdempotencyStore,
  type IdempotentResult,
} from '../../src/jobs/idempotency-store.js';
import { RedisIdempotencyStore } from '../../src/jobs/redis-idempotency-store.js';
import { requestDownload, type JobRequestDeps } from '../../src/jobs/job-requests.js';
import type { BackupService } from '../../src/backup/backup-service.js';
import type { RestoreJobSource, SnapshotSource } from '../../src/backup/model.js';
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

const unresolvedResult = (postedAt: number): IdempotentResult => ({
  fingerprint: 'fp',
  projectId: 'p',
  clusterName: 'c',
  jobId: '',
  unresolved: { postedAt, snapshotId: 's', deliveryType: 'DOWNLOAD' },
});

/** A key whose first request ended with an unknown outcome; answers the unresolved result as stored. */
async function leftUnresolved(store: IdempotencyStore, key: string): Promise<IdempotentResult> {
  const first = await store.claim(key, 'fp');
  if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
  first.settle(unresolvedResult(1000));
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
    expect(again).toMatchObject({ state: 'done', result: { unresolved: { postedAt: 1000 } } });
    const second = await store.retake(key, 'fp', (again as { result: IdempotentResult }).result);
    if (second.state !== 'new') throw new Error('expected the turn again');
    second.settle(undefined);
    expect((await store.claim(key, 'fp')).state).toBe('new');
  });
});

/**
 * A backup service that knows one COMPLETED snapshot per id and makes numbered DOWNLOAD jobs: enough
 * for `requestDownload`, and it counts the POSTs.
 */
function fakeService() {
  const jobs = new Map<string, RestoreJobSource>();
  const unused = (): never => {
    throw new Error('not used by requestDownload');
  };
  const counts = { posts: 0 };
  const service: BackupService = {
    listProjects: unused,
    getProject: unused,
    listClusters: unused,
    getCluster: unused,
    listSnapshotPage: unused,
    listAllSnapshots: unused,
    getSnapshot: async (ref, id): Promise<SnapshotSource> => ({
      ...ref,
      family: 'FLEX',
      dto: { id, status: 'COMPLETED' } as SnapshotSource['dto'],
    }),
    // Never known: each request reads its snapshot, as before the memo (issue #19).
    knownCompletedSnapshot: () => undefined,
    findSnapshot: unused,
    listJobPage: unused,
    listAllJobs: async (ref) =>
      [...jobs.values()].filter((j) => j.projectId === ref.projectId && j.clusterName === ref.clusterName),
    listRecentJobs: async (ref) =>
      [...jobs.values()]
        .filter((j) => j.projectId === ref.projectId && j.clusterName === ref.clusterName)
        .reverse(),
    getJob: async (_ref, id) => {
      const job = jobs.get(id);
      if (!job) throw new Error(`no job ${id}`);
      return job;
    },
    findJob: unused,
    download: async (ref, snapshotId) => {
      counts.posts += 1;
      const job: RestoreJobSource = {
        ...ref,
        family: 'FLEX',
        dto: {
          id: `job-${counts.posts}`,
          snapshotId,
          deliveryType: 'DOWNLOAD',
          status: 'QUEUED',
        } as RestoreJobSource['dto'],
      };
      jobs.set(`job-${counts.posts}`, job);
      return job;
    },
    restore: unused,
  };
  return { service, counts };
}

describe.each(stores)('%s idempotency store: keys are scoped to the caller', (_name, make) => {
  it("does not answer caller B's key with caller A's job, nor refuse B's other input as A's", async () => {
    const store = make();
    const { service, counts } = fakeService();
    const clock = new ManualClock();
    const deps = (callerId: string): JobRequestDeps => ({ service, idempotency: store, clock, callerId });
    // One key for the whole test run, as two callers might well pick the same one ("nightly-1").
    const key = `shared-${randomUUID()}`;
    const req = {
      projectId: 'p',
      clusterName: 'c',
      snapshotId: 's1',
      idempotencyKey: key,
      reuseExisting: false,
    };

    const a = await requestDownload(deps('apikey:a'), req);
    expect([a.job.dto.id, a.reused]).toEqual(['job-1', false]);
    const b = await requestDownload(deps('apikey:b'), req);
    expect([b.job.dto.id, b.reused]).toEqual(['job-2', false]);
    // Each caller's repeat gets its own job back, with no POST.
    expect(await requestDownload(deps('apikey:a'), req)).toMatchObject({
      reused: true,
      job: { dto: { id: 'job-1' } },
    });
    expect(await requestDownload(deps('apikey:b'), req)).toMatchObject({
      reused: true,
      job: { dto: { id: 'job-2' } },
    });
    expect(counts.posts).toBe(2);
    // A third caller may use the same key for another request: it is not a conflict with A's or B's.
    const c = await requestDownload(deps('apikey:c'), { ...req, snapshotId: 's2' });
    expect([c.job.dto.id, c.reused]).toEqual(['job-3', false]);
    expect(counts.posts).toBe(3);
  });
});

const result = (jobId: string): IdempotentResult => ({
  fingerprint: 'fp',
  projectId: 'p',
  clusterName: 'c',
  jobId,
});

describe('memory idempotency store: keys expire', () => {
  it('remembers a result for its TTL from when it was recorded, then forgets it', async () => {
    const clock = new ManualClock();
    const store = new MemoryIdempotencyStore({ clock, ttlMs: 60_000 });
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    first.settle(result('job-1'));
    clock.advance(59_999);
    expect(await store.claim(key, 'fp')).toEqual({ state: 'done', result: result('job-1') });
    clock.advance(1);
    const later = await store.claim(key, 'fp');
    expect(later.state).toBe('new');
  });

  // Regression: the memory store counted the TTL from the claim, the Redis one from the result; a
  // request that took long left a key remembered for less than its TTL in one store only.
  it('counts the TTL from when the result was recorded, not from the claim (as Redis does)', async () => {
    const clock = new ManualClock();
    const store = new MemoryIdempotencyStore({ clock, ttlMs: 60_000 });
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    clock.advance(30_000); // the first request takes its time
    first.settle(result('job-1'));
    clock.advance(59_999);
    expect(await store.claim(key, 'fp')).toEqual({ state: 'done', result: result('job-1') });
    clock.advance(1);
    expect((await store.claim(key, 'fp')).state).toBe('new');
  });

  it('keeps a result for the claim’s own resultTtlMs (the unkeyed-restore window)', async () => {
    const clock = new ManualClock();
    const store = new MemoryIdempotencyStore({ clock, ttlMs: 3_600_000 });
    const key = randomUUID();
    const first = await store.claim(key, 'fp', undefined, { resultTtlMs: 60_000 });
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    first.settle(result('job-1'));
    clock.advance(59_999);
    expect((await store.claim(key, 'fp')).state).toBe('done');
    clock.advance(1);
    expect((await store.claim(key, 'fp')).state).toBe('new');
  });

  it('forgets an unfinished claim after the TTL too', async () => {
    const clock = new ManualClock();
    const store = new MemoryIdempotencyStore({ clock, ttlMs: 60_000 });
    const key = randomUUID();
    expect((await store.claim(key, 'fp')).state).toBe('new');
    clock.advance(59_999);
    expect((await store.claim(key, 'fp')).state).toBe('inflight');
    clock.advance(1);
    expect((await store.claim(key, 'fp')).state).toBe('new');
  });
});

describe('Redis idempotency store: keys expire with Redis’s own PX', () => {
  const HOUR = 3_600_000;
  const stored = (key: string) => `${redis.prefix}idem:${key}`;

  it('keeps a claim for the key’s TTL (it never expires into a free key), with a lease of leaseMs beside it, and the result for the TTL once settled', async () => {
    const store = new RedisIdempotencyStore(redis, {
      clock: new ManualClock(),
      ttlMs: HOUR,
      leaseMs: 90_000,
      waitPollMs: 10,
    });
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    const pending = await redis.client.pttl(stored(key));
    expect(pending).toBeGreaterThan(HOUR - 5_000);
    expect(pending).toBeLessThanOrEqual(HOUR);
    const lease = await redis.client.pttl(`${redis.prefix}idem-lease:${stored(key)}`);
    expect(lease).toBeGreaterThan(90_000 - 5_000);
    expect(lease).toBeLessThanOrEqual(90_000);
    first.settle(result('job-1'));
    await expect.poll(async () => (await store.claim(key, 'fp')).state).toBe('done');
    const settled = await redis.client.pttl(stored(key));
    expect(settled).toBeGreaterThan(HOUR - 5_000);
    expect(settled).toBeLessThanOrEqual(HOUR);
    expect(await redis.client.exists(`${redis.prefix}idem-lease:${stored(key)}`)).toBe(0);
  });

  it('keeps a result for the claim’s own resultTtlMs (the unkeyed-restore window)', async () => {
    const store = new RedisIdempotencyStore(redis, { clock: new ManualClock(), ttlMs: HOUR, waitPollMs: 10 });
    const key = randomUUID();
    const first = await store.claim(key, 'fp', undefined, { resultTtlMs: 60_000 });
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    first.settle(result('job-1'));
    await expect.poll(async () => (await store.claim(key, 'fp')).state).toBe('done');
    const settled = await redis.client.pttl(stored(key));
    expect(settled).toBeGreaterThan(60_000 - 5_000);
    expect(settled).toBeLessThanOrEqual(60_000);
  });

  it('forgets a key once Redis expired it', async () => {
    const store = new RedisIdempotencyStore(redis, { clock: new ManualClock(), ttlMs: 20, waitPollMs: 10 });
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    if (first.state !== 'new') throw new Error(`expected a new claim, got ${first.state}`);
    first.settle(result('job-1'));
    // Redis removes the key by itself when its PX runs out; nothing here measures time.
    await expect.poll(() => redis.client.exists(stored(key))).toBe(0);
    const again = await store.claim(key, 'fp');
    expect(again.state).toBe('new');
    if (again.state === 'new') again.settle(undefined);
  });
});

describe.each(stores)('%s idempotency store: claims, waits and retakes, value by value', (_name, make) => {
  it('a second claim in flight carries the first one’s fingerprint, and its wait gets the result', async () => {
    const store = make();
    const key = randomUUID();
    const first = await store.claim(key, 'fp-1');
    const second = await store.claim(key, 'fp-2');
    if (first.state !== 'new' || second.state !== 'inflight') throw new Error('expected new, then inflight');
    expect(second.fingerprint).toBe('fp-1');
    // Settled after the waiter has looked at least once.
    await new Promise((r) => setTimeout(r, 50));
    first.settle(result('job-1'));
    expect(await second.wait).toEqual(result('job-1'));
  });

  it('the wait of a claim whose first request failed answers undefined (the key is free again)', async () => {
    const store = make();
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    const second = await store.claim(key, 'fp');
    if (first.state !== 'new' || second.state !== 'inflight') throw new Error('expected new, then inflight');
    first.settle(undefined);
    expect(await second.wait).toBeUndefined();
    const third = await store.claim(key, 'fp');
    expect(third.state).toBe('new');
    if (third.state === 'new') third.settle(undefined);
  });

  it('retake of a key never claimed is a plain claim; retake of a settled (resolved) result answers it', async () => {
    const store = make();
    const fresh = await store.retake(randomUUID(), 'fp', unresolvedResult(1));
    expect(fresh.state).toBe('new');
    if (fresh.state === 'new') fresh.settle(undefined);
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    if (first.state !== 'new') throw new Error('expected new');
    first.settle(result('job-1'));
    await expect.poll(async () => (await store.claim(key, 'fp')).state).toBe('done');
    const again = await store.retake(key, 'fp', result('job-1'));
    expect(again).toEqual({ state: 'done', result: result('job-1') });
  });

  it('a retaken key is in flight for the others, with the retaker’s fingerprint', async () => {
    const store = make();
    const key = randomUUID();
    const unresolved = await leftUnresolved(store, key);
    const turn = await store.retake(key, 'fp', unresolved);
    expect(turn.state).toBe('new');
    const other = await store.claim(key, 'fp');
    expect(other.state === 'inflight' && other.fingerprint).toBe('fp');
    if (turn.state === 'new') turn.settle(undefined);
  });
});

describe('memory idempotency store: bounded', () => {
  it('keeps maxKeys keys, the oldest going first', async () => {
    const store = new MemoryIdempotencyStore({ clock: new ManualClock(), maxKeys: 2 });
    await store.claim('k1', 'fp');
    await store.claim('k2', 'fp');
    expect((await store.claim('k1', 'fp')).state).toBe('inflight');
    await store.claim('k3', 'fp');
    expect((await store.claim('k2', 'fp')).state).toBe('inflight');
    expect((await store.claim('k1', 'fp')).state).toBe('new');
  });

  it('keeps 100 000 keys by default', async () => {
    const store = new MemoryIdempotencyStore({ clock: new ManualClock() });
    for (let i = 0; i < 100_000; i++) await store.claim(`k${i}`, 'fp');
    expect((await store.claim('k0', 'fp')).state).toBe('inflight');
    await store.claim('k100000', 'fp');
    expect((await store.claim('k1', 'fp')).state).toBe('inflight');
    expect((await store.claim('k0', 'fp')).state).toBe('new');
  });
});

describe('Redis idempotency store while Redis is away', () => {
  // Issue #16: keeping keys in this replica while Redis is away is no longer the default (another
  // replica would not see them, and a retry there could POST again): it takes `withoutRedis:
  // 'single-replica'` (GATEWAY_IDEMPOTENCY_WITHOUT_REDIS), and the default refuses the claim.
  it('by default (refuse) a claim is STORE_UNAVAILABLE, retryable, and nothing is kept', async () => {
    const away = connectRedis({ url: 'redis://127.0.0.1:1', prefix: 'test-away:' });
    try {
      const store = new RedisIdempotencyStore(away, { clock: new ManualClock(), ttlMs: 1_000 });
      const err = await store.claim('k', 'fp').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect([(err as StoreUnavailableError).code, (err as StoreUnavailableError).extensions]).toEqual([
        'STORE_UNAVAILABLE',
        { retryable: true },
      ]);
      await expect(store.claim('k', 'fp')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await away.close();
    }
  });

  it('single-replica mode keeps keys in this replica, with the configured TTL', async () => {
    const away = connectRedis({ url: 'redis://127.0.0.1:1', prefix: 'test-away:' });
    try {
      const clock = new ManualClock();
      const store = new RedisIdempotencyStore(away, { clock, ttlMs: 1_000, withoutRedis: 'single-replica' });
      const first = await store.claim('k', 'fp');
      if (first.state !== 'new') throw new Error('expected new');
      first.settle(result('job-1'));
      expect(await store.claim('k', 'fp')).toEqual({ state: 'done', result: result('job-1') });
      clock.advance(1_001);
      expect((await store.claim('k', 'fp')).state).toBe('new');
    } finally {
      await away.close();
    }
  });
});

describe('Redis idempotency store: defaults and failing commands', () => {
  it('waits for a first request that takes longer than one poll (100 ms by default)', async () => {
    const store = new RedisIdempotencyStore(redis, { clock: new ManualClock() });
    const key = randomUUID();
    const first = await store.claim(key, 'fp');
    const second = await store.claim(key, 'fp');
    if (first.state !== 'new' || second.state !== 'inflight') throw new Error('expected new, then inflight');
    await new Promise((r) => setTimeout(r, 250));
    first.settle(result('job-1'));
    expect(await second.wait).toEqual(result('job-1'));
  });
});

describe('idempotencyStoreKey', () => {
  it('finding 9c: parts that joined with ":" were one key are two keys, of fixed length', () => {
    const a = idempotencyStoreKey('apikey:svc', 'download', 'x:download:K');
    const b = idempotencyStoreKey('apikey:svc:download:x', 'download', 'K');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(idempotencyStoreKey('apikey:svc', 'download', 'x:download:K')).toBe(a);
    expect(idempotencyStoreKey('c', 'download', 'k')).not.toBe(idempotencyStoreKey('c', 'restore', 'k'));
  });

  it('is the SHA-256 of the length-prefixed parts (keys already in Redis stay valid across versions)', () => {
    expect(idempotencyStoreKey('apikey:svc', 'download', 'K-1')).toBe(
      createHash('sha256').update('10:apikey:svc8:download3:K-1').digest('hex'),
    );
  });
});

// Bindings decide which lost POST may adopt a job (job-requests' `findLostJob`): a job bound to one
// key is never adopted by another until the binding expires with the key.
describe('memory idempotency store: job bindings', () => {
  const TTL = 60_000;
  const made = () => {
    const clock = new ManualClock();
    return { clock, store: new MemoryIdempotencyStore({ clock, ttlMs: TTL, maxKeys: 2 }) };
  };

  it('a settled job is bound to its key; another owner is refused until the TTL has run out', async () => {
    const { clock, store } = made();
    const c = await store.claim('k1', 'fp');
    if (c.state !== 'new') throw new Error(c.state);
    c.settle({ fingerprint: 'fp', projectId: 'p', clusterName: 'c', jobId: 'job-1' });
    expect(await store.boundTo(['job-1', 'job-2'])).toEqual(['k1', undefined]);
    expect(await store.bind('job-1', 'k2')).toBe(false);
    expect(await store.bind('job-1', 'k1')).toBe(true);
    clock.advance(TTL - 1);
    expect(await store.bind('job-1', 'k2')).toBe(false);
    expect(await store.boundTo(['job-1'])).toEqual(['k1']);
    // The TTL counts from the last bind; at its very end the binding is gone.
    clock.advance(1);
    expect(await store.boundTo(['job-1'])).toEqual([undefined]);
    expect(await store.bind('job-1', 'k2')).toBe(true);
    expect(await store.boundTo(['job-1'])).toEqual(['k2']);
  });

  it('keeps maxKeys bindings, the oldest going first', async () => {
    const { store } = made();
    expect(await store.bind('a', 'k1')).toBe(true);
    expect(await store.bind('b', 'k2')).toBe(true);
    expect(await store.boundTo(['a', 'b'])).toEqual(['k1', 'k2']);
    expect(await store.bind('c', 'k3')).toBe(true);
    expect(await store.boundTo(['a', 'b', 'c'])).toEqual([undefined, 'k2', 'k3']);
    // Once forgotten, a job may be bound anew.
    expect(await store.bind('a', 'k4')).toBe(true);
  });
});
