import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../time/clock.js';
import { AtlasNetworkError, AtlasResponseError } from '../atlas/errors.js';
import type { BackupService } from '../backup/backup-service.js';
import type { KnownSnapshot } from '../backup/completed-snapshots.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import { GatewayError } from '../errors/index.js';
import {
  idempotencyStoreKey,
  type Claim,
  type ClaimIntent,
  type ClaimOptions,
  type IdempotencyStore,
  type IdempotentResult,
  type Unresolved,
} from './idempotency-store.js';
import { createdAt } from '../backup/created-at.js';

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
  /**
   * How long after a POST whose answer was lost its job may still appear in Atlas's list (Atlas may
   * still be working on it). Until then a list without it proves nothing and the outcome stays
   * unknown; after it, a list without it proves that no job was made, and a retry of the key creates
   * it. @default 120000
   */
  postSettleMs?: number;
  /**
   * How much earlier than the gateway's clock said the POST went out Atlas may date its job (clocks
   * differ; Atlas dates in whole seconds): the window searched for a lost POST's job starts this long
   * before it. Jobs already bound to another request are never taken. @default 60000
   */
  clockSkewMs?: number;
  /**
   * Identical restores sent without an idempotency key within this long of each other share one job
   * (`reused: true`), across replicas with Redis. @default 60000
   */
  restoreWindowMs?: number;
}

/**
 * Where a mutation stands, so that its answer at the deadline tells the truth: `before` nothing was
 * sent (stopping is safe, and a retry is too); `waiting` another request of the same key holds it (its
 * job may exist); `posting` the POST may have gone out (the job may exist).
 */
class Attempt {
  phase: 'before' | 'waiting' | 'posting' = 'before';
  /** Set once the client got its answer at the deadline: from then on no POST starts. */
  stopped = false;
  /** The key this request holds, if any: its POST is recorded there before it is sent. */
  claim: Extract<Claim, { state: 'new' }> | undefined;
  /** What the job this request creates or adopts is bound to: its key, or a name of its own. */
  owner = `unkeyed:${randomUUID()}`;
  /** When its POST went out. */
  postedAt: number | undefined;
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

/** Whether `job` is what `u` asked for: same snapshot and delivery type, and for a restore, target. */
function matches(job: RestoreJobSource, u: Unresolved): boolean {
  const d = job.dto;
  if (d.snapshotId !== u.snapshotId || d.deliveryType !== u.deliveryType) return false;
  if (u.deliveryType !== 'RESTORE' || !u.target) return true;
  return (
    d.targetDeploymentItemName === u.target.clusterName &&
    (d.targetProjectId ?? job.projectId) === u.target.projectId
  );
}

/**
 * The job a POST whose answer was lost created, adopted for `owner`: among the cluster's jobs created
 * since shortly before it went out (`listRecentJobs`: only the newest pages), one that matches and
 * is bound to no other request (jobs of `exclude` existed before the POST); the one dated closest to
 * the POST first. Undefined when there is none (yet).
 */
async function findLostJob(
  deps: JobRequestDeps,
  ref: ClusterRef,
  u: Unresolved & { postedAt: number },
  owner: string,
  exclude: ReadonlySet<string> = new Set(),
): Promise<RestoreJobSource | undefined> {
  const since = u.postedAt - (deps.clockSkewMs ?? 60_000);
  // `listRecentJobs` reads only the newest pages; the cut is repeated here so that the window does
  // not depend on the service's (a job whose age cannot be read still counts: it may be the one).
  const jobs = await deps.service.listRecentJobs(ref, { since });
  const candidates = jobs
    .filter((j) => !(createdAt(j) < since) && matches(j, u) && !exclude.has(j.dto.id ?? ''))
    .sort((a, b) => Math.abs(createdAt(a) - u.postedAt) - Math.abs(createdAt(b) - u.postedAt));
  if (candidates.length === 0) return undefined;
  const owners = await deps.idempotency.boundTo(candidates.map((j) => j.dto.id ?? ''));
  for (const [i, job] of candidates.entries()) {
    if (owners[i] !== undefined && owners[i] !== owner) continue;
    // Bound first, adopted after: two lost POSTs looking at once never take the same job.
    if (await deps.idempotency.bind(job.dto.id ?? '', owner)) return job;
  }
  return undefined;
}

/**
 * Sends the POST once. Atlas POSTs are not idempotent and the client never retries them. With a key,
 * that the POST is about to go out is recorded on it first (write-ahead), so whoever takes the key
 * over should this replica die knows to look for its job. After a transport failure that may have
 * reached Atlas, the job is looked for among the cluster's recent jobs; when it is not there (yet),
 * the outcome is unknown. No POST starts once the request has been answered at its deadline.
 */
async function postOnce(
  deps: JobRequestDeps,
  attempt: Attempt,
  ref: ClusterRef,
  before: RestoreJobSource[],
  intent: Omit<ClaimIntent, 'projectId' | 'clusterName'>,
  post: () => Promise<RestoreJobSource>,
): Promise<RestoreJobSource> {
  if (attempt.stopped) throw stoppedBeforePost(deps.deadline);
  const postedAt = deps.clock.now();
  await attempt.claim?.posting(postedAt);
  if (attempt.stopped) throw stoppedBeforePost(deps.deadline);
  attempt.phase = 'posting';
  attempt.postedAt = postedAt;
  try {
    const job = await post();
    // Bound to this request, so no lost POST of another request adopts it. Best effort: a store
    // that cannot take it does not undo the job.
    await deps.idempotency.bind(job.dto.id ?? '', attempt.owner).catch(() => undefined);
    return job;
  } catch (err) {
    if (!maybeApplied(err)) throw err;
    const unresolved = { ...intent, postedAt };
    let found: RestoreJobSource | undefined;
    try {
      const known = new Set(before.map((j) => j.dto.id ?? ''));
      found = await findLostJob(deps, ref, unresolved, attempt.owner, known);
    } catch (rereadError) {
      throw new OutcomeUnknownError(unresolved, undefined, rereadError);
    }
    if (found) return found;
    // Sent, and no job to show for it (yet): Atlas may still be creating it, so this is not a refusal.
    throw new OutcomeUnknownError(unresolved, undefined, err);
  }
}

/**
 * The jobs a new request compares against (reuse, a running restore, and what was there before its
 * POST): only jobs of this snapshot can matter, and none is older than the snapshot; a COMPLETED
 * download's URL is dead four hours after it finished, and a job still running after a day is not one
 * to wait on, so a day back is enough. `listRecentJobs` bounds a cluster with more jobs than that in a
 * day (issue #17: one Flex cluster had 2,160).
 */
function recentForRequest(snapshot: KnownSnapshot, now: number): { since: number } {
  const taken = Date.parse(snapshot.scheduledTime ?? '');
  return { since: Math.max(Number.isNaN(taken) ? 0 : taken, now - RECENT_DAY_MS) };
}
const RECENT_DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The snapshot, COMPLETED, or a CONFLICT before any POST: Atlas accepts a job of a snapshot that is not
 * COMPLETED, and that job can only fail. A snapshot this gateway already read as COMPLETED (a final
 * status; issue #19) is not read again: only a deleted one can have changed since, and the POST's 404
 * answers that (NOT_FOUND), as this read would have. (A still-useful download of it listed before the
 * POST is still answered `reused`, as it was a moment before the deletion.)
 */
async function requireCompletedSnapshot(
  service: BackupService,
  ref: ClusterRef,
  snapshotId: string,
  verb: string,
): Promise<KnownSnapshot> {
  const known = service.knownCompletedSnapshot(ref, snapshotId);
  if (known) return known;
  const snapshot = await service.getSnapshot(ref, snapshotId);
  if (snapshot.dto.status !== 'COMPLETED') {
    throw new GatewayError(
      'CONFLICT',
      `Snapshot ${snapshotId} is ${snapshot.dto.status ?? 'in an unknown state'}; only a COMPLETED snapshot can be ${verb}.`,
      { extensions: { snapshotStatus: snapshot.dto.status ?? null } },
    );
  }
  return { scheduledTime: snapshot.dto.scheduledTime };
}

const fingerprint = (o: unknown) => createHash('sha256').update(JSON.stringify(o)).digest('hex');

/** Claims an idempotency key of this caller; refuses a key that is not 1 to 200 characters. */
function claimKey(
  deps: JobRequestDeps,
  kind: string,
  key: string,
  print: string,
  intent: ClaimIntent,
  options: ClaimOptions = {},
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
  const storeKey = idempotencyStoreKey(deps.callerId, kind, key);
  return { storeKey, claim: () => deps.idempotency.claim(storeKey, print, intent, options) };
}

/**
 * Runs `create` at most once per idempotency key and caller (24 h): a repeat, even while the first is
 * still running, gets the first one's job with `reused: true` and makes no POST. A key whose job may
 * exist (a lost POST answer, or a holder that died: `unresolved`) is resolved by one request at a
 * time, never treated as free (`resolve`).
 */
async function idempotent(
  deps: JobRequestDeps,
  attempt: Attempt,
  kind: string,
  key: string,
  input: ClusterRef,
  intent: ClaimIntent,
  create: () => Promise<JobRequestResult>,
  options: ClaimOptions = {},
): Promise<JobRequestResult> {
  const print = fingerprint(input);
  const { storeKey, claim: claimIt } = claimKey(deps, kind, key, print, intent, options);
  attempt.owner = storeKey;
  for (;;) {
    attempt.phase = 'before';
    const claim = await claimIt();
    if (claim.state === 'new') {
      attempt.claim = claim;
      return settleWith(claim, print, input, create);
    }
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
      const turn = await deps.idempotency.retake(storeKey, print, done, options);
      if (turn.state !== 'new') continue;
      attempt.claim = turn;
      return resolve(deps, turn, done, done.unresolved, storeKey, print, input, create);
    }
    const job = await deps.service.getJob(done, done.jobId);
    return { job, reused: true };
  }
}

/**
 * Finds out what an unresolved key's POST did, holding the key (`turn`): nothing was sent (its holder
 * died first) → this request creates the job; the job is among the cluster's recent jobs → adopted;
 * not there, and the POST is older than `postSettleMs` → proven none, this request creates it; not
 * there yet → still unknown (the key keeps saying so, and the answer is OUTCOME_UNKNOWN).
 */
async function resolve(
  deps: JobRequestDeps,
  turn: Extract<Claim, { state: 'new' }>,
  done: IdempotentResult,
  u: Unresolved,
  storeKey: string,
  print: string,
  input: ClusterRef,
  create: () => Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  const { postedAt } = u;
  if (postedAt === undefined) return settleWith(turn, print, input, create);
  const { orphaned: _gone, ...known } = u;
  const stillUnknown: IdempotentResult = { ...done, jobId: '', unresolved: known };
  let found: RestoreJobSource | undefined;
  try {
    found = await findLostJob(deps, done, { ...u, postedAt }, storeKey);
  } catch (err) {
    turn.settle(stillUnknown); // the next retry looks again
    throw new OutcomeUnknownError(known, undefined, err);
  }
  if (found) {
    turn.settle({
      fingerprint: print,
      projectId: done.projectId,
      clusterName: done.clusterName,
      jobId: found.dto.id ?? '',
    });
    return { job: found, reused: true };
  }
  if (deps.clock.now() - postedAt >= (deps.postSettleMs ?? 120_000)) {
    // Long enough after the POST that its job would be listed by now: none was made.
    return settleWith(turn, print, input, create);
  }
  turn.settle(stillUnknown);
  throw new OutcomeUnknownError(known, undefined);
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
  attempt: Attempt,
  kind: string,
  input: ClusterRef,
  intent: ClaimIntent,
  outcome: Promise<JobRequestResult>,
): Promise<string | undefined> {
  const key = `gw-${randomUUID()}`;
  const print = fingerprint(input);
  // Its failure is recorded under the key (settleWith), or nowhere when no key could be kept; either
  // way it must not be left unhandled, which would end the process.
  outcome.catch(() => undefined);
  try {
    const claim = await claimKey(deps, kind, key, print, intent).claim();
    if (claim.state !== 'new') return undefined; // a fresh UUID: never happens
    // Its POST went out already: said on the key, in case this replica dies before it settles.
    if (attempt.postedAt !== undefined) await claim.posting(attempt.postedAt);
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
  intent: ClaimIntent,
  work: Promise<JobRequestResult>,
): Promise<JobRequestResult> {
  const told = (err: unknown): Promise<never> =>
    err instanceof OutcomeUnknownError && key === undefined
      ? keyForUnknown(deps, attempt, kind, input, intent, Promise.reject(err)).then((k) =>
          Promise.reject(err.withKey(k)),
        )
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
      void keyForUnknown(deps, attempt, kind, input, intent, work).then((k) =>
        reject(new OutcomeUnknownError(undefined, k)),
      );
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

/**
 * Runs a job request and answers by the deadline: under the client's key, or without one under a key
 * of its input that lives `windowMs` (identical requests within it share one job; while Redis is away,
 * within this replica only), or unguarded.
 */
function run(
  deps: JobRequestDeps,
  kind: string,
  key: string | undefined,
  input: ClusterRef,
  intent: ClaimIntent,
  create: (attempt: Attempt) => Promise<JobRequestResult>,
  windowMs?: number,
): Promise<JobRequestResult> {
  const attempt = new Attempt();
  const claimAs = key ?? (windowMs !== undefined ? `window-${fingerprint(input)}` : undefined);
  const options: ClaimOptions =
    key === undefined && windowMs !== undefined ? { resultTtlMs: windowMs, localWhenUnavailable: true } : {};
  const work =
    claimAs === undefined
      ? create(attempt)
      : idempotent(deps, attempt, kind, claimAs, input, intent, () => create(attempt), options);
  // The window's key is not one to retry with (it lives a minute): an unknown outcome gets a key of its own.
  return answerBy(deps, attempt, kind, key, input, intent, work);
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
  const intent: ClaimIntent = { ...ref, snapshotId: req.snapshotId, deliveryType: 'DOWNLOAD' };
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
        intent,
        running.then(({ job }) => ({ job, reused: true })),
      );
    }
    const attempt = new Attempt();
    const p = createDownload(deps, attempt, ref, input).finally(() => deps.inflight?.delete(key));
    attempts.set(p, attempt);
    deps.inflight.set(key, p);
    return answerBy(deps, attempt, 'download', undefined, input, intent, p);
  }
  return run(deps, 'download', req.idempotencyKey, input, intent, (attempt) =>
    createDownload(deps, attempt, ref, input),
  );
}

async function createDownload(
  deps: JobRequestDeps,
  attempt: Attempt,
  ref: ClusterRef,
  req: { snapshotId: string; reuseExisting: boolean },
): Promise<JobRequestResult> {
  const snapshot = await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'downloaded');
  const before = await deps.service.listRecentJobs(ref, recentForRequest(snapshot, deps.clock.now()));
  if (req.reuseExisting) {
    const existing = usefulDownload(
      before,
      req.snapshotId,
      deps.clock.now(),
      deps.minUrlLifetimeMs ?? 300_000,
    );
    if (existing) return { job: existing, reused: true };
  }
  const job = await postOnce(
    deps,
    attempt,
    ref,
    before,
    { snapshotId: req.snapshotId, deliveryType: 'DOWNLOAD' },
    () => deps.service.download(ref, req.snapshotId),
  );
  return { job, reused: false };
}

/**
 * The `requestRestore` mutation: a restore of a COMPLETED snapshot into `req.target`, which Atlas
 * overwrites, so no request makes two: an `idempotencyKey` used before answers that job (`reused:
 * true`); identical requests without a key within `restoreWindowMs` share one job; and a restore of
 * the same snapshot still running onto the same target is answered (`reused: true`) instead of a new
 * one. Failures as for `requestDownload`; `deps.service` should be a `write` one.
 */
export function requestRestore(deps: JobRequestDeps, req: RestoreRequest): Promise<JobRequestResult> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const input = { ...ref, snapshotId: req.snapshotId, target: req.target };
  const what = { snapshotId: req.snapshotId, deliveryType: 'RESTORE' as const, target: req.target };
  const create = async (attempt: Attempt): Promise<JobRequestResult> => {
    const snapshot = await requireCompletedSnapshot(deps.service, ref, req.snapshotId, 'restored');
    const before = await deps.service.listRecentJobs(ref, recentForRequest(snapshot, deps.clock.now()));
    const running = before.find((j) => ACTIVE.has(j.dto.status ?? '') && matches(j, what));
    if (running) return { job: running, reused: true };
    const job = await postOnce(deps, attempt, ref, before, what, () =>
      deps.service.restore(ref, req.snapshotId, req.target),
    );
    return { job, reused: false };
  };
  const window = deps.restoreWindowMs ?? 60_000;
  const intent = { ...ref, ...what };
  return run(deps, 'restore', req.idempotencyKey, input, intent, create, window > 0 ? window : undefined);
}
