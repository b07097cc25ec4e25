import type { Server, ServerOptions } from 'node:http';
import { addressKey } from '../callers/client-address.js';
import type { Socket } from 'node:net';

/**
 * How long a client may take to send a request and how many connections it may hold open. A
 * slowloris opens many connections and feeds each a byte at a time; Node's defaults let one live
 * 300 s (`requestTimeout`) with no cap on their number.
 */
export interface ConnectionLimits {
  /**
   * Time to receive a request's headers; also how long a new connection may stay silent.
   * @default 10000
   */
  headersTimeoutMs?: number;
  /**
   * Time to receive a whole request, headers and body (HTTP 408 and the connection closed after it).
   * The answer is not limited: an SSE stream or a WebSocket lives on.
   * @default 30000
   */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection waits for its next request. @default 5000 */
  keepAliveTimeoutMs?: number;
  /** Open connections at once, HTTP, SSE and WebSocket alike; 0: no cap. @default 10000 */
  maxConnections?: number;
  /**
   * Open connections from one client address (an IPv6 client counts per /64); 0: no cap. Behind a
   * proxy every connection comes from the proxy's address: raise it above the proxy's pool, or 0.
   * @default 128
   */
  maxConnectionsPerAddress?: number;
}

export type ResolvedConnectionLimits = Required<ConnectionLimits>;

/** The limits with every default filled in. */
export function resolveConnectionLimits(limits: ConnectionLimits = {}): ResolvedConnectionLimits {
  return {
    headersTimeoutMs: limits.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: limits.requestTimeoutMs ?? 30_000,
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? 5_000,
    maxConnections: limits.maxConnections ?? 10_000,
    maxConnectionsPerAddress: limits.maxConnectionsPerAddress ?? 128,
  };
}

/** `http.createServer` options for the timeouts (Node refuses a headers timeout above the request's). */
export function serverTimeouts(limits: ConnectionLimits = {}): ServerOptions {
  const l = resolveConnectionLimits(limits);
  if (l.headersTimeoutMs > l.requestTimeoutMs) {
    throw new RangeError(
      `connections.headersTimeoutMs: expected at most requestTimeoutMs (${l.requestTimeoutMs}), got ${l.headersTimeoutMs}`,
    );
  }
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // Node checks both timeouts only this often (30 s by default, which a slowloris gets on top of
    // them): a quarter of the shorter one, at most 1 s. One pass walks the connections mid-request.
    connectionsCheckingInterval: Math.max(
      10,
      Math.min(1_000, Math.floor(Math.min(l.headersTimeoutMs, l.requestTimeoutMs) / 4)),
    ),
  };
}

/** Open and refused connections since start, for the metrics and the tests. */
export interface ConnectionStats {
  /** Connections open now. */
  open(): number;
  /** Refused because their address already held `maxConnectionsPerAddress`. */
  readonly refusedPerAddress: number;
  /** Refused because the server already held `maxConnections` (Node's own cap). */
  readonly refusedTotal: number;
}

/**
 * Caps the server's connections: in total with Node's `server.maxConnections`, per client address by
 * hand. Node has no per-address cap, and the rate limiters in node_modules count requests, not
 * connections held open: a slowloris sends no request to count. A refused connection is destroyed
 * as soon as it is accepted, before a byte is read (a 503 would cost a write to a client that
 * should get nothing).
 */
export function limitConnections(server: Server, limits: ConnectionLimits = {}): ConnectionStats {
  const l = resolveConnectionLimits(limits);
  const byAddress = new Map<string, number>();
  let open = 0;
  const stats = { open: () => open, refusedPerAddress: 0, refusedTotal: 0 };
  if (l.maxConnections > 0) server.maxConnections = l.maxConnections;
  server.on('drop', () => {
    stats.refusedTotal += 1;
  });
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    // Gone already (the client hung up before the accept was handled): nothing to count.
    if (address === undefined) return;
    const key = addressKey(address);
    const held = byAddress.get(key) ?? 0;
    if (l.maxConnectionsPerAddress > 0 && held >= l.maxConnectionsPerAddress) {
      stats.refusedPerAddress += 1;
      socket.destroy();
      return;
    }
    byAddress.set(key, held + 1);
    open += 1;
    socket.once('close', () => {
      open -= 1;
      const left = (byAddress.get(key) ?? 1) - 1;
      if (left > 0) byAddress.set(key, left);
      else byAddress.delete(key);
    });
  });
  return stats;
}
