import { describe, expect, it } from 'vitest';
import { openAccess } from '../../src/callers/caller.js';
import type { BackupService } from '../../src/backup/backup-service.js';
import type { ClusterRef, RestoreJobSource } from '../../src/backup/model.js';
import { createGateway } from '../../src/gateway.js';
import { jobsCreatedSince } from '../../src/jobs/recent-jobs.js';
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

  it('on a cluster with 250 older jobs, finding the lost POST’s job reads two of its three pages', async () => {
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
    // Two pages of three, never the whole list. The simulator lists Flex jobs oldest first, as Atlas
    // does (#17): page 1 holds 100 of the 250 older jobs, all made at the same instant, so it cannot
    // tell the list's order (`jobsCreatedSince`), and page 3 (the newest end, 51 jobs, the lost
    // POST's among them) is read to compare; its oldest job is older than the window, so it stops there.
    expect(calls.map((c) => c.operationId)).toEqual([
      'listGroupFlexClusterBackupRestoreJobs',
      'listGroupFlexClusterBackupRestoreJobs',
    ]);
    expect(calls.map((c) => new URL(c.target, 'http://x').searchParams.get('pageNum'))).toEqual(['1', '3']);
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

/** A backup service whose job list is `jobs` in pages of `pageSize`, counting the pages read. */
function pagedService(jobs: RestoreJobSource[]): { service: BackupService; pagesRead: number[] } {
  const pagesRead: number[] = [];
  const service = {
    listJobPage: async (_ref: ClusterRef, page: { pageNum: number; itemsPerPage: number }) => {
      pagesRead.push(page.pageNum);
      const from = (page.pageNum - 1) * page.itemsPerPage;
      return { results: jobs.slice(from, from + page.itemsPerPage), totalCount: jobs.length, whole: false };
    },
  } as unknown as BackupService;
  return { service, pagesRead };
}

const job = (n: number, at: number): RestoreJobSource => ({
  projectId: P,
  clusterName: F.clusterName,
  family: 'FLEX',
  dto: { id: `j${n}`, restoreScheduledDate: new Date(at).toISOString() } as RestoreJobSource['dto'],
});

describe('jobsCreatedSince: only the pages that can hold recent jobs, whatever Atlas’s order', () => {
  const T0 = Date.parse('2026-08-10T00:00:00Z');
  // 350 jobs a minute apart; the last 30 are "recent".
  const oldestFirst = Array.from({ length: 350 }, (_, n) => job(n, T0 + n * 60_000));
  const since = T0 + 320 * 60_000;
  const ref = { projectId: P, clusterName: F.clusterName };

  it('newest first: from page 1 until a page reaches past the window', async () => {
    const { service, pagesRead } = pagedService([...oldestFirst].reverse());
    const read = await jobsCreatedSince(service, ref, since);
    expect(read.jobs.map((j) => j.dto.id)).toEqual(Array.from({ length: 30 }, (_, n) => `j${349 - n}`));
    expect(pagesRead).toEqual([1]);
  });

  it('oldest first: the first page tells the order, then the last page (and the one before when needed)', async () => {
    const { service, pagesRead } = pagedService(oldestFirst);
    const read = await jobsCreatedSince(service, ref, since);
    expect(read.jobs).toHaveLength(30);
    expect(pagesRead).toEqual([1, 4]);
    const wide = pagedService(oldestFirst);
    await jobsCreatedSince(wide.service, ref, T0 + 250 * 60_000);
    expect(wide.pagesRead).toEqual([1, 4, 3]);
  });

  it('a first page of jobs of one second tells no order: the last page is compared with it', async () => {
    const same = [...Array.from({ length: 100 }, (_, n) => job(n, T0)), job(100, T0 + 60_000)];
    const { service, pagesRead } = pagedService(same);
    const read = await jobsCreatedSince(service, ref, T0 + 30_000);
    expect(read.jobs.map((j) => j.dto.id)).toEqual(['j100']);
    expect(pagesRead).toEqual([1, 2]);
  });
});
