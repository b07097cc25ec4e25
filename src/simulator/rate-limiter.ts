import type { Clock } from '../time/clock.js';

export interface RateLimitOptions {
  /** Bucket size: requests a project may make in a burst (Atlas's `RateLimit-Limit`). @default 100 */
  capacity: number;
  /** Tokens added per second. @default 10 */
  refillPerSecond: number;
  /**
   * Bucket sizes per endpoint set, as Atlas limits them: `Ratelimit-Limit` is 1200 on the Flex
   * routes and 10000 on the cluster routes (recorded August 2026). Each set has its own bucket; a set
   * not named here uses `capacity`. @default none: one bucket of `capacity` per scope
   */
  capacityBySet?: Partial<Record<EndpointSet, number>>;
}

/** Atlas's endpoint sets the simulator tells apart. */
export type EndpointSet = 'flex' | 'cluster';

/** Atlas's recorded `Ratelimit-Limit` per endpoint set. */
export const ATLAS_RATE_LIMITS: Record<EndpointSet, number> = { flex: 1200, cluster: 10_000 };

/** The endpoint set of an API path: `/flexClusters/` routes, or the cluster (and other) routes. */
export const endpointSetOf = (path: string): EndpointSet =>
  path.includes('/flexClusters') ? 'flex' : 'cluster';

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

  /** Takes a token of `scope`'s bucket for `set` (`capacityBySet`), or its single bucket. */
  take(scope: string, set?: EndpointSet): RateDecision {
    const { refillPerSecond } = this.options;
    const bySet = set !== undefined ? this.options.capacityBySet?.[set] : undefined;
    const capacity = bySet ?? this.options.capacity;
    const key = bySet !== undefined ? `${scope}#${set}` : scope;
    const now = this.#clock.now();
    const b = this.#buckets.get(key) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * refillPerSecond);
    b.at = now;
    this.#buckets.set(key, b);
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
