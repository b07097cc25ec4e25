import type { Clock } from '../time/clock.js';
import { GatewayError } from '../errors/index.js';

/** What a finished idempotent request left behind: enough to find its job again. */
export interface IdempotentResult {
  /** Hash of the request's input, so the same key with another input is refused. */
  fingerprint: string;
  projectId: string;
  clusterName: string;
  /** Empty while `unresolved`. */
  jobId: string;
  /**
   * Set when Atlas may have created the job but its answer was lost and could not be checked: the
   * jobs known before the POST, so a retry can tell whether one was created.
   */
  unresolved?: { before: string[]; snapshotId: string; deliveryType: 'DOWNLOAD' | 'RESTORE' };
}

export type Claim =
  | { state: 'new'; settle(result: IdempotentResult | undefined): void }
  | { state: 'inflight'; fingerprint: string; wait: Promise<IdempotentResult | undefined> }
  | { state: 'done'; result: IdempotentResult };

/**
 * Idempotency keys, behind one interface so several replicas can share them later (issue #9).
 * `claim` is atomic: of two concurrent claims of one key, exactly one gets `new`.
 */
export interface IdempotencyStore {
  claim(key: string, fingerprint: string): Promise<Claim>;
  /**
   * Takes over a key whose result is `unresolved` (the job's creation could not be confirmed), so that
   * one request at a time finds out what happened: of concurrent retakes of one unresolved result
   * exactly one gets `new` and must settle it (with the job, the same unresolved result, or undefined
   * to free the key); the others see it in flight and wait. When the key holds anything else by then,
   * answers its current state, as `claim` would.
   */
  retake(key: string, fingerprint: string, unresolved: IdempotentResult): Promise<Claim>;
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
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: MemoryIdempotencyStoreOptions) {
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? 86_400_000;
    this.#max = options.maxKeys ?? 100_000;
  }

  async claim(key: string, fingerprint: string): Promise<Claim> {
    const now = this.#clock.now();
    const e = this.#entries.get(key);
    if (e && e.expiresAt > now) {
      if ('result' in e) return { state: 'done', result: e.result };
      return { state: 'inflight', fingerprint: e.fingerprint, wait: e.pending };
    }
    return this.#take(key, fingerprint, now);
  }

  async retake(key: string, fingerprint: string, unresolved: IdempotentResult): Promise<Claim> {
    const now = this.#clock.now();
    const e = this.#entries.get(key);
    // The very result this caller saw, still there: nobody took it over in between.
    if (e && e.expiresAt > now && 'result' in e && e.result === unresolved && unresolved.unresolved) {
      return this.#take(key, fingerprint, now);
    }
    return this.claim(key, fingerprint);
  }

  #take(key: string, fingerprint: string, now: number): Claim {
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
        if (result)
          this.#entries.set(key, { fingerprint, expiresAt: this.#clock.now() + this.#ttlMs, result });
        else this.#entries.delete(key);
        settle(result);
      },
    };
  }
}
