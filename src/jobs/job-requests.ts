import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../time/clock.js';
import { AtlasNetworkError, AtlasResponseError } from '../atlas/errors.js';
import type { BackupService } from '../backup/backup-service.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import { GatewayError } from '../errors/index.js';
import type { Claim, IdempotencyStore, IdempotentResult } from './idempotency-store.js';

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
  /**
   * Aborts at the request's execution deadline (`deadlineSignal`): the mutation answers then, with the
   * truth about its POST, and what is in flight finishes in the background.
   * @default none: the mutation answers when it is done
   */
  deadline?: AbortSignal | undefined;
}

type Unresolved = NonNullable<IdempotentResult['unresolved']>;

/**
 * Where a mutation stands, so that its answer at the deadline tells the truth: `before` nothing was
 * sent (stopping is safe, and a retry is too); `waiting` another request of the same key holds it (its
 * job may exist); `posting` the POST may have gone out (the job may exist).
 */
class Attempt {
  phase: 'before' | 'waiting' | 'posting' = 'before';
  /** Set once the client got its answer at the deadline: from then on no POST starts. */
  stopped = false;
}

// The attempt behind each shared in-flight download, for the deadline of every request sharing it.
const attempts = new WeakMap<Promise<JobRequestResult>, Attempt>();

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
 * The POST went out and whether Atlas created the job is not known: its answer was lost (and the jobs
 * read again do not show it), or it had not come back by the deadline. Not `retryable`: a retry
 * without the key may make a second job. The retry with `extensions.idempotencyKey` and the same input
 * is always safe: it answers the job once it is known (the gateway keeps finding out in the
 * background), or creates it once the gateway can prove none exists.
 */
export class OutcomeUnknownError extends GatewayError {
  constructor(
    /** What the key's record keeps, so a retry can find the job; undefined for a deadline. */
    readonly unresolved: Unresolved | undefined,
    /** The key to retry with: the client's own, or one the gateway made for this request. */
    readonly idempotencyKey: string | undefined,
    cause?: unknown,
  ) {
    super(
      'OUTCOME_UNKNOWN',
      idempotencyKey === undefined
        ? 'The request was sent to Atlas but its outcome is not known yet; the job may exist. Look at the cluster’s restoreJobs before sending it again.'
        : `The request was sent to Atlas but its outcome is not known yet; the job may exist. Retry with idempotencyKey "${idempotencyKey}" and the same input to get it; a retry without it may create a second job.`,
      {
        extensions: {
          retryable: false,
          outcome: 'unknown',
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        },
        cause,
      },
    );
  }

  /** The same unknown outcome, told with the key the client may retry with. */
  withKey(idempotencyKey: string | undefined): OutcomeUnknownError {
    return new OutcomeUnknownError(this.unresolved, idempotencyKey, this.cause);
  }
}

/**
 * The deadline came before anything was sent: nothing was created, so a retry is safe. The abort
 * reason of `useExecutionTimeout` says so already (UPSTREAM_UNAVAILABLE, `retryable: true`, 504).
 */
function stoppedBeforePost(deadline: AbortSignal | undefined): unknown {
  return (
    deadline?.reason ??
    new GatewayError('UPSTREAM_UNAVAILABLE', 'The request was stopped at its deadline before it was sent.', {
      extensions: { retryable: true },
    })
  );
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
 * snapshot and delivery type that was not there before is the one this POST created. No POST starts
 * once the request has been answered at its deadline.
 */
async function postOnce(
  deps: JobRequestDeps,
  attempt: Attempt,
  ref: ClusterRef,
  before: RestoreJobSource[],
  snapshotId: string,
  deliveryType: 'DOWNLOAD' | 'RESTORE',
  post: () => Promise<RestoreJobSource>,
): Promise<RestoreJobSource> {
  if (attempt.stopped) throw stoppedBeforePost(deps.deadline);
  attempt.phase = 'posting';
  try {
    return await post();
  } catch (err) {
    if (!maybeApplied(err)) throw err;
    const unresolved = { before: before.map((j) => j.dto.id ?? ''), snapshotId, deliveryType };
    let after: RestoreJobSource[];
    try {
      after = await deps.service.listAllJobs(ref);
    } catch (rereadError) {
      throw new OutcomeUnknownError(unresolved, undefined, rereadError);
    }
    const created = createdSince(after, unresolved);
    if (created) return created;
    // Sent, and no job to show for it (yet): Atlas may still be creating it, so this is not a refusal.
    throw new OutcomeUnknownError(unresolved, undefined, err);
  }
}

async function requireCompletedSnapshot(
  service: BackupService,
  ref: ClusterRef,
  snapshotId: string,
  verb: string,
) {
  const snapshot = await service.getSnapshot(ref, snapshotId);
  if (snapshot.dto.status !== 'COMPLETED') {
    throw new GatewayError(
      'CONFLICT',
      `Snapshot ${snapshotId} is ${snapshot.dto.status ?? 'in an unknown state'}; only a COMPLETED snapshot can be ${verb}.`,
      { extensions: { snapshotStatus: snapshot.dto.status ?? null } },
    );
  }
}

const fingerprint = (o: unknown) => createHash('sha256').update(JSON.stringify(o)).digest('hex');

/** Claims an idempotency key of this caller; refuses a key that is not 1 to 200 characters. */
function claimKey(
  deps: JobRequestDeps,
  kind: string,
  key: string,
  print: string,
): { storeKey: string; claim: () => Promise<Claim> } {
  if (key.length === 0 || key.length > 200) {
    throw new GatewayError(
      'BAD_USER_INPUT',
      `Argument "idempotencyKey" must be 1 to 200 characters; got ${key.length}.`,
      {
        extensions: { argumentName: 'idempotencyKey', expected: '1 to 200 characters', received: key.length },
      },
    );
  }
  const storeKey = `${deps.callerId}:${kind}:${key}`;
  return { storeKey, claim: () => deps.idempotency.claim(storeKey, print) };
}

/**
 * Runs `create` at most once per idempotency key and caller (24 h): a repeat, even while the first is
 * still running, gets the first one's job with `reused: true` and makes no POST.
 */
async function idempotent(
  deps: JobRequestDeps,
  attempt: Attempt,
  kind: string,
  key: string,
  input: ClusterRef,
  create: () => Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  const print = fingerprint(input);
  const { storeKey, claim: claimIt } = claimKey(deps, kind, key, print);
  for (;;) {
    attempt.phase = 'before';
    const claim = await claimIt();
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
    // From here the key's job may exist, made by the request that holds the key.
    attempt.phase = 'waiting';
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
        created = createdSince(await deps.service.listAllJobs(done), done.unresolved);
      } catch (err) {
        turn.settle(done); // still unknown: the next retry looks again
        throw new OutcomeUnknownError(done.unresolved, undefined, err);
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
    if (err instanceof OutcomeUnknownError && err.unresolved) {
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
 * A key for a request that came without one and whose outcome is unknown, so the client can still
 * retry safely: claimed for this caller like a key of its own, and settled with what `outcome` brings
 * (the job, a still-unknown outcome, or nothing: then the key is free again).
 */
async function keyForUnknown(
  deps: JobRequestDeps,
  kind: string,
  input: ClusterRef,
  outcome: Promise<JobRequestResult>,
): Promise<string | undefined> {
  const key = `gw-${randomUUID()}`;
  const print = fingerprint(input);
  try {
    const claim = await claimKey(deps, kind, key, print).claim();
    if (claim.state !== 'new') return undefined; // a fresh UUID: never happens
    void settleWith(claim, print, input, () => outcome).catch(() => undefined);
    return key;
  } catch {
    // The store cannot take it: the answer says so (no key), and the client looks before resending.
    return undefined;
  }
}

/**
 * Runs one mutation and answers by its deadline whatever Atlas does: when the deadline comes first,
 * a request that sent nothing stops (retryable), and one whose POST may have gone out answers
 * `OUTCOME_UNKNOWN` with a key to retry with while `work` goes on in the background and records the
 * outcome under that key.
 */
async function answerBy(
  deps: JobRequestDeps,
  attempt: Attempt,
  kind: string,
  key: string | undefined,
  input: ClusterRef,
  work: Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  const told = (err: unknown): Promise<never> =>
    err instanceof OutcomeUnknownError && key === undefined
      ? keyForUnknownSettled(deps, kind, input, err).then((k) => Promise.reject(err.withKey(k)))
      : Promise.reject(err instanceof OutcomeUnknownError ? err.withKey(key) : err);
  const { deadline } = deps;
  if (!deadline) return work.catch(told);
  return new Promise<JobRequestResult>((resolve, reject) => {
    let answered = false;
    const onDeadline = () => {
      if (answered) return;
      answered = true;
      attempt.stopped = true;
      // The work goes on without a listener: its failures are recorded under the key, not thrown.
      work.catch(() => undefined);
      if (attempt.phase === 'before') return reject(stoppedBeforePost(deadline));
      if (key !== undefined) return reject(new OutcomeUnknownError(undefined, key));
      void keyForUnknown(deps, kind, input, work).then((k) => reject(new OutcomeUnknownError(undefined, k)));
    };
    if (deadline.aborted) return onDeadline();
    deadline.addEventListener('abort', onDeadline, { once: true });
    work.then(
      (result) => {
        deadline.removeEventListener('abort', onDeadline);
        if (answered) return;
        answered = true;
        resolve(result);
      },
      (err: unknown) => {
        deadline.removeEventListener('abort', onDeadline);
        if (answered) return;
        answered = true;
        told(err).catch(reject);
      },
    );
  });
}

/** A key recording an unknown outcome that came back without a key of the client's. */
function keyForUnknownSettled(
  deps: JobRequestDeps,
  kind: string,
  input: ClusterRef,
  err: OutcomeUnknownError,
): Promise<string | undefined> {
  return keyForUnknown(deps, kind, input, Promise.reject(err));
}

/** Runs a job request, with or without a key, and answers by the deadline. */
function run(
  deps: JobRequestDeps,
  kind: string,
  key: string | undefined,
  input: ClusterRef,
  create: (attempt: Attempt) => Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  const attempt = new Attempt();
  const work =
    key === undefined ? create(attempt) : idempotent(deps, attempt, kind, key, input, () => create(attempt));
  return answerBy(deps, attempt, kind, key, input, work);
}

/**
 * The `requestDownload` mutation: a download job of a COMPLETED snapshot. With `reuseExisting`, a
 * DOWNLOAD job of the snapshot that still runs, or whose URL stays valid long enough, is answered
 * (`reused: true`) instead of making another; identical requests in flight share one answer. With an
 * `idempotencyKey`, a repeat gets the first request's job. Rejects with CONFLICT for a snapshot that
 * is not COMPLETED, and with `OutcomeUnknownError` (OUTCOME_UNKNOWN, with a key to retry with) when the
 * POST went out and Atlas's answer was lost or had not come by the deadline. `deps.service` should be
 * a `write` one (see `backupPolicy`).
 */
export function requestDownload(deps: JobRequestDeps, req: DownloadRequest): Promise<JobRequestResult> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const input = { ...ref, snapshotId: req.snapshotId, reuseExisting: req.reuseExisting ?? true };
  if (input.reuseExisting && req.idempotencyKey === undefined && deps.inflight) {
    // Identical reusing requests that arrive together share one answer: a burst without keys still
    // makes one job (the later ones see it as reused).
    const key = `${deps.callerId}|${ref.projectId}/${ref.clusterName}/${req.snapshotId}`;
    const running = deps.inflight.get(key);
    const shared = running && attempts.get(running);
    if (running && shared) {
      return answerBy(
        deps,
        shared,
        'download',
        undefined,
        input,
        running.then(({ job }) => ({ job, reused: true })),
      );
    }
    const attempt = new Attempt();
    const p = createDownload(deps, attempt, ref, input).finally(() => deps.inflight?.delete(key));
    attempts.set(p, attempt);
    deps.inflight.set(key, p);
    return answerBy(deps, attempt, 'download', undefined, input, p);
  }
  return run(deps, 'download', req.idempotencyKey, input, (attempt) =>
    createDownload(deps, attempt, ref, input),
  );
}

async function createDownload(
  deps: JobRequestDeps,
  attempt: Attempt,
  ref: ClusterRef,
  req: { snapshotId: string; reuseExisting: boolean },
): Promise<JobRequestResult> {
  await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'downloaded');
  const before = await deps.service.listAllJobs(ref);
  if (req.reuseExisting) {
    const existing = usefulDownload(
      before,
      req.snapshotId,
      deps.clock.now(),
      deps.minUrlLifetimeMs ?? 300_000,
    );
    if (existing) return { job: existing, reused: true };
  }
  const job = await postOnce(deps, attempt, ref, before, req.snapshotId, 'DOWNLOAD', () =>
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
  return run(deps, 'restore', req.idempotencyKey, input, async (attempt) => {
    await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'restored');
    const before = await deps.service.listAllJobs(ref);
    const job = await postOnce(deps, attempt, ref, before, req.snapshotId, 'RESTORE', () =>
      deps.service.restore(ref, req.snapshotId, req.target),
    );
    return { job, reused: false };
  });
}
