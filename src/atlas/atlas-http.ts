import { randomUUID } from 'node:crypto';
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

    const res = await withRetries(
      {
        options: d.retry,
        clock: d.clock,
        sleep: d.sleep,
        random: d.random,
        retryable: op.method === 'GET' || options.idempotent === true,
        signal: options.signal,
        operation: op.id,
        requestId,
        onRetry: () => d.stats.retries++,
      },
      () => this.#sendAuthenticated(base, auth),
    );
    return this.#parse(op, res, requestId, parse);
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
