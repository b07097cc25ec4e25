import type { Clock } from '../time/clock.js';
import type { Family } from './model.js';
import type { SharedRedis } from '../replicas/redis.js';
import { clusterKey, type ClusterRef } from './model.js';

export interface FamilyCacheOptions {
  /** Shares what replicas learn through Redis (a migrated cluster is learned once per fleet). */
  redis?: SharedRedis;
  /** How long a learned family is trusted before it is looked up again. @default 600000 (10 min) */
  ttlMs?: number;
  /** Most clusters remembered; the oldest entry goes first. @default 10000 */
  maxEntries?: number;
  clock: Clock;
}

/**
 * Which family serves each cluster, shared by all requests of the process. A family only changes when
 * Atlas migrates a cluster (M2/M5 → Flex), and Atlas says so itself (410, CANNOT_USE_*), so a long TTL
 * plus correction on those signals costs nothing in correctness.
 */
export class FamilyCache {
  readonly #entries = new Map<string, { family: Family; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #redis: SharedRedis | undefined;
  /** Lookups answered, and not, since start (metrics). */
  hits = 0;
  misses = 0;

  constructor(options: FamilyCacheOptions) {
    this.#ttlMs = options.ttlMs ?? 600_000;
    this.#max = options.maxEntries ?? 10_000;
    this.#clock = options.clock;
    this.#redis = options.redis;
  }

  /** The family from this replica's cache, else from the fleet's (Redis), else undefined. */
  async lookup(ref: ClusterRef): Promise<Family | undefined> {
    const local = this.get(ref);
    if (local || !this.#redis?.ready()) return local;
    const shared = await this.#redis.client.get(this.#key(ref)).catch(() => null);
    if (shared !== 'TENANT' && shared !== 'FLEX') return undefined;
    this.#setLocal(ref, shared);
    return shared;
  }

  /** Remembers a family here and, when shared and new, for the whole fleet. */
  set(ref: ClusterRef, family: Family): void {
    const known = this.#entries.get(clusterKey(ref))?.family;
    this.#setLocal(ref, family);
    if (known !== family && this.#redis?.ready()) {
      void this.#redis.client.set(this.#key(ref), family, 'PX', this.#ttlMs).catch(() => undefined);
    }
  }

  #key(ref: ClusterRef): string {
    return `${this.#redis?.prefix ?? ''}family:${clusterKey(ref)}`;
  }

  get(ref: ClusterRef): Family | undefined {
    const key = clusterKey(ref);
    const e = this.#entries.get(key);
    if (!e || e.expiresAt <= this.#clock.now()) {
      if (e) this.#entries.delete(key);
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    return e.family;
  }

  #setLocal(ref: ClusterRef, family: Family): void {
    const key = clusterKey(ref);
    this.#entries.delete(key);
    this.#entries.set(key, { family, expiresAt: this.#clock.now() + this.#ttlMs });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
