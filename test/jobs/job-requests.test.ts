import { describe, expect, it } from 'vitest';
import { AtlasNetworkError, AtlasResponseError } from '../../src/atlas/errors.js';
import type { BackupService, RecentJobsOptions } from '../../src/backup/backup-service.js';
import type { ClusterRef, RestoreJobSource, SnapshotSource } from '../../src/backup/model.js';
import { GatewayError } from '../../src/errors/index.js';
import { idempotencyStoreKey, MemoryIdempotencyStore } from '../../src/jobs/idempotency-store.js';
import {
  OutcomeUnknownError,
  requestDownload,
  requestRestore,
  type JobRequestDeps,
  type JobRequestResult,
} from '../../src/jobs/job-requests.js';
import { ManualClock } from '../../src/simulator/index.js';

/*
 * `requestDownload` and `requestRestore` against an in-memory BackupService (injected, as the gateway
 * injects the real one): every decision of job-requests.ts with exact answers and counted Atlas calls.
 * The gateway-level behaviour is in mutations.test.ts.
 */

const REF: ClusterRef = { projectId: 'a'.repeat(24), clusterName: 'Cluster0' };
const NOW = Date.parse('2026-11-30T12:00:00Z');

interface JobDto {
  id: string;
  snapshotId: string;
  deliveryType: 'DOWNLOAD' | 'RESTORE';
  status?: string | undefined;
  snapshotUrl?: string;
  expirationDate?: string;
  restoreScheduledDate?: string;
  targetProjectId?: string;
  targetDeploymentItemName?: string;
}

/**
 * What Atlas does, step by step; `failPost` makes the next POST fail (after creating the job or not),
 * and with `thenFailLists` the next job-list reads after it fail too (the look for its job).
 */
class FakeAtlas {
  readonly jobs: RestoreJobSource[] = [];
  readonly snapshots = new Map<string, string | undefined>([['snap-1', 'COMPLETED']]);
  readonly calls = { getSnapshot: 0, listRecentJobs: 0, getJob: 0, download: 0, restore: 0 };
  /** The `since` of every `listRecentJobs` read (the request's window, before its POST). */
  readonly windows: (string | number | undefined)[] = [];
  /** When the snapshot was taken. */
  snapshotTime: string | undefined = new Date(NOW - 3_600_000).toISOString();
  failPost: { error: unknown; created: boolean; thenFailLists?: number } | undefined;
  failLists = 0;
  #next = 1;

  addJob(dto: Partial<JobDto> & { snapshotId: string }): RestoreJobSource {
    const job = {
      ...REF,
      family: 'TENANT',
      dto: { id: `job-${this.#next++}`, deliveryType: 'DOWNLOAD', status: 'PENDING', ...dto },
    } as RestoreJobSource;
    this.jobs.push(job);
    return job;
  }

  #post(
    snapshotId: string,
    deliveryType: 'DOWNLOAD' | 'RESTORE',
    target?: { projectId: string; clusterName: string },
  ): RestoreJobSource {
    const fail = this.failPost;
    this.failPost = undefined;
    if (fail?.thenFailLists) this.failLists = fail.thenFailLists;
    if (fail && !fail.created) throw fail.error;
    // A restore job names its target, as Atlas's do: a lost restore POST's job is known by it.
    const onto = target && {
      targetProjectId: target.projectId,
      targetDeploymentItemName: target.clusterName,
    };
    const job = this.addJob({ snapshotId, deliveryType, ...onto });
    if (fail) throw fail.error;
    return job;
  }

  /** A job-list read (either kind) fails while `failLists` counts down. */
  #readList(): RestoreJobSource[] {
    if (this.failLists > 0) {
      this.failLists--;
      throw new AtlasNetworkError('connection reset', {
        operation: 'listBackupRestoreJobs',
        code: 'ATLAS_NETWORK_ERROR',
        sent: true,
      });
    }
    return [...this.jobs];
  }

  /** Every Atlas call names the requested cluster, exactly. */
  static checkRef(ref: ClusterRef): void {
    if (JSON.stringify(ref) !== JSON.stringify(REF))
      throw new Error(`unexpected cluster ${JSON.stringify(ref)}`);
  }

  readonly service = {
    // No memo here: every request reads its snapshot (the memo is in completed-snapshot-memo.test.ts).
    knownCompletedSnapshot: () => undefined,
    getSnapshot: async (ref: ClusterRef, snapshotId: string): Promise<SnapshotSource> => {
      FakeAtlas.checkRef(ref);
      this.calls.getSnapshot++;
      const status = this.snapshots.get(snapshotId);
      return {
        ...ref,
        family: 'TENANT',
        dto: { id: snapshotId, status, scheduledTime: this.snapshotTime },
      } as SnapshotSource;
    },
    listRecentJobs: async (ref: ClusterRef, options?: RecentJobsOptions): Promise<RestoreJobSource[]> => {
      FakeAtlas.checkRef({ projectId: ref.projectId, clusterName: ref.clusterName });
      this.calls.listRecentJobs++;
      this.windows.push(options?.since);
      return this.#readList();
    },
    getJob: async (ref: ClusterRef, jobId: string): Promise<RestoreJobSource> => {
      FakeAtlas.checkRef({ projectId: ref.projectId, clusterName: ref.clusterName });
      this.calls.getJob++;
      const job = this.jobs.find((j) => j.dto.id === jobId);
      if (!job) throw new Error(`no job ${jobId}`);
      return job;
    },
    download: async (ref: ClusterRef, snapshotId: string): Promise<RestoreJobSource> => {
      FakeAtlas.checkRef(ref);
      this.calls.download++;
      return this.#post(snapshotId, 'DOWNLOAD');
    },
    restore: async (
      ref: ClusterRef,
      snapshotId: string,
      target: { projectId: string; clusterName: string },
    ): Promise<RestoreJobSource> => {
      FakeAtlas.checkRef(ref);
      this.calls.restore++;
      return this.#post(snapshotId, 'RESTORE', target);
    },
  };
}

function setup(extra: Partial<JobRequestDeps> = {}) {
  const atlas = new FakeAtlas();
  const clock = new ManualClock(NOW);
  const idempotency = new MemoryIdempotencyStore({ clock });
  const deps: JobRequestDeps = {
    service: atlas.service as unknown as BackupService,
    idempotency,
    clock,
    callerId: 'apikey:svc',
    ...extra,
  };
  return { atlas, clock, idempotency, deps };
}

const download = (deps: JobRequestDeps, extra: Partial<Parameters<typeof requestDownload>[1]> = {}) =>
  requestDownload(deps, { ...REF, snapshotId: 'snap-1', ...extra });
const restore = (deps: JobRequestDeps, idempotencyKey?: string) =>
  requestRestore(deps, {
    ...REF,
    snapshotId: 'snap-1',
    target: { projectId: 'b'.repeat(24), clusterName: 'Target' },
    idempotencyKey,
  });

const summary = (r: JobRequestResult) => ({ id: r.job.dto.id, reused: r.reused });

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(err)}`);
  return err;
}

const lostAnswer = () =>
  new AtlasNetworkError('socket hang up', {
    operation: 'createBackupRestoreJob',
    code: 'ATLAS_NETWORK_ERROR',
    sent: true,
  });

describe('requestDownload: which existing DOWNLOAD job is reused', () => {
  it.each(['PENDING', 'QUEUED', 'RUNNING'])(
    'a %s download of the snapshot is reused, no POST',
    async (status) => {
      const { atlas, deps } = setup();
      const running = atlas.addJob({ snapshotId: 'snap-1', status });
      expect(summary(await download(deps))).toEqual({ id: running.dto.id, reused: true });
      expect(atlas.calls.download).toBe(0);
    },
  );

  it('not a restore job, not another snapshot, not a failed one, not one without a status', async () => {
    const { atlas, deps } = setup();
    atlas.addJob({ snapshotId: 'snap-1', deliveryType: 'RESTORE', status: 'RUNNING' });
    atlas.addJob({ snapshotId: 'snap-2', status: 'RUNNING' });
    atlas.addJob({ snapshotId: 'snap-1', status: 'FAILED' });
    atlas.addJob({ snapshotId: 'snap-1', status: undefined });
    // Failed, though it has a URL that has not expired.
    atlas.addJob({
      snapshotId: 'snap-1',
      status: 'FAILED',
      snapshotUrl: 'https://dl.test/x',
      expirationDate: new Date(NOW + 3_600_000).toISOString(),
    });
    expect(summary(await download(deps))).toEqual({ id: 'job-6', reused: false });
    expect(atlas.calls.download).toBe(1);
  });

  it('a COMPLETED download is reused only while its URL stays valid more than 5 minutes (the default)', async () => {
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    const url = 'https://dl.test/x.tgz?signature=s';
    {
      const { atlas, deps } = setup();
      const fresh = atlas.addJob({
        snapshotId: 'snap-1',
        status: 'COMPLETED',
        snapshotUrl: url,
        expirationDate: at(300_001),
      });
      expect(summary(await download(deps))).toEqual({ id: fresh.dto.id, reused: true });
    }
    for (const dto of [
      { snapshotUrl: url, expirationDate: at(300_000) },
      { snapshotUrl: '', expirationDate: at(3_600_000) },
      { expirationDate: at(3_600_000) },
      { snapshotUrl: url },
    ]) {
      const { atlas, deps } = setup();
      atlas.addJob({ snapshotId: 'snap-1', status: 'COMPLETED', ...dto });
      expect(summary(await download(deps))).toEqual({ id: 'job-2', reused: false });
    }
  });

  it('minUrlLifetimeMs sets that margin', async () => {
    const { atlas, deps } = setup({ minUrlLifetimeMs: 1_000 });
    const job = atlas.addJob({
      snapshotId: 'snap-1',
      status: 'COMPLETED',
      snapshotUrl: 'https://dl.test/x',
      expirationDate: new Date(NOW + 1_001).toISOString(),
    });
    expect(summary(await download(deps))).toEqual({ id: job.dto.id, reused: true });
  });

  it('reuseExisting: false always makes a new job', async () => {
    const { atlas, deps } = setup();
    atlas.addJob({ snapshotId: 'snap-1', status: 'RUNNING' });
    expect(summary(await download(deps, { reuseExisting: false }))).toEqual({ id: 'job-2', reused: false });
    expect(atlas.calls.download).toBe(1);
  });
});

describe('requestDownload: identical requests in flight share one answer', () => {
  it('one POST for a burst of one caller, per caller; the entry is gone afterwards', async () => {
    const inflight = new Map<string, Promise<JobRequestResult>>();
    const { atlas, deps } = setup({ inflight });
    const other = { ...deps, callerId: 'apikey:other' };
    const answers = await Promise.all([download(deps), download(deps), download(other)]);
    expect(answers.map(summary)).toEqual([
      { id: 'job-1', reused: false },
      { id: 'job-1', reused: true },
      // The other caller's request is not shared: it ran alongside, and made its own.
      { id: 'job-2', reused: false },
    ]);
    expect([atlas.calls.getSnapshot, atlas.calls.download]).toEqual([2, 2]);
    expect(inflight.size).toBe(0);
  });

  it('is not shared with reuseExisting: false or with an idempotency key', async () => {
    const inflight = new Map<string, Promise<JobRequestResult>>();
    const { atlas, deps } = setup({ inflight });
    const answers = await Promise.all([
      download(deps, { reuseExisting: false }),
      download(deps, { reuseExisting: false }),
      download(deps, { reuseExisting: false, idempotencyKey: 'k' }),
    ]);
    expect(answers.map((a) => a.reused)).toEqual([false, false, false]);
    expect(atlas.calls.download).toBe(3);
    expect(inflight.size).toBe(0);
  });
});

describe('requestDownload and requestRestore: a snapshot that is not COMPLETED', () => {
  it('CONFLICT naming the snapshot, its status and the verb, without an Atlas POST', async () => {
    const { atlas, deps } = setup();
    atlas.snapshots.set('snap-1', 'PENDING');
    const err = await rejection(download(deps));
    expect([err.code, err.message, err.extensions]).toEqual([
      'CONFLICT',
      'Snapshot snap-1 is PENDING; only a COMPLETED snapshot can be downloaded.',
      { snapshotStatus: 'PENDING' },
    ]);
    atlas.snapshots.set('snap-1', undefined);
    const unknown = await rejection(restore(deps));
    expect([unknown.code, unknown.message, unknown.extensions]).toEqual([
      'CONFLICT',
      'Snapshot snap-1 is in an unknown state; only a COMPLETED snapshot can be restored.',
      { snapshotStatus: null },
    ]);
    expect([atlas.calls.download, atlas.calls.restore, atlas.calls.listRecentJobs]).toEqual([0, 0, 0]);
  });
});

describe('a POST whose answer was lost', () => {
  it('adopts the job it created (same snapshot and delivery type, not there before)', async () => {
    const { atlas, deps } = setup();
    // Same snapshot, type and target, but listed before the POST: not its job.
    atlas.addJob({
      snapshotId: 'snap-1',
      deliveryType: 'RESTORE',
      status: 'COMPLETED',
      targetProjectId: 'b'.repeat(24),
      targetDeploymentItemName: 'Target',
    });
    atlas.failPost = { error: lostAnswer(), created: true };
    expect(summary(await restore(deps))).toEqual({ id: 'job-2', reused: false });
    // Two `listRecentJobs`: the request's window before the POST, then the look for its job (which
    // was #16's `jobsCreatedSince` page read before the two ways were made one).
    expect([atlas.calls.listRecentJobs, atlas.calls.restore]).toEqual([2, 1]);
  });

  it('a 2xx with an unreadable body may have been applied; 300 and a missing status may not', async () => {
    const bad = (status: number | undefined) =>
      new AtlasResponseError('not JSON', { operation: 'createBackupRestoreJob', status });
    {
      const { atlas, deps } = setup();
      atlas.failPost = { error: bad(299), created: true };
      expect(summary(await restore(deps))).toEqual({ id: 'job-1', reused: false });
    }
    for (const status of [300, undefined]) {
      const { atlas, deps } = setup();
      const error = bad(status);
      atlas.failPost = { error, created: true };
      await expect(restore(deps)).rejects.toBe(error);
      // Only the window before the POST: no look for a job.
      expect(atlas.calls.listRecentJobs).toBe(1);
    }
  });

  it('a request that surely did not reach Atlas, or was aborted, is not looked for', async () => {
    for (const init of [
      { code: 'ATLAS_NETWORK_ERROR' as const, sent: false },
      { code: 'ATLAS_ABORTED' as const, sent: true },
    ]) {
      const { atlas, deps } = setup();
      const error = new AtlasNetworkError('x', { operation: 'createBackupRestoreJob', ...init });
      atlas.failPost = { error, created: false };
      await expect(download(deps)).rejects.toBe(error);
      // Only the window before the POST: no look for a job.
      expect(atlas.calls.listRecentJobs).toBe(1);
    }
  });

  it('OUTCOME_UNKNOWN (caused by the POST failure) while no new job of that snapshot and type is listed: Atlas may still be making it', async () => {
    const { atlas, deps } = setup();
    const error = lostAnswer();
    atlas.failPost = { error, created: false };
    // Appears meanwhile, but for another snapshot or as a restore: not this POST's job.
    const post = atlas.service.download;
    atlas.service.download = async (ref, snapshotId) => {
      atlas.addJob({ snapshotId: 'snap-2' });
      atlas.addJob({ snapshotId, deliveryType: 'RESTORE' });
      return post(ref, snapshotId);
    };
    const err = await rejection(download(deps, { reuseExisting: false }));
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err.cause).toBe(error);
    // Sent without a key: the answer carries one the gateway made, under which the outcome is kept.
    const key = (err as OutcomeUnknownError).idempotencyKey;
    expect(key).toMatch(/^gw-[0-9a-f-]{36}$/);
    expect([err.code, err.extensions]).toEqual([
      'OUTCOME_UNKNOWN',
      { retryable: false, outcome: 'unknown', idempotencyKey: key },
    ]);
    expect((err as OutcomeUnknownError).unresolved).toEqual({
      snapshotId: 'snap-1',
      deliveryType: 'DOWNLOAD',
      postedAt: NOW,
    });
    // The window before the POST and the look after it, both `listRecentJobs`.
    expect([atlas.calls.listRecentJobs, atlas.calls.download]).toEqual([2, 1]);
  });

  it('OUTCOME_UNKNOWN when the jobs cannot be read again; the same key then finds the job', async () => {
    const { atlas, deps } = setup();
    atlas.failPost = { error: lostAnswer(), created: true, thenFailLists: 1 };
    const err = await rejection(download(deps, { idempotencyKey: 'k-1' }));
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect([err.code, err.message, err.extensions]).toEqual([
      'OUTCOME_UNKNOWN',
      'The request was sent to Atlas but its outcome is not known yet; the job may exist. Retry with idempotencyKey "k-1" and the same input to get it; a retry without it may create a second job.',
      { retryable: false, outcome: 'unknown', idempotencyKey: 'k-1' },
    ]);
    // What the key keeps to find the job: what was asked for, and when the POST went out.
    expect((err as OutcomeUnknownError).unresolved).toEqual({
      snapshotId: 'snap-1',
      deliveryType: 'DOWNLOAD',
      postedAt: NOW,
    });
    // Caused by the failed look, not by the POST.
    expect(err.cause).toMatchObject({ operation: 'listBackupRestoreJobs' });
    // The window before the POST and the failed look after it, both `listRecentJobs`.
    expect([atlas.calls.download, atlas.calls.listRecentJobs]).toEqual([1, 2]);

    // The retry finds the job the lost POST made, records it, and makes no second POST: it looks
    // (one `listRecentJobs`), and reads no request window (it creates nothing).
    expect(summary(await download(deps, { idempotencyKey: 'k-1' }))).toEqual({ id: 'job-1', reused: true });
    expect(atlas.calls.listRecentJobs).toBe(3);
    // Recorded: the next retry asks for that job, not for the list.
    expect(summary(await download(deps, { idempotencyKey: 'k-1' }))).toEqual({ id: 'job-1', reused: true });
    expect([atlas.calls.listRecentJobs, atlas.calls.getJob, atlas.calls.download]).toEqual([3, 1, 1]);
  });

  it('an unresolved key makes the job once a list without it is postSettleMs (2 min) after the POST; before that, or when the look fails, it stays unresolved', async () => {
    const { atlas, clock, deps, idempotency } = setup();
    const storeKey = idempotencyStoreKey('apikey:svc', 'restore', 'k-2');
    const stored = async () => {
      const claim = await idempotency.claim(storeKey, 'x');
      return claim.state === 'done' && claim.result;
    };
    const unresolvedRecord = {
      fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
      ...REF,
      jobId: '',
      unresolved: {
        snapshotId: 'snap-1',
        deliveryType: 'RESTORE',
        target: { projectId: 'b'.repeat(24), clusterName: 'Target' },
        postedAt: NOW,
      },
    };
    atlas.failPost = { error: lostAnswer(), created: false, thenFailLists: 1 };
    await expect(restore(deps, 'k-2')).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(await stored()).toEqual(unresolvedRecord);

    // A list without the job, 1 ms before the settle time: Atlas may still be making it.
    clock.advance(119_999);
    const early = await rejection(restore(deps, 'k-2'));
    expect([early.code, atlas.calls.restore]).toEqual(['OUTCOME_UNKNOWN', 1]);
    expect(await stored()).toEqual(unresolvedRecord);

    // Past the settle time, but the look fails: still unknown (a failed look proves nothing), no POST.
    clock.advance(1);
    atlas.failLists = 1;
    const failed = await rejection(restore(deps, 'k-2'));
    expect([failed.code, failed.cause instanceof AtlasNetworkError, atlas.calls.restore]).toEqual([
      'OUTCOME_UNKNOWN',
      true,
      1,
    ]);
    expect(await stored()).toEqual(unresolvedRecord);

    // Now the list answers, without the job, 2 min after the POST: none was made; this request makes it.
    expect(summary(await restore(deps, 'k-2'))).toEqual({ id: 'job-1', reused: false });
    expect(atlas.calls.restore).toBe(2);
    const settled = await idempotency.claim(storeKey, 'x');
    expect(settled.state === 'done' && settled.result).toMatchObject({ jobId: 'job-1', ...REF });
    expect(settled.state === 'done' && settled.result.unresolved).toBeUndefined();
  });
});

describe('idempotency keys', () => {
  it('1 to 200 characters, else BAD_USER_INPUT naming the argument and the length', async () => {
    const { deps } = setup();
    for (const key of ['', 'k'.repeat(201)]) {
      const err = await rejection(download(deps, { idempotencyKey: key }));
      expect([err.code, err.message, err.extensions]).toEqual([
        'BAD_USER_INPUT',
        `Argument "idempotencyKey" must be 1 to 200 characters; got ${key.length}.`,
        { argumentName: 'idempotencyKey', expected: '1 to 200 characters', received: key.length },
      ]);
    }
    expect((await download(deps, { idempotencyKey: 'k'.repeat(200) })).reused).toBe(false);
    expect((await download(deps, { idempotencyKey: 'k' })).reused).toBe(true);
  });

  it('a repeat gets the first job without a POST, even while the first runs; another input is a CONFLICT', async () => {
    const { atlas, deps } = setup();
    const [first, second] = await Promise.all([restore(deps, 'r-1'), restore(deps, 'r-1')]);
    expect([summary(first), summary(second)]).toEqual([
      { id: 'job-1', reused: false },
      { id: 'job-1', reused: true },
    ]);
    expect(atlas.calls.restore).toBe(1);
    const err = await rejection(
      download(deps, { idempotencyKey: 'd-1' }).then(() =>
        download(deps, { idempotencyKey: 'd-1', snapshotId: 'snap-2' }),
      ),
    );
    expect([err.code, err.message, err.extensions]).toEqual([
      'CONFLICT',
      'idempotencyKey "d-1" was already used for a different download request.',
      { argumentName: 'idempotencyKey' },
    ]);
    // The same key for the other kind of request is another key.
    expect((await download(deps, { idempotencyKey: 'r-1', reuseExisting: false })).reused).toBe(false);
  });

  it('a failed first request frees the key: the retry makes the job', async () => {
    const { atlas, deps } = setup();
    const refused = new AtlasNetworkError('refused', {
      operation: 'createBackupRestoreJob',
      code: 'ATLAS_NETWORK_ERROR',
      sent: false,
    });
    atlas.failPost = { error: refused, created: false };
    await expect(restore(deps, 'r-2')).rejects.toBe(refused);
    expect(summary(await restore(deps, 'r-2'))).toEqual({ id: 'job-1', reused: false });
    expect(atlas.calls.restore).toBe(2);
  });
});

describe('idempotency keys under concurrency and lost answers', () => {
  /** The memory store, counting claims. */
  function counting(deps: JobRequestDeps) {
    const store = deps.idempotency;
    const count = { claim: 0, retake: 0 };
    deps.idempotency = {
      claim: (key, print, intent, options) => (count.claim++, store.claim(key, print, intent, options)),
      retake: (key, print, r) => (count.retake++, store.retake(key, print, r)),
      bind: (jobId, owner) => store.bind(jobId, owner),
      boundTo: (jobIds) => store.boundTo(jobIds),
    };
    return count;
  }

  it('a repeat in flight waits for the first once, and does not claim again', async () => {
    const { atlas, deps } = setup();
    const count = counting(deps);
    const answers = await Promise.all([restore(deps, 'c-1'), restore(deps, 'c-1')]);
    expect(answers.map(summary)).toEqual([
      { id: 'job-1', reused: false },
      { id: 'job-1', reused: true },
    ]);
    expect([count.claim, atlas.calls.restore, atlas.calls.getJob]).toEqual([2, 1, 1]);
  });

  it('a repeat that waited for a first request that failed makes the job itself', async () => {
    const { atlas, deps } = setup();
    const refused = new AtlasNetworkError('refused', {
      operation: 'createBackupRestoreJob',
      code: 'ATLAS_NETWORK_ERROR',
      sent: false,
    });
    atlas.failPost = { error: refused, created: false };
    const [first, second] = await Promise.allSettled([restore(deps, 'c-2'), restore(deps, 'c-2')]);
    expect(first).toEqual({ status: 'rejected', reason: refused });
    expect(second.status === 'fulfilled' && summary(second.value)).toEqual({ id: 'job-1', reused: false });
    expect(atlas.calls.restore).toBe(2);
  });

  it('concurrent retries of an unresolved key: one looks and makes the job, the other gets it', async () => {
    const { atlas, clock, deps } = setup();
    atlas.failPost = { error: lostAnswer(), created: false };
    await expect(restore(deps, 'c-3')).rejects.toBeInstanceOf(OutcomeUnknownError);
    // Past `postSettleMs`: a list without the job proves none was made.
    clock.advance(120_000);
    const count = counting(deps);
    const answers = await Promise.all([restore(deps, 'c-3'), restore(deps, 'c-3')]);
    expect(answers.map(summary)).toEqual([
      { id: 'job-1', reused: false },
      { id: 'job-1', reused: true },
    ]);
    expect([atlas.calls.restore, count.retake]).toEqual([2, 2]);
  });

  it('a retry adopts the restore job the lost POST made, without a second POST', async () => {
    const { atlas, deps } = setup();
    atlas.failPost = { error: lostAnswer(), created: true, thenFailLists: 1 };
    await expect(restore(deps, 'c-4')).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(summary(await restore(deps, 'c-4'))).toEqual({ id: 'job-1', reused: true });
    expect(atlas.calls.restore).toBe(1);
  });

  it('a restore with the same key and another target is a CONFLICT', async () => {
    const { deps } = setup();
    await restore(deps, 'c-5');
    const err = await rejection(
      requestRestore(deps, {
        ...REF,
        snapshotId: 'snap-1',
        target: { projectId: 'b'.repeat(24), clusterName: 'Elsewhere' },
        idempotencyKey: 'c-5',
      }),
    );
    expect([err.code, err.message]).toEqual([
      'CONFLICT',
      'idempotencyKey "c-5" was already used for a different restore request.',
    ]);
  });

  it('a keyed download is not shared in flight: its key is recorded', async () => {
    const { atlas, deps } = setup({ inflight: new Map() });
    atlas.snapshots.set('snap-2', 'COMPLETED');
    await download(deps, { idempotencyKey: 'c-6' });
    const err = await rejection(download(deps, { idempotencyKey: 'c-6', snapshotId: 'snap-2' }));
    expect([err.code, err.message]).toEqual([
      'CONFLICT',
      'idempotencyKey "c-6" was already used for a different download request.',
    ]);
  });

  it('a job without an id is neither adopted as the lost POST’s job nor recorded under another id', async () => {
    const { atlas, deps, idempotency } = setup();
    atlas.addJob({ snapshotId: 'snap-1', id: undefined, status: 'FAILED' } as unknown as JobDto);
    const error = lostAnswer();
    atlas.failPost = { error, created: false };
    // It was there before the POST: not this POST's job, and not bound to this request.
    const err = await rejection(download(deps, { reuseExisting: false }));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    expect(err.cause).toBe(error);
    expect(await idempotency.boundTo([''])).toEqual([undefined]);

    // A POST whose answer has no id: the key records an empty job id, as the job gave none.
    const post = atlas.service.download;
    atlas.service.download = async (ref, snapshotId) => {
      const job = await post(ref, snapshotId);
      return { ...job, dto: { ...job.dto, id: undefined } } as unknown as RestoreJobSource;
    };
    await download(deps, { reuseExisting: false, idempotencyKey: 'c-7' });
    const claim = await idempotency.claim(idempotencyStoreKey('apikey:svc', 'download', 'c-7'), 'x');
    expect(claim.state === 'done' && claim.result.jobId).toBe('');
  });
});

describe('the window of jobs a request reads', () => {
  it('from the snapshot’s time, but at most a day back; the look for a lost answer’s job reads by page instead', async () => {
    const { atlas, deps } = setup();
    await download(deps, { reuseExisting: false });
    atlas.snapshotTime = new Date(NOW - 3 * 86_400_000).toISOString();
    await download(deps, { reuseExisting: false });
    atlas.snapshotTime = undefined;
    atlas.failPost = { error: lostAnswer(), created: true };
    expect(summary(await restore(deps))).toEqual({ id: 'job-3', reused: false });
    // One window per request, before its POST; then the lost answer's look, a `listRecentJobs` too,
    // since clockSkewMs (1 min) before the POST.
    expect(atlas.windows).toEqual([NOW - 3_600_000, NOW - 86_400_000, NOW - 86_400_000, NOW - 60_000]);
    expect(atlas.calls.listRecentJobs).toBe(4);
  });

  it('the look for a lost POST’s job takes jobs dated from clockSkewMs (1 min) before the POST, the closest to it first', async () => {
    const lookWith = async (dates: number[], extra: Partial<JobRequestDeps> = {}) => {
      const { atlas, deps } = setup(extra);
      atlas.failPost = { error: lostAnswer(), created: false };
      const post = atlas.service.download;
      atlas.service.download = async (ref, snapshotId) => {
        // Listed after the request's window was read: made by this POST, as far as the list can tell.
        for (const at of dates)
          atlas.addJob({ snapshotId, restoreScheduledDate: new Date(at).toISOString() });
        return post(ref, snapshotId);
      };
      return download(deps, { reuseExisting: false }).then(summary, (e: GatewayError) => e.code);
    };
    expect(await lookWith([NOW - 60_001])).toBe('OUTCOME_UNKNOWN');
    expect(await lookWith([NOW - 60_000])).toEqual({ id: 'job-1', reused: false });
    expect(await lookWith([NOW - 30_000, NOW + 5_000, NOW - 10_000])).toEqual({ id: 'job-2', reused: false });
    expect(await lookWith([NOW - 60_000], { clockSkewMs: 59_999 })).toBe('OUTCOME_UNKNOWN');
  });
});

describe('a restore is known by its target', () => {
  const TARGET = { projectId: 'b'.repeat(24), clusterName: 'Target' };
  const restoreOnto = (
    deps: JobRequestDeps,
    target: { projectId: string; clusterName: string },
    idempotencyKey?: string,
  ) => requestRestore(deps, { ...REF, snapshotId: 'snap-1', target, idempotencyKey });

  it('a restore of the snapshot running onto another cluster or project is not this one: a new POST', async () => {
    for (const other of [
      { targetProjectId: TARGET.projectId, targetDeploymentItemName: 'Elsewhere' },
      { targetProjectId: 'c'.repeat(24), targetDeploymentItemName: TARGET.clusterName },
    ]) {
      const { atlas, deps } = setup({ restoreWindowMs: 0 });
      atlas.addJob({ snapshotId: 'snap-1', deliveryType: 'RESTORE', status: 'RUNNING', ...other });
      expect(summary(await restoreOnto(deps, TARGET))).toEqual({ id: 'job-2', reused: false });
      expect(atlas.calls.restore).toBe(1);
    }
  });

  it('a running restore that names no target project restores into its own project', async () => {
    const { atlas, deps } = setup({ restoreWindowMs: 0 });
    atlas.addJob({
      snapshotId: 'snap-1',
      deliveryType: 'RESTORE',
      status: 'RUNNING',
      targetDeploymentItemName: 'Target',
    });
    expect(summary(await restoreOnto(deps, TARGET))).toEqual({ id: 'job-2', reused: false });
    expect(summary(await restoreOnto(deps, { projectId: REF.projectId, clusterName: 'Target' }))).toEqual({
      id: 'job-1',
      reused: true,
    });
    expect(atlas.calls.restore).toBe(1);
  });

  it('a lost restore POST does not adopt a new restore of the snapshot onto another target', async () => {
    const { atlas, deps } = setup();
    atlas.failPost = { error: lostAnswer(), created: false };
    // Another request's restore of the same snapshot, elsewhere, made while this POST's answer was lost.
    const list = atlas.service.listRecentJobs;
    let reads = 0;
    atlas.service.listRecentJobs = async (ref, options) => {
      if (++reads === 2) {
        atlas.addJob({
          snapshotId: 'snap-1',
          deliveryType: 'RESTORE',
          status: 'QUEUED',
          targetProjectId: TARGET.projectId,
          targetDeploymentItemName: 'Elsewhere',
          restoreScheduledDate: new Date(NOW).toISOString(),
        });
      }
      return list(ref, options);
    };
    const err = await rejection(restoreOnto(deps, TARGET, 'lost-1'));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    expect(await deps.idempotency.boundTo(['job-1'])).toEqual([undefined]);
  });

  it('restoreWindowMs: 0 turns the window off: identical restores at once each make their POST', async () => {
    const { atlas, deps } = setup({ restoreWindowMs: 0 });
    const answers = await Promise.all([restoreOnto(deps, TARGET), restoreOnto(deps, TARGET)]);
    expect(answers.map(summary)).toEqual([
      { id: 'job-1', reused: false },
      { id: 'job-2', reused: false },
    ]);
    expect(atlas.calls.restore).toBe(2);
  });
});

describe('what a job is bound to', () => {
  it('a job a request made is bound to it (its key), so no lost POST of another request adopts it', async () => {
    const { deps, idempotency } = setup();
    const made = await download(deps, { idempotencyKey: 'b-1', reuseExisting: false });
    expect(await idempotency.boundTo([made.job.dto.id!])).toEqual([
      idempotencyStoreKey('apikey:svc', 'download', 'b-1'),
    ]);
    const unkeyed = await download(deps, { reuseExisting: false });
    expect((await idempotency.boundTo([unkeyed.job.dto.id!]))[0]).toMatch(/^unkeyed:[0-9a-f-]{36}$/);
  });
});

describe('an unknown outcome the store cannot keep a key for', () => {
  function refusingStore(deps: JobRequestDeps) {
    const store = deps.idempotency;
    deps.idempotency = {
      claim: () => Promise.reject(new GatewayError('STORE_UNAVAILABLE', 'down')),
      retake: (...a) => store.retake(...a),
      bind: (...a) => store.bind(...a),
      boundTo: (...a) => store.boundTo(...a),
    };
  }

  it('OUTCOME_UNKNOWN without a key: the client is told to look before sending again', async () => {
    const { atlas, deps } = setup();
    refusingStore(deps);
    atlas.failPost = { error: lostAnswer(), created: false };
    const err = await rejection(download(deps, { reuseExisting: false }));
    expect([err.code, err.message, err.extensions]).toEqual([
      'OUTCOME_UNKNOWN',
      'The request was sent to Atlas but its outcome is not known yet; the job may exist. Look at the cluster’s restoreJobs before sending it again.',
      { retryable: false, outcome: 'unknown' },
    ]);
  });

  it('bug: an unknown outcome the store could not keep a key for left a rejection unhandled, which ends the process', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { atlas, deps } = setup();
      refusingStore(deps);
      atlas.failPost = { error: lostAnswer(), created: false };
      expect((await rejection(download(deps, { reuseExisting: false }))).code).toBe('OUTCOME_UNKNOWN');
      // Node reports an unhandled rejection once the microtasks have run.
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('identical downloads in flight whose POST answer is lost', () => {
  it('all get OUTCOME_UNKNOWN with a key, and the retry with it gets the job the POST made', async () => {
    const { atlas, deps } = setup({ inflight: new Map() });
    atlas.failPost = { error: lostAnswer(), created: true, thenFailLists: 1 };
    const [a, b] = await Promise.all([rejection(download(deps)), rejection(download(deps))]);
    expect([a.code, b.code]).toEqual(['OUTCOME_UNKNOWN', 'OUTCOME_UNKNOWN']);
    const key = a.extensions.idempotencyKey as string;
    expect(key).toMatch(/^gw-/);
    // The job failed meanwhile: nothing to reuse, so only the key can tell it is this request's.
    const made = atlas.jobs[0]!;
    atlas.jobs[0] = { ...made, dto: { ...made.dto, status: 'FAILED' } } as RestoreJobSource;
    expect(summary(await download(deps, { idempotencyKey: key }))).toEqual({ id: 'job-1', reused: true });
    expect(atlas.calls.download).toBe(1);
  });
});

describe('the deadline, step by step', () => {
  const timeout = () =>
    new GatewayError('UPSTREAM_UNAVAILABLE', 'deadline', { extensions: { retryable: true } });
  /** A call that waits until the test lets it go. */
  function gated<A extends unknown[], R>(fn: (...a: A) => Promise<R>) {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered = 0;
    const call = async (...a: A) => {
      entered++;
      await gate;
      return fn(...a);
    };
    return { call, open: () => open(), entered: () => entered };
  }
  const tick = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };

  it('a deadline already passed: nothing is read or sent, the answer is the deadline’s', async () => {
    const { atlas, deps } = setup();
    const ctl = new AbortController();
    const reason = timeout();
    ctl.abort(reason);
    deps.deadline = ctl.signal;
    await expect(download(deps, { reuseExisting: false })).rejects.toBe(reason);
    await tick();
    expect(atlas.calls.download).toBe(0);
  });

  it('an unkeyed download stopped while reading the snapshot answers the deadline’s timeout, and sends nothing after', async () => {
    const { atlas, deps } = setup();
    const snap = gated(atlas.service.getSnapshot);
    atlas.service.getSnapshot = snap.call;
    const ctl = new AbortController();
    deps.deadline = ctl.signal;
    const answer = download(deps, { reuseExisting: false });
    await tick();
    const reason = timeout();
    ctl.abort(reason);
    await expect(answer).rejects.toBe(reason);
    snap.open();
    await tick();
    expect([snap.entered(), atlas.calls.download]).toEqual([1, 0]);
  });

  it('identical downloads sharing one request, stopped before its POST, both answer the retryable timeout', async () => {
    const { atlas, deps } = setup({ inflight: new Map() });
    const snap = gated(atlas.service.getSnapshot);
    atlas.service.getSnapshot = snap.call;
    const ctl = new AbortController();
    deps.deadline = ctl.signal;
    const answers = [download(deps), download(deps)].map((p) => p.catch((e: unknown) => e));
    await tick();
    const reason = timeout();
    ctl.abort(reason);
    expect(await Promise.all(answers)).toEqual([reason, reason]);
    snap.open();
    await tick();
    expect([snap.entered(), atlas.calls.download]).toEqual([1, 0]);
  });

  it('a keyed request stopped while its write-ahead is being recorded sends no POST, and frees its key', async () => {
    const { atlas, deps, idempotency } = setup();
    const writes = gated(async () => undefined);
    deps.idempotency = {
      claim: async (...a) => {
        const c = await idempotency.claim(...a);
        return c.state === 'new' ? { ...c, posting: writes.call } : c;
      },
      retake: (...a) => idempotency.retake(...a),
      bind: (...a) => idempotency.bind(...a),
      boundTo: (...a) => idempotency.boundTo(...a),
    };
    const ctl = new AbortController();
    deps.deadline = ctl.signal;
    const answer = download(deps, { idempotencyKey: 'wa-1', reuseExisting: false });
    for (let i = 0; i < 10 && writes.entered() === 0; i++) await tick();
    expect(writes.entered()).toBe(1);
    const reason = timeout();
    ctl.abort(reason);
    await expect(answer).rejects.toBe(reason);
    writes.open();
    await tick();
    expect(atlas.calls.download).toBe(0);
    const again = await idempotency.claim(idempotencyStoreKey('apikey:svc', 'download', 'wa-1'), 'x');
    expect(again.state).toBe('new');
  });

  it('an unkeyed download whose POST is out at the deadline gets a key that records when the POST went out', async () => {
    const { atlas, clock, deps, idempotency } = setup();
    const post = gated(atlas.service.download);
    atlas.service.download = post.call;
    const postings: [string, number][] = [];
    deps.idempotency = {
      claim: async (key, ...rest) => {
        const c = await idempotency.claim(key, ...rest);
        if (c.state !== 'new') return c;
        return { ...c, posting: async (at: number) => void postings.push([key, at]) };
      },
      retake: (...a) => idempotency.retake(...a),
      bind: (...a) => idempotency.bind(...a),
      boundTo: (...a) => idempotency.boundTo(...a),
    };
    const ctl = new AbortController();
    deps.deadline = ctl.signal;
    const answer = rejection(download(deps, { reuseExisting: false }));
    for (let i = 0; i < 10 && post.entered() === 0; i++) await tick();
    clock.advance(5_000);
    ctl.abort(timeout());
    const err = await answer;
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    const key = err.extensions.idempotencyKey as string;
    expect(postings).toEqual([[idempotencyStoreKey('apikey:svc', 'download', key), NOW]]);
    post.open();
    for (let i = 0; i < 10 && atlas.jobs.length === 0; i++) await tick();
    await tick();
    // The retry is a request of its own, with a deadline still ahead.
    deps.deadline = undefined;
    expect(summary(await download(deps, { idempotencyKey: key, reuseExisting: false }))).toEqual({
      id: 'job-1',
      reused: true,
    });
  });
});

describe('a lost POST’s job already bound to the same key', () => {
  it('is adopted by that key’s request (a holder bound it, then lost the answer): no second job', async () => {
    const { atlas, deps, idempotency } = setup();
    const storeKey = idempotencyStoreKey('apikey:svc', 'download', 'own-1');
    const post = atlas.service.download;
    atlas.service.download = async (ref, snapshotId) => {
      const job = await post(ref, snapshotId);
      // Bound to the key that made it, as a replica does before it records the answer; then the
      // answer is lost on its way.
      await idempotency.bind(job.dto.id!, storeKey);
      throw lostAnswer();
    };
    expect(summary(await download(deps, { idempotencyKey: 'own-1', reuseExisting: false }))).toEqual({
      id: 'job-1',
      reused: false,
    });
    expect(atlas.calls.download).toBe(1);
  });
});

describe('a request answered at its deadline whose POST then fails', () => {
  it('gets one key to retry with: the late failure claims no second one', async () => {
    const { atlas, deps, idempotency } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const post = atlas.service.download;
    atlas.service.download = async (ref, snapshotId) => {
      await gate;
      return post(ref, snapshotId);
    };
    const claimed: string[] = [];
    deps.idempotency = {
      claim: (key, ...rest) => (claimed.push(key), idempotency.claim(key, ...rest)),
      retake: (...a) => idempotency.retake(...a),
      bind: (...a) => idempotency.bind(...a),
      boundTo: (...a) => idempotency.boundTo(...a),
    };
    const ctl = new AbortController();
    deps.deadline = ctl.signal;
    atlas.failPost = { error: lostAnswer(), created: false };
    const answer = rejection(download(deps, { reuseExisting: false }));
    for (let i = 0; i < 200 && atlas.calls.download === 0; i++) await Promise.resolve();
    ctl.abort(new GatewayError('UPSTREAM_UNAVAILABLE', 'deadline'));
    const err = await answer;
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    const key = err.extensions.idempotencyKey as string;
    // The POST's answer is lost after the client was answered: the look for its job finds none.
    release();
    for (let i = 0; i < 200 && atlas.calls.listRecentJobs < 2; i++) await Promise.resolve();
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(claimed).toEqual([idempotencyStoreKey('apikey:svc', 'download', key)]);
  });
});
