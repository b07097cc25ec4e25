import { createHash } from 'node:crypto';
import type { Clock } from '../time/clock.js';
import { GatewayError } from '../errors/index.js';

/**
 * The store key of one caller's idempotency key for one kind of request, for every store. Joined with
 * a separator, parts that may hold it are ambiguous (`svc` + `x:download:K` and `svc:download:x` + `K`
 * gave one key, so one caller got another's job); each part is length-prefixed instead, which reads
 * back one way only, then hashed: a fixed 64 hex whatever the parts' length, and no caller id or key in
 * plain text in Redis.
 */
export function idempotencyStoreKey(callerId: string, kind: string, key: string): string {
  const framed = [callerId, kind, key].map((part) => `${part.length}:${part}`).join('');
  return createHash('sha256').update(framed, 'utf8').digest('hex');
}

/** What a finished idempotent request left behind: enough to find its job again. */
export interface IdempotentResult {
  /** Hash of the request's input, so the same key with another input is refused. */
  fingerprint: string;
  projectId: string;
  clusterName: string;
  /** Empty while `unresolved`. */
  jobId: string;
  /**
   * Set when Atlas may have created the job and nobody knows whether it did: the POST's answer was
   * lost (and the jobs read again did not show it), or the request that held the key died (`orphaned`).
   * What to look for among the cluster's recent jobs, and since when.
   */
  unresolved?: Unresolved;
}

/** What a request of a key is about to create: enough to recognise its job among the cluster's. */
export interface ClaimIntent {
  /** The source cluster, where Atlas lists the job. */
  projectId: string;
  clusterName: string;
  snapshotId: string;
  deliveryType: 'DOWNLOAD' | 'RESTORE';
  /** RESTORE only: the cluster it overwrites. */
  target?: { projectId: string; clusterName: string };
}

/** A key whose job may exist: what it was for, and when its POST went out (if it did). */
export interface Unresolved extends Omit<ClaimIntent, 'projectId' | 'clusterName'> {
  /** When the POST was (about to be) sent, by the gateway's clock; undefined: it never was. */
  postedAt?: number;
  /** The request that held the key stopped renewing its lease (its replica died) before settling it. */
  orphaned?: true;
}

/** How one claim differs from the store's defaults. */
export interface ClaimOptions {
  /** How long its settled result is remembered. @default the store's TTL (24 h) */
  resultTtlMs?: number;
  /**
   * While the shared store cannot be used, claim in this process instead of refusing: a best effort
   * for requests without a key of their own, which would otherwise go unprotected. @default false
   */
  localWhenUnavailable?: boolean;
}

export type Claim =
  | {
      state: 'new';
      settle(result: IdempotentResult | undefined): void;
      /**
       * Records, before the POST is sent, that it is about to be (write-ahead): should this replica die,
       * whoever takes the key over knows to look for the job. Rejects (and nothing may be sent) when
       * the key can no longer be written or another request took it over.
       */
      posting(at: number): Promise<void>;
    }
  | { state: 'inflight'; fingerprint: string; wait: Promise<IdempotentResult | undefined> }
  | { state: 'done'; result: IdempotentResult };

/**
 * Idempotency keys, behind one interface so several replicas can share them later (issue #9).
 * `claim` is atomic: of two concurrent claims of one key, exactly one gets `new`.
 */
export interface IdempotencyStore {
  /** `intent` says what the key's job will be, for whoever must find it should this request die. */
  claim(key: string, fingerprint: string, intent?: ClaimIntent, options?: ClaimOptions): Promise<Claim>;
  /**
   * Takes over a key whose result is `unresolved` (the job's creation could not be confirmed), so that
   * one request at a time finds out what happened: of concurrent retakes of one unresolved result
   * exactly one gets `new` and must settle it (with the job, the same unresolved result, or undefined
   * to free the key); the others see it in flight and wait. When the key holds anything else by then,
   * answers its current state, as `claim` would.
   */
  retake(
    key: string,
    fingerprint: string,
    unresolved: IdempotentResult,
    options?: ClaimOptions,
  ): Promise<Claim>;
  /**
   * Marks a job as the one of `owner` (an idempotency key, or a request without one), unless another
   * owner has it: answers whether it is `owner`'s now. A job found among the cluster's recent jobs is
   * adopted only once it is bound, so two lost POSTs never adopt the same job.
   */
  bind(jobId: string, owner: string): Promise<boolean>;
  /** The owner each job is bound to (undefined: none). */
  boundTo(jobIds: readonly string[]): Promise<(string | undefined)[]>;
  /** Stops what the store runs in the background (listeners, timers). @default nothing to stop */
  close?(): void;
}

/**
 * The shared store that makes keys hold across replicas cannot be used now (Redis unreachable, or
 * restoring the keys it lost): the keyed request is refused before anything is sent, so a retry (with
 * the same key) is safe.
 */
export class StoreUnavailableError extends GatewayError {
  constructor(reason: string, cause?: unknown) {
    super(
      'STORE_UNAVAILABLE',
      `The idempotency store is unavailable (${reason}); nothing was sent to Atlas. Retry with the same idempotencyKey.`,
      { extensions: { retryable: true }, cause },
    );
  }
}

export interface MemoryIdempotencyStoreOptions {
  clock: Clock;
  /** How long a key is remembered. @default 86400000 (24 h) */
  ttlMs?: number;
  /** Most keys remembered; the oldest go first. @default 100000 */
  maxKeys?: number;
}

type Entry =
  | { fingerprint: string; expiresAt: number; result: IdempotentResult }
  | { fingerprint: string; expiresAt: number; pending: Promise<IdempotentResult | undefined> };

/** One process's idempotency keys. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  /** Which key (or unkeyed request) each job belongs to. */
  readonly #bound = new Map<string, { owner: string; expiresAt: number }>();
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: MemoryIdempotencyStoreOptions) {
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? 86_400_000;
    this.#max = options.maxKeys ?? 100_000;
  }

  async claim(
    key: string,
    fingerprint: string,
    _intent?: ClaimIntent,
    options: ClaimOptions = {},
  ): Promise<Claim> {
    const now = this.#clock.now();
    const e = this.#entries.get(key);
    if (e && e.expiresAt > now) {
      if ('result' in e) return { state: 'done', result: e.result };
      return { state: 'inflight', fingerprint: e.fingerprint, wait: e.pending };
    }
    return this.#take(key, fingerprint, now, options.resultTtlMs ?? this.#ttlMs);
  }

  async retake(
    key: string,
    fingerprint: string,
    unresolved: IdempotentResult,
    options: ClaimOptions = {},
  ): Promise<Claim> {
    const now = this.#clock.now();
    const e = this.#entries.get(key);
    // The very result this caller saw, still there: nobody took it over in between.
    if (e && e.expiresAt > now && 'result' in e && e.result === unresolved && unresolved.unresolved) {
      return this.#take(key, fingerprint, now, options.resultTtlMs ?? this.#ttlMs);
    }
    return this.claim(key, fingerprint, undefined, options);
  }

  #take(key: string, fingerprint: string, now: number, resultTtlMs: number): Claim {
    let settle!: (r: IdempotentResult | undefined) => void;
    const pending = new Promise<IdempotentResult | undefined>((resolve) => (settle = resolve));
    this.#entries.set(key, { fingerprint, expiresAt: now + this.#ttlMs, pending });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return {
      state: 'new',
      settle: (result) => {
        // A failed first request frees the key: nothing was created, so a retry may try again. The
        // result is remembered for the TTL from now, as the Redis store does, however long it took.
        if (result) {
          this.#entries.set(key, { fingerprint, expiresAt: this.#clock.now() + resultTtlMs, result });
          if (result.jobId) void this.bind(result.jobId, key);
        } else this.#entries.delete(key);
        settle(result);
      },
      // One process: the request that holds the key cannot die without the store dying with it.
      posting: async () => undefined,
    };
  }

  async bind(jobId: string, owner: string): Promise<boolean> {
    const now = this.#clock.now();
    const b = this.#bound.get(jobId);
    if (b && b.expiresAt > now && b.owner !== owner) return false;
    this.#bound.delete(jobId);
    this.#bound.set(jobId, { owner, expiresAt: now + this.#ttlMs });
    if (this.#bound.size > this.#max) {
      const oldest = this.#bound.keys().next().value;
      if (oldest !== undefined) this.#bound.delete(oldest);
    }
    return true;
  }

  async boundTo(jobIds: readonly string[]): Promise<(string | undefined)[]> {
    const now = this.#clock.now();
    return jobIds.map((id) => {
      const b = this.#bound.get(id);
      return b && b.expiresAt > now ? b.owner : undefined;
    });
  }
}
