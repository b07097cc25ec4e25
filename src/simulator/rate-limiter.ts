import type { Clock } from '../time/clock.js';

export interface RateLimitOptions {
  /** Bucket size: requests a project may make in a burst (Atlas's `RateLimit-Limit`). @default 100 */
  capacity: number;
  /** Tokens added per second. @default 10 */
  refillPerSecond: number;
}

export type RateDecision =
  | { ok: true; limit: number; remaining: number }
  | { ok: false; limit: number; remaining: 0; retryAfterSec: number };

/**
 * A token bucket per scope (a project id, or the caller for routes without one), as Atlas limits per
 * endpoint set and scope. Refill is computed from the injected clock, so no timer runs.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly options: RateLimitOptions;
  readonly #clock: Clock;

  constructor(options: RateLimitOptions, clock: Clock) {
    this.options = options;
    this.#clock = clock;
  }

  take(scope: string): RateDecision {
    const { capacity, refillPerSecond } = this.options;
    const now = this.#clock.now();
    const b = this.#buckets.get(scope) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * refillPerSecond);
    b.at = now;
    this.#buckets.set(scope, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, limit: capacity, remaining: Math.floor(b.tokens) };
    }
    return {
      ok: false,
      limit: capacity,
      remaining: 0,
      retryAfterSec: Math.max(1, Math.ceil((1 - b.tokens) / refillPerSecond)),
    };
  }

  reset(): void {
    this.#buckets.clear();
  }
}
