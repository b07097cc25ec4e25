import { afterEach, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import { subscribeSse, type SseEvent } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

// Issue #19, "download flow at the minimum": requestDownload, then restoreJobStatus to COMPLETED,
// counted against the simulator with bench/economy.ts's numbers (a job of 2,500 ms, a read every
// 1,000 ms). The subscription's first event is the mutation's answer (the poller is primed with it),
// so the flow costs the mutation's calls plus one read per interval until COMPLETED.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const JOB_MS = 2500;
const INTERVAL = 1000;
const READ_JOB = 'getGroupFlexClusterBackupRestoreJob';
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) { restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { status } }`;
const SNAPSHOTS = `query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { snapshots(first: 10) { nodes { id status } } } }`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id status } } }`;

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

const statusOf = (e: SseEvent | undefined) =>
  (e?.data as { data?: { restoreJobStatus?: { status: string } } } | undefined)?.data?.restoreJobStatus
    ?.status;

async function setup() {
  const timers = new ManualTimers();
  const stack = await startStack({ sim: { jobMs: JOB_MS }, gateway: { pollIntervalMs: INTERVAL, timers } });
  stacks.push(stack);
  return { stack, timers, url: await stack.gateway.listen(0) };
}

/** requestDownload of `snapshotId`, then restoreJobStatus until COMPLETED: the Atlas calls it made. */
async function flow(stack: Stack, timers: ManualTimers, url: string, snapshotId: string) {
  let jobId = '';
  const calls = await stack.upstreamCalls(async () => {
    const made = await stack.query<{ requestDownload: { job: { id: string; status: string } } }>(DOWNLOAD, {
      i: { projectId: P, clusterName: F.clusterName, snapshotId, reuseExisting: false },
    });
    jobId = made.data!.requestDownload.job.id;
    const answered = made.data!.requestDownload.job.status;
    const reads = stack.sim.stats().requests.length;
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
    // The job as it is now, with no read: the POST's answer, a moment old.
    expect(statusOf(await sub.next())).toBe(answered);
    expect(stack.sim.stats().requests.length).toBe(reads);
    expect(stack.gateway.pollers.primedStarts).toBe(1);
    for (const expected of ['RUNNING', undefined, 'COMPLETED'] as const) {
      stack.clock.advance(INTERVAL);
      expect(timers.fire()).toBe(1);
      if (expected) expect(statusOf(await sub.next())).toBe(expected);
      else
        await expect
          .poll(() => stack.sim.stats().requests.filter((r) => r.operationId === READ_JOB).length)
          .toBe(2);
    }
    expect((await sub.next())?.event).toBe('complete');
  });
  return calls.map((c) => c.operationId);
}

describe('the download flow', () => {
  it('costs the mutation’s 3 calls and one read per interval: 6 (the minimum is 5)', async () => {
    const { stack, timers, url } = await setup();
    expect(await flow(stack, timers, url, F.completedSnapshotId)).toEqual([
      // The snapshot (a typed CONFLICT before any POST when it is not COMPLETED): the one call above the minimum.
      'getGroupFlexClusterBackupSnapshot',
      'listGroupFlexClusterBackupRestoreJobs',
      'downloadGroupFlexClusterBackup',
      READ_JOB,
      READ_JOB,
      READ_JOB,
    ]);
  });

  it('of a snapshot the client picked from the cluster’s listing: 5, the minimum (no snapshot read)', async () => {
    const { stack, timers, url } = await setup();
    const listed = await stack.query<{ cluster: { snapshots: { nodes: { id: string; status: string }[] } } }>(
      SNAPSHOTS,
      { p: P, c: F.clusterName },
    );
    const snapshot = listed.data!.cluster.snapshots.nodes.find(
      (n) => n.status === 'COMPLETED' && n.id !== F.completedSnapshotId,
    );
    expect(await flow(stack, timers, url, snapshot!.id)).toEqual([
      'listGroupFlexClusterBackupRestoreJobs',
      'downloadGroupFlexClusterBackup',
      READ_JOB,
      READ_JOB,
      READ_JOB,
    ]);
  });

  it('reads the job first when the mutation’s answer is older than one interval', async () => {
    const { stack, url } = await setup();
    const made = await stack.query<{ requestDownload: { job: { id: string } } }>(DOWNLOAD, {
      i: {
        projectId: P,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        reuseExisting: false,
      },
    });
    const jobId = made.data!.requestDownload.job.id;
    stack.clock.advance(INTERVAL + 1);
    const calls = await stack.upstreamCalls(async () => {
      const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
      // Not the stale PENDING: the job as it is now.
      expect(statusOf(await sub.next())).toBe('RUNNING');
      await sub.close();
    });
    expect(calls.map((c) => c.operationId)).toEqual([READ_JOB]);
    expect(stack.gateway.pollers.primedStarts).toBe(0);
  });
});
