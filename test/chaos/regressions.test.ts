import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { SEED } from '../../src/simulator/seed.js';
import { ManualClock } from '../../src/simulator/index.js';
import { startContractSimulator, type ContractSimulator } from '../support/contract.js';
import { subscribeSse } from '../support/sse.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';
import { openAccess } from '../../src/callers/caller.js';

// Bugs the chaos suite (test/chaos/chaos.test.ts, `npm run chaos`) found in src/, each reduced to a
// deterministic failure and named after it (the name says what went wrong). Fixed ones are plain `it`
// and guard the fix; open ones are `it.fails` until src/ is fixed, then they become `it` (an `it.fails`
// that starts passing turns red). The chaos run labels violations that match one of these bugs' exact
// signature with its id (chaos/invariants.ts KNOWN_BUGS): a fixed bug's signature always fails.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const T = SEED.tenant;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) {
  requestDownload(input: $i) { reused job { id status } }
}`;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;

interface Payload {
  requestDownload: { reused: boolean; job: { id: string; status: string } };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function stack(pollIntervalMs?: number): Promise<Stack> {
  const s = await startStack({ sim: { jobMs: 10_000 }, gateway: pollIntervalMs ? { pollIntervalMs } : {} });
  closers.push(() => s.close());
  return s;
}

/**
 * A spec-checked simulator whose latency faults move its own clock (nonces expire by what the fault
 * says, not by how fast the machine is), and a Digest gateway in front of it.
 */
async function digestStack(
  nonceTtlMs: number,
): Promise<{ sim: ContractSimulator; gateway: Gateway; url: string }> {
  const clock = new ManualClock();
  const sim = await startContractSimulator({
    port: 0,
    clock,
    nonceTtlMs,
    sleep: async (ms) => clock.advance(ms),
  });
  const gateway = createGateway({
    // Open on purpose: callers are not what this exercises.
    authenticate: openAccess,
    logging: false,
    pollIntervalMs: 50,
    atlas: {
      baseUrl: sim.url,
      auth: { type: 'digest', publicKey: OWNER.publicKey, privateKey: OWNER.privateKey },
      sleep: async () => {},
    },
  });
  const url = await gateway.listen(0);
  closers.push(
    () => sim.close(),
    () => gateway.close({ graceMs: 100 }),
  );
  return { sim, gateway, url };
}

/**
 * The POST never reaches its handler (reset before: nothing is created, but the client cannot know),
 * and every attempt of the re-read after it fails: the outcome stays unknown and the key unresolved.
 */
function unknownOutcome(s: Stack) {
  s.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'before', times: 1 });
  failReread(s, { reset: 'before', times: 4 });
}

/** The first list of the cluster's jobs passes (a no-op rule takes it), the re-read after the POST gets `rule`. */
function failReread(s: Stack, rule: { status?: 500; reset?: 'before'; times: number }) {
  const op = 'listGroupFlexClusterBackupRestoreJobs';
  s.sim.faults.add({ operationId: op, latencyMs: 0, times: 1 });
  s.sim.faults.add({ operationId: op, ...rule });
}

describe('chaos regressions (each test named after the failure it pins)', () => {
  // Bug lost-post-reread (src/jobs/job-requests.ts, postOnce): when the POST's answer is lost and the
  // re-read of the cluster's jobs fails too, the re-read's own error is thrown. It carries
  // `extensions.atlas` (here Atlas's 500 for a GET) and `retryable: false`, i.e. it reads as "Atlas
  // refused the download", while the job exists.
  it('requestDownload: a lost POST answer whose re-read fails is reported as an Atlas refusal although the job was created', async () => {
    const s = await stack();
    s.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 1 });
    failReread(s, { status: 500, times: 1 });
    const before = s.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const res = await s.query<Payload>(DOWNLOAD, {
      i: {
        projectId: P,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        reuseExisting: false,
      },
    });
    expect(s.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1); // the job exists
    // The POST's answer was lost and the re-read failed: the outcome is unknown, and the error does
    // not claim an answer from Atlas for this request (no `extensions.atlas`).
    expect(res.data).toBeNull();
    expect(res.errors?.map((e) => e.extensions)).toEqual([
      {
        code: 'OUTCOME_UNKNOWN',
        retryable: false,
        outcome: 'unknown',
        idempotencyKey: expect.stringMatching(/^gw-/) as string,
      },
    ]);
  });

  // Same bug, with a key: idempotent() frees the key on any failure, also when the POST may have been
  // applied (network failure after sending, re-read failed), so the client's retry with the same key
  // POSTs again and a second job exists for one key.
  it('requestDownload: a retry with the same idempotency key creates a second job after a lost POST answer whose re-read failed', async () => {
    const s = await stack();
    s.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 1 });
    failReread(s, { reset: 'before', times: 4 }); // every attempt of the re-read (4) is reset
    const before = s.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'chaos-lost-post',
      reuseExisting: false,
    };
    const first = await s.query<Payload>(DOWNLOAD, { i });
    expect(first.errors?.[0]?.extensions).toMatchObject({
      code: 'OUTCOME_UNKNOWN',
      retryable: false,
      idempotencyKey: 'chaos-lost-post',
    });
    const retry = await s.query<Payload>(DOWNLOAD, { i });
    expect(retry.errors).toBeUndefined();
    // One key, one job: the retry must find the job the first request created.
    expect(s.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
    expect(retry.data!.requestDownload.reused).toBe(true);
  });

  // Bug post-2xx-unreadable (src/jobs/job-requests.ts, maybeApplied): Atlas answered the POST with 2xx
  // (the job exists) but the body is not readable JSON: AtlasResponseError is not taken as "may have
  // been applied", so no re-read happens, the mutation answers UPSTREAM_UNAVAILABLE, the key is freed,
  // and the retry with the same key makes a second job.
  it('requestDownload: a malformed 2xx answer to the POST frees the idempotency key, so the retry creates a second job', async () => {
    const s = await stack();
    s.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', body: 'malformed', times: 1 });
    s.sim.expectViolations({
      operationId: 'downloadGroupFlexClusterBackup',
      status: 200,
      problem: 'not JSON',
    });
    const before = s.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'chaos-malformed-post',
      reuseExisting: false,
    };
    const first = await s.query<Payload>(DOWNLOAD, { i });
    const retry = await s.query<Payload>(DOWNLOAD, { i });
    // The unreadable 2xx counts as "may have been applied": the re-read finds the job it made.
    expect(first.errors).toBeUndefined();
    expect(retry.errors).toBeUndefined();
    expect(s.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
    expect(first.data!.requestDownload.reused).toBe(false);
    expect(retry.data!.requestDownload).toEqual({ ...first.data!.requestDownload, reused: true });
  });

  // Bug tenant-list-first-page (src/atlas/tenant-backup.ts, v2 listAllRestores / listAllSnapshots):
  // tenant lists declare no paging parameters but answer the paginated envelope (100 items by default,
  // `totalCount`, a `next` link; schema/atlas/UPSTREAM-NOTES.md). The gateway reads page 1 only, so
  // once a cluster has more than 100 jobs the older ones are invisible: a download still in progress
  // is not found, and reuseExisting creates another job.
  it('requestDownload: a tenant cluster with more than 100 jobs hides a download in progress, so reuseExisting creates another job', async () => {
    const s = await stack();
    const first = await s.query<Payload>(DOWNLOAD, {
      i: { projectId: P, clusterName: T.clusterName, snapshotId: T.completedSnapshotId },
    });
    expect(first.data!.requestDownload.reused).toBe(false);
    s.clock.advance(1000); // the job runs on (jobMs 10 s); 100 newer jobs of another snapshot arrive
    for (let n = 0; n < 100; n++) {
      s.sim.store.createRestoreJob({
        groupId: P,
        clusterName: T.clusterName,
        snapshotId: T.failedSnapshotId,
        deliveryType: 'DOWNLOAD',
        targetProjectId: P,
        targetDeploymentItemName: T.clusterName,
      });
    }
    const before = s.sim.store.jobsCreatedFor(T.completedSnapshotId);
    const again = await s.query<Payload>(DOWNLOAD, {
      i: { projectId: P, clusterName: T.clusterName, snapshotId: T.completedSnapshotId },
    });
    expect(s.sim.store.jobsCreatedFor(T.completedSnapshotId)).toBe(before);
    expect(again.data!.requestDownload).toMatchObject({
      reused: true,
      job: { id: first.data!.requestDownload.job.id },
    });
  });

  // Bug digest-stale-resend (src/atlas/atlas-http.ts #sendAuthenticated with auth/digest-auth.ts): a
  // request is re-sent once after a 401. When the nonce of that resend goes stale before Atlas reads it
  // (here: 300 ms nonces, 400 ms of latency), Atlas answers 401 stale=true, which says the credentials
  // were right, and the gateway answers UNAUTHENTICATED "Atlas did not accept the credentials".
  it('Digest: a nonce that goes stale during the one re-challenge answers UNAUTHENTICATED although the credentials are valid', async () => {
    const { sim, url } = await digestStack(300);
    sim.faults.add({ operationId: 'getGroupFlexClusterBackupSnapshot', latencyMs: 400, times: 2 });
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `query($p: ID!, $c: String!, $s: ID!) { snapshot(projectId: $p, clusterName: $c, id: $s) { id } }`,
        variables: { p: P, c: F.clusterName, s: F.completedSnapshotId },
      }),
    });
    const body = (await res.json()) as { data?: { snapshot: { id: string } | null }; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    expect(body.data!.snapshot).toEqual({ id: F.completedSnapshotId });
  });

  // Same bug, seen by a subscriber: the job poller (src/jobs/job-pollers.ts, `permanent`) takes that
  // 401 as permanent, so the stream of a healthy job ends with UNAUTHENTICATED.
  it('restoreJobStatus: a stale Digest nonce ends the stream with UNAUTHENTICATED instead of the job’s terminal state', async () => {
    const { sim, url } = await digestStack(300);
    sim.faults.add({ operationId: 'getGroupFlexClusterBackupRestoreJob', latencyMs: 400, times: 2 });
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: F.downloadJobId });
    const first = await sub.next();
    await sub.close();
    expect(first?.data).toEqual({
      data: { restoreJobStatus: { id: F.downloadJobId, status: 'COMPLETED' } },
    });
  });

  // Bug unreadable-400 (src/atlas/atlas-http.ts #apiError, src/backup/backup-router.ts, job-pollers
  // `permanent`): a 400 whose body is not readable JSON becomes AtlasApiError HTTP_400. On a cluster of
  // unknown family the Flex route is tried first; Atlas's CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API is the
  // signal to switch, but unreadable it is not recognised: the poller ends the stream with
  // BAD_USER_INPUT, whose message carries the raw body.
  it('restoreJobStatus: an unreadable family-mismatch 400 ends the stream of a tenant job with BAD_USER_INPUT', async () => {
    const s = await stack(50); // the poller now backs off and retries: keep the wait short
    const url = await s.gateway.listen(0);
    s.sim.faults.add({ operationId: 'getGroupFlexClusterBackupRestoreJob', body: 'malformed', times: 1 });
    // The family-mismatch 400 of the Flex route for a tenant cluster, sent unreadable.
    s.sim.expectViolations({
      operationId: 'getGroupFlexClusterBackupRestoreJob',
      status: 400,
      problem: 'not JSON',
    });
    const sub = await subscribeSse(url, WATCH, { p: P, c: T.clusterName, j: T.downloadJobId });
    const first = await sub.next();
    await sub.close();
    expect(first?.data).toEqual({
      data: { restoreJobStatus: { id: T.downloadJobId, status: 'COMPLETED' } },
    });
  });
  // Bug unknown-outcome-race (src/jobs/job-requests.ts, idempotent(), the `done.unresolved` branch of
  // the fix above): when the first request of a key ended with an unknown outcome, every request waiting
  // on that key got the unresolved claim, listed the jobs, found none and called create(): two
  // concurrent retries made two jobs for one key. Fixed: `IdempotencyStore.retake` gives the unresolved
  // key to one request at a time (compare-and-set in Redis); the others wait for what it records.
  it('requestDownload: concurrent requests of an idempotency key whose outcome is unknown each create a job', async () => {
    const s = await stack();
    unknownOutcome(s);
    const before = s.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'chaos-unknown-race',
      reuseExisting: false,
    };
    const lost = await s.query<Payload>(DOWNLOAD, { i });
    expect(lost.errors?.map((e) => e.extensions?.outcome)).toEqual(['unknown']);
    // Once the POST is old enough that a list without its job proves none was made (issue #16), two
    // retries at once: one makes the job, the other reuses it.
    s.clock.advance(120_000);
    const answers = await Promise.all([0, 1].map(() => s.query<Payload>(DOWNLOAD, { i })));
    const jobs = new Set(answers.flatMap((a) => (a.data ? [a.data.requestDownload.job.id] : [])));
    expect(answers.flatMap((a) => (a.data ? [a.data.requestDownload.reused] : [])).sort()).toEqual([
      false,
      true,
    ]);
    expect(jobs.size).toBe(1);
    expect(s.sim.store.jobsCreatedFor(F.completedSnapshotId) - before).toBe(1);
  });

  // Bug unknown-outcome-foreign-job (same branch): once a retry had created the key's job, the claim
  // stayed unresolved (jobId ''), so a later retry of the key listed the jobs again and adopted the
  // newest job of the snapshot made since the lost POST, which may be another request's. Fixed: the
  // request that resolves the key records the job it found or made.
  it('requestDownload: after an unknown outcome, a later retry of the key answers another request’s job', async () => {
    const s = await stack();
    unknownOutcome(s);
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'chaos-unknown-foreign',
      reuseExisting: false,
    };
    const lost = await s.query<Payload>(DOWNLOAD, { i });
    expect(lost.errors?.[0]?.extensions).toMatchObject({
      code: 'OUTCOME_UNKNOWN',
      outcome: 'unknown',
    });
    s.clock.advance(120_000); // past the settle period: the retry may prove there is no job
    const retry = await s.query<Payload>(DOWNLOAD, { i });
    const other = await s.query<Payload>(DOWNLOAD, { i: { ...i, idempotencyKey: undefined } });
    expect(other.data!.requestDownload.job.id).not.toBe(retry.data!.requestDownload.job.id);
    const again = await s.query<Payload>(DOWNLOAD, { i });
    expect(again.data!.requestDownload.job.id).toBe(retry.data!.requestDownload.job.id);
  });
});
