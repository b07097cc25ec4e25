import { describe, expect, it } from 'vitest';
import { openAccess } from '../../src/callers/caller.js';
import { createGateway } from '../../src/gateway.js';
import { RedisIdempotencyStore } from '../../src/jobs/redis-idempotency-store.js';
import type { SharedRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { gate, hold, postsOf } from '../support/held-calls.js';
import { privateRedis, sharedRedisOf, until } from '../support/private-redis.js';
import { OWNER, startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

// Issue #16, "unkeyed requests are protected too": a restore overwrites a cluster, so a client that
// sends one twice without a key (a double click, a proxy's retry) still gets one job.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const JOB_MS = 600_000;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id status } } }`;

interface Payload {
  requestRestore: { reused: boolean; job: { id: string; status: string } };
}

const restore = (extra: Record<string, unknown> = {}) => ({
  i: {
    projectId: P,
    clusterName: F.clusterName,
    snapshotId: F.completedSnapshotId,
    targetClusterName: F.other.clusterName,
    targetProjectId: F.other.groupId,
    ...extra,
  },
});

type Ask = (variables: Record<string, unknown>) => Promise<GraphQLAnswer<Payload>>;

/** A gateway over an existing simulator and Redis. */
function replica(stack: Stack, redis: SharedRedis): Ask {
  const gateway = track(
    createGateway({
      authenticate: openAccess,
      logging: false,
      clock: stack.clock,
      redis,
      idempotency: new RedisIdempotencyStore(redis, { clock: stack.clock, waitPollMs: 20 }),
      atlas: {
        baseUrl: stack.sim.url,
        auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
        clock: stack.clock,
        sleep: async () => {},
      },
    }),
    'replica',
  );
  return async (variables) => {
    const res = await gateway.yoga.fetch('http://replica.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: RESTORE, variables }),
    });
    return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<Payload>, 'status'>) };
  };
}

const ids = (answers: GraphQLAnswer<Payload>[]) => answers.map((a) => a.data?.requestRestore.job.id);
const reused = (answers: GraphQLAnswer<Payload>[]) =>
  answers.map((a) => a.data?.requestRestore.reused).sort();

describe('requestRestore without an idempotency key', { timeout: 30_000 }, () => {
  it('identical requests arriving together share one job: one POST, the others reused', async () => {
    const { sleep, release } = gate();
    const stack = await startStack({ sim: { jobMs: JOB_MS, sleep } });
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob');
    const answers = Promise.all([0, 1, 2].map(() => stack.query<Payload>(RESTORE, restore())));
    await expect.poll(held).toBe(1);
    release();
    const all = await answers;
    expect(new Set(ids(all)).size).toBe(1);
    expect(reused(all)).toEqual([false, true, true]);
    expect(postsOf(stack.sim)).toBe(1);
  });

  it('an identical request within the window gets the job even once it has finished; after the window, a new one', async () => {
    const stack = await startStack({ sim: { jobMs: 1000 } });
    const first = await stack.query<Payload>(RESTORE, restore());
    expect(first.data?.requestRestore.reused).toBe(false);
    stack.clock.advance(2000); // the restore is COMPLETED: not running any more
    const again = await stack.query<Payload>(RESTORE, restore());
    expect(again.data?.requestRestore).toEqual({
      reused: true,
      job: { id: first.data!.requestRestore.job.id, status: 'COMPLETED' },
    });
    stack.clock.advance(60_000); // past GATEWAY_RESTORE_DEDUPE_WINDOW_MS (60 s)
    const later = await stack.query<Payload>(RESTORE, restore());
    expect(later.data?.requestRestore.reused).toBe(false);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(2);
  });

  it('a restore of the same snapshot still running onto the same target is answered, also under another key, without a POST', async () => {
    const stack = await startStack({ sim: { jobMs: JOB_MS } });
    const first = await stack.query<Payload>(RESTORE, restore({ idempotencyKey: 'first' }));
    stack.clock.advance(120_000); // past the window: only the running restore can match
    const calls = await stack.upstreamCalls(async () => {
      for (const extra of [{ idempotencyKey: 'second' }, {}]) {
        const res = await stack.query<Payload>(RESTORE, restore(extra));
        expect(res.data?.requestRestore).toEqual({
          reused: true,
          job: { id: first.data!.requestRestore.job.id, status: 'RUNNING' },
        });
      }
    });
    expect(calls.filter((c) => c.method === 'POST')).toEqual([]);
  });

  it('another snapshot onto a target being restored still gets Atlas’s CONFLICT', async () => {
    const stack = await startStack({ sim: { jobMs: JOB_MS } });
    await stack.query<Payload>(RESTORE, restore());
    const other = stack.sim.store
      .listSnapshots(P, F.clusterName)
      .find((s) => s.status === 'COMPLETED' && s.id !== F.completedSnapshotId)!;
    const res = await stack.query<Payload>(RESTORE, restore({ snapshotId: other.id }));
    expect(res.errors?.[0]?.extensions).toMatchObject({
      code: 'CONFLICT',
      atlas: { status: 409, errorCode: 'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE' },
    });
  });

  it('identical requests on two replicas at once share one job (Redis)', async () => {
    const server = await privateRedis();
    const { sleep, release } = gate();
    const stack = await startStack({ sim: { jobMs: JOB_MS, sleep } });
    const [a, b] = [replica(stack, await sharedRedisOf(server)), replica(stack, await sharedRedisOf(server))];
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob');
    const answers = Promise.all([a(restore()), b(restore())]);
    await expect.poll(held).toBe(1);
    release();
    const all = await answers;
    expect(new Set(ids(all)).size).toBe(1);
    expect(reused(all)).toEqual([false, true]);
    expect(postsOf(stack.sim)).toBe(1);
  });

  it('while Redis is unreachable, identical requests on one replica still share one job', async () => {
    const server = await privateRedis();
    const { sleep, release } = gate();
    const stack = await startStack({ sim: { jobMs: JOB_MS, sleep } });
    const redis = await sharedRedisOf(server);
    const a = replica(stack, redis);
    await server.stop('SIGKILL');
    await until(() => !redis.ready(), 'Redis seen as down');
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob');
    const answers = Promise.all([a(restore()), a(restore())]);
    await expect.poll(held).toBe(1);
    release();
    const all = await answers;
    expect(new Set(ids(all)).size).toBe(1);
    expect(reused(all)).toEqual([false, true]);
    expect(postsOf(stack.sim)).toBe(1);
  });
});
