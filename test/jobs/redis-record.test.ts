import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { openAccess } from '../../src/callers/caller.js';
import { loadConfig } from '../../src/config/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { RedisIdempotencyStore, type WithoutRedis } from '../../src/jobs/redis-idempotency-store.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { checkRedisDurability } from '../../src/replicas/redis-durability.js';
import { ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { privateRedis, sharedRedisOf, until, type PrivateRedis } from '../support/private-redis.js';
import { OWNER, startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

// Issue #16, "Redis is the record": keyed mutations never fall back silently to one replica's memory.
// Each test runs its own redis-server on a free port (test/support/private-redis.ts) and stops,
// restarts or empties it; the machine's Redis on 6379 is never touched.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;

interface Payload {
  requestDownload: { reused: boolean; job: { id: string } };
}

const input = (idempotencyKey?: string) => ({
  i: {
    projectId: P,
    clusterName: F.clusterName,
    snapshotId: F.completedSnapshotId,
    reuseExisting: false,
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  },
});

/** A pino logger whose lines the test reads. */
function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    }),
  );
  return { lines, logger };
}

function store(redis: SharedRedis, withoutRedis: WithoutRedis = 'refuse', logger?: Logger) {
  return new RedisIdempotencyStore(redis, {
    clock: new ManualClock(),
    withoutRedis,
    ...(logger ? { logger } : {}),
    recoveryMs: 300,
    waitPollMs: 10,
  });
}

/** A gateway (replica A) over the test's Redis, in front of a spec-checked simulator. */
async function replicaA(server: PrivateRedis, withoutRedis: WithoutRedis = 'refuse') {
  const redis = await sharedRedisOf(server);
  const { lines, logger } = capture();
  const stack = await startStack({ gateway: { redis, idempotency: store(redis, withoutRedis, logger) } });
  return { stack, redis, lines };
}

/** Replica B: another gateway over the same simulator and Redis. */
async function replicaB(stack: Stack, server: PrivateRedis) {
  const redis = await sharedRedisOf(server);
  const gateway: Gateway = track(
    createGateway({
      authenticate: openAccess,
      logging: false,
      clock: stack.clock,
      redis,
      idempotency: store(redis),
      atlas: {
        baseUrl: stack.sim.url,
        auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
        clock: stack.clock,
        sleep: async () => {},
      },
    }),
    'replica B',
  );
  return {
    redis,
    async query(variables: Record<string, unknown>): Promise<GraphQLAnswer<Payload>> {
      const res = await gateway.yoga.fetch('http://b.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: DOWNLOAD, variables }),
      });
      return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<Payload>, 'status'>) };
    },
  };
}

const jobs = (stack: Stack) => stack.sim.store.jobsCreatedFor(F.completedSnapshotId);

describe('keyed mutations while Redis is unreachable', { timeout: 30_000 }, () => {
  it('answers STORE_UNAVAILABLE (retryable) without any upstream call, and serves unkeyed ones', async () => {
    const server = await privateRedis();
    const { stack, redis } = await replicaA(server);
    await server.stop('SIGKILL');
    await until(() => !redis.ready(), 'Redis seen as down');
    const before = jobs(stack);
    const calls = await stack.upstreamCalls(async () => {
      const res = await stack.query<Payload>(DOWNLOAD, input('while-down'));
      expect(res.data).toBeNull();
      expect(res.errors?.map((e) => e.extensions)).toEqual([{ code: 'STORE_UNAVAILABLE', retryable: true }]);
      expect(res.errors?.[0]?.message).toMatch(/nothing was sent to Atlas/);
    });
    expect(calls).toEqual([]);
    const unkeyed = await stack.query<Payload>(DOWNLOAD, input());
    expect(unkeyed.data?.requestDownload.reused).toBe(false);
    expect(jobs(stack)).toBe(before + 1);

    // Back: the same key now makes its one job.
    await server.start();
    await until(() => redis.ready(), 'Redis seen as up');
    const retry = await stack.query<Payload>(DOWNLOAD, input('while-down'));
    expect(retry.data?.requestDownload.reused).toBe(false);
    expect(jobs(stack)).toBe(before + 2);
  });

  it('single-replica mode answers a key from this replica while Redis is away, and writes the keys it made meanwhile into Redis when it returns', async () => {
    const server = await privateRedis();
    const { stack, redis, lines } = await replicaA(server, 'single-replica');
    const before = jobs(stack);
    const a = await stack.query<Payload>(DOWNLOAD, input('known-before'));
    await server.stop('SIGKILL');
    await until(() => !redis.ready(), 'Redis seen as down');

    // A key recorded while Redis was up is still this replica's: the same job, no POST.
    const again = await stack.query<Payload>(DOWNLOAD, input('known-before'));
    expect(again.data?.requestDownload).toEqual({ reused: true, job: a.data!.requestDownload.job });
    // A key used during the outage makes its job here.
    const during = await stack.query<Payload>(DOWNLOAD, input('during-outage'));
    expect(during.data?.requestDownload.reused).toBe(false);
    expect(jobs(stack)).toBe(before + 2);

    expect(lines.map((l) => l.idempotency)).toEqual(['single-replica']);
    await server.start();
    await until(() => lines.some((l) => l.idempotency === 'written-back'), 'the write-back');
    // The outage's key, and 'known-before' too when its result's write to Redis was still on its way
    // as the server was killed (under load it can be): a write that failed is written back as well.
    const writtenBack = lines.find((l) => l.idempotency === 'written-back');
    expect([1, 2]).toContain(writtenBack?.keys);
    // A replica that never saw the outage (one that replaces A, say) answers the same job.
    const b = await replicaB(stack, server);
    const res = await b.query(input('during-outage'));
    expect(res.data?.requestDownload).toEqual({ reused: true, job: during.data!.requestDownload.job });
    expect(jobs(stack)).toBe(before + 2);
  });
});

describe('Redis restarted without persistence', { timeout: 30_000 }, () => {
  it('takes no claim until the replicas wrote back what they know: the key answers its one job on every replica', async () => {
    const server = await privateRedis('none');
    const { stack, redis } = await replicaA(server);
    const b = await replicaB(stack, server);
    const before = jobs(stack);
    const first = await stack.query<Payload>(DOWNLOAD, input('survives-restart'));
    expect(first.data?.requestDownload.reused).toBe(false);

    await server.stop('SIGKILL');
    await until(() => !redis.ready() && !b.redis.ready(), 'Redis seen as down');
    await server.start('none'); // empty: every key is gone
    await until(() => b.redis.ready(), 'Redis seen as up by B');
    // B never knew the key. Until A has written it back, B refuses rather than make a second job.
    const answers: GraphQLAnswer<Payload>[] = [];
    await expect
      .poll(async () => {
        const res = await b.query(input('survives-restart'));
        answers.push(res);
        return res.data?.requestDownload;
      })
      .toEqual({ reused: true, job: first.data!.requestDownload.job });
    for (const res of answers.slice(0, -1)) {
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['STORE_UNAVAILABLE']);
    }
    expect(jobs(stack)).toBe(before + 1);
  });
});

describe('Redis settings the guarantee needs', () => {
  it('names each setting that breaks it, and none when they hold', async () => {
    const none = await privateRedis('none');
    const c1 = track(connectRedis({ url: none.url }), 'redis');
    await until(() => c1.ready());
    await c1.client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await checkRedisDurability(c1.client)).toEqual({
      checked: true,
      settings: { appendonly: 'no', appendfsync: 'everysec', 'maxmemory-policy': 'allkeys-lru' },
      problems: [
        'appendonly is no: a restart forgets every idempotency key (set appendonly yes)',
        'maxmemory-policy is allkeys-lru: memory pressure may evict idempotency keys (set noeviction)',
      ],
    });
    const aof = await privateRedis('aof-everysec');
    const c2 = track(connectRedis({ url: aof.url }), 'redis');
    await until(() => c2.ready());
    expect((await checkRedisDurability(c2.client)).problems).toEqual([]);
  });

  it('warns at start when the Redis would forget keys', async () => {
    const none = await privateRedis('none');
    const { lines, logger } = capture();
    const redis = track(connectRedis({ url: none.url, logger }), 'redis');
    await until(() => lines.some((l) => l.problems !== undefined), 'the durability warning');
    expect(redis.ready()).toBe(true);
    const warning = lines.find((l) => l.problems !== undefined)!;
    expect(warning.redis).toBe('durability');
    expect(warning.level).toBe(40);
    expect(warning.problems).toEqual([
      'appendonly is no: a restart forgets every idempotency key (set appendonly yes)',
    ]);
  });

  it('GATEWAY_IDEMPOTENCY_WITHOUT_REDIS is refuse by default, single-replica on request, and names a bad value', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1' }).redis?.withoutRedis).toBe('refuse');
    expect(
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', GATEWAY_IDEMPOTENCY_WITHOUT_REDIS: 'single-replica' })
        .redis?.withoutRedis,
    ).toBe('single-replica');
    expect(() =>
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', GATEWAY_IDEMPOTENCY_WITHOUT_REDIS: 'memory' }),
    ).toThrow(/GATEWAY_IDEMPOTENCY_WITHOUT_REDIS.*"refuse" or "single-replica".*"memory"/s);
  });
});
