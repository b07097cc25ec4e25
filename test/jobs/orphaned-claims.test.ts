import { describe, expect, it } from 'vitest';
import { openAccess } from '../../src/callers/caller.js';
import { createGateway } from '../../src/gateway.js';
import { RedisIdempotencyStore } from '../../src/jobs/redis-idempotency-store.js';
import type { SharedRedis } from '../../src/replicas/redis.js';
import type { Clock } from '../../src/time/clock.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { gate, hold, postsOf } from '../support/held-calls.js';
import { privateRedis, sharedRedisOf } from '../support/private-redis.js';
import { OWNER, startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

// Issue #16, "an orphaned or expired pending claim is unresolved, never new": a replica that holds a
// key and dies (here: its store is closed, so it renews nothing and writes nothing, as after SIGKILL;
// chaos/ kills real processes) leaves a claim whose lease runs out. The next request of the key looks
// for the job among the cluster's recent jobs and adopts it, and POSTs only when it can prove there is
// none. Two gateways share one simulator (one clock) and a redis-server of the test's own.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const LEASE_MS = 300;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id targetDeploymentItemName } } }`;

interface Payload {
  requestRestore: { reused: boolean; job: { id: string; targetDeploymentItemName: string } };
}

const restoreInput = (idempotencyKey: string) => ({
  i: {
    projectId: P,
    clusterName: F.clusterName,
    snapshotId: F.completedSnapshotId,
    targetClusterName: F.other.clusterName,
    targetProjectId: F.other.groupId,
    idempotencyKey,
  },
});

function store(redis: SharedRedis, clock: Clock) {
  return new RedisIdempotencyStore(redis, { clock, leaseMs: LEASE_MS, waitPollMs: 20 });
}

/** A gateway over an existing simulator and Redis, with its own store. */
function replica(stack: Stack, redis: SharedRedis, idempotency: RedisIdempotencyStore) {
  const gateway = track(
    createGateway({
      authenticate: openAccess,
      logging: false,
      clock: stack.clock,
      redis,
      idempotency,
      atlas: {
        baseUrl: stack.sim.url,
        auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
        clock: stack.clock,
        sleep: async () => {},
      },
    }),
    'replica',
  );
  return async (variables: Record<string, unknown>, query = RESTORE): Promise<GraphQLAnswer<Payload>> => {
    const res = await gateway.yoga.fetch('http://replica.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<Payload>, 'status'>) };
  };
}

/** A simulator with a gate, and two replicas A and B on one Redis, each with its own store. */
async function fleet() {
  const server = await privateRedis();
  const { sleep, release } = gate();
  const stack = await startStack({ sim: { jobMs: 600_000, sleep } });
  seededJobs.set(stack, new Set(stack.sim.store.listRestoreJobs(P, F.clusterName).map((j) => j.id)));
  const redisA = await sharedRedisOf(server);
  const redisB = await sharedRedisOf(server);
  const storeA = store(redisA, stack.clock);
  const a = replica(stack, redisA, storeA);
  const b = replica(stack, redisB, store(redisB, stack.clock));
  return { stack, release, storeA, a, b };
}

/** Restore jobs onto `target` made since the test started (the seed's own aside). */
const restoresOnto = (stack: Stack, target: string) =>
  stack.sim.store
    .listRestoreJobs(P, F.clusterName)
    .filter((j) => j.targetDeploymentItemName === target && !seededJobs.get(stack)?.has(j.id));
const seededJobs = new WeakMap<Stack, Set<string>>();

describe('a replica that dies holding a key', { timeout: 30_000 }, () => {
  it('died after its POST: the next request of the key adopts the job that POST made, and sends none', async () => {
    const { stack, release, storeA, a, b } = await fleet();
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob');
    const fromA = a(restoreInput('dies-after-post'));
    await expect.poll(held).toBe(1); // A recorded that it posts (write-ahead), and its POST is in Atlas
    storeA.close(); // A is gone: no more lease renewals, nothing written
    release(); // Atlas creates the job; A never records it
    const aAnswer = await fromA;
    const job = restoresOnto(stack, F.other.clusterName);
    expect(job).toHaveLength(1);
    expect(aAnswer.data?.requestRestore.job.id).toBe(job[0]!.id);

    const bAnswer = await b(restoreInput('dies-after-post'));
    expect(bAnswer.errors).toBeUndefined();
    expect(bAnswer.data?.requestRestore).toEqual({
      reused: true,
      job: { id: job[0]!.id, targetDeploymentItemName: F.other.clusterName },
    });
    expect(postsOf(stack.sim)).toBe(1);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(1);
  });

  it('died before its POST: the next request creates the one job, and the dead replica sends no POST of its own', async () => {
    const { stack, release, storeA, a, b } = await fleet();
    const held = hold(stack.sim, 'getGroupFlexClusterBackupSnapshot');
    const fromA = a(restoreInput('dies-before-post'));
    await expect.poll(held).toBe(1); // A holds the key and has sent nothing yet
    storeA.close();
    const bAnswer = await b(restoreInput('dies-before-post'));
    expect(bAnswer.data?.requestRestore.reused).toBe(false);
    release(); // A wakes up: it finds B's restore running onto the target, and could not POST anyway
    const aAnswer = await fromA;
    expect(aAnswer.data?.requestRestore).toEqual({ reused: true, job: bAnswer.data!.requestRestore.job });
    expect(postsOf(stack.sim)).toBe(1);
    expect(restoresOnto(stack, F.other.clusterName).map((j) => j.id)).toEqual([
      bAnswer.data!.requestRestore.job.id,
    ]);
  });

  it('died before its POST and woke up after its key was taken over: its late POST is refused (download)', async () => {
    const { stack, release, storeA, a, b } = await fleet();
    const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      reuseExisting: false,
      idempotencyKey: 'late-download',
    };
    const held = hold(stack.sim, 'getGroupFlexClusterBackupSnapshot');
    const fromA = a({ i }, DOWNLOAD);
    await expect.poll(held).toBe(1);
    storeA.close();
    const bAnswer = await b({ i }, DOWNLOAD);
    expect(bAnswer.errors).toBeUndefined();
    release();
    const aAnswer = await fromA;
    expect(aAnswer.errors?.map((e) => e.extensions)).toEqual([
      { code: 'STORE_UNAVAILABLE', retryable: true },
    ]);
    expect(postsOf(stack.sim)).toBe(1);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(1);
  });

  it('died after a POST whose job is not listed yet: OUTCOME_UNKNOWN until the settle time proves there is none, then the one job', async () => {
    const { stack, release, storeA, a, b } = await fleet();
    // The POST went out and Atlas made no job of it (503); A dies before it learns anything.
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob', { status: 503 });
    const fromA = a(restoreInput('dies-unlisted'));
    await expect.poll(held).toBe(1);
    storeA.close();
    release();
    await fromA;
    expect(restoresOnto(stack, F.other.clusterName)).toHaveLength(0);

    const early = await b(restoreInput('dies-unlisted'));
    expect(early.errors?.map((e) => e.extensions)).toEqual([
      { code: 'OUTCOME_UNKNOWN', retryable: false, outcome: 'unknown', idempotencyKey: 'dies-unlisted' },
    ]);
    stack.clock.advance(120_000); // the POST is old enough that Atlas would list its job by now
    const later = await b(restoreInput('dies-unlisted'));
    expect(later.data?.requestRestore.reused).toBe(false);
    expect(restoresOnto(stack, F.other.clusterName)).toHaveLength(1);
  });

  it('on a cluster with 250 older jobs, finding the lost POST’s job takes two list calls', async () => {
    const { stack, release, storeA, a, b } = await fleet();
    for (let n = 0; n < 250; n++) {
      stack.sim.store.createRestoreJob({
        groupId: P,
        clusterName: F.clusterName,
        snapshotId: F.failedSnapshotId,
        deliveryType: 'DOWNLOAD',
        targetProjectId: P,
        targetDeploymentItemName: F.clusterName,
      });
    }
    stack.clock.advance(3_600_000); // an hour later
    const held = hold(stack.sim, 'createGroupFlexClusterBackupRestoreJob');
    const fromA = a(restoreInput('dies-big-cluster'));
    await expect.poll(held).toBe(1);
    storeA.close();
    release();
    await fromA;
    const calls = await stack.upstreamCalls(async () => {
      const res = await b(restoreInput('dies-big-cluster'));
      expect(res.data?.requestRestore.reused).toBe(true);
    });
    // Two calls, never the whole list (`listRecentJobs`, src/backup/newest-first.ts). The simulator
    // lists Flex jobs oldest first, as Atlas does (#17); the cluster holds 255 jobs (the 250 above, the
    // seed's and the lost POST's). Call 1 is the probe (page 1 of 100) that learns `totalCount`; call 2
    // reads the newest 100 jobs, [155, 255), in one page of the smallest covering size, 128 (page 2 =
    // jobs 128..255), the lost POST's job among them; its oldest is older than the window, so it stops.
    // Before #16's look was folded into `listRecentJobs` it read pages 1 and 3 of 100 the same way.
    expect(calls.map((c) => c.operationId)).toEqual([
      'listGroupFlexClusterBackupRestoreJobs',
      'listGroupFlexClusterBackupRestoreJobs',
    ]);
    const paging = (c: { target: string }) => {
      const q = new URL(c.target, 'http://x').searchParams;
      return [q.get('pageNum'), q.get('itemsPerPage')];
    };
    expect(calls.map(paging)).toEqual([
      ['1', '100'],
      ['2', '128'],
    ]);
  });
});

describe('two lost POST answers of the same request at once', () => {
  it('adopt two different jobs (each binds the job it takes)', async () => {
    const stack = await startStack({ sim: { jobMs: 600_000 } });
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 2 });
    const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      reuseExisting: false,
    };
    const answers = await Promise.all(
      [0, 1].map(() => stack.query<{ requestDownload: { job: { id: string } } }>(DOWNLOAD, { i })),
    );
    const ids = answers.map((x) => x.data?.requestDownload.job.id);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(2);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(2);
  });
});
