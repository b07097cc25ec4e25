import type { Clock } from './clock.js';

/** Options of an `ExpiringMap`. */
export interface ExpiringMapOptions {
  /** How long an entry lives after it was set. */
  ttlMs: number;
  /** Most entries; setting one more drops the oldest. */
  maxEntries: number;
  clock: Clock;
}

/**
 * A bounded map whose entries expire on the injected clock: memory stays bounded whatever keys
 * arrive, and tests step time instead of waiting. By hand (the pattern of `FamilyCache`): the
 * project declares no LRU library, and insertion order plus one check on read is all this needs.
 */
export class ExpiringMap<K, V> {
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();
  readonly #o: ExpiringMapOptions;

  constructor(options: ExpiringMapOptions) {
    this.#o = options;
  }

  /** The live value, or undefined (an expired entry is dropped on the way). */
  get(key: K): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.#o.clock.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Sets (or renews) an entry for `ttlMs`, dropping the oldest entry past `maxEntries`. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#o.clock.now() + this.#o.ttlMs });
    if (this.#entries.size > this.#o.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }
}
