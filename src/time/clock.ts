/**
 * The one time source of the gateway and the simulator (token expiry, retry budgets, idempotency
 * TTLs, job lifecycles). Injected everywhere so tests move time instead of waiting.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: job lifecycles, nonce and token expiry become deterministic. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number | string | Date = '2026-11-23T12:00:00Z') {
    this.#now = new Date(start).getTime();
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(at: number | string | Date): void {
    this.#now = new Date(at).getTime();
  }
}
