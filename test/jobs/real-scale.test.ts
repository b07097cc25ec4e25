import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

// Issue #17: a real Flex cluster had 2,160 restore jobs; mutations used to read all of them first
// (5 GETs of 500, about 1 MB) before every POST. These pin the bound on the realistic data.
const R = SEED.realistic;
const P = R.groupId;
const BUSY = R.busyClusterName;

const DOWNLOAD = `mutation($input: RequestDownloadInput!) {
  requestDownload(input: $input) { reused job { id status deliveryType snapshotId } }
}`;
const RESTORE = `mutation($input: RequestRestoreInput!) {
  requestRestore(input: $input) { reused job { id status deliveryType } }
}`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { profile: 'realistic', jobMs: 10_000 } });
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

/** The Atlas calls `fn` made, with the bytes of each answer (the simulator's request log). */
async function measured(fn: () => Promise<unknown>) {
  const before = stack.sim.stats().requests.length;
  await fn();
  const calls = stack.sim
    .stats()
    .requests.slice(before)
    .filter((r) => !r.operationId.startsWith('oauth.'));
  const lists = calls.filter((c) => c.operationId === 'listGroupFlexClusterBackupRestoreJobs');
  return {
    ops: calls.map((c) => c.operationId),
    lists: lists.map((c) => {
      const q = new URL(c.target, 'http://x').searchParams;
      return `${q.get('pageNum')}x${q.get('itemsPerPage')}`;
    }),
    bytes: calls.reduce((n, c) => n + c.bytes, 0),
  };
}

describe('mutations at real scale (a Flex cluster with 2,160 jobs)', () => {
  it('the realistic cluster really has 2,160 jobs (2,000+)', async () => {
    const res = await stack.query<{ cluster: { restoreJobs: { totalCount: number } } }>(
      `{ cluster(projectId: "${P}", name: "${BUSY}") { restoreJobs(first: 1) { totalCount } } }`,
    );
    expect(res.data?.cluster.restoreJobs.totalCount).toBe(R.busyJobCount);
  });

  it('requestDownload of the newest snapshot reads the recent end of the job list only: 2 list calls, not 5 of 500', async () => {
    const m = await measured(async () => {
      const res = await stack.query<{ requestDownload: { reused: boolean } }>(DOWNLOAD, {
        input: { projectId: P, clusterName: BUSY, snapshotId: R.busyNewestSnapshotId, reuseExisting: true },
      });
      expect(res.errors).toBeUndefined();
      expect(res.data?.requestDownload.reused).toBe(false);
    });
    // The snapshot, one page of 100 to learn totalCount, the covering page of the newest 100 jobs
    // (2,060-2,159: page 21 of 103 holds them), the POST. The newest snapshot is an hour old, so no older job
    // can be of it.
    expect(m.ops).toEqual([
      'getGroupFlexClusterBackupSnapshot',
      'listGroupFlexClusterBackupRestoreJobs',
      'listGroupFlexClusterBackupRestoreJobs',
      'downloadGroupFlexClusterBackup',
    ]);
    expect(m.lists).toEqual(['1x100', '21x103']);
    console.log(`requestDownload on ${BUSY}: ${m.ops.length} upstream calls, ${m.bytes} bytes`);
  });

  it('reuse detection on a week-old snapshot stays within its bound (a day back, at most 500 jobs)', async () => {
    const oldest = stack.sim.store.listSnapshots(P, BUSY).at(-1)!;
    const m = await measured(async () => {
      const res = await stack.query(DOWNLOAD, {
        input: { projectId: P, clusterName: BUSY, snapshotId: oldest.id, reuseExisting: true },
      });
      expect(res.errors).toBeUndefined();
    });
    // 2,160 jobs over 8 days is 270 a day: a day back is three chunks of 100 after the probe.
    expect(m.lists.length).toBeLessThanOrEqual(1 + 500 / 100);
    // The probe, then three chunks of 100 (pages whose size covers each chunk; the exact page depends
    // on how many jobs earlier tests made).
    expect(m.lists).toHaveLength(4);
    expect(m.lists[0]).toBe('1x100');
    console.log(
      `requestDownload (week-old snapshot) on ${BUSY}: ${m.ops.length} upstream calls, ${m.bytes} bytes`,
    );
  });

  it('requestRestore reads the same bounded window', async () => {
    const m = await measured(async () => {
      const res = await stack.query(RESTORE, {
        input: {
          projectId: P,
          clusterName: BUSY,
          snapshotId: R.busyNewestSnapshotId,
          targetClusterName: BUSY,
        },
      });
      expect(res.errors).toBeUndefined();
    });
    expect(m.lists).toEqual(['1x100', '21x103']);
    expect(m.ops.filter((o) => o.startsWith('create'))).toHaveLength(1);
    console.log(`requestRestore on ${BUSY}: ${m.ops.length} upstream calls, ${m.bytes} bytes`);
  });

  it('Snapshot.restoreJobs reads only jobs newer than the snapshot, not the whole list', async () => {
    const m = await measured(async () => {
      const res = await stack.query<{ snapshot: { restoreJobs: { nodes: { id: string }[] } } }>(
        `{ snapshot(projectId: "${P}", clusterName: "${BUSY}", id: "${R.busyNewestSnapshotId}") { restoreJobs(first: 5) { nodes { id } } } }`,
      );
      expect(res.errors).toBeUndefined();
    });
    expect(m.lists).toEqual(['1x100', '21x103']);
  });

  it('the look for the job of a POST whose answer was lost reads the newest end too (issue #16)', async () => {
    // Atlas makes the job, the connection drops before its answer: the gateway looks for it.
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 1 });
    const m = await measured(async () => {
      const res = await stack.query<{ requestDownload: { reused: boolean } }>(DOWNLOAD, {
        input: { projectId: P, clusterName: BUSY, snapshotId: R.busyNewestSnapshotId, reuseExisting: false },
      });
      expect(res.errors).toBeUndefined();
      expect(res.data?.requestDownload.reused).toBe(false);
    });
    console.log(`lost POST on ${BUSY}: ${m.ops.length} upstream calls, ${m.bytes} bytes`);
    expect(m.ops.filter((o) => o === 'downloadGroupFlexClusterBackup')).toHaveLength(1);
    // The request's window (the probe, then jobs 2,060-2,159 as page 21 of 103), then the look after
    // the lost POST, a `listRecentJobs` since a minute before it: the probe, then the newest 100 of
    // now 2,163 jobs (2,063-2,162: page 19 of 114). #16's own look (`jobsCreatedSince`, folded into
    // `listRecentJobs`) took two calls as well: page 1 of 100 to tell the order, then page 22 of 100
    // (the last 63 jobs: 183,711 bytes for the whole request, against 207,615 now).
    expect(m.lists).toEqual(['1x100', '21x103', '1x100', '19x114']);
  });
});
