import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { READ_ONLY, startStack, type Stack } from '../support/stack.js';

const P = SEED.projects.payments.id;
const T = SEED.tenant;
const F = SEED.flex;
const JOB_MS = 10_000;

interface Payload {
  job: { id: string; status: string; deliveryType: string; snapshotId: string; cluster: { family: string } };
  reused: boolean;
}

const DOWNLOAD = `mutation($input: RequestDownloadInput!) {
  requestDownload(input: $input) { reused job { id status deliveryType snapshotId cluster { family } } }
}`;
const RESTORE = `mutation($input: RequestRestoreInput!) {
  requestRestore(input: $input) { reused job { id status deliveryType snapshotId targetDeploymentItemName targetProjectId } }
}`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { jobMs: JOB_MS } });
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});
afterEach(() => {
  stack.sim.faults.clear();
  // Every test starts with no useful download left over from another one.
  stack.clock.advance(5 * 3600_000);
});

const download = (input: Record<string, unknown>) =>
  stack.query<{ requestDownload: Payload }>(DOWNLOAD, { input: { projectId: P, ...input } });
const posts = (calls: { method: string }[]) => calls.filter((c) => c.method === 'POST').length;

describe('requestDownload', () => {
  it.each([
    ['TENANT', T.clusterName, T.completedSnapshotId],
    ['FLEX', F.clusterName, F.completedSnapshotId],
  ])('creates a DOWNLOAD job on the %s family’s endpoint', async (family, clusterName, snapshotId) => {
    const before = stack.sim.store.jobsCreatedFor(snapshotId);
    const calls = await stack.upstreamCalls(async () => {
      const res = await download({ clusterName, snapshotId });
      expect(res.errors).toBeUndefined();
      expect(res.data!.requestDownload).toMatchObject({
        reused: false,
        job: { status: 'QUEUED', deliveryType: 'DOWNLOAD', snapshotId, cluster: { family } },
      });
    });
    expect(stack.sim.store.jobsCreatedFor(snapshotId)).toBe(before + 1);
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.operationId)).toEqual([
      family === 'TENANT' ? 'downloadGroupClusterBackupTenant' : 'downloadGroupFlexClusterBackup',
    ]);
  });

  it('returns the same job for the same idempotency key, without a second POST', async () => {
    const input = {
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'k-same',
      reuseExisting: false,
    };
    const first = await download(input);
    const calls = await stack.upstreamCalls(async () => {
      const again = await download(input);
      expect(again.data!.requestDownload).toMatchObject({
        reused: true,
        job: { id: first.data!.requestDownload.job.id },
      });
    });
    expect(posts(calls)).toBe(0);
  });

  it('makes one job for concurrent duplicates with one key, also while the first is in flight', async () => {
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', latencyMs: 100, times: 1 });
    const input = {
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'k-burst',
      reuseExisting: false,
    };
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const answers = await Promise.all(Array.from({ length: 5 }, () => download(input)));
    const ids = new Set(answers.map((a) => a.data!.requestDownload.job.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => !a.data!.requestDownload.reused)).toHaveLength(1);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });

  it('refuses a key reused with another input (CONFLICT)', async () => {
    await download({ clusterName: F.clusterName, snapshotId: F.completedSnapshotId, idempotencyKey: 'k-x' });
    const res = await download({
      clusterName: T.clusterName,
      snapshotId: T.completedSnapshotId,
      idempotencyKey: 'k-x',
    });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'CONFLICT', argumentName: 'idempotencyKey' });
  });

  it('reuses a download in progress or completed with a valid URL, and makes a new one once the URL expired', async () => {
    const input = { clusterName: T.clusterName, snapshotId: T.completedSnapshotId };
    const first = await download(input);
    expect(first.data!.requestDownload.reused).toBe(false);
    const running = await stack.upstreamCalls(async () => {
      const r = await download(input);
      expect(r.data!.requestDownload).toMatchObject({
        reused: true,
        job: { id: first.data!.requestDownload.job.id },
      });
    });
    expect(posts(running)).toBe(0);
    stack.clock.advance(JOB_MS + 1);
    const done = await download(input);
    expect(done.data!.requestDownload).toMatchObject({ reused: true, job: { status: 'COMPLETED' } });
    stack.clock.advance(4 * 3600_000);
    const fresh = await download(input);
    expect(fresh.data!.requestDownload.reused).toBe(false);
    expect(fresh.data!.requestDownload.job.id).not.toBe(first.data!.requestDownload.job.id);
  });

  it('creates a new job when asked not to reuse', async () => {
    const input = { clusterName: F.clusterName, snapshotId: F.completedSnapshotId };
    const a = await download(input);
    const b = await download({ ...input, reuseExisting: false });
    expect(b.data!.requestDownload.reused).toBe(false);
    expect(b.data!.requestDownload.job.id).not.toBe(a.data!.requestDownload.job.id);
  });

  it('makes one job for a burst of identical requests without a key', async () => {
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', latencyMs: 100, times: 1 });
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        download({ clusterName: F.clusterName, snapshotId: F.completedSnapshotId }),
      ),
    );
    expect(new Set(answers.map((a) => a.data!.requestDownload.job.id)).size).toBe(1);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });

  it('finds the job it created when the connection dies after the POST was sent (no double, nothing lost)', async () => {
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 1 });
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const res = await download({
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      reuseExisting: false,
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.requestDownload).toMatchObject({ reused: false, job: { status: 'QUEUED' } });
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });

  it('answers OUTCOME_UNKNOWN (not retryable) with the key when the POST was sent and no job shows, and the retry with the key makes the one job', async () => {
    // Reset before the simulator handled it: nothing was created, but the gateway cannot tell that
    // from a POST Atlas is still working on, so it does not say "retryable".
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'before', times: 1 });
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const input = {
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'k-lost',
      reuseExisting: false,
    };
    const res = await download(input);
    expect(res.errors![0]!.extensions).toEqual({
      code: 'OUTCOME_UNKNOWN',
      retryable: false,
      outcome: 'unknown',
      idempotencyKey: 'k-lost',
    });
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before);
    // Right after, Atlas's list without the job proves nothing yet (it may still be creating it).
    const early = await stack.upstreamCalls(async () => {
      const res = await download(input);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'OUTCOME_UNKNOWN', idempotencyKey: 'k-lost' });
    });
    expect(posts(early)).toBe(0);
    // Two minutes on (GATEWAY_POST_SETTLE_MS), a list without it proves none was made: the retry makes it.
    stack.clock.advance(120_000);
    const retry = await download(input);
    expect(retry.data!.requestDownload.reused).toBe(false);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });

  it('answers CONFLICT for a snapshot that is not COMPLETED, before any POST', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const res = await download({ clusterName: F.clusterName, snapshotId: F.runningSnapshotId });
      expect(res.errors![0]).toMatchObject({
        message: `Snapshot ${F.runningSnapshotId} is RUNNING; only a COMPLETED snapshot can be downloaded.`,
        extensions: { code: 'CONFLICT', snapshotStatus: 'RUNNING' },
      });
    });
    expect(posts(calls)).toBe(0);
  });

  it('answers NOT_FOUND for unknown ids and BAD_USER_INPUT for malformed ones', async () => {
    const unknown = await download({ clusterName: F.clusterName, snapshotId: SEED.unknownId });
    expect(unknown.errors![0]!.extensions).toMatchObject({ code: 'NOT_FOUND', atlas: { status: 404 } });
    const cluster = await download({ clusterName: 'nope', snapshotId: F.completedSnapshotId });
    expect(cluster.errors![0]!.extensions).toMatchObject({ code: 'NOT_FOUND' });
    const bad = await download({ clusterName: F.clusterName, snapshotId: 'xyz' });
    expect(bad.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      argumentName: 'input.snapshotId',
    });
  });

  it('answers FORBIDDEN when the Atlas credential may only read', async () => {
    const ro = await startStack({
      auth: { type: 'oauth', clientId: READ_ONLY.clientId, clientSecret: READ_ONLY.clientSecret },
    });
    try {
      const res = await ro.query<{ requestDownload: Payload }>(DOWNLOAD, {
        input: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      });
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', atlas: { status: 403 } });
    } finally {
      await ro.close();
    }
  });
});

describe('requestRestore', () => {
  it.each([
    ['TENANT', T.clusterName, T.completedSnapshotId, T.m5ClusterName, P],
    ['FLEX', F.clusterName, F.completedSnapshotId, F.other.clusterName, F.other.groupId],
  ])(
    'restores on the %s family into a target cluster',
    async (_family, clusterName, snapshotId, target, targetProjectId) => {
      const res = await stack.query<{
        requestRestore: Payload & { job: { targetDeploymentItemName: string; targetProjectId: string } };
      }>(RESTORE, {
        input: {
          projectId: P,
          clusterName,
          snapshotId,
          targetClusterName: target,
          targetProjectId,
          idempotencyKey: `r-${target}`,
        },
      });
      expect(res.errors).toBeUndefined();
      expect(res.data!.requestRestore).toMatchObject({
        reused: false,
        job: { deliveryType: 'RESTORE', targetDeploymentItemName: target, targetProjectId },
      });
      const again = await stack.upstreamCalls(async () => {
        const r = await stack.query<{ requestRestore: Payload }>(RESTORE, {
          input: {
            projectId: P,
            clusterName,
            snapshotId,
            targetClusterName: target,
            targetProjectId,
            idempotencyKey: `r-${target}`,
          },
        });
        expect(r.data!.requestRestore).toMatchObject({
          reused: true,
          job: { id: res.data!.requestRestore.job.id },
        });
      });
      expect(posts(again)).toBe(0);
    },
  );

  it('finding 9a: an empty targetProjectId is BAD_USER_INPUT naming the field, not the source project', async () => {
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    let res: Awaited<ReturnType<typeof stack.query>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      res = await stack.query(RESTORE, {
        input: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          targetClusterName: F.clusterName,
          targetProjectId: '',
        },
      });
    });
    expect(res).toEqual({
      status: 200,
      data: null,
      errors: [
        {
          message: 'Argument "input.targetProjectId" must be a 24-character lowercase hex id; got "".',
          locations: [{ line: 2, column: 3 }],
          path: ['requestRestore'],
          extensions: {
            code: 'BAD_USER_INPUT',
            argumentName: 'input.targetProjectId',
            expected: 'a 24-character lowercase hex id',
            received: '',
          },
        },
      ],
    });
    expect(calls).toEqual([]);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before);
  });

  it('answers CONFLICT from Atlas while a restore of another snapshot writes the target', async () => {
    const input = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      targetClusterName: F.clusterName,
    };
    await stack.query(RESTORE, { input });
    const other = stack.sim.store
      .listSnapshots(P, F.clusterName)
      .find((s) => s.status === 'COMPLETED' && s.id !== F.completedSnapshotId)!;
    const second = await stack.query(RESTORE, { input: { ...input, snapshotId: other.id } });
    expect(second.errors![0]!.extensions).toMatchObject({
      code: 'CONFLICT',
      atlas: { status: 409, errorCode: 'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE' },
    });
  });
});
