import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request as undiciRequest, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { AtlasApiError } from '../atlas/errors.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import { canSeeProject, type Authenticate, type Caller } from '../callers/caller.js';
import { GatewayError } from '../errors/index.js';
import type { JobsRuntime } from '../jobs/jobs-runtime.js';
import type { JobRequestDeps } from '../jobs/job-requests.js';
import { ensureDownload } from '../jobs/ensure-download.js';
import { primeWatch, watchJob } from '../jobs/watch-job.js';
import { parseDownloadPath } from './download-path.js';

/** What the route needs of the gateway's job machinery: the resolvers' `JobsRuntime`. */
export type DownloadJobs = JobsRuntime;

/** Counts of the download route, for `/metrics` and tests. */
export interface DownloadCounts {
  /** Streams to clients now. */
  active: number;
  /** Requests answered with a stream (200/206). */
  streams: number;
  /** Body bytes sent to clients. */
  bytes: number;
  /** Fresh links asked of Atlas because the job's link had expired (or was about to). */
  renewals: number;
  /** Upstream streams continued with `Range` after Atlas's side cut them. */
  resumes: number;
  /** Streams whose client went away first (their upstream request was aborted). */
  abandoned: number;
}

export interface DownloadRouteOptions {
  jobs: DownloadJobs;
  authenticate: Authenticate;
  logger: Logger;
  /** Reads the object store behind `snapshotUrl`. @default an undici Agent of its own */
  dispatcher?: Dispatcher;
  /** A link that expires sooner than this is renewed before it is used. @default 60000 */
  renewMarginMs?: number;
  /** A renewed (or reused) link must stay valid at least this long. @default 1800000 */
  renewValidityMs?: number;
  /** Longest wait for a renewed download to be COMPLETED. @default 600000 */
  renewWaitMs?: number;
  /** Most times one response is continued after its upstream stream broke. @default 3 */
  maxResumes?: number;
  /**
   * The caller's rate limit, shared with GraphQL operations (`CallerRateLimit.take`): one point per
   * download request, taken once the caller is known; `retryAfterMs` refuses it with 429. A pass-through
   * caller counts by its address here (`unverifiedToken`), as on `/graphql` until Atlas accepted its
   * token: the route does not know which tokens Atlas accepted. @default no limit
   */
  admit?: (context: {
    caller: Caller;
    unverifiedToken: boolean;
    request: Request;
    req: IncomingMessage;
  }) => Promise<{ key: string } | { retryAfterMs: number }>;
}

/** The download route: `handles(url)` says whether a request is for it, `handle` answers it. */
export interface DownloadRoute {
  handles(url: string | undefined): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  counts: DownloadCounts;
  close(): Promise<void>;
}

/** Answer headers passed through from the object store as they came. */
const PASSED = ['content-length', 'content-range', 'etag', 'last-modified', 'accept-ranges'] as const;

class RouteError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * `GET /downloads/{projectId}/{clusterName}/{jobId}`: streams a COMPLETED DOWNLOAD job's `.tgz` from
 * Atlas's `snapshotUrl` to the caller. A plain node handler rather than a yoga route: the body is piped
 * from undici's stream to the socket chunk by chunk, only as fast as the client reads (memory per
 * download stays at a few stream buffers), and a client that goes away aborts the upstream request.
 *
 * The caller authenticates as on `/graphql`; an invisible project is 404, a visible one without the
 * `download` right 403, both before any upstream call. The job is read with the caller's credentials
 * (a pass-through token reads Atlas itself). A link that has expired, or expires within
 * `renewMarginMs`, is renewed first: a fresh download of the same snapshot through `ensureDownload`,
 * keyed by the job, so concurrent renewals make one job. A stream Atlas's side cuts is continued
 * with `Range` from the byte reached (after a renewal when the link expired meanwhile), as long as
 * the object is the same (`ETag`).
 */
export function createDownloadRoute(options: DownloadRouteOptions): DownloadRoute {
  const { jobs, authenticate, logger } = options;
  const ownAgent = options.dispatcher
    ? undefined
    : new Agent({ connections: 256, headersTimeout: 30_000, bodyTimeout: 60_000 });
  const dispatcher = options.dispatcher ?? ownAgent!;
  const renewMarginMs = options.renewMarginMs ?? 60_000;
  const renewValidityMs = options.renewValidityMs ?? 1_800_000;
  const renewWaitMs = options.renewWaitMs ?? 600_000;
  const maxResumes = options.maxResumes ?? 3;
  let closing: Promise<void> | undefined;
  const counts: DownloadCounts = { active: 0, streams: 0, bytes: 0, renewals: 0, resumes: 0, abandoned: 0 };

  async function serve(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const target = parseDownloadPath(new URL(req.url ?? '/', 'http://gateway.invalid').pathname);
    if (!target) throw new RouteError(404, 'NOT_FOUND', 'No such download.');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new RouteError(405, 'METHOD_NOT_ALLOWED', 'Downloads answer GET and HEAD.', {
        allow: 'GET, HEAD',
      });
    }
    const request = asFetchRequest(req);
    const caller = await authenticate(request);
    const admitted = await options.admit?.({
      caller,
      unverifiedToken: caller.kind === 'passThrough',
      request,
      req,
    });
    if (admitted && 'retryAfterMs' in admitted) {
      const seconds = Math.max(1, Math.ceil(admitted.retryAfterMs / 1000));
      throw new RouteError(429, 'RATE_LIMITED', `Rate limit reached; retry in ${seconds} s.`, {
        'retry-after': String(seconds),
      });
    }
    const ref = { projectId: target.projectId, clusterName: target.clusterName };
    // Visibility before the right, as requireAccess: a caller learns nothing of projects it cannot see.
    if (!/^[a-f0-9]{24}$/.test(target.projectId) || !canSeeProject(caller, target.projectId)) {
      throw new RouteError(404, 'NOT_FOUND', `No project with id ${target.projectId} exists.`);
    }
    if (!caller.rights.has('download')) {
      throw new RouteError(403, 'FORBIDDEN', `This caller may not download in project ${target.projectId}.`);
    }
    if (!/^[a-f0-9]{24}$/.test(target.jobId) || !/^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$/.test(ref.clusterName)) {
      throw new RouteError(404, 'NOT_FOUND', 'No such download.');
    }
    const requestId = randomUUID();
    const reader = jobs.backup({
      use: 'read',
      requestId,
      signal,
      bearerToken: caller.atlasBearerToken,
      spender: caller.id,
    });
    let job = await reader.getJob(ref, target.jobId).catch(upstreamRefusal);
    if (job.dto.deliveryType !== 'DOWNLOAD') {
      throw new RouteError(404, 'NOT_FOUND', `Job ${target.jobId} is not a download.`);
    }
    if (job.dto.status !== 'COMPLETED') {
      throw new RouteError(
        409,
        'CONFLICT',
        `Download ${target.jobId} is ${job.dto.status ?? 'in an unknown state'}; its archive is there once it is COMPLETED.`,
      );
    }
    const renew = (stale: RestoreJobSource) =>
      renewJob(caller, ref, stale, requestId, signal).then((fresh) => (job = fresh));
    if (!linkUsable(job, jobs.clock.now(), renewMarginMs)) await renew(job);

    const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
    const ifRange = typeof req.headers['if-range'] === 'string' ? req.headers['if-range'] : undefined;
    let upstream = await open(job, range, ifRange, signal);
    if (upstream.statusCode === 403) {
      // Atlas's dates said the link was fine and the store refused it: renew once and try again.
      await upstream.body.dump();
      await renew(job);
      upstream = await open(job, range, ifRange, signal);
    }
    if (![200, 206, 416].includes(upstream.statusCode)) {
      await upstream.body.dump();
      throw new RouteError(502, 'UPSTREAM_UNAVAILABLE', `The archive store answered ${upstream.statusCode}.`);
    }
    const headers: Record<string, string> = {
      'content-type': upstream.statusCode === 416 ? 'text/plain; charset=utf-8' : 'application/gzip',
      'content-disposition': `attachment; filename="${job.dto.snapshotId ?? target.jobId}.tgz"`,
      'cache-control': 'private, no-store',
      'x-request-id': requestId,
    };
    for (const name of PASSED) {
      const v = upstream.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    if (upstream.statusCode === 416) {
      // The store's own body is not passed on: ours says the same in a form the route's clients know.
      await upstream.body.dump();
      const message = 'The requested range is not satisfiable.';
      headers['content-length'] = String(Buffer.byteLength(message));
      res.writeHead(416, headers);
      res.end(message);
      return;
    }
    res.writeHead(upstream.statusCode, headers);
    if (req.method === 'HEAD') {
      await upstream.body.dump();
      res.end();
      return;
    }
    counts.streams += 1;
    // Which bytes of the object this answer carries, so a cut stream can be asked again from where it stopped.
    const span = spanOf(upstream.statusCode, headers);
    const etag = headers.etag;
    let sent = 0;
    let body = upstream.body;
    for (let resumes = 0; ; resumes++) {
      try {
        sent += await pump(body, res);
        break;
      } catch (err) {
        if (signal.aborted || res.destroyed) throw err;
        sent += (err as { pumped?: number }).pumped ?? 0;
        if (
          !span ||
          !etag ||
          resumes >= maxResumes ||
          (span.end !== undefined && span.start + sent > span.end)
        ) {
          throw err;
        }
        counts.resumes += 1;
        const rest = `bytes=${span.start + sent}-${span.end ?? ''}`;
        let next = await open(job, rest, etag, signal);
        if (next.statusCode === 403) {
          await next.body.dump();
          await renew(job);
          next = await open(job, rest, etag, signal);
        }
        if (next.statusCode !== 206 || next.headers.etag !== etag) {
          await next.body.dump();
          throw new Error(`resume answered ${next.statusCode} (etag ${String(next.headers.etag)})`, {
            cause: err,
          });
        }
        body = next.body;
      }
    }
    res.end();
  }

  /** Copies `body` to `res`, waiting for the client to drain each full buffer; answers bytes copied. */
  async function pump(body: Readable, res: ServerResponse): Promise<number> {
    let n = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        n += chunk.length;
        counts.bytes += chunk.length;
        if (!res.write(chunk)) await drained(res);
        if (res.destroyed) throw new Error('client went away');
      }
    } catch (err) {
      body.destroy();
      throw Object.assign(err instanceof Error ? err : new Error(String(err)), { pumped: n });
    }
    return n;
  }

  /**
   * GETs the job's link (GETs are safe to repeat): a connection that breaks before the answer's
   * headers are through is tried again, up to `maxResumes` times.
   */
  async function open(
    job: RestoreJobSource,
    range: string | undefined,
    ifRange: string | undefined,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const url = job.dto.snapshotUrl;
    if (!url) throw new RouteError(502, 'UPSTREAM_UNAVAILABLE', 'Atlas gave no link for this download.');
    for (let attempt = 0; ; attempt++) {
      try {
        return await undiciRequest(url, {
          dispatcher,
          method: 'GET',
          signal,
          headers: { ...(range ? { range } : {}), ...(range && ifRange ? { 'if-range': ifRange } : {}) },
        });
      } catch (err) {
        if (signal.aborted) throw err;
        if (attempt >= maxResumes) {
          throw new RouteError(502, 'UPSTREAM_UNAVAILABLE', 'The archive store could not be reached.');
        }
        counts.resumes += 1;
      }
    }
  }

  /**
   * A fresh link for `stale`'s snapshot: `ensureDownload` keyed by the stale job (one new job however
   * many downloads renew it at once), then, when it is still running, its poller until COMPLETED
   * (bounded by `renewWaitMs`).
   */
  async function renewJob(
    caller: Caller,
    ref: ClusterRef,
    stale: RestoreJobSource,
    requestId: string,
    signal: AbortSignal,
  ): Promise<RestoreJobSource> {
    counts.renewals += 1;
    logger.info({ projectId: ref.projectId, jobId: stale.dto.id }, 'download link expired; renewing it');
    const deps: JobRequestDeps = {
      service: jobs.backup({
        use: 'write',
        requestId,
        bearerToken: caller.atlasBearerToken,
        spender: caller.id,
      }),
      idempotency: jobs.idempotency,
      clock: jobs.clock,
      callerId: caller.id,
      inflight: jobs.inflightDownloads,
      ...jobs.requestOptions,
    };
    const { job } = await ensureDownload(deps, {
      ...ref,
      snapshotId: stale.dto.snapshotId ?? '',
      minValidityMs: renewValidityMs,
      idempotencyKey: `renew-${stale.dto.id ?? ''}`,
    }).catch(upstreamRefusal);
    if (job.dto.status === 'COMPLETED' && job.dto.snapshotUrl) return job;
    const watch = {
      ...ref,
      jobId: job.dto.id ?? '',
      callerId: caller.id,
      bearerToken: caller.atlasBearerToken,
    };
    primeWatch(jobs.pollers, watch, job);
    const events = watchJob(jobs, watch);
    const limit = AbortSignal.any([signal, AbortSignal.timeout(renewWaitMs)]);
    const stop = () => void events.return?.();
    limit.addEventListener('abort', stop, { once: true });
    try {
      for await (const event of events) {
        if ('shuttingDown' in event) break;
        if (event.dto.status === 'COMPLETED' && event.dto.snapshotUrl) return event;
        if (event.dto.status === 'FAILED') break;
      }
    } finally {
      limit.removeEventListener('abort', stop);
    }
    if (signal.aborted) throw signal.reason;
    throw new RouteError(
      503,
      'UPSTREAM_UNAVAILABLE',
      `Atlas did not complete a fresh download of snapshot ${stale.dto.snapshotId ?? ''} in time; try again.`,
      { 'retry-after': '30' },
    );
  }

  return {
    counts,
    handles: (url) => url !== undefined && url.startsWith('/downloads/'),
    handle(req, res) {
      const abort = new AbortController();
      // The client went away before the end: stop reading Atlas's side at once.
      res.on('close', () => {
        if (!res.writableFinished) {
          if (res.headersSent) counts.abandoned += 1;
          abort.abort(new Error('client went away'));
        }
      });
      counts.active += 1;
      serve(req, res, abort.signal)
        .catch((err: unknown) => {
          if (abort.signal.aborted) return;
          if (res.headersSent) {
            // Mid-body: the only honest signal left is a cut connection (Content-Length is not met).
            logger.warn({ err }, 'download stream broke and could not be continued');
            res.destroy();
            return;
          }
          const e = asRouteError(err);
          if (e.status >= 500) logger.warn({ err }, 'download refused');
          res.writeHead(e.status, {
            'content-type': 'application/json; charset=utf-8',
            'cache-control': 'no-store',
            ...e.headers,
          });
          res.end(JSON.stringify({ errors: [{ message: e.message, extensions: { code: e.code } }] }));
        })
        .finally(() => {
          counts.active -= 1;
        });
    },
    // Idempotent: a gateway may be closed twice (a test's close after a shutdown test's own).
    close: () => (closing ??= ownAgent?.close() ?? Promise.resolve()),
  };
}

function linkUsable(job: RestoreJobSource, now: number, marginMs: number): boolean {
  if (!job.dto.snapshotUrl) return false;
  const expires = Date.parse(job.dto.expirationDate ?? '');
  return Number.isNaN(expires) || expires - now > marginMs;
}

/** The first byte of the object this answer starts at, and its last (undefined: to the end). */
function spanOf(
  status: number,
  headers: Record<string, string>,
): { start: number; end?: number } | undefined {
  if (status === 200) return { start: 0 };
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers['content-range'] ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      res.off('drain', settle);
      res.off('close', settle);
      resolve();
    };
    res.on('drain', settle);
    res.on('close', settle);
  });
}

/** The headers of a node request as a fetch `Request`, which is what caller authentication reads. */
function asFetchRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
  }
  return new Request(new URL(req.url ?? '/', `http://${req.headers.host ?? 'gateway.invalid'}`), { headers });
}

/** Atlas refusing the job (or the caller's token) answers what a GraphQL read of it would. */
function upstreamRefusal(err: unknown): never {
  if (err instanceof AtlasApiError) {
    if (err.status === 404) throw new RouteError(404, 'NOT_FOUND', 'No such download.');
    if (err.status === 401) throw new RouteError(401, 'UNAUTHENTICATED', 'Atlas refused the credentials.');
    if (err.status === 403) throw new RouteError(403, 'FORBIDDEN', 'Atlas refused this caller the job.');
  }
  throw err;
}

function asRouteError(err: unknown): RouteError {
  if (err instanceof RouteError) return err;
  if (err instanceof GatewayError) {
    const retry = err.extensions.retryAfterMs;
    return new RouteError(
      err.status,
      err.code,
      err.message,
      typeof retry === 'number' ? { 'retry-after': String(Math.ceil(retry / 1000)) } : {},
    );
  }
  return new RouteError(502, 'UPSTREAM_UNAVAILABLE', 'The download could not be served.');
}
