import type { Clock } from '../time/clock.js';
import { clusterKey, type ClusterRef, type SnapshotSource } from './model.js';

/** What a job request needs of a snapshot known COMPLETED: when it was taken (its jobs are not older). */
export interface KnownSnapshot {
  /** Atlas's `scheduledTime` (ISO-8601), when it sent one. */
  scheduledTime: string | undefined;
}

export interface CompletedSnapshotsOptions {
  /** Decides when a remembered snapshot has passed its `expiration`. */
  clock: Clock;
  /**
   * Most snapshots remembered; the one used longest ago goes first. An entry is its key (two ids and
   * a cluster name) and one date, about 200 bytes: 10,000 keep a few MB.
   * @default 10000
   */
  maxEntries?: number;
}

/**
 * The snapshots this gateway has read as COMPLETED, so that a job request need not read the snapshot
 * again before its POST (issue #19: the download flow's sixth call). COMPLETED is final in Atlas's
 * status enum (PENDING, QUEUED, RUNNING, FAILED, COMPLETED): a snapshot leaves it only by expiring
 * (its `expiration`, after which an entry is not used) or by being deleted, which the POST then
 * answers with 404 (the backup service forgets the entry on that answer).
 *
 * One instance serves every caller of the gateway. That is safe because an entry only skips a
 * pre-check that turns a snapshot that is not COMPLETED into a typed CONFLICT: the caller's rights
 * are checked before (FORBIDDEN, NOT_FOUND), the job list and the POST still go upstream with the
 * caller's own credentials, and Atlas answers them. Nothing read with one caller's credentials is
 * answered to another: the entry is a yes/no and a date that only bounds the job list read.
 */
export class CompletedSnapshots {
  // A Map iterates in insertion order: re-inserting on use makes its first key the least recently used.
  readonly #entries = new Map<string, { scheduledTime: string | undefined; expiresAt: number }>();
  readonly #max: number;
  readonly #clock: Clock;

  constructor(options: CompletedSnapshotsOptions) {
    this.#max = options.maxEntries ?? 10_000;
    this.#clock = options.clock;
  }

  /**
   * What a read of the snapshot said: COMPLETED is remembered; any other status forgets it (a read is
   * the truth, should Atlas ever say otherwise of a known id).
   */
  saw(snapshot: SnapshotSource): void {
    const id = snapshot.dto.id;
    if (id === undefined) return;
    if (snapshot.dto.status !== 'COMPLETED') {
      this.forget(snapshot, id);
      return;
    }
    // No date (or an unreadable one) is no bound: the POST's 404 still tells when it is gone.
    const expiration = Date.parse(snapshot.dto.expiration ?? '');
    const key = keyOf(snapshot, id);
    this.#entries.delete(key);
    this.#entries.set(key, {
      scheduledTime: snapshot.dto.scheduledTime,
      expiresAt: Number.isNaN(expiration) ? Infinity : expiration,
    });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** The snapshot, when a read saw it COMPLETED and it has not expired since; undefined otherwise. */
  get(ref: ClusterRef, snapshotId: string): KnownSnapshot | undefined {
    const key = keyOf(ref, snapshotId);
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt <= this.#clock.now()) return undefined;
    this.#entries.set(key, e);
    return { scheduledTime: e.scheduledTime };
  }

  /** The snapshot is gone (Atlas answered 404 for it): the next request reads it again. */
  forget(ref: ClusterRef, snapshotId: string): void {
    this.#entries.delete(keyOf(ref, snapshotId));
  }

  get size(): number {
    return this.#entries.size;
  }
}

const keyOf = (ref: ClusterRef, snapshotId: string) => `${clusterKey(ref)}/${snapshotId}`;
