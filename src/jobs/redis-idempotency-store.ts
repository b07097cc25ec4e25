import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { SharedRedis } from '../replicas/redis.js';
import {
  MemoryIdempotencyStore,
  StoreUnavailableError,
  type Claim,
  type ClaimIntent,
  type ClaimOptions,
  type IdempotencyStore,
  type IdempotentResult,
} from './idempotency-store.js';
import type { Clock } from '../time/clock.js';
import { realTimers, type Timers } from '../time/timers.js';

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
  /**
   * How long a claim outlives its holder: the holder renews it every third of this, and a claim not
   * renewed for this long is an orphan (its replica died), which the next request of the key resolves
   * by looking for the job among the cluster's recent jobs. Never a reason to POST again blindly.
   * @default 10000
   */
  leaseMs?: number;
  /** The lease renewals' timers (tests step them). @default real timers */
  timers?: Timers;
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
  /** What the claim's job will be, for whoever takes over an orphaned claim. */
  intent?: ClaimIntent;
  /** When its POST went out (write-ahead, before sending); absent: nothing was sent. */
  postedAt?: number;
  result?: IdempotentResult;
}

// Every script first checks the store's epoch (a key that a Redis restarted without persistence no
// longer has: then the keys are gone too) and the recovery marker, so no claim is taken on a Redis
// that forgot its keys before the replicas wrote them back. KEYS: the key, epoch, recovery marker,
// the key's lease.
const GUARD = `local e = redis.call('GET', KEYS[2])
if e ~= ARGV[1] then return {-2} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1} end
`;

// ARGV: epoch, the claim's value, its PX, the owner, the lease's PX. An unfinished claim whose lease
// is gone answers 3: an orphan, never a free key.
const CLAIM = `${GUARD}if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX') then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
  return {1}
end
local cur = redis.call('GET', KEYS[1])
if not cur then return {2} end
local ok, rec = pcall(cjson.decode, cur)
if ok and rec.result == nil and redis.call('EXISTS', KEYS[4]) == 0 then return {3, cur} end
return {0, cur}`;

// ARGV: epoch, the value the retaker saw, its new value, PX, the owner, the lease's PX. Only while the
// value is unchanged and nobody holds a lease on it.
const RETAKE = `${GUARD}if redis.call('GET', KEYS[1]) == ARGV[2] and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
  return {1}
end
return {0}`;

// Whether the value is an unfinished claim of ARGV[1].
const HELD = `local function held(cur)
  local ok, rec = pcall(cjson.decode, cur)
  return ok and rec.owner == ARGV[1] and rec.result == nil
end
`;

// Only the holder of a claim settles it (a missing key too: Redis lost it; writing it back is right).
// KEYS: the key, its lease, the job's binding ('' none). ARGV: owner, the result's value ('' frees
// the key), PX, the binding's owner.
const SETTLE = `${HELD}local cur = redis.call('GET', KEYS[1])
if cur and not held(cur) then return 0 end
if ARGV[2] == '' then
  if cur then redis.call('DEL', KEYS[1]) end
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3], 'NX') end
end
redis.call('DEL', KEYS[2])
return 1`;

// The holder's write-ahead before its POST, and its lease renewals. KEYS: the key, its lease. ARGV:
// owner, the new value ('' keeps it), the lease's PX.
const RENEW = `${HELD}local cur = redis.call('GET', KEYS[1])
if not cur or not held(cur) then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1`;

/** A result this replica recorded, kept to answer from and to write back. */
interface Remembered {
  /** The key as the store was given it (what its job is bound to). */
  key: string;
  raw: string;
  expiresAt: number;
  /** Not (known to be) in Redis yet. */
  dirty: boolean;
  /** The claim it settles; undefined when it was recorded while Redis was away. */
  owner: string | undefined;
  /**
   * The very object a local claim was settled with: handed out as is, so that a retake of an
   * unresolved result the local store holds matches it (it compares the object, not its content).
   */
  result?: IdempotentResult;
}

/**
 * Idempotency keys shared by every replica: `SET NX` makes exactly one replica's claim `new` even when
 * the same key arrives at two replicas at once; the others wait for its result. Redis is the record:
 * while it cannot be used, keyed requests are refused (`STORE_UNAVAILABLE`, before any POST) unless
 * `withoutRedis` is `single-replica`. Every result this replica records is also kept here: it is
 * written (back) to Redis when a write failed, when Redis returns after keys were kept locally, and
 * when Redis lost its data (a restart without persistence), which the store's epoch key reveals.
 *
 * A claim lives as long as the key (it never expires into a free key): its holder keeps a lease on it
 * and writes `postedAt` before its POST. A claim whose lease ran out is an orphan, answered as an
 * unresolved result: the request that retakes it looks for the job among the cluster's recent jobs.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #local: MemoryIdempotencyStore;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #leaseMs: number;
  readonly #timers: Timers;
  readonly #waitMs: number;
  readonly #withoutRedis: WithoutRedis;
  readonly #recoveryMs: number;
  readonly #maxLocal: number;
  readonly #log: Logger | undefined;
  /** Results this replica recorded (by Redis key), oldest first. */
  readonly #remembered = new Map<string, Remembered>();
  /** Claims this replica holds in Redis: their value (to write back), owner, and outcome. */
  readonly #owned = new Map<
    string,
    { raw: string; owner: string; outcome: Promise<IdempotentResult | undefined>; renew: unknown }
  >();
  /** Frees of claims that could not be written; done when Redis returns. */
  readonly #frees = new Map<string, string>();
  /** Keys claimed while Redis was away: they stay in this process until written to Redis. */
  readonly #localKeys = new Set<string>();
  /** The value each result or orphan handed out was read from: what a retake compares against. */
  readonly #seen = new WeakMap<IdempotentResult, string>();
  #epoch: string | undefined;
  #checking: Promise<void> | undefined;
  #degradedSaid = false;
  #closed = false;
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
    this.#leaseMs = options.leaseMs ?? 10_000;
    this.#timers = options.timers ?? realTimers;
    this.#waitMs = options.waitPollMs ?? 100;
    this.#withoutRedis = options.withoutRedis ?? 'refuse';
    this.#recoveryMs = options.recoveryMs ?? 10_000;
    this.#maxLocal = options.maxLocalKeys ?? 100_000;
    this.#log = options.logger;
    redis.client.on('ready', this.#onReady);
    // The epoch as it is now: a Redis that loses its keys later is told apart from a new one.
    if (redis.ready()) this.#onReady();
  }

  /**
   * Stops renewing this replica's leases and writing anything: what a replica does when it goes away
   * (its claims become orphans for the others to resolve).
   */
  close(): void {
    this.#closed = true;
    this.redis.client.off('ready', this.#onReady);
    for (const o of this.#owned.values()) this.#timers.clearTimeout(o.renew);
  }

  get #epochKey() {
    return `${this.redis.prefix}idem-epoch`;
  }

  get #recoveringKey() {
    return `${this.redis.prefix}idem-recovering`;
  }

  #leaseKey(k: string) {
    return `${this.redis.prefix}idem-lease:${k}`;
  }

  #bindingKey(jobId: string) {
    return `${this.redis.prefix}idem-job:${jobId}`;
  }

  async claim(
    key: string,
    fingerprint: string,
    intent?: ClaimIntent,
    options: ClaimOptions = {},
  ): Promise<Claim> {
    const k = `${this.redis.prefix}idem:${key}`;
    if (this.#closed) throw new StoreUnavailableError('this replica is shutting down');
    if (this.#localKeys.has(k)) return this.#localClaim(k, key, fingerprint, options);
    if (!this.redis.ready()) {
      return this.#unavailable(k, key, fingerprint, options, 'Redis is unreachable');
    }
    const { client } = this.redis;
    const owner = randomUUID();
    const value = JSON.stringify({ fingerprint, owner, ...(intent ? { intent } : {}) } satisfies Stored);
    let answer: [number, string?];
    try {
      if (this.#epoch === undefined) await this.#check();
      answer = (await client.eval(
        CLAIM,
        4,
        k,
        this.#epochKey,
        this.#recoveringKey,
        this.#leaseKey(k),
        this.#epoch ?? '',
        value,
        String(this.#ttlMs),
        owner,
        String(this.#leaseMs),
      )) as [number, string?];
    } catch (err) {
      return this.#unavailable(k, key, fingerprint, options, 'Redis did not answer', err);
    }
    const [state, raw] = answer;
    if (state === 1) {
      if (this.#hasDirty()) void this.#reconcile(false).catch(() => undefined);
      return this.#held(k, key, fingerprint, owner, value, options);
    }
    if (state === 2) return this.claim(key, fingerprint, intent, options); // settled and expired in between
    if (state < 0) return this.#refused(k, key, fingerprint, options, state);
    const stored = JSON.parse(raw!) as Stored;
    if (stored.result) return { state: 'done', result: this.#handOut(stored.result, raw!) };
    if (state === 3) return { state: 'done', result: this.#orphan(stored, raw!) };
    const mine = this.#owned.get(k);
    return {
      state: 'inflight',
      fingerprint: stored.fingerprint,
      wait: mine && mine.raw === raw ? mine.outcome : this.#waitFor(k),
    };
  }

  async retake(
    key: string,
    fingerprint: string,
    unresolved: IdempotentResult,
    options: ClaimOptions = {},
  ): Promise<Claim> {
    const k = `${this.redis.prefix}idem:${key}`;
    if (this.#closed) throw new StoreUnavailableError('this replica is shutting down');
    if (this.#localKeys.has(k) || !this.redis.ready()) {
      if (!this.#localKeys.has(k) && !this.#localAllowed(options)) {
        throw new StoreUnavailableError('Redis is unreachable');
      }
      const local = await this.#local.retake(key, fingerprint, unresolved, options);
      return options.localWhenUnavailable ? local : this.#wrapLocal(k, key, fingerprint, local);
    }
    const u = unresolved.unresolved;
    const seen = this.#seen.get(unresolved);
    if (!u || seen === undefined) return this.claim(key, fingerprint, undefined, options);
    const { client } = this.redis;
    // The new holder keeps what the key is about and when its POST went out: should it die too, the
    // next one still knows what to look for.
    const owner = randomUUID();
    const intent: ClaimIntent = {
      projectId: unresolved.projectId,
      clusterName: unresolved.clusterName,
      snapshotId: u.snapshotId,
      deliveryType: u.deliveryType,
      ...(u.target ? { target: u.target } : {}),
    };
    const value = JSON.stringify({
      fingerprint,
      owner,
      intent,
      ...(u.postedAt !== undefined ? { postedAt: u.postedAt } : {}),
    } satisfies Stored);
    try {
      if (this.#epoch === undefined) await this.#check();
      const [won] = (await client.eval(
        RETAKE,
        4,
        k,
        this.#epochKey,
        this.#recoveringKey,
        this.#leaseKey(k),
        this.#epoch ?? '',
        seen,
        value,
        String(this.#ttlMs),
        owner,
        String(this.#leaseMs),
      )) as [number];
      if (won < 0) return this.#refused(k, key, fingerprint, options, won);
      if (won !== 1) return this.claim(key, fingerprint, undefined, options);
      return this.#held(k, key, fingerprint, owner, value, options);
    } catch (err) {
      return this.#unavailable(k, key, fingerprint, options, 'Redis did not answer', err);
    }
  }

  async bind(jobId: string, owner: string): Promise<boolean> {
    if (!this.redis.ready() || this.#closed) return this.#local.bind(jobId, owner);
    const b = this.#bindingKey(jobId);
    const { client } = this.redis;
    if ((await client.set(b, owner, 'PX', this.#ttlMs, 'NX')) === 'OK') return true;
    return (await client.get(b)) === owner;
  }

  async boundTo(jobIds: readonly string[]): Promise<(string | undefined)[]> {
    if (jobIds.length === 0) return [];
    const local = await this.#local.boundTo(jobIds);
    if (!this.redis.ready()) return local;
    const shared = await this.redis.client.mget(...jobIds.map((id) => this.#bindingKey(id)));
    return shared.map((owner, i) => owner ?? local[i]);
  }

  /** A result handed out of Redis, remembered with the value it came from (for a retake). */
  #handOut(result: IdempotentResult, raw: string): IdempotentResult {
    this.#seen.set(result, raw);
    return result;
  }

  /** An unfinished claim whose holder is gone, answered as what it is: unresolved, never free. */
  #orphan(stored: Stored, raw: string): IdempotentResult {
    const intent = stored.intent;
    return this.#handOut(
      {
        fingerprint: stored.fingerprint,
        projectId: intent?.projectId ?? '',
        clusterName: intent?.clusterName ?? '',
        jobId: '',
        unresolved: {
          snapshotId: intent?.snapshotId ?? '',
          deliveryType: intent?.deliveryType ?? 'RESTORE',
          ...(intent?.target ? { target: intent.target } : {}),
          ...(stored.postedAt !== undefined ? { postedAt: stored.postedAt } : {}),
          orphaned: true,
        },
      },
      raw,
    );
  }

  /** Redis said no claim may be taken now: it lost its keys (`-2`) or is getting them back (`-1`). */
  #refused(
    k: string,
    key: string,
    fingerprint: string,
    options: ClaimOptions,
    state: number,
  ): Promise<Claim> {
    if (state === -2) void this.#check().catch(() => undefined);
    return this.#unavailable(
      k,
      key,
      fingerprint,
      options,
      'Redis lost its keys (restarted without persistence) and the replicas are writing them back',
    );
  }

  #localAllowed(options: ClaimOptions): boolean {
    return this.#withoutRedis === 'single-replica' || options.localWhenUnavailable === true;
  }

  #unavailable(
    k: string,
    key: string,
    fingerprint: string,
    options: ClaimOptions,
    reason: string,
    cause?: unknown,
  ): Promise<Claim> {
    if (!this.#localAllowed(options)) return Promise.reject(new StoreUnavailableError(reason, cause));
    if (options.localWhenUnavailable) return this.#localClaim(k, key, fingerprint, options);
    if (!this.#degradedSaid) {
      this.#degradedSaid = true;
      this.#log?.warn(
        { idempotency: 'single-replica', reason },
        'Idempotency keys kept in this process until Redis can be used again (GATEWAY_IDEMPOTENCY_WITHOUT_REDIS=single-replica)',
      );
    }
    return this.#localClaim(k, key, fingerprint, options);
  }

  /** A claim while Redis cannot be used (single-replica mode): this process's own record. */
  async #localClaim(k: string, key: string, fingerprint: string, options: ClaimOptions): Promise<Claim> {
    const known = this.#remembered.get(k);
    if (known && known.expiresAt > this.#clock.now()) {
      const stored = JSON.parse(known.raw) as Stored;
      if (stored.result) return { state: 'done', result: known.result ?? stored.result };
    }
    const mine = this.#owned.get(k);
    if (mine) {
      const stored = JSON.parse(mine.raw) as Stored;
      return { state: 'inflight', fingerprint: stored.fingerprint, wait: mine.outcome };
    }
    const local = await this.#local.claim(key, fingerprint, undefined, options);
    // A best-effort claim (a request without a key) stays in this process: nothing to write back.
    return options.localWhenUnavailable ? local : this.#wrapLocal(k, key, fingerprint, local);
  }

  /** A local claim's result is remembered as not yet in Redis, and written there when it returns. */
  #wrapLocal(k: string, key: string, fingerprint: string, claim: Claim): Claim {
    if (claim.state !== 'new') return claim;
    this.#localKeys.add(k);
    return {
      state: 'new',
      posting: claim.posting,
      settle: (result) => {
        claim.settle(result);
        if (!result) {
          this.#localKeys.delete(k);
          return;
        }
        this.#remember(k, key, JSON.stringify({ fingerprint, result } satisfies Stored), undefined);
        const kept = this.#remembered.get(k);
        if (kept) kept.result = result;
        if (this.redis.ready()) void this.#reconcile(false).catch(() => undefined);
      },
    };
  }

  /** A claim this replica now holds in Redis: its lease renewed until it is settled. */
  #held(
    k: string,
    key: string,
    fingerprint: string,
    owner: string,
    value: string,
    options: ClaimOptions = {},
  ): Claim {
    const resultTtlMs = options.resultTtlMs ?? this.#ttlMs;
    let finish!: (r: IdempotentResult | undefined) => void;
    const outcome = new Promise<IdempotentResult | undefined>((resolve) => (finish = resolve));
    const lease = this.#leaseKey(k);
    const entry = { raw: value, owner, outcome, renew: undefined as unknown };
    this.#owned.set(k, entry);
    const renew = () => {
      entry.renew = this.#timers.setTimeout(() => {
        if (this.#closed || this.#owned.get(k) !== entry) return;
        this.redis.client.eval(RENEW, 2, k, lease, owner, '', String(this.#leaseMs)).then(
          (held) => {
            if (held === 1) renew();
            else this.#owned.delete(k); // taken over: nothing of ours to renew or write back
          },
          () => renew(), // Redis away: try again; the lease may run out meanwhile
        );
      }, this.#leaseMs / 3);
    };
    renew();
    return {
      state: 'new',
      posting: async (at) => {
        if (this.#closed) throw new StoreUnavailableError('this replica is shutting down');
        const posted = JSON.stringify({ ...(JSON.parse(value) as Stored), postedAt: at } satisfies Stored);
        let held: unknown;
        try {
          held = await this.redis.client.eval(RENEW, 2, k, lease, owner, posted, String(this.#leaseMs));
        } catch (err) {
          throw new StoreUnavailableError('Redis did not answer', err);
        }
        if (held !== 1) throw new StoreUnavailableError('another request took the key over');
        entry.raw = posted;
      },
      settle: (result) => {
        this.#timers.clearTimeout(entry.renew);
        if (this.#owned.get(k) === entry) this.#owned.delete(k);
        finish(result);
        if (this.#closed) return;
        const raw = result ? JSON.stringify({ fingerprint, result } satisfies Stored) : '';
        if (result) this.#remember(k, key, raw, owner, resultTtlMs);
        const binding = result?.jobId ? this.#bindingKey(result.jobId) : '';
        this.redis.client.eval(SETTLE, 3, k, lease, binding, owner, raw, String(resultTtlMs), key).then(
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
      },
    };
  }

  #remember(k: string, key: string, raw: string, owner: string | undefined, ttlMs = this.#ttlMs): void {
    this.#remembered.delete(k);
    this.#remembered.set(k, { key, raw, expiresAt: this.#clock.now() + ttlMs, dirty: true, owner });
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
    if (this.#closed) return;
    const { client } = this.redis;
    // The claims this replica holds: back if Redis lost them (a restart without its data, or the last
    // second of an `appendfsync everysec` file), untouched (NX) if it still has them.
    for (const [k, { raw, owner }] of this.#owned) {
      if ((await client.set(k, raw, 'PX', this.#ttlMs, 'NX')) === 'OK' || all) {
        await client.set(this.#leaseKey(k), owner, 'PX', this.#leaseMs);
      }
    }
    for (const [k, owner] of this.#frees) {
      await client.eval(SETTLE, 3, k, this.#leaseKey(k), '', owner, '', '0', '');
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
      const jobId = (JSON.parse(r.raw) as Stored).result?.jobId;
      const binding = jobId ? this.#bindingKey(jobId) : '';
      const ok =
        r.owner !== undefined
          ? (await client.eval(
              SETTLE,
              3,
              k,
              this.#leaseKey(k),
              binding,
              r.owner,
              r.raw,
              String(ttl),
              r.key,
            )) === 1
          : (await client.set(k, r.raw, 'PX', ttl, 'NX')) === 'OK';
      if (ok && r.owner === undefined && binding) await client.set(binding, r.key, 'PX', ttl, 'NX');
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

  // Polling, not pub/sub: the wait is rare and short, and a poll also notices a holder that died (its
  // lease ran out: an orphan, answered unresolved). Redis unreachable for long: given up (undefined),
  // so the caller claims again and is told the store is unavailable.
  async #waitFor(k: string): Promise<IdempotentResult | undefined> {
    const lease = this.#leaseKey(k);
    for (let unreachable = 0; unreachable * this.#waitMs <= 10 * this.#leaseMs;) {
      await new Promise((r) => setTimeout(r, this.#waitMs));
      let raw: string | null;
      let leased: string | null;
      try {
        [raw, leased] = (await this.redis.client.mget(k, lease)) as [string | null, string | null];
      } catch {
        unreachable++;
        continue;
      }
      unreachable = 0;
      if (!raw) return undefined;
      const stored = JSON.parse(raw) as Stored;
      if (stored.result) return this.#handOut(stored.result, raw);
      if (!leased) return this.#orphan(stored, raw);
    }
    return undefined;
  }
}
