import type { Dispatcher } from 'undici';
import { createAtlasDispatcher } from '../src/atlas/index.js';

/** One upstream round trip as the gateway's socket saw it (client side, monotonic ms). */
export interface Exchange {
  /** Which gateway sent it. */
  gateway: string;
  method: string;
  /** Path and query as sent. */
  target: string;
  /** The `x-request-id` sent: one per GraphQL request (ours start with `chaos-`), else one per Atlas call. */
  requestId: string;
  /** When it was handed to the socket pool. */
  sentAt: number;
  /** When the status line and headers arrived; undefined when none did (reset, timeout). */
  headersAt: number | undefined;
  status: number | undefined;
  /** `Retry-After` in ms when the answer carried one. */
  retryAfterMs: number | undefined;
  /** Set when the exchange failed without a complete answer. */
  error: string | undefined;
}

/** A `Retry-After` header (delay-seconds or an HTTP date) in ms; undefined when absent or unreadable. */
function retryAfterOf(v: string | string[] | undefined): number | undefined {
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  if (!s) return undefined;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    }
    return undefined;
  }
  const v = (headers as Record<string, unknown>)[name];
  return Array.isArray(v) ? String(v[0]) : typeof v === 'string' ? v : undefined;
}

/**
 * The gateway's upstream dispatcher with a recording interceptor: every request leaves a line with
 * its send time, request id, status and `Retry-After`. The simulator's own log has no timestamps or
 * headers, so the Retry-After invariant is checked on this one (its counts match the simulator's).
 */
export function recordingDispatcher(
  gateway: string,
  sink: Exchange[],
  opts: { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number },
): { dispatcher: Dispatcher; close(): Promise<void> } {
  const agent = createAtlasDispatcher(opts);
  const intercept: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) => {
    const rec: Exchange = {
      gateway,
      method: options.method,
      target: options.path,
      requestId: headerOf(options.headers, 'x-request-id') ?? '',
      sentAt: performance.now(),
      headersAt: undefined,
      status: undefined,
      retryAfterMs: undefined,
      error: undefined,
    };
    sink.push(rec);
    const h = handler as Dispatcher.DispatchHandler;
    const wrapped: Dispatcher.DispatchHandler = {
      onRequestStart: (c, ctx) => h.onRequestStart?.(c, ctx),
      onRequestUpgrade: (c, s, hd, socket) => h.onRequestUpgrade?.(c, s, hd, socket),
      onResponseStart: (c, status, headers, msg) => {
        if (status >= 200) {
          rec.headersAt = performance.now();
          rec.status = status;
          rec.retryAfterMs = retryAfterOf(headers['retry-after']);
        }
        return h.onResponseStart?.(c, status, headers, msg);
      },
      onResponseData: (c, chunk) => h.onResponseData?.(c, chunk),
      onResponseEnd: (c, trailers) => h.onResponseEnd?.(c, trailers),
      onResponseError: (c, err) => {
        rec.error = (err as { code?: string }).code ?? err.name;
        return h.onResponseError?.(c, err);
      },
    };
    return dispatch(options, wrapped);
  };
  return { dispatcher: agent.compose(intercept), close: () => agent.close() };
}
