import type { Dispatcher } from 'undici';
import { createAtlasDispatcher, type Sleep } from '../src/atlas/index.js';
import { realSleep } from '../src/time/sleep.js';
import { realTimers, type Timers } from '../src/time/timers.js';

/** A wait the gateway asked for (a retry backoff or a job poller's next tick), in event order. */
export interface Wait {
  kind: 'sleep' | 'timer';
  /** The delay asked for, in ms: what the gateway meant, however late the timer fired. */
  ms: number;
  /** Its place in the sequence of events (sends, answers, waits) of the run, when it began. */
  seq: number;
  /** Its place in the sequence when it ended; undefined while running, or when aborted or cleared. */
  endSeq: number | undefined;
}

/**
 * The gateways' waits, counted instead of timed: every backoff sleep and poller timer is numbered in
 * one sequence with the exchanges (when it began and when it ended). "No retry before Retry-After" is
 * then a fact about events: between the limited answer and the next send of that call, a wait of at
 * least Retry-After began and ended (recorded waits are not tied to a call: no AsyncLocalStorage,
 * whose promise hooks would slow the gateways and the simulator sharing this process; each wait
 * explains one limited answer at most, and waits of 1 s and more come only from Retry-After or a
 * poller's doubled backoff).
 */
export class WaitLog {
  #seq = 0;
  /** Every wait, in the order they began (cleared by `splice` with the exchanges, per round). */
  readonly waits: Wait[] = [];

  next(): number {
    return ++this.#seq;
  }

  #record(kind: Wait['kind'], ms: number): Wait {
    const w: Wait = { kind, ms, seq: this.next(), endSeq: undefined };
    this.waits.push(w);
    return w;
  }

  /** The retry backoff: real waiting; an aborted wait never ends (it honours nothing). */
  readonly sleep: Sleep = async (ms, signal) => {
    const w = this.#record('sleep', ms);
    await realSleep(ms, signal);
    w.endSeq = this.next();
  };

  /** The job pollers' timers: real timers; a cleared one never ends. */
  readonly timers: Timers = {
    setTimeout: (fn, ms) => {
      const w = this.#record('timer', ms);
      return realTimers.setTimeout(() => {
        w.endSeq = this.next();
        fn();
      }, ms);
    },
    clearTimeout: (h) => realTimers.clearTimeout(h),
  };
}

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
  /** Its place in the event sequence (WaitLog) when it was handed to the socket pool. */
  sentSeq: number;
  /** Its place in the event sequence when the answer's headers arrived. */
  answeredSeq: number | undefined;
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
  waits: WaitLog,
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
      sentSeq: waits.next(),
      answeredSeq: undefined,
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
          rec.answeredSeq = waits.next();
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
