import { createHash } from 'node:crypto';
import type { Clock } from '../time/clock.js';
import { AtlasNetworkError, AtlasResponseError } from '../atlas/errors.js';
import type { BackupService, RecentJobsOptions } from '../backup/backup-service.js';
import type { ClusterRef, RestoreJobSource, SnapshotSource } from '../backup/model.js';
import { GatewayError } from '../errors/index.js';
import { idempotencyStoreKey, type Claim, type IdempotencyStore } from './idempotency-store.js';

export interface DownloadRequest extends ClusterRef {
  snapshotId: string;
  idempotencyKey?: string | undefined;
  /** Return a still-useful DOWNLOAD job of the snapshot instead of creating one. @default true */
  reuseExisting?: boolean;
}

export interface RestoreRequest extends ClusterRef {
  snapshotId: string;
  target: { projectId: string; clusterName: string };
  idempotencyKey?: string | undefined;
}

export interface JobRequestResult {
  job: RestoreJobSource;
  reused: boolean;
}

export interface JobRequestDeps {
  service: BackupService;
  idempotency: IdempotencyStore;
  clock: Clock;
  /** Scopes idempotency keys: one caller cannot read another's. */
  callerId: string;
  /** A COMPLETED download is reused only while its URL stays valid at least this long. @default 300000 */
  minUrlLifetimeMs?: number;
  /** Download requests in flight in this process, shared by identical concurrent requests. */
  inflight?: Map<string, Promise<JobRequestResult>>;
}

const ACTIVE = new Set(['PENDING', 'QUEUED', 'RUNNING']);

/** A DOWNLOAD job of this snapshot that still serves its purpose: running, or a URL still valid. */
function usefulDownload(jobs: RestoreJobSource[], snapshotId: string, now: number, minMs: number) {
  return jobs.find((j) => {
    const d = j.dto;
    if (d.deliveryType !== 'DOWNLOAD' || d.snapshotId !== snapshotId) return false;
    if (ACTIVE.has(d.status ?? '')) return true;
    return d.status === 'COMPLETED' && !!d.snapshotUrl && Date.parse(d.expirationDate ?? '') - now > minMs;
  });
}

/**
 * Whether a POST may have reached Atlas and been applied although no usable answer came back: the
 * connection failed after sending, or Atlas said 2xx with a body we could not read.
 */
const maybeApplied = (err: unknown) =>
  (err instanceof AtlasNetworkError && err.sent && err.code !== 'ATLAS_ABORTED') ||
  (err instanceof AtlasResponseError && err.status !== undefined && err.status < 300);

/**
 * Atlas may have created the job (the POST's answer was lost) and the cluster's jobs could not be read
 * to find out. Retryable: the same idempotency key later finds the job, or proves there is none.
 */
export class OutcomeUnknownError extends GatewayError {
  constructor(
    readonly unresolved: {
      before: string[];
      snapshotId: string;
      deliveryType: 'DOWNLOAD' | 'RESTORE';
      since?: number;
    },
    cause: unknown,
  ) {
    super(
      'UPSTREAM_UNAVAILABLE',
      'Atlas may have created the job, but its answer was lost and could not be checked; retry with the same idempotencyKey to get it.',
      { extensions: { retryable: true, outcome: 'unknown' }, cause },
    );
  }
}

/** The job a lost POST created: one for this snapshot and delivery type that was not there before. */
function createdSince(
  jobs: RestoreJobSource[],
  u: { before: string[]; snapshotId: string; deliveryType: string },
): RestoreJobSource | undefined {
  const known = new Set(u.before);
  return jobs.find(
    (j) =>
      !known.has(j.dto.id ?? '') &&
      j.dto.snapshotId === u.snapshotId &&
      j.dto.deliveryType === u.deliveryType,
  );
}

/**
 * Sends the POST once. Atlas POSTs are not idempotent and the client never retries them, so after a
 * transport failure that may have reached Atlas, the cluster's jobs are read again: a job for this
 * snapshot and delivery type that was not there before is the one this POST created.
 */
async function postOnce(
  service: BackupService,
  ref: ClusterRef,
  window: RecentJobsOptions & { since: number },
  before: RestoreJobSource[],
  snapshotId: string,
  deliveryType: 'DOWNLOAD' | 'RESTORE',
  post: () => Promise<RestoreJobSource>,
): Promise<RestoreJobSource> {
  try {
    return await post();
  } catch (err) {
    if (!maybeApplied(err)) throw err;
    const unresolved = {
      before: before.map((j) => j.dto.id ?? ''),
      snapshotId,
      deliveryType,
      since: window.since,
    };
    let after: RestoreJobSource[];
    try {
      // The same window as `before`: an older job outside it must not pass for the new one.
      after = await service.listRecentJobs(ref, window);
    } catch (rereadError) {
      throw new OutcomeUnknownError(unresolved, rereadError);
    }
    const created = createdSince(after, unresolved);
    if (created) return created;
    throw err;
  }
}

/**
 * The jobs a new request compares against (reuse, and "what was there before" for recovery): only
 * jobs of this snapshot can matter, and none is older than the snapshot; a COMPLETED download's URL
 * is dead four hours after it finished, and a job still running after a day is not one to wait on,
 * so a day back is enough. `maxJobs` (500) bounds a cluster with more jobs than that in a day.
 */
function recentForRequest(snapshot: SnapshotSource, now: number): { since: number } {
  const taken = Date.parse(snapshot.dto.scheduledTime ?? '');
  return { since: Math.max(Number.isNaN(taken) ? 0 : taken, now - RECENT_DAY_MS) };
}
const RECENT_DAY_MS = 24 * 60 * 60 * 1000;

async function requireCompletedSnapshot(
  service: BackupService,
  ref: ClusterRef,
  snapshotId: string,
  verb: string,
): Promise<SnapshotSource> {
  const snapshot = await service.getSnapshot(ref, snapshotId);
  if (snapshot.dto.status !== 'COMPLETED') {
    throw new GatewayError(
      'CONFLICT',
      `Snapshot ${snapshotId} is ${snapshot.dto.status ?? 'in an unknown state'}; only a COMPLETED snapshot can be ${verb}.`,
      { extensions: { snapshotStatus: snapshot.dto.status ?? null } },
    );
  }
  return snapshot;
}

const fingerprint = (o: unknown) => createHash('sha256').update(JSON.stringify(o)).digest('hex');

/**
 * Runs `create` at most once per idempotency key and caller (24 h): a repeat, even while the first is
 * still running, gets the first one's job with `reused: true` and makes no POST.
 */
async function idempotent(
  deps: JobRequestDeps,
  kind: string,
  key: string | undefined,
  input: ClusterRef,
  create: () => Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  if (key === undefined) return create();
  if (key.length === 0 || key.length > 200) {
    throw new GatewayError(
      'BAD_USER_INPUT',
      `Argument "idempotencyKey" must be 1 to 200 characters; got ${key.length}.`,
      {
        extensions: { argumentName: 'idempotencyKey', expected: '1 to 200 characters', received: key.length },
      },
    );
  }
  const print = fingerprint(input);
  const storeKey = idempotencyStoreKey(deps.callerId, kind, key);
  for (;;) {
    const claim = await deps.idempotency.claim(storeKey, print);
    if (claim.state === 'new') return settleWith(claim, print, input, create);
    const other = claim.state === 'done' ? claim.result.fingerprint : claim.fingerprint;
    if (other !== print) {
      throw new GatewayError(
        'CONFLICT',
        `idempotencyKey "${key}" was already used for a different ${kind} request.`,
        {
          extensions: { argumentName: 'idempotencyKey' },
        },
      );
    }
    const done = claim.state === 'done' ? claim.result : await claim.wait;
    // The first request failed and freed the key: this one may try for real.
    if (!done) continue;
    if (done.unresolved) {
      // One request at a time finds out what the lost POST did, and records it: concurrent retries
      // would each see no job and make one, and a later retry would adopt whatever job is newest.
      const turn = await deps.idempotency.retake(storeKey, print, done);
      if (turn.state !== 'new') continue;
      let created: RestoreJobSource | undefined;
      try {
        created = createdSince(
          await deps.service.listRecentJobs(done, { since: done.unresolved.since }),
          done.unresolved,
        );
      } catch (err) {
        turn.settle(done); // still unknown: the next retry looks again
        throw err;
      }
      if (!created) {
        // Atlas's list proves the lost POST created nothing: this request does it.
        return settleWith(turn, print, input, create);
      }
      const { unresolved: _settled, ...resolved } = done;
      turn.settle({ ...resolved, jobId: created.dto.id ?? '' });
      return { job: created, reused: true };
    }
    const job = await deps.service.getJob(done, done.jobId);
    return { job, reused: true };
  }
}

/** Runs `create` for a claim this request holds, and records its job (or frees the key). */
async function settleWith(
  claim: Extract<Claim, { state: 'new' }>,
  print: string,
  input: ClusterRef,
  create: () => Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  try {
    const result = await create();
    const { projectId, clusterName } = result.job;
    claim.settle({ fingerprint: print, projectId, clusterName, jobId: result.job.dto.id ?? '' });
    return result;
  } catch (err) {
    // Unknown outcome: the key stays taken, remembering what to look for, so no retry makes a second job.
    if (err instanceof OutcomeUnknownError) {
      claim.settle({
        fingerprint: print,
        projectId: input.projectId,
        clusterName: input.clusterName,
        jobId: '',
        unresolved: err.unresolved,
      });
    } else {
      claim.settle(undefined);
    }
    throw err;
  }
}

/**
 * The `requestDownload` mutation: a download job of a COMPLETED snapshot. With `reuseExisting`, a
 * DOWNLOAD job of the snapshot that still runs, or whose URL stays valid long enough, is answered
 * (`reused: true`) instead of making another; identical requests in flight share one answer. With an
 * `idempotencyKey`, a repeat gets the first request's job. Rejects with CONFLICT for a snapshot that
 * is not COMPLETED, and with `OutcomeUnknownError` when Atlas may have created the job but its answer
 * was lost and could not be checked. `deps.service` should be a `write` one (see `backupPolicy`).
 */
export function requestDownload(deps: JobRequestDeps, req: DownloadRequest): Promise<JobRequestResult> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const input = { ...ref, snapshotId: req.snapshotId, reuseExisting: req.reuseExisting ?? true };
  if (input.reuseExisting && req.idempotencyKey === undefined && deps.inflight) {
    // Identical reusing requests that arrive together share one answer: a burst without keys still
    // makes one job (the later ones see it as reused).
    const key = `${deps.callerId}|${ref.projectId}/${ref.clusterName}/${req.snapshotId}`;
    const running = deps.inflight.get(key);
    if (running) return running.then(({ job }) => ({ job, reused: true }));
    const p = createDownload(deps, ref, input).finally(() => deps.inflight?.delete(key));
    deps.inflight.set(key, p);
    return p;
  }
  return idempotent(deps, 'download', req.idempotencyKey, input, () => createDownload(deps, ref, input));
}

async function createDownload(
  deps: JobRequestDeps,
  ref: ClusterRef,
  req: { snapshotId: string; reuseExisting: boolean },
): Promise<JobRequestResult> {
  const snapshot = await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'downloaded');
  const window = recentForRequest(snapshot, deps.clock.now());
  const before = await deps.service.listRecentJobs(ref, window);
  if (req.reuseExisting) {
    const existing = usefulDownload(
      before,
      req.snapshotId,
      deps.clock.now(),
      deps.minUrlLifetimeMs ?? 300_000,
    );
    if (existing) return { job: existing, reused: true };
  }
  const job = await postOnce(deps.service, ref, window, before, req.snapshotId, 'DOWNLOAD', () =>
    deps.service.download(ref, req.snapshotId),
  );
  return { job, reused: false };
}

/**
 * The `requestRestore` mutation: a restore of a COMPLETED snapshot into `req.target`, which Atlas
 * overwrites. Always a new job unless an `idempotencyKey` was used before (then that job, `reused:
 * true`). Failures as for `requestDownload`; `deps.service` should be a `write` one.
 */
export function requestRestore(deps: JobRequestDeps, req: RestoreRequest): Promise<JobRequestResult> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const input = { ...ref, snapshotId: req.snapshotId, target: req.target };
  return idempotent(deps, 'restore', req.idempotencyKey, input, async () => {
    const snapshot = await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'restored');
    const window = recentForRequest(snapshot, deps.clock.now());
    const before = await deps.service.listRecentJobs(ref, window);
    const job = await postOnce(deps.service, ref, window, before, req.snapshotId, 'RESTORE', () =>
      deps.service.restore(ref, req.snapshotId, req.target),
    );
    return { job, reused: false };
  });
}
