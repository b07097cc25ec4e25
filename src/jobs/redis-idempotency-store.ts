import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { SharedRedis } from '../replicas/redis.js';
import {
  MemoryIdempotencyStore,
  StoreUnavailableError,
  type Claim,
  type IdempotencyStore,
  type IdempotentResult,
} from './idempotency-store.js';
import type { Clock } from '../time/clock.js';

/**
 * What keyed requests get while Redis cannot be used: `refuse` answers STORE_UNAVAILABLE (nothing is
 * sent, a retry is safe); `single-replica` keeps the keys in this process meanwhile and writes them to
 * Redis when it returns, which is only right when this is the only replica (another replica cannot see
 * them, so the same key sent there would make a second job).
 */
export type WithoutRedis = 'refuse' | 'single-replica';

export interface RedisIdempotencyStoreOptions {
  clock: Clock;
  /** How long a finished key is remembered. @default 86400000 (24 h) */
  ttlMs?: number;
  /** How long a claim may stay unfinished (a replica that died mid-request frees it). @default 60000 */
  pendingTtlMs?: number;
  /** How often a waiting replica looks whether the first request finished. @default 100 */
  waitPollMs?: number;
  /** Keyed requests while Redis is unreachable (see `WithoutRedis`). @default 'refuse' */
  withoutRedis?: WithoutRedis;
  /**
   * After Redis lost its data (restarted without persistence), keyed requests are refused this long
   * while every replica writes back the keys it knows. @default 10000
   */
  recoveryMs?: number;
  /** Most keys this replica remembers itself, to write back after an outage. @default 100000 */
  maxLocalKeys?: number;
  /** Where outages, write-backs and conflicts are reported. @default silent */
  logger?: Logger;
}

/** A key's value in Redis: claimed (`owner`, no `result`) or settled (`result`). */
interface Stored {
  fingerprint: string;
  /** Who holds an unfinished claim: one token per claim, so only its holder settles it. */
  owner?: string;
  result?: IdempotentResult;
}

// Every script first checks the store's epoch (a key that a Redis restarted without persistence no
// longer has: then the keys are gone too) and the recovery marker, so no claim is taken on a Redis
// that forgot its keys before the replicas wrote them back.
const GUARD = `local e = redis.call('GET', KEYS[2])
if e ~= ARGV[1] then return {-2} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1} end
`;

// ARGV: epoch, the claim's value, its PX.
const CLAIM = `${GUARD}if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX') then return {1} end
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
return {2}`;

// ARGV: epoch, the value the retaker saw, its new value, PX.
const RETAKE = `${GUARD}if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return {1}
end
return {0}`;

// Only the holder of a claim settles it (a missing key too: Redis lost it; writing it back is right).
// ARGV: owner, the result's value ('' frees the key), PX.
const SETTLE = `local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if not ok or rec.owner ~= ARGV[1] or rec.result then return 0 end
end
if ARGV[2] == '' then
  if cur then redis.call('DEL', KEYS[1]) end
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`;

/** A result this replica recorded, kept to answer from and to write back. */
interface Remembered {
  raw: string;
  expiresAt: number;
  /** Not (known to be) in Redis yet. */
  dirty: boolean;
  /** The claim it settles; undefined when it was recorded while Redis was away. */
  owner: string | undefined;
}

/**
 * Idempotency keys shared by every replica: `SET NX` makes exactly one replica's claim `new` even when
 * the same key arrives at two replicas at once; the others wait for its result. Redis is the record:
 * while it cannot be used, keyed requests are refused (`STORE_UNAVAILABLE`, before any POST) unless
 * `withoutRedis` is `single-replica`. Every result this replica records is also kept here: it is
 * written (back) to Redis when a write failed, when Redis returns after keys were kept locally, and
 * when Redis lost its data (a restart without persistence), which the store's epoch key reveals.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #local: MemoryIdempotencyStore;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #pendingMs: number;
  readonly #waitMs: number;
  readonly #withoutRedis: WithoutRedis;
  readonly #recoveryMs: number;
  readonly #maxLocal: number;
  readonly #log: Logger | undefined;
  /** Results this replica recorded (by Redis key), oldest first. */
  readonly #remembered = new Map<string, Remembered>();
  /** Claims this replica holds in Redis: their value (to write back) and their outcome. */
  readonly #owned = new Map<string, { raw: string; outcome: Promise<IdempotentResult | undefined> }>();
  /** Frees of claims that could not be written; done when Redis returns. */
  readonly #frees = new Map<string, string>();
  /** Keys claimed while Redis was away: they stay in this process until written to Redis. */
  readonly #localKeys = new Set<string>();
  #epoch: string | undefined;
  #checking: Promise<void> | undefined;
  #degradedSaid = false;
  readonly #onReady = () => {
    this.#degradedSaid = false;
    void this.#check().catch(() => undefined);
  };

  constructor(
    readonly redis: SharedRedis,
    options: RedisIdempotencyStoreOptions,
  ) {
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? 86_400_000;
    this.#local = new MemoryIdempotencyStore({ clock: options.clock, ttlMs: this.#ttlMs });
    this.#pendingMs = options.pendingTtlMs ?? 60_000;
    this.#waitMs = options.waitPollMs ?? 100;
    this.#withoutRedis = options.withoutRedis ?? 'refuse';
    this.#recoveryMs = options.recoveryMs ?? 10_000;
    this.#maxLocal = options.maxLocalKeys ?? 100_000;
    this.#log = options.logger;
    redis.client.on('ready', this.#onReady);
  }

  close(): void {
    this.redis.client.off('ready', this.#onReady);
  }

  get #epochKey() {
    return `${this.redis.prefix}idem-epoch`;
  }

  get #recoveringKey() {
    return `${this.redis.prefix}idem-recovering`;
  }

  async claim(key: string, fingerprint: string): Promise<Claim> {
    const k = `${this.redis.prefix}idem:${key}`;
    if (this.#localKeys.has(k)) return this.#localClaim(k, fingerprint);
    if (!this.redis.ready()) return this.#unavailable(k, fingerprint, 'Redis is unreachable');
    const { client } = this.redis;
    const owner = randomUUID();
    const value = JSON.stringify({ fingerprint, owner } satisfies Stored);
    let answer: [number, string?];
    try {
      if (this.#epoch === undefined) await this.#check();
      answer = (await client.eval(
        CLAIM,
        3,
        k,
        this.#epochKey,
        this.#recoveringKey,
        this.#epoch ?? '',
        value,
        String(this.#pendingMs),
      )) as [number, string?];
    } catch (err) {
      return this.#unavailable(k, fingerprint, 'Redis did not answer', err);
    }
    const [state, raw] = answer;
    if (state === 1) {
      if (this.#hasDirty()) void this.#reconcile(false).catch(() => undefined);
      return { state: 'new', settle: this.#settler(k, fingerprint, owner, value) };
    }
    if (state === 2) return this.claim(key, fingerprint); // expired in between
    if (state < 0) return this.#refused(k, fingerprint, state);
    const stored = JSON.parse(raw!) as Stored;
    if (stored.result) return { state: 'done', result: stored.result };
    const mine = this.#owned.get(k);
    return {
      state: 'inflight',
      fingerprint: stored.fingerprint,
      wait: mine && mine.raw === raw ? mine.outcome : this.#waitFor(k),
    };
  }

  async retake(key: string, fingerprint: string, unresolved: IdempotentResult): Promise<Claim> {
    const k = `${this.redis.prefix}idem:${key}`;
    if (this.#localKeys.has(k) || !this.redis.ready()) {
      if (!this.#localKeys.has(k) && this.#withoutRedis === 'refuse') {
        throw new StoreUnavailableError('Redis is unreachable');
      }
      return this.#wrapLocal(k, fingerprint, await this.#local.retake(k, fingerprint, unresolved));
    }
    const { client } = this.redis;
    try {
      if (this.#epoch === undefined) await this.#check();
      const raw = await client.get(k);
      const stored = raw ? (JSON.parse(raw) as Stored) : undefined;
      if (!raw || !unresolved.unresolved || JSON.stringify(stored?.result) !== JSON.stringify(unresolved)) {
        return this.claim(key, fingerprint);
      }
      // Compare-and-set: only the replica that still finds the value it read takes the key over. (Should
      // it die before settling, the key expires with the pending TTL and the unresolved note with it.)
      const owner = randomUUID();
      const value = JSON.stringify({ fingerprint, owner } satisfies Stored);
      const [won] = (await client.eval(
        RETAKE,
        3,
        k,
        this.#epochKey,
        this.#recoveringKey,
        this.#epoch ?? '',
        raw,
        value,
        String(this.#pendingMs),
      )) as [number];
      if (won < 0) return this.#refused(k, fingerprint, won);
      if (won !== 1) return this.claim(key, fingerprint);
      return { state: 'new', settle: this.#settler(k, fingerprint, owner, value) };
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      return this.#unavailable(k, fingerprint, 'Redis did not answer', err);
    }
  }

  /** Redis said no claim may be taken now: it lost its keys (`-2`) or is getting them back (`-1`). */
  #refused(k: string, fingerprint: string, state: number): Promise<Claim> {
    if (state === -2) void this.#check().catch(() => undefined);
    return this.#unavailable(
      k,
      fingerprint,
      'Redis lost its keys (restarted without persistence) and the replicas are writing them back',
    );
  }

  #unavailable(k: string, fingerprint: string, reason: string, cause?: unknown): Promise<Claim> {
    if (this.#withoutRedis === 'refuse') return Promise.reject(new StoreUnavailableError(reason, cause));
    if (!this.#degradedSaid) {
      this.#degradedSaid = true;
      this.#log?.warn(
        { idempotency: 'single-replica', reason },
        'Idempotency keys kept in this process until Redis can be used again (GATEWAY_IDEMPOTENCY_WITHOUT_REDIS=single-replica)',
      );
    }
    return this.#localClaim(k, fingerprint);
  }

  /** A claim while Redis cannot be used (single-replica mode): this process's own record. */
  async #localClaim(k: string, fingerprint: string): Promise<Claim> {
    const known = this.#remembered.get(k);
    if (known && known.expiresAt > this.#clock.now()) {
      const stored = JSON.parse(known.raw) as Stored;
      if (stored.result) return { state: 'done', result: stored.result };
    }
    const mine = this.#owned.get(k);
    if (mine) {
      const stored = JSON.parse(mine.raw) as Stored;
      return { state: 'inflight', fingerprint: stored.fingerprint, wait: mine.outcome };
    }
    return this.#wrapLocal(k, fingerprint, await this.#local.claim(k, fingerprint));
  }

  /** A local claim's result is remembered as not yet in Redis, and written there when it returns. */
  #wrapLocal(k: string, fingerprint: string, claim: Claim): Claim {
    if (claim.state !== 'new') return claim;
    this.#localKeys.add(k);
    return {
      state: 'new',
      settle: (result) => {
        claim.settle(result);
        if (!result) {
          this.#localKeys.delete(k);
          return;
        }
        this.#remember(k, JSON.stringify({ fingerprint, result } satisfies Stored), undefined);
        if (this.redis.ready()) void this.#reconcile(false).catch(() => undefined);
      },
    };
  }

  #settler(k: string, fingerprint: string, owner: string, value: string) {
    let finish!: (r: IdempotentResult | undefined) => void;
    const outcome = new Promise<IdempotentResult | undefined>((resolve) => (finish = resolve));
    this.#owned.set(k, { raw: value, outcome });
    return (result: IdempotentResult | undefined) => {
      this.#owned.delete(k);
      finish(result);
      const raw = result ? JSON.stringify({ fingerprint, result } satisfies Stored) : '';
      if (result) this.#remember(k, raw, owner);
      this.redis.client.eval(SETTLE, 1, k, owner, raw, String(this.#ttlMs)).then(
        (written) => {
          if (result) this.#clean(k, raw);
          if (written !== 1) {
            this.#log?.warn(
              { idempotency: 'settle-refused', key: k },
              'An idempotency key was taken over by another request before this one settled it',
            );
          }
        },
        () => {
          // Redis went away: the result stays remembered (dirty), a free waits; both when it returns.
          if (!result) this.#frees.set(k, owner);
        },
      );
    };
  }

  #remember(k: string, raw: string, owner: string | undefined): void {
    this.#remembered.delete(k);
    this.#remembered.set(k, { raw, expiresAt: this.#clock.now() + this.#ttlMs, dirty: true, owner });
    if (this.#remembered.size > this.#maxLocal) {
      const oldest = this.#remembered.keys().next().value;
      if (oldest !== undefined) this.#remembered.delete(oldest);
    }
  }

  #clean(k: string, raw: string): void {
    const r = this.#remembered.get(k);
    if (r && r.raw === raw) r.dirty = false;
  }

  #hasDirty(): boolean {
    if (this.#frees.size > 0) return true;
    for (const r of this.#remembered.values()) if (r.dirty) return true;
    return false;
  }

  /**
   * Reads the store's epoch. A different (or missing) epoch than the one this replica saw means Redis
   * lost every key: claims are refused for `recoveryMs` while each replica writes back what it knows.
   */
  #check(): Promise<void> {
    this.#checking ??= this.#runCheck().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #runCheck(): Promise<void> {
    const { client } = this.redis;
    await client.set(this.#epochKey, randomUUID(), 'NX');
    const epoch = await client.get(this.#epochKey);
    if (epoch === null) return;
    const lost = this.#epoch !== undefined && epoch !== this.#epoch;
    if (lost) {
      await client.set(this.#recoveringKey, '1', 'PX', this.#recoveryMs, 'NX');
      this.#log?.warn(
        { idempotency: 'redis-lost-keys', recoveryMs: this.#recoveryMs },
        'Redis lost its idempotency keys (restarted without persistence?): writing back the keys this replica knows; keyed requests wait meanwhile',
      );
    }
    this.#epoch = epoch;
    await this.#reconcile(lost);
  }

  /**
   * Writes to Redis what it is missing from this replica: results whose write failed and keys kept
   * locally meanwhile (`all`: every result and claim this replica knows, after Redis lost its keys).
   * A key Redis holds with another job is a conflict: logged, Redis's value stays.
   */
  async #reconcile(all: boolean): Promise<void> {
    const { client } = this.redis;
    if (all) {
      for (const [k, { raw }] of this.#owned) await client.set(k, raw, 'PX', this.#pendingMs, 'NX');
    }
    for (const [k, owner] of this.#frees) {
      await client.eval(SETTLE, 1, k, owner, '', '0');
      this.#frees.delete(k);
    }
    const now = this.#clock.now();
    let written = 0;
    for (const [k, r] of this.#remembered) {
      if (!r.dirty && !all) continue;
      const ttl = r.expiresAt - now;
      if (ttl <= 0) {
        this.#remembered.delete(k);
        continue;
      }
      const ok =
        r.owner !== undefined
          ? (await client.eval(SETTLE, 1, k, r.owner, r.raw, String(ttl))) === 1
          : (await client.set(k, r.raw, 'PX', ttl, 'NX')) === 'OK';
      if (!ok) {
        const cur = await client.get(k);
        const theirs = cur ? (JSON.parse(cur) as Stored).result : undefined;
        const ours = (JSON.parse(r.raw) as Stored).result;
        if (theirs?.jobId !== ours?.jobId) {
          this.#log?.warn(
            { idempotency: 'conflict', key: k, redisJobId: theirs?.jobId ?? null, localJobId: ours?.jobId },
            'An idempotency key got a different job in Redis than in this replica while Redis was away; Redis keeps its own',
          );
        }
      }
      r.dirty = false;
      written++;
      // Settled and in Redis now: the key is Redis's again.
      this.#localKeys.delete(k);
    }
    if (written > 0) {
      this.#log?.info(
        { idempotency: 'written-back', keys: written },
        'Idempotency keys written back to Redis',
      );
    }
  }

  async #read(k: string): Promise<Stored | undefined> {
    const raw = await this.redis.client.get(k);
    return raw ? (JSON.parse(raw) as Stored) : undefined;
  }

  // Polling, not pub/sub: the wait is rare and short, and a poll also notices a claim that expired.
  async #waitFor(k: string): Promise<IdempotentResult | undefined> {
    for (let waited = 0; waited <= this.#pendingMs; waited += this.#waitMs) {
      await new Promise((r) => setTimeout(r, this.#waitMs));
      const stored = await this.#read(k).catch(() => 'unreachable' as const);
      if (stored === 'unreachable') continue;
      if (!stored) return undefined;
      if (stored.result) return stored.result;
    }
    return undefined;
  }
}
