import { Agent } from 'undici';

/** Connection pool settings for the Atlas origin. */
export interface AtlasDispatcherOptions {
  /**
   * Sockets per origin. Bounds what one gateway process opens to Atlas; further requests queue.
   * @default 32
   */
  connections?: number;
  /**
   * Time to open a TCP+TLS connection (Terraform's Atlas client dials with 5 s).
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Time from sending a request to receiving the complete response headers.
   * @default 30000
   */
  headersTimeoutMs?: number;
  /**
   * Longest gap between two chunks of a response body.
   * @default 30000
   */
  bodyTimeoutMs?: number;
  /**
   * How long an idle keep-alive socket is kept. A server `Keep-Alive: timeout=` hint lowers it, so a
   * socket is not reused just as the server closes it.
   * @default 30000
   */
  keepAliveTimeoutMs?: number;
  /**
   * Upper bound for a server's keep-alive hint.
   * @default 600000
   */
  keepAliveMaxTimeoutMs?: number;
  /**
   * Requests in flight per socket. 1 = keep-alive without pipelining: a slow response never holds up
   * another request.
   * @default 1
   */
  pipelining?: number;
}

export const DISPATCHER_DEFAULTS = {
  connections: 32,
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  keepAliveMaxTimeoutMs: 600_000,
  pipelining: 1,
} as const satisfies Required<AtlasDispatcherOptions>;

/**
 * One keep-alive undici `Agent` for all Atlas calls of a process. The client takes any `Dispatcher`,
 * so tests and benchmarks can pass their own.
 */
export function createAtlasDispatcher(opts: AtlasDispatcherOptions = {}): Agent {
  const o = { ...DISPATCHER_DEFAULTS, ...stripUndefined(opts) };
  return new Agent({
    connections: o.connections,
    pipelining: o.pipelining,
    connect: { timeout: o.connectTimeoutMs },
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    keepAliveMaxTimeout: o.keepAliveMaxTimeoutMs,
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
