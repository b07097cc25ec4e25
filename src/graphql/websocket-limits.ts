import type { IncomingMessage } from 'node:http';

/** The graphql-ws transport's own limits (the GraphQL limits are the same plugins as on HTTP). */
export interface WebSocketLimits {
  /**
   * Largest WebSocket message accepted, in bytes. ws reads a frame's length from its header and
   * closes the socket with 1009 (message too big) before buffering a larger one.
   * @default 65536
   */
  maxPayloadBytes: number;
  /** WebSocket connections open at once, all clients together; more: HTTP 429 at the upgrade. @default 1000 */
  maxConnections: number;
  /**
   * WebSocket connections open at once from one client address (the socket's, or the last
   * `X-Forwarded-For` entry with `trustProxy`); more: HTTP 429 at the upgrade.
   * @default 50
   */
  maxConnectionsPerAddress: number;
  /**
   * Operations running at once on one socket (a subscription runs until it ends); another `subscribe`
   * gets an `error` message with `RATE_LIMITED`.
   * @default 25
   */
  maxOperationsPerSocket: number;
  /**
   * `subscribe` messages one socket may send per window: over it, an `error` message with
   * `RATE_LIMITED` for that id; over twice it in one window (a client ignoring the refusals), the
   * socket is closed with 4429.
   * @default { points: 100, windowMs: 10000 }
   */
  subscribeRate: { points: number; windowMs: number };
  /**
   * A socket that has not sent `connection_init` after this many ms is closed with 4408 (graphql-ws's
   * `connectionInitWaitTimeout`): unauthenticated sockets cannot idle.
   * @default 3000
   */
  connectionInitTimeoutMs: number;
}

export const DEFAULT_WEBSOCKET_LIMITS: Readonly<WebSocketLimits> = Object.freeze({
  maxPayloadBytes: 65_536,
  maxConnections: 1000,
  maxConnectionsPerAddress: 50,
  maxOperationsPerSocket: 25,
  subscribeRate: Object.freeze({ points: 100, windowMs: 10_000 }),
  connectionInitTimeoutMs: 3000,
});

/** The limits with every default filled in. */
export function resolveWebSocketLimits(limits: Partial<WebSocketLimits> = {}): WebSocketLimits {
  return { ...DEFAULT_WEBSOCKET_LIMITS, ...limits };
}

/**
 * The client address a connection counts against: the socket's, or, behind a proxy that sets it
 * (`trustProxy`), the last `X-Forwarded-For` entry (the address the proxy saw). The same rule as the
 * rate limit's key for anonymous callers (src/security/use-rate-limit.ts), which this layer cannot
 * import.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)?.split(',').pop()?.trim();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Counts open connections, in all and per client address, against their caps. Hand-written:
 * rate-limiter-flexible counts events per window, not things that are open until they close.
 */
export class ConnectionSlots {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Takes a slot for `address`, or answers which cap is full (and takes nothing). */
  take(address: string): 'taken' | 'total' | 'address' {
    if (this.total >= this.max) return 'total';
    const mine = this.byAddress.get(address) ?? 0;
    if (mine >= this.maxPerAddress) return 'address';
    this.total += 1;
    this.byAddress.set(address, mine + 1);
    return 'taken';
  }

  /** Gives back a slot `take` granted. */
  release(address: string): void {
    const mine = this.byAddress.get(address);
    if (mine === undefined) return;
    this.total -= 1;
    // Addresses without connections are forgotten, so the map stays as small as what is open.
    if (mine <= 1) this.byAddress.delete(address);
    else this.byAddress.set(address, mine - 1);
  }

  /** Open connections, in all or of one address. */
  open(address?: string): number {
    return address === undefined ? this.total : (this.byAddress.get(address) ?? 0);
  }
}
