import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { AtlasNetworkError, AtlasResponseError, type AtlasNetworkErrorCode } from './errors.js';
import { isTimeoutReason } from './retry.js';

/** One HTTP round trip, fully formed. */
export interface WireRequest {
  operation: string;
  method: 'GET' | 'POST';
  /** Path + query, as sent. */
  target: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  signal: AbortSignal | undefined;
  /** Our `x-request-id`, for errors. */
  requestId: string;
  /** Who the call is made for (a caller id), for budgets; opaque here. @default none */
  spender?: string | undefined;
}

/** A response with its body read to the end. */
export interface WireResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Transport = (req: WireRequest) => Promise<WireResponse>;

export interface TransportOptions {
  dispatcher: Dispatcher;
  /** `https://cloud.mongodb.com` */
  origin: string;
  /** Per request, so an injected dispatcher gets them too. undefined = the dispatcher's. */
  headersTimeoutMs: number | undefined;
  bodyTimeoutMs: number | undefined;
  maxResponseBytes: number;
  /** Called once per round trip, before it is sent. */
  onSend: (operation: string) => void;
  /** Called once per round trip when it ends, answered or not (logs, metrics). */
  onExchange?: ((exchange: AtlasExchange) => void) | undefined;
  /**
   * Called before each round trip; throwing (a shared backoff, a spent budget) keeps it unsent. A
   * refused call is no round trip: it is neither reported to `onExchange` nor traced.
   */
  beforeSend?: ((request: BeforeSend) => void | Promise<void>) | undefined;
}

/** What `beforeSend` knows of a round trip about to be sent. */
export interface BeforeSend {
  operation: string;
  /** Path and query (the project id is in it). */
  target: string;
  /** `WireRequest.spender`. */
  spender: string | undefined;
}

/** One upstream round trip as observers see it. */
export interface AtlasExchange {
  operation: string;
  method: string;
  /** HTTP status, or undefined when no answer arrived. */
  status: number | undefined;
  durationMs: number;
  /** The coded error of a failed round trip (`ATLAS_NETWORK_ERROR`, `ATLAS_TIMEOUT`, …). */
  errorCode: string | undefined;
  /** Sent as `x-request-id`; Atlas's own when it answered one. */
  requestId: string | undefined;
  /** Path and query of the request (the project id is in it). */
  target: string;
  /** What Atlas's `Retry-After` asked for, in milliseconds. */
  retryAfterMs: number | undefined;
  /** `WireRequest.spender`: who the call was made for. */
  spender?: string | undefined;
  /**
   * For the logs only, never for clients: what an error answer (4xx, 5xx) says, Atlas's `detail` or
   * else the start of the body (a proxy's HTML page). Undefined for other answers.
   */
  detail?: string | undefined;
}

// A no-op until an OpenTelemetry SDK is registered (GATEWAY tracing env), so it costs nothing off.
const tracer = trace.getTracer('atlas-backup-gateway/atlas-client');

/** Error codes of failures before any byte can have left: the request surely was not sent. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_DESTROYED',
  'UND_ERR_CLOSED',
]);
const TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** Sends one request through undici and reads the whole body; every failure becomes a coded error. */
export function createTransport(opts: TransportOptions): Transport {
  const send = sendOnce(opts);
  return async (req) => {
    await opts.beforeSend?.({ operation: req.operation, target: req.target, spender: req.spender });
    return traced(req);
  };

  function traced(req: WireRequest): Promise<WireResponse> {
    return tracer.startActiveSpan(
      `atlas ${req.operation}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.target.split('?')[0],
          'atlas.operation': req.operation,
          ...(req.requestId ? { 'atlas.request_id': req.requestId } : {}),
        },
      },
      async (span) => {
        const started = performance.now();
        const report = (
          status: number | undefined,
          errorCode: string | undefined,
          requestId?: string,
          retryAfterMs?: number,
          detail?: string,
        ) =>
          opts.onExchange?.({
            operation: req.operation,
            method: req.method,
            status,
            durationMs: performance.now() - started,
            errorCode,
            requestId: requestId ?? req.requestId,
            target: req.target,
            retryAfterMs,
            detail,
            spender: req.spender,
          });
        try {
          const res = await send(req);
          span.setAttribute('http.response.status_code', res.status);
          if (res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          const atlasId = res.headers['x-request-id'];
          const retryAfter = Number(res.headers['retry-after']);
          report(
            res.status,
            undefined,
            typeof atlasId === 'string' ? atlasId : undefined,
            Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
            errorDetail(res),
          );
          return res;
        } catch (err) {
          const code = (err as { code?: string }).code;
          span.setStatus({ code: SpanStatusCode.ERROR, message: code ?? 'error' });
          report((err as { status?: number }).status, code);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }
}

function sendOnce(opts: TransportOptions): Transport {
  return async (req) => {
    if (req.signal?.aborted) throw networkError(req, req.signal.reason, false);
    opts.onSend(req.operation);
    let res: Dispatcher.ResponseData;
    try {
      res = await opts.dispatcher.request({
        origin: opts.origin,
        path: req.target,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        signal: req.signal ?? null,
        ...(opts.headersTimeoutMs !== undefined ? { headersTimeout: opts.headersTimeoutMs } : {}),
        ...(opts.bodyTimeoutMs !== undefined ? { bodyTimeout: opts.bodyTimeoutMs } : {}),
      });
    } catch (err) {
      throw networkError(req, err, !isNotSent(err));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > opts.maxResponseBytes) {
          res.body.destroy();
          throw new AtlasResponseError(`response body larger than ${opts.maxResponseBytes} bytes`, {
            operation: req.operation,
            status: res.statusCode,
            requestId: req.requestId,
          });
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof AtlasResponseError) throw err;
      throw networkError(req, err, true);
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks, size) };
  };
}

// Read here as well as in the request core (`#apiError`): observers get the wire answer, not the
// AtlasApiError made from it.
function errorDetail(res: WireResponse): string | undefined {
  if (res.status < 400) return undefined;
  const text = res.body.toString('utf8').trim();
  try {
    const body: unknown = JSON.parse(text);
    const detail =
      typeof body === 'object' && body !== null ? (body as { detail?: unknown }).detail : undefined;
    if (typeof detail === 'string') return detail;
  } catch {
    // Not JSON: a proxy's page, kept short below.
  }
  return text ? text.slice(0, 200) : undefined;
}

function isNotSent(err: unknown): boolean {
  return NOT_SENT.has(errorCode(err) ?? '');
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Node wraps some socket errors (e.g. "fetch failed"-style) and keeps the errno code on `cause`.
  return errorCode((err as { cause?: unknown }).cause);
}

function networkError(req: WireRequest, err: unknown, sent: boolean): AtlasNetworkError {
  let code: AtlasNetworkErrorCode = 'ATLAS_NETWORK_ERROR';
  let message: string;
  if (req.signal?.aborted) {
    // The caller's own deadline (AbortSignal.timeout) is a timeout, any other abort is an abort.
    code = isTimeoutReason(req.signal.reason) ? 'ATLAS_TIMEOUT' : 'ATLAS_ABORTED';
    message = code === 'ATLAS_TIMEOUT' ? 'timed out (caller deadline)' : 'aborted by the caller';
  } else {
    const c = errorCode(err);
    if (c !== undefined && TIMEOUTS.has(c)) code = 'ATLAS_TIMEOUT';
    message = `${code === 'ATLAS_TIMEOUT' ? 'timed out' : 'network error'}: ${c ?? ''} ${
      err instanceof Error ? err.message : String(err)
    }`.replace(/ {2,}/g, ' ');
  }
  return new AtlasNetworkError(message, {
    code,
    sent,
    operation: req.operation,
    requestId: req.requestId,
    cause: err,
  });
}
