import type { Clock } from '../time/clock.js';
import { abortable } from './abortable.js';

/**
 * The kinds of Atlas reads, each with its own freshness bound: what changes rarely (projects,
 * clusters) may be older than what changes by the minute (snapshots) or by the second (jobs).
 */
export const READ_KINDS = ['projects', 'clusters', 'snapshots', 'jobs'] as const;
export type ReadKind = (typeof READ_KINDS)[number];

/**
 * How one call uses the cache:
 * - `use`: a live entry answers; else one upstream read (shared with identical reads in flight) fills it;
 * - `refresh`: always upstream, and the answer replaces the entry (a caller asking for fresh data);
 * - `bypass`: upstream, the cache neither read nor written (job pollers).
 */
export type CacheMode = 'use' | 'refresh' | 'bypass';

/** A successful GET answer as stored: enough to parse it again, nothing of the request. */
export interface CachedRead {
  body: string;
  contentType: string | undefined;
  /** When Atlas answered it (ms since the epoch, the cache's clock). */
  storedAt: number;
}

/** What an upstream read hands the cache. */
export interface FreshRead {
  entry: CachedRead;
  /**
   * Atlas's own freshness bound (`Cache-Control`): `false` for `no-store`/`no-cache`, a number for
   * `max-age`. @default undefined (only the kind's bound)
   */
  maxAgeMs?: number | false | undefined;
}

/**
 * Where entries are shared between replicas (Redis). Every method may reject (Redis down): the
 * cache then uses its local store and counts it.
 */
export interface SharedReadStore {
  /** Whether commands can run now; while false the local store stands in. */
  ready(): boolean;
  get(key: string): Promise<CachedRead | undefined>;
  /** The invalidation generation of `tag` (0 when never invalidated). */
  generation(tag: string): Promise<number>;
  /** Stores for `ttlMs`, unless `tag`'s generation moved past `generation` (invalidated meanwhile). */
  set(key: string, entry: CachedRead, ttlMs: number, tag?: TagAt): Promise<void>;
  /** Drops every entry stored under `tag` and moves its generation on. */
  invalidate(tag: string): Promise<void>;
}

/** A tag and the generation it had when the upstream read began. */
export interface TagAt {
  tag: string;
  generation: number;
}

/** Counters since creation (metrics, tests, the bench). */
export interface ReadCacheStats {
  /** Answered from a live entry. */
  hits: number;
  /** Reads that started an upstream request to fill the cache (`use` misses and `refresh`es). */
  misses: number;
  /** Reads that joined an identical upstream read already in flight. */
  coalesced: number;
  /** `refresh` reads (a caller asked for fresh data). */
  refreshes: number;
  /** Reads that skipped the cache (`bypass`, or their kind's bound is 0). */
  bypassed: number;
  /** Answers not stored: Atlas said `no-store`/`no-cache`, or an invalidation overtook the read. */
  notStored: number;
  invalidations: number;
  /** Times the shared store was down or failed and the local store stood in (or a step was lost). */
  sharedFallbacks: number;
}

export interface ReadCacheOptions {
  /** Freshness bound per kind in milliseconds; 0 turns a kind off. */
  ttlMs: Readonly<Record<ReadKind, number>>;
  /** Shared with the other replicas (Redis). @default none: this process only */
  shared?: SharedReadStore | undefined;
  /** Most entries of the local store; the oldest goes first. @default 10000 */
  maxEntries?: number;
  clock: Clock;
}

/** A read as the cache sees it. */
export interface CacheRead {
  /** Already scoped to the credentials and the caller's rights (see `AtlasHttp`); opaque here. */
  key: string;
  kind: ReadKind;
  /** What invalidates it (a cluster's jobs). @default none */
  tag?: string | undefined;
  mode: CacheMode;
  /** This caller's abort: it stops waiting, and the shared read stops once nobody waits. */
  signal?: AbortSignal | undefined;
}

interface Flight {
  promise: Promise<CachedRead>;
  controller: AbortController;
  waiters: number;
  /** The local generation of the read's tag when it began: a later invalidation makes it too old to join. */
  localGeneration: number;
}

/**
 * The shared upstream read cache: GET answers kept per credential scope for their kind's freshness
 * bound, identical reads in flight coalesced into one upstream request (single flight), entries of a
 * tag dropped by our own mutations, shared between replicas through `shared` when it is up. Only
 * successful answers are stored: a failure is never served from here. Knows nothing of GraphQL.
 * By hand rather than a caching library: the single flight with shared abort, the invalidation
 * generations and the Redis fallback are the substance, and none of the declared dependencies does them.
 */
export class ReadCache {
  readonly stats: ReadCacheStats = {
    hits: 0,
    misses: 0,
    coalesced: 0,
    refreshes: 0,
    bypassed: 0,
    notStored: 0,
    invalidations: 0,
    sharedFallbacks: 0,
  };
  readonly #o: ReadCacheOptions;
  readonly #local: LocalReadStore;
  readonly #flights = new Map<string, Flight>();
  readonly #localGenerations = new Map<string, number>();

  constructor(options: ReadCacheOptions) {
    this.#o = options;
    this.#local = new LocalReadStore(options.clock, options.maxEntries ?? 10_000);
  }

  /** The kind's freshness bound (0: not cached). */
  ttlMs(kind: ReadKind): number {
    return this.#o.ttlMs[kind];
  }

  /** Answers `read` from the cache or through `fetch` (given the signal of the shared upstream read). */
  async read(read: CacheRead, fetch: (signal: AbortSignal) => Promise<FreshRead>): Promise<CachedRead> {
    const ttl = this.ttlMs(read.kind);
    if (read.mode === 'bypass' || ttl <= 0) {
      this.stats.bypassed++;
      const controller = new AbortController();
      return this.#join(this.#flight(read, ttl, false, fetch, controller), read.signal);
    }
    if (read.mode === 'use') {
      const hit = await this.#get(read.key);
      if (hit) {
        this.stats.hits++;
        return hit;
      }
    } else {
      this.stats.refreshes++;
    }
    const localGeneration = this.#localGeneration(read.tag);
    const current = this.#flights.get(read.key);
    if (current && current.localGeneration === localGeneration && !current.controller.signal.aborted) {
      this.stats.coalesced++;
      return this.#join(current, read.signal);
    }
    this.stats.misses++;
    const controller = new AbortController();
    const flight = this.#flight(read, ttl, true, fetch, controller);
    this.#flights.set(read.key, flight);
    void flight.promise.then(
      () => this.#forget(read.key, flight),
      () => this.#forget(read.key, flight),
    );
    return this.#join(flight, read.signal);
  }

  /** Drops every entry of `tag` here and, when it is up, in the shared store. */
  async invalidate(tag: string): Promise<void> {
    this.stats.invalidations++;
    this.#localGenerations.set(tag, this.#localGeneration(tag) + 1);
    this.#local.invalidate(tag);
    const shared = this.#o.shared;
    if (!shared) return;
    if (!shared.ready()) {
      // The other replicas keep their entries of this tag until their bound runs out (docs/caching.md).
      this.stats.sharedFallbacks++;
      return;
    }
    await shared.invalidate(tag).catch(() => {
      this.stats.sharedFallbacks++;
    });
  }

  #flight(
    read: CacheRead,
    ttl: number,
    store: boolean,
    fetch: (signal: AbortSignal) => Promise<FreshRead>,
    controller: AbortController,
  ): Flight {
    const localGeneration = this.#localGeneration(read.tag);
    const promise = (async () => {
      const tagAt =
        store && read.tag ? { tag: read.tag, generation: await this.#generation(read.tag) } : undefined;
      const fresh = await fetch(controller.signal);
      if (!store) return fresh.entry;
      const bound = fresh.maxAgeMs === false ? 0 : Math.min(ttl, fresh.maxAgeMs ?? ttl);
      if (bound <= 0 || this.#localGeneration(read.tag) !== localGeneration) {
        this.stats.notStored++;
        return fresh.entry;
      }
      await this.#set(read.key, fresh.entry, bound, tagAt);
      return fresh.entry;
    })();
    // Nobody may be left to see a failure (every waiter gave up): it must not be unhandled.
    promise.catch(() => undefined);
    return { promise, controller, waiters: 0, localGeneration };
  }

  async #join(flight: Flight, signal: AbortSignal | undefined): Promise<CachedRead> {
    flight.waiters++;
    try {
      return await abortable(flight.promise, signal);
    } catch (err) {
      // The last waiter to give up takes the upstream read down with it; until then it serves the others.
      if (signal?.aborted && --flight.waiters === 0) flight.controller.abort(signal.reason);
      throw err;
    }
  }

  #forget(key: string, flight: Flight): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }

  #localGeneration(tag: string | undefined): number {
    return tag === undefined ? 0 : (this.#localGenerations.get(tag) ?? 0);
  }

  async #get(key: string): Promise<CachedRead | undefined> {
    const shared = this.#usableShared();
    if (shared) {
      try {
        return await shared.get(key);
      } catch {
        this.stats.sharedFallbacks++;
      }
    }
    return this.#local.get(key);
  }

  async #generation(tag: string): Promise<number> {
    const shared = this.#usableShared();
    if (shared) {
      try {
        return await shared.generation(tag);
      } catch {
        this.stats.sharedFallbacks++;
      }
    }
    return this.#local.generation(tag);
  }

  async #set(key: string, entry: CachedRead, ttlMs: number, tag: TagAt | undefined): Promise<void> {
    const shared = this.#usableShared();
    if (shared) {
      try {
        return await shared.set(key, entry, ttlMs, tag);
      } catch {
        this.stats.sharedFallbacks++;
      }
    }
    this.#local.set(key, entry, ttlMs, tag);
  }

  #usableShared(): SharedReadStore | undefined {
    const shared = this.#o.shared;
    if (!shared) return undefined;
    if (shared.ready()) return shared;
    this.stats.sharedFallbacks++;
    return undefined;
  }
}

/** The in-process store: bounded, expiring on the injected clock, with tags and generations. */
export class LocalReadStore {
  readonly #entries = new Map<string, { entry: CachedRead; expiresAt: number; tag: string | undefined }>();
  readonly #tags = new Map<string, Set<string>>();
  readonly #generations = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries: number,
  ) {}

  get(key: string): CachedRead | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock.now()) {
      this.#drop(key);
      return undefined;
    }
    return e.entry;
  }

  generation(tag: string): number {
    return this.#generations.get(tag) ?? 0;
  }

  set(key: string, entry: CachedRead, ttlMs: number, tag?: TagAt): void {
    if (tag && this.generation(tag.tag) !== tag.generation) return;
    this.#drop(key);
    this.#entries.set(key, { entry, expiresAt: this.clock.now() + ttlMs, tag: tag?.tag });
    if (tag) {
      let keys = this.#tags.get(tag.tag);
      if (!keys) this.#tags.set(tag.tag, (keys = new Set()));
      keys.add(key);
    }
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#drop(oldest);
    }
  }

  invalidate(tag: string): void {
    this.#generations.set(tag, this.generation(tag) + 1);
    for (const key of this.#tags.get(tag) ?? []) this.#entries.delete(key);
    this.#tags.delete(tag);
  }

  get size(): number {
    return this.#entries.size;
  }

  #drop(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    if (e.tag) {
      const keys = this.#tags.get(e.tag);
      keys?.delete(key);
      if (keys?.size === 0) this.#tags.delete(e.tag);
    }
  }
}

/**
 * What Atlas's `Cache-Control` allows: `false` for `no-store`/`no-cache`, the `max-age` in
 * milliseconds, or undefined when it says neither. `private` is no obstacle: entries are kept per
 * credential scope, never for another principal.
 */
export function freshnessOf(header: string | string[] | undefined): number | false | undefined {
  const value = (Array.isArray(header) ? header.join(',') : (header ?? '')).toLowerCase();
  if (!value) return undefined;
  const directives = value.split(',').map((d) => d.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache')) return false;
  const maxAge = directives.find((d) => d.startsWith('max-age='));
  if (maxAge === undefined) return undefined;
  const seconds = Number(maxAge.slice('max-age='.length));
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : false;
}
