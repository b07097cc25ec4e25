import type { SharedRedis } from '../replicas/redis.js';
import {
  MemoryIdempotencyStore,
  type Claim,
  type IdempotencyStore,
  type IdempotentResult,
} from './idempotency-store.js';
import type { Clock } from '../time/clock.js';

export interface RedisIdempotencyStoreOptions {
  clock: Clock;
  /** How long a finished key is remembered. @default 86400000 (24 h) */
  ttlMs?: number;
  /** How long a claim may stay unfinished (a replica that died mid-request frees it). @default 60000 */
  pendingTtlMs?: number;
  /** How often a waiting replica looks whether the first request finished. @default 100 */
  waitPollMs?: number;
}

const RETAKE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

interface Stored {
  fingerprint: string;
  result?: IdempotentResult;
}

/**
 * Idempotency keys shared by every replica: `SET NX` makes exactly one replica's claim `new` even when
 * the same key arrives at two replicas at once; the others wait for its result. While Redis is away,
 * keys are this replica's own (the log says so).
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #fallback: MemoryIdempotencyStore;
  readonly #ttlMs: number;
  readonly #pendingMs: number;
  readonly #waitMs: number;

  constructor(
    readonly redis: SharedRedis,
    options: RedisIdempotencyStoreOptions,
  ) {
    this.#fallback = new MemoryIdempotencyStore({ clock: options.clock, ttlMs: options.ttlMs ?? 86_400_000 });
    this.#ttlMs = options.ttlMs ?? 86_400_000;
    this.#pendingMs = options.pendingTtlMs ?? 60_000;
    this.#waitMs = options.waitPollMs ?? 100;
  }

  async claim(key: string, fingerprint: string): Promise<Claim> {
    if (!this.redis.ready()) return this.#fallback.claim(key, fingerprint);
    const k = `${this.redis.prefix}idem:${key}`;
    const { client } = this.redis;
    try {
      const won = await client.set(
        k,
        JSON.stringify({ fingerprint } satisfies Stored),
        'PX',
        this.#pendingMs,
        'NX',
      );
      if (won === 'OK') {
        return { state: 'new', settle: this.#settler(k, fingerprint) };
      }
      const stored = await this.#read(k);
      if (!stored) return this.claim(key, fingerprint);
      if (stored.result) return { state: 'done', result: stored.result };
      return { state: 'inflight', fingerprint: stored.fingerprint, wait: this.#waitFor(k) };
    } catch {
      return this.#fallback.claim(key, fingerprint);
    }
  }

  async retake(key: string, fingerprint: string, unresolved: IdempotentResult): Promise<Claim> {
    if (!this.redis.ready()) return this.#fallback.retake(key, fingerprint, unresolved);
    const k = `${this.redis.prefix}idem:${key}`;
    const { client } = this.redis;
    try {
      const raw = await client.get(k);
      const stored = raw ? (JSON.parse(raw) as Stored) : undefined;
      if (!raw || !unresolved.unresolved || JSON.stringify(stored?.result) !== JSON.stringify(unresolved)) {
        return this.claim(key, fingerprint);
      }
      // Compare-and-set: only the replica that still finds the value it read takes the key over. (Should
      // it die before settling, the key expires with the pending TTL and the unresolved note with it.)
      const won = await client.eval(
        RETAKE,
        1,
        k,
        raw,
        JSON.stringify({ fingerprint } satisfies Stored),
        String(this.#pendingMs),
      );
      if (won !== 1) return this.claim(key, fingerprint);
      return { state: 'new', settle: this.#settler(k, fingerprint) };
    } catch {
      return this.#fallback.retake(key, fingerprint, unresolved);
    }
  }

  #settler(k: string, fingerprint: string) {
    return (result: IdempotentResult | undefined) => {
      const { client } = this.redis;
      const write = result
        ? client.set(k, JSON.stringify({ fingerprint, result } satisfies Stored), 'PX', this.#ttlMs)
        : client.del(k);
      void write.catch(() => undefined);
    };
  }

  async #read(k: string): Promise<Stored | undefined> {
    const raw = await this.redis.client.get(k);
    return raw ? (JSON.parse(raw) as Stored) : undefined;
  }

  // Polling, not pub/sub: the wait is rare and short, and a poll also notices a claim that expired.
  async #waitFor(k: string): Promise<IdempotentResult | undefined> {
    for (let waited = 0; waited <= this.#pendingMs; waited += this.#waitMs) {
      await new Promise((r) => setTimeout(r, this.#waitMs));
      const stored = await this.#read(k).catch(() => undefined);
      if (!stored) return undefined;
      if (stored.result) return stored.result;
    }
    return undefined;
  }
}
