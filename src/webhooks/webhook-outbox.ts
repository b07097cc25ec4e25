/** Where a delivery stands. */
export type DeliveryStatus = 'PENDING' | 'RETRYING' | 'DELIVERED' | 'DEAD_LETTERED';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'PENDING',
  'RETRYING',
  'DELIVERED',
  'DEAD_LETTERED',
];

/** What an event is about, kept beside it for the deliveries query. */
export interface DeliverySubject {
  eventId: string;
  /** The CloudEvents type. */
  type: string;
  jobId: string;
  projectId: string;
  clusterName: string;
}

/** One event for one hook, and how its delivery went so far. */
export interface DeliveryRecord extends DeliverySubject {
  hookId: string;
  status: DeliveryStatus;
  /** POSTs made (answered or not). */
  attempts: number;
  lastStatusCode: number | null;
  /** The last failure in a few words (a status, a timeout, a network error code); never a secret. */
  lastError: string | null;
  createdAt: number;
  /** Epoch ms of the next try; null once delivered or dead-lettered. */
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  deadLetteredAt: number | null;
}

/** A delivery a worker took from the outbox and now owns until it reports the outcome. */
export interface ClaimedDelivery {
  eventId: string;
  /** The signed payload: the CloudEvent's JSON, byte for byte as on the first try. */
  body: string;
  attempts: number;
  /** Where the outbox keeps it while claimed (a stream entry, or the retry schedule). */
  ref: { kind: 'stream'; entryId: string } | { kind: 'retry' };
}

/** How an attempt ended. */
export type AttemptOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; statusCode: number | null; error: string; nextAttemptAt: number }
  | { kind: 'dead'; statusCode: number | null; error: string };

/**
 * The webhook outbox: each event enqueued once per event id (whoever sees the change, however many
 * times), claimed by one worker at a time, retried on a schedule, and kept as a record once delivered
 * or dead-lettered. Redis (`RedisWebhookOutbox`) survives restarts and replicas; memory does not.
 */
export interface WebhookOutbox {
  /**
   * Adds the event: `duplicate` when this event id is already there (another replica saw the same
   * change, or this one saw it before), `full` when a bounded outbox refused it (memory only).
   */
  enqueue(hookId: string, subject: DeliverySubject, body: string, nowMs: number): Promise<EnqueueResult>;
  /**
   * Up to `max` deliveries of the hook for `consumer` to attempt now: retries that are due, entries a
   * dead consumer left pending, then new ones.
   */
  claim(hookId: string, consumer: string, max: number, nowMs: number): Promise<ClaimedDelivery[]>;
  /** Records an attempt's outcome and lets the delivery go (done, rescheduled, or dead-lettered). */
  settle(hookId: string, claimed: ClaimedDelivery, outcome: AttemptOutcome, nowMs: number): Promise<void>;
  /** Gives back a claimed delivery unattempted (shutdown): due again at once, for any replica. */
  release(hookId: string, claimed: ClaimedDelivery, nowMs: number): Promise<void>;
  /** When the hook's next scheduled retry is due, if any. */
  nextRetryAt(hookId: string): Promise<number | undefined>;
  /** The hook's deliveries, newest first. */
  deliveries(
    hookId: string,
    query: { statuses?: readonly DeliveryStatus[] | undefined; first: number },
  ): Promise<DeliveryRecord[]>;
  /** Events of the hook not delivered nor dead-lettered yet (queued, claimed or waiting for a retry). */
  backlog(hookId: string): Promise<number>;
}

export type EnqueueResult = 'added' | 'duplicate' | 'full';

/** How long a delivered or dead-lettered record (and so its dedupe) is kept. */
export const RECORD_RETENTION_MS = 7 * 24 * 3_600_000;
