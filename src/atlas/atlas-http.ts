import { createHash, randomUUID } from 'node:crypto';
import type { AtlasStats } from './atlas-stats.js';
import { bearerAuth, type AuthAttempt, type AuthStrategy } from './credentials/auth-strategy.js';
import type { Clock } from '../time/clock.js';
import {
  AtlasApiError,
  AtlasConfigError,
  AtlasError,
  AtlasNetworkError,
  AtlasResponseError,
  type AtlasFieldViolation,
} from './errors.js';
import { BodyShapeError } from './parse-body.js';
import {
  freshnessOf,
  type CacheMode,
  type CachedRead,
  type FreshRead,
  type ReadCache,
  type ReadKind,
} from './read-cache.js';
import { isTimeoutReason, parseRetryAfter, withRetries, type RetryOptions } from './retry.js';
import type { Sleep } from '../time/sleep.js';
import type { Transport, WireRequest, WireResponse } from './transport.js';

/** One REST operation as the spec declares it. */
export interface AtlasOperation {
  /** The spec's operationId: the key of stats and errors. */
  id: string;
  method: 'GET' | 'POST';
  /** Path template from the spec, e.g. `/api/atlas/v2/groups/{groupId}`. */
  path: string;
  /** The exact media type for `Accept` and, with a body, `Content-Type`. */
  mediaType: string;
  /** The legacy v1.0 routes accept API keys (Digest) only. */
  digestOnly?: boolean;
  /** GET: which freshness bound of the read cache applies. @default not cached */
  readKind?: ReadKind;
  /**
   * POST: the job lists and job states of the cluster in its path (`groupId` and `clusterName` or
   * `name`) are dropped from the read cache once it returns, answered or not. @default none
   */
  invalidatesJobs?: boolean;
}

/** Per-call options every family method takes. */
export interface CallOptions {
  /** Cancels the call, a backoff wait included; it reaches the socket. @default none */
  signal?: AbortSignal;
  /**
   * The caller's own OAuth access token, sent instead of the client's credentials (pass-through).
   * @default none (the client's credentials)
   */
  bearerToken?: string;
  /**
   * POST only: sending it twice is harmless, so it may be retried like a GET. GETs always may.
   * @default false
   */
  idempotent?: boolean;
  /** Sent as `x-request-id`. @default a random UUID */
  requestId?: string;
  /**
   * Who the call is made for (a caller id): handed to `beforeSend` and `onExchange` (budgets), never
   * sent. @default none
   */
  spender?: string | undefined;
  /**
   * How a GET uses the read cache (`CacheMode`): `refresh` for a caller asking for fresh data,
   * `bypass` for job pollers. @default 'use'
   */
  cache?: CacheMode | undefined;
  /**
   * Who may share cached answers read with the client's own credentials: a fingerprint of the caller's
   * visibility and rights. A `bearerToken` is its own scope and ignores it. @default '' (one scope)
   */
  cacheScope?: string | undefined;
}

export interface CallInput {
  pathParams?: Record<string, string>;
  query?: Record<string, string>;
  /** JSON-serialised with the operation's media type. */
  body?: unknown;
  options?: CallOptions | undefined;
}

export interface AtlasHttpDeps {
  transport: Transport;
  auth: AuthStrategy;
  /** Path of the base URL, prepended to every operation path ('' for `https://cloud.mongodb.com`). */
  pathPrefix: string;
  userAgent: string;
  retry: Readonly<Required<RetryOptions>>;
  clock: Clock;
  sleep: Sleep;
  random: () => number;
  stats: AtlasStats;
  /** The shared read cache of GETs. @default none: every call goes upstream */
  cache?: ReadCache | undefined;
  /** Names the client's own credentials in cache keys (a hash of their public id). @default '' */
  ownScope?: string;
}

/**
 * The request core: versioned media types, auth (with its one 401 resend), retries of safe requests,
 * and turning every failure into an `AtlasError`. Knows nothing of GraphQL.
 */
export class AtlasHttp {
  readonly #d: AtlasHttpDeps;

  constructor(deps: AtlasHttpDeps) {
    this.#d = deps;
  }

  #closed = false;

  /** Later calls fail with `ATLAS_CONFIG_ERROR` instead of reaching a closed dispatcher. */
  close(): void {
    this.#closed = true;
  }

  async call<T>(op: AtlasOperation, input: CallInput, parse: (body: unknown) => T): Promise<T> {
    const d = this.#d;
    const options = input.options ?? {};
    if (this.#closed) throw new AtlasConfigError('client is closed', op.id);
    d.stats.call(op.id);
    const auth = options.bearerToken !== undefined ? bearerAuth(options.bearerToken) : d.auth;
    if (op.digestOnly && auth.scheme !== 'digest' && auth.scheme !== 'none') {
      throw new AtlasConfigError(`${op.id} is a v1.0 route, which takes API keys (Digest) only`, op.id);
    }
    const requestId = options.requestId ?? randomUUID();
    const body = input.body === undefined ? undefined : Buffer.from(JSON.stringify(input.body));
    const headers: Record<string, string> = {
      accept: op.mediaType,
      'user-agent': d.userAgent,
      'x-request-id': requestId,
    };
    if (body) headers['content-type'] = op.mediaType;
    const base: WireRequest = {
      operation: op.id,
      method: op.method,
      target: d.pathPrefix + buildTarget(op, input),
      headers,
      body,
      signal: options.signal,
      requestId,
      spender: options.spender,
    };

    const send = (signal: AbortSignal | undefined) =>
      withRetries(
        {
          options: d.retry,
          clock: d.clock,
          sleep: d.sleep,
          random: d.random,
          retryable: op.method === 'GET' || options.idempotent === true,
          signal,
          operation: op.id,
          requestId,
          onRetry: () => d.stats.retries++,
        },
        () => this.#sendAuthenticated({ ...base, signal }, auth),
      );

    const cache = d.cache;
    if (cache && op.method === 'GET' && op.readKind) {
      const entry = await this.#cached(cache, op, input, base, options, (signal) =>
        send(signal).then((res) => {
          // Parsed once before it is stored: an answer that does not parse is never served again.
          this.#parse(op, res, requestId, parse);
          return {
            entry: {
              body: res.body.toString('utf8'),
              contentType: headerString(res.headers['content-type']),
              storedAt: d.clock.now(),
            },
            maxAgeMs: freshnessOf(res.headers['cache-control']),
          };
        }),
      );
      return this.#parse(op, cachedResponse(entry), requestId, parse);
    }
    if (cache && op.invalidatesJobs) {
      try {
        return this.#parse(op, await send(options.signal), requestId, parse);
      } finally {
        // Answered or not: a POST whose answer was lost may still have made its job.
        const tag = jobsTag(input);
        if (tag) await cache.invalidate(tag);
      }
    }
    return this.#parse(op, await send(options.signal), requestId, parse);
  }

  async #cached(
    cache: ReadCache,
    op: AtlasOperation,
    input: CallInput,
    base: WireRequest,
    options: CallOptions,
    fetch: (signal: AbortSignal) => Promise<FreshRead>,
  ): Promise<CachedRead> {
    // The credential scope: a pass-through token is its own (hashed, never stored as is); the client's
    // credentials are split by the caller's rights fingerprint, so callers who see different things
    // never share an answer.
    const scope =
      options.bearerToken !== undefined
        ? `bearer:${sha256(options.bearerToken)}`
        : `own:${this.#d.ownScope ?? ''}:${options.cacheScope ?? ''}`;
    const key = sha256(`${scope}\n${op.mediaType}\n${base.target}`);
    try {
      return await cache.read(
        {
          key,
          kind: op.readKind!,
          tag: op.readKind === 'jobs' ? jobsTag(input) : undefined,
          mode: options.cache ?? 'use',
          signal: options.signal,
        },
        fetch,
      );
    } catch (err) {
      // This caller gave up while the shared read went on for others: the same coded error as a call
      // of its own would have ended with.
      if (options.signal?.aborted && !(err instanceof AtlasError)) {
        const deadline = isTimeoutReason(options.signal.reason);
        throw new AtlasNetworkError(deadline ? 'timed out' : 'aborted', {
          code: deadline ? 'ATLAS_TIMEOUT' : 'ATLAS_ABORTED',
          sent: true,
          operation: op.id,
          requestId: base.requestId,
          cause: err,
        });
      }
      throw err;
    }
  }

  /** One attempt: sends, and once more if the auth scheme can fix a 401. Non-2xx → `AtlasApiError`. */
  async #sendAuthenticated(base: WireRequest, auth: AuthStrategy): Promise<WireResponse> {
    const d = this.#d;
    const authReq = {
      operation: base.operation,
      method: base.method,
      target: base.target,
      body: base.body,
      signal: base.signal,
    };
    let attempt: AuthAttempt | undefined = await this.#authStep(base, () => auth.begin(authReq));
    let resends = 0;
    for (;;) {
      const headers = attempt.authorization
        ? { ...base.headers, authorization: attempt.authorization }
        : base.headers;
      let res: WireResponse;
      try {
        res = await d.transport({ ...base, headers });
      } catch (err) {
        await attempt.settle(undefined, false);
        throw err;
      }
      const current: AuthAttempt = attempt;
      // One re-challenge after a 401. A `stale=true` says the credentials were right and only the nonce
      // aged (e.g. while a slow answer was on its way), so it earns another try, up to three in all.
      const stale =
        res.status === 401 && /stale\s*=\s*"?true/i.test(headerString(res.headers['www-authenticate']) ?? '');
      const next = await this.#authStep(base, () =>
        current.settle({ status: res.status, headers: res.headers }, resends === 0 || (stale && resends < 3)),
      );
      if (next) {
        resends += 1;
        d.stats.authResends++;
        attempt = next;
        continue;
      }
      if (res.status < 200 || res.status >= 300) throw this.#apiError(base, res, stale);
      return res;
    }
  }

  /** Waiting for credentials (a token fetch, a Digest challenge) ends with the caller's abort. */
  async #authStep<T>(base: WireRequest, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (base.signal?.aborted && !(err instanceof AtlasError)) {
        const deadline = isTimeoutReason(base.signal.reason);
        throw new AtlasNetworkError(`${deadline ? 'timed out' : 'aborted'} while waiting for credentials`, {
          code: deadline ? 'ATLAS_TIMEOUT' : 'ATLAS_ABORTED',
          sent: false,
          operation: base.operation,
          requestId: base.requestId,
          cause: err,
        });
      }
      throw err;
    }
  }

  #apiError(req: WireRequest, res: WireResponse, nonceStale = false): AtlasApiError {
    const body = parseJsonObject(res.body);
    const requestId = headerString(res.headers['x-request-id']) ?? req.requestId;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.#d.clock.now());
    if (body && typeof body.errorCode === 'string') {
      return new AtlasApiError({
        operation: req.operation,
        status: res.status,
        errorCode: body.errorCode,
        reason: typeof body.reason === 'string' ? body.reason : undefined,
        detail: typeof body.detail === 'string' ? body.detail : undefined,
        parameters: Array.isArray(body.parameters) ? body.parameters : [],
        badRequestDetail: parseBadRequestDetail(body.badRequestDetail),
        requestId,
        retryAfterMs,
        nonceStale,
      });
    }
    // A proxy's HTML 502 or an empty 503: still an AtlasApiError, with a synthetic code.
    const text = res.body.toString('utf8').trim();
    return new AtlasApiError({
      operation: req.operation,
      status: res.status,
      errorCode: `HTTP_${res.status}`,
      detail: text ? text.slice(0, 200) : undefined,
      requestId,
      retryAfterMs,
    });
  }

  #parse<T>(op: AtlasOperation, res: WireResponse, ourRequestId: string, parse: (body: unknown) => T): T {
    const requestId = headerString(res.headers['x-request-id']) ?? ourRequestId;
    const contentType = headerString(res.headers['content-type']);
    const init = { operation: op.id, status: res.status, requestId, contentType };
    if (mediaTypeOf(contentType) !== op.mediaType.toLowerCase()) {
      throw new AtlasResponseError(
        `expected content type ${op.mediaType}, got ${contentType ?? 'none'}`,
        init,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch (err) {
      throw new AtlasResponseError('malformed JSON body', { ...init, cause: err });
    }
    try {
      return parse(json);
    } catch (err) {
      if (err instanceof BodyShapeError) throw new AtlasResponseError(err.message, { ...init, cause: err });
      throw err;
    }
  }
}

/** The invalidation tag of a cluster's jobs, from a call's path parameters (tenant or Flex). */
export function jobsTag(input: CallInput): string | undefined {
  const p = input.pathParams ?? {};
  const cluster = p.clusterName ?? p.name;
  return p.groupId && cluster ? `jobs:${p.groupId}/${cluster}` : undefined;
}

function cachedResponse(entry: CachedRead): WireResponse {
  return {
    status: 200,
    headers: entry.contentType ? { 'content-type': entry.contentType } : {},
    body: Buffer.from(entry.body, 'utf8'),
  };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

function buildTarget(op: AtlasOperation, input: CallInput): string {
  const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = input.pathParams?.[name];
    if (!value) throw new AtlasConfigError(`missing path parameter ${name}`, op.id);
    return encodeURIComponent(value);
  });
  const query = new URLSearchParams(input.query ?? {}).toString();
  return query ? `${path}?${query}` : path;
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase();
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function parseBadRequestDetail(v: unknown): { fields: AtlasFieldViolation[] } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const fields = (v as { fields?: unknown }).fields;
  if (!Array.isArray(fields)) return undefined;
  return {
    fields: fields.map((f: unknown) => {
      const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
      return {
        field: typeof o.field === 'string' ? o.field : '',
        description: typeof o.description === 'string' ? o.description : '',
      };
    }),
  };
}
