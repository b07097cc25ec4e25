import {
  RECORD_RETENTION_MS,
  type AttemptOutcome,
  type ClaimedDelivery,
  type DeliveryRecord,
  type DeliveryStatus,
  type DeliverySubject,
  type EnqueueResult,
  type WebhookOutbox,
} from './webhook-outbox.js';

export interface MemoryWebhookOutboxOptions {
  /** Most undelivered events held, every hook together; more are refused (counted in `dropped`). @default 1000 */
  maxBacklog?: number;
  /** Most delivered or dead-lettered records kept per hook for the deliveries query. @default 1000 */
  maxRecords?: number;
}

interface Entry {
  record: DeliveryRecord;
  body: string | undefined;
}

interface HookState {
  entries: Map<string, Entry>;
  /** Event ids never attempted, oldest first. */
  queue: string[];
  /** Event ids waiting for a retry → when it is due. */
  retry: Map<string, number>;
  claimed: Set<string>;
}

/**
 * The outbox without Redis: this process only, bounded, and NOT durable: a restart or a crash loses
 * every event not delivered yet, and another replica never sees them (docs/webhooks.md).
 */
export class MemoryWebhookOutbox implements WebhookOutbox {
  readonly #hooks = new Map<string, HookState>();
  readonly #maxBacklog: number;
  readonly #maxRecords: number;
  /** Events refused because the backlog was full. */
  dropped = 0;

  constructor(options: MemoryWebhookOutboxOptions = {}) {
    this.#maxBacklog = options.maxBacklog ?? 1000;
    this.#maxRecords = options.maxRecords ?? 1000;
  }

  #hook(hookId: string): HookState {
    let h = this.#hooks.get(hookId);
    if (!h) {
      h = { entries: new Map(), queue: [], retry: new Map(), claimed: new Set() };
      this.#hooks.set(hookId, h);
    }
    return h;
  }

  #backlogAll(): number {
    let n = 0;
    for (const h of this.#hooks.values()) n += h.queue.length + h.retry.size + h.claimed.size;
    return n;
  }

  async enqueue(
    hookId: string,
    subject: DeliverySubject,
    body: string,
    nowMs: number,
  ): Promise<EnqueueResult> {
    const h = this.#hook(hookId);
    const known = h.entries.get(subject.eventId);
    if (known && known.record.createdAt + RECORD_RETENTION_MS > nowMs) return 'duplicate';
    if (this.#backlogAll() >= this.#maxBacklog) {
      this.dropped += 1;
      return 'full';
    }
    h.entries.set(subject.eventId, {
      body,
      record: {
        ...subject,
        hookId,
        status: 'PENDING',
        attempts: 0,
        lastStatusCode: null,
        lastError: null,
        createdAt: nowMs,
        nextAttemptAt: nowMs,
        deliveredAt: null,
        deadLetteredAt: null,
      },
    });
    h.queue.push(subject.eventId);
    return 'added';
  }

  async claim(hookId: string, _consumer: string, max: number, nowMs: number): Promise<ClaimedDelivery[]> {
    const h = this.#hook(hookId);
    const out: ClaimedDelivery[] = [];
    const take = (eventId: string, ref: ClaimedDelivery['ref']) => {
      const e = h.entries.get(eventId);
      if (!e || e.body === undefined) return;
      h.claimed.add(eventId);
      out.push({ eventId, body: e.body, attempts: e.record.attempts, ref });
    };
    for (const [eventId, due] of h.retry) {
      if (out.length >= max) break;
      if (due > nowMs) continue;
      h.retry.delete(eventId);
      take(eventId, { kind: 'retry' });
    }
    while (out.length < max && h.queue.length > 0) take(h.queue.shift()!, { kind: 'stream', entryId: '' });
    return out;
  }

  async settle(
    hookId: string,
    claimed: ClaimedDelivery,
    outcome: AttemptOutcome,
    nowMs: number,
  ): Promise<void> {
    const h = this.#hook(hookId);
    h.claimed.delete(claimed.eventId);
    const e = h.entries.get(claimed.eventId);
    if (!e) return;
    const r = e.record;
    r.attempts += 1;
    r.lastStatusCode = outcome.statusCode;
    if (outcome.kind === 'delivered') {
      Object.assign(r, { status: 'DELIVERED', deliveredAt: nowMs, nextAttemptAt: null });
      e.body = undefined;
    } else if (outcome.kind === 'retry') {
      Object.assign(r, {
        status: 'RETRYING',
        lastError: outcome.error,
        nextAttemptAt: outcome.nextAttemptAt,
      });
      h.retry.set(claimed.eventId, outcome.nextAttemptAt);
    } else {
      Object.assign(r, {
        status: 'DEAD_LETTERED',
        lastError: outcome.error,
        deadLetteredAt: nowMs,
        nextAttemptAt: null,
      });
    }
    this.#trim(h);
  }

  async release(hookId: string, claimed: ClaimedDelivery, nowMs: number): Promise<void> {
    const h = this.#hook(hookId);
    if (!h.claimed.delete(claimed.eventId)) return;
    h.retry.set(claimed.eventId, nowMs);
  }

  async nextRetryAt(hookId: string): Promise<number | undefined> {
    const dues = [...this.#hook(hookId).retry.values()];
    return dues.length ? Math.min(...dues) : undefined;
  }

  async deliveries(
    hookId: string,
    query: { statuses?: readonly DeliveryStatus[] | undefined; first: number },
  ): Promise<DeliveryRecord[]> {
    const wanted = query.statuses?.length ? new Set(query.statuses) : undefined;
    return [...this.#hook(hookId).entries.values()]
      .map((e) => ({ ...e.record }))
      .filter((r) => !wanted || wanted.has(r.status))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, query.first);
  }

  async backlog(hookId: string): Promise<number> {
    const h = this.#hook(hookId);
    return h.queue.length + h.retry.size + h.claimed.size;
  }

  // Finished records beyond `maxRecords` go, oldest first (Map order is insertion order).
  #trim(h: HookState): void {
    const finished = [...h.entries].filter(([, e]) => isFinished(e.record.status));
    for (const [id] of finished.slice(0, Math.max(0, finished.length - this.#maxRecords)))
      h.entries.delete(id);
  }
}

const isFinished = (s: DeliveryStatus) => s === 'DELIVERED' || s === 'DEAD_LETTERED';
