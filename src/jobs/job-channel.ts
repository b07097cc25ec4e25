import { isTerminal } from '../backup/mappers.js';
import type { RestoreJobSource } from '../backup/model.js';

/** What pollers share about a job: a new state, or a permanent failure (then the stream ends). */
export type JobMessage =
  | { type: 'job'; job: RestoreJobSource }
  | { type: 'error'; status: number; errorCode: string; detail: string | undefined };

/**
 * How the pollers of several replicas share a job: one of them leads (polls Atlas) and publishes,
 * every replica delivers to its own subscribers. In one process everything is local.
 */
export interface JobChannel {
  /** Sends a message to every replica listening on `key`, this one included. */
  publish(key: string, message: JobMessage): Promise<void>;
  /** Messages for `key` from any replica; answers how to stop listening. */
  listen(key: string, onMessage: (message: JobMessage) => void): () => void;
  /** The last job state published for `key`, for a subscriber that arrives late. */
  last(key: string): Promise<RestoreJobSource | undefined>;
  /** Takes or renews the lease on `key` for `ttlMs`; true when this replica should poll it now. */
  lead(key: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up (the job ended or nobody here watches it any more). */
  release(key: string): Promise<void>;
}

/** The single-process channel: this replica always leads and delivers to itself. */
export class MemoryJobChannel implements JobChannel {
  readonly #listeners = new Map<string, Set<(m: JobMessage) => void>>();
  readonly #last = new Map<string, RestoreJobSource>();

  async publish(key: string, message: JobMessage): Promise<void> {
    this.deliver(key, message);
  }

  /** Delivers to this process's listeners only (also used by the Redis channel when Redis is down). */
  deliver(key: string, message: JobMessage): void {
    if (message.type === 'job') this.#last.set(key, message.job);
    for (const fn of [...(this.#listeners.get(key) ?? [])]) fn(message);
    if (message.type === 'error' || (message.type === 'job' && isTerminal(message.job.dto.status))) {
      this.#last.delete(key);
    }
  }

  listen(key: string, onMessage: (message: JobMessage) => void): () => void {
    const set = this.#listeners.get(key) ?? new Set();
    this.#listeners.set(key, set);
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  async last(key: string): Promise<RestoreJobSource | undefined> {
    return this.#last.get(key);
  }

  async lead(): Promise<boolean> {
    return true;
  }

  async release(): Promise<void> {}
}
