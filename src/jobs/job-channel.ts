import { isTerminal } from '../backup/mappers.js';
import type { RestoreJobSource } from '../backup/model.js';

/**
 * Whatever a poller shares (see `PollKind` in job-pollers.ts): a job, a snapshot, a cluster's recent
 * jobs. A state whose `dto.status` is COMPLETED or FAILED is the last of its key.
 */
export interface PolledState {
  readonly dto?: { readonly status?: string | undefined } | undefined;
}

/** Whether a shared state ends its key (a job or snapshot that reached COMPLETED or FAILED). */
export const endsKey = (state: PolledState): boolean => isTerminal(state.dto?.status);

/**
 * What pollers share about a key: a new state, or a permanent failure (then the stream ends). The
 * field keeps the name `job` (the wire format replicas already exchange) whatever the kind.
 */
export type JobMessage<T extends PolledState = RestoreJobSource> =
  { type: 'job'; job: T } | { type: 'error'; status: number; errorCode: string; detail: string | undefined };

/**
 * How the pollers of several replicas share a job: one of them leads (polls Atlas) and publishes,
 * every replica delivers to its own subscribers. In one process everything is local.
 */
export interface JobChannel {
  /** Sends a message to every replica listening on `key`, this one included. */
  publish(key: string, message: JobMessage<PolledState>): Promise<void>;
  /** Messages for `key` from any replica; answers how to stop listening. */
  listen(key: string, onMessage: (message: JobMessage<PolledState>) => void): () => void;
  /** The last state published for `key`, for a subscriber that arrives late. */
  last(key: string): Promise<PolledState | undefined>;
  /** Takes or renews the lease on `key` for `ttlMs`; true when this replica should poll it now. */
  lead(key: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up (the job ended or nobody here watches it any more). */
  release(key: string): Promise<void>;
}

/** The single-process channel: this replica always leads and delivers to itself. */
export class MemoryJobChannel implements JobChannel {
  readonly #listeners = new Map<string, Set<(m: JobMessage<PolledState>) => void>>();
  readonly #last = new Map<string, PolledState>();

  async publish(key: string, message: JobMessage<PolledState>): Promise<void> {
    this.deliver(key, message);
  }

  /** Delivers to this process's listeners only (also used by the Redis channel when Redis is down). */
  deliver(key: string, message: JobMessage<PolledState>): void {
    if (message.type === 'job') this.#last.set(key, message.job);
    for (const fn of [...(this.#listeners.get(key) ?? [])]) fn(message);
    if (message.type === 'error' || (message.type === 'job' && endsKey(message.job))) {
      this.#last.delete(key);
    }
  }

  listen(key: string, onMessage: (message: JobMessage<PolledState>) => void): () => void {
    const set = this.#listeners.get(key) ?? new Set();
    this.#listeners.set(key, set);
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  async last(key: string): Promise<PolledState | undefined> {
    return this.#last.get(key);
  }

  async lead(): Promise<boolean> {
    return true;
  }

  async release(): Promise<void> {}
}
