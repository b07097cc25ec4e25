import { GatewayError } from '../errors/index.js';

/** Options of {@link UpstreamAdmission}. */
export interface UpstreamAdmissionOptions {
  /** Sockets of the Atlas pool: calls up to this many are on the wire, the rest wait for one. */
  sockets: number;
  /**
   * Upstream calls that may wait for a socket beyond `sockets`; the next one is shed (`OVERLOADED`).
   * @default 256
   */
  maxQueued?: number;
  /** The `retryAfterMs` (and `Retry-After`) a shed call's error carries. @default 1000 */
  retryAfterMs?: number;
}

export const UPSTREAM_ADMISSION_DEFAULTS = { maxQueued: 256, retryAfterMs: 1000 } as const;

/**
 * Admission control for the process's Atlas calls: at most `sockets + maxQueued` in flight (on a
 * socket or waiting in the pool's queue). One more fails unsent with `OVERLOADED` (HTTP 503,
 * retryable, a retry hint) instead of joining a queue whose wait only grows under saturation: the
 * calls already admitted keep their latency, and a client learns at once to come back later. Counted
 * per round trip through the transport hooks: `beforeSend` admits (last of the hooks, so a call
 * another hook refuses never counts), `onExchange` releases; the transport reports every admitted
 * round trip exactly once, answered or not.
 */
export class UpstreamAdmission {
  readonly #bound: number;
  readonly #retryAfterMs: number;
  #inFlight = 0;
  #shed = 0;

  constructor(options: UpstreamAdmissionOptions) {
    this.#bound = options.sockets + (options.maxQueued ?? UPSTREAM_ADMISSION_DEFAULTS.maxQueued);
    this.#retryAfterMs = options.retryAfterMs ?? UPSTREAM_ADMISSION_DEFAULTS.retryAfterMs;
  }

  /** Calls admitted and not yet ended. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls refused since the start. */
  get shed(): number {
    return this.#shed;
  }

  /** Transport hook: admits the call, or throws `OVERLOADED` with nothing sent. */
  beforeSend = (): void => {
    if (this.#inFlight >= this.#bound) {
      this.#shed += 1;
      throw new GatewayError(
        'OVERLOADED',
        `The gateway has ${this.#inFlight} Atlas calls in flight, its limit; retry in ${Math.ceil(this.#retryAfterMs / 1000)} s.`,
        { extensions: { retryable: true, retryAfterMs: this.#retryAfterMs } },
      );
    }
    this.#inFlight += 1;
  };

  /** Exchange hook: an admitted round trip ended (answered or failed). */
  onExchange = (): void => {
    if (this.#inFlight > 0) this.#inFlight -= 1;
  };
}
