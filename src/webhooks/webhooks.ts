import { Agent, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../time/clock.js';
import { realTimers, type Timers } from '../time/timers.js';
import { jobCloudEvent } from './job-cloud-event.js';
import type { JobChangeSource } from './job-change-source.js';
import { wants, type WebhookHook } from './webhook-hook.js';
import type { DeliveryRecord, DeliveryStatus, WebhookOutbox } from './webhook-outbox.js';
import { DEFAULT_DELIVERY_POLICY, HookWorker, type DeliveryPolicy } from './webhook-worker.js';
import type { RestoreJobSource } from '../backup/model.js';

/** How long a hook whose watch failed waits before watching its scope again. */
export const RELISTEN_MS = 30_000;

export interface WebhooksOptions {
  hooks: readonly WebhookHook[];
  /** The job changes in each hook's scope. */
  source: JobChangeSource;
  outbox: WebhookOutbox;
  /** This replica's name (its consumer name in the outbox). */
  consumer: string;
  /** @default DEFAULT_DELIVERY_POLICY */
  policy?: Partial<DeliveryPolicy>;
  /** @default systemClock */
  clock?: Clock;
  /** @default realTimers */
  timers?: Timers;
  /** @default Math.random */
  random?: () => number;
  /** How the POSTs are sent. @default an undici Agent with `concurrency` connections per receiver */
  dispatcher?: Dispatcher;
  logger: Logger;
  /**
   * Changes seen while the outbox (Redis) is unreachable wait in memory, up to this many, and are
   * enqueued when it answers again; more are dropped and counted. @default 1000
   */
  maxUnsaved?: number;
}

/** What the webhooks did so far in this replica. */
export interface WebhookStats {
  /** Events this replica added to the outbox. */
  enqueued: number;
  /** Events another replica (or this one, earlier) had already added. */
  duplicates: number;
  /** Events lost: the memory outbox was full, or the unsaved buffer was. */
  dropped: number;
  /** Changes waiting in memory for the outbox to answer. */
  unsaved: number;
  /** POSTs in flight, every hook together. */
  inflight: number;
  /** POSTs made, every hook together. */
  posts: number;
}

/**
 * The webhooks of one replica: for each configured hook, the job changes in its scope become signed
 * CloudEvents in the outbox (once per job and status, whichever replica sees them first), and a
 * worker per hook delivers them apart from polling, retrying with backoff until a 2xx or the
 * dead letter.
 */
export class Webhooks {
  readonly #o: WebhooksOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #workers = new Map<string, HookWorker>();
  readonly #abort = new AbortController();
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  readonly #unsaved: { hook: WebhookHook; job: RestoreJobSource }[] = [];
  readonly #maxUnsaved: number;
  #retryTimer: unknown;
  readonly #relisten = new Set<unknown>();
  #counts = { enqueued: 0, duplicates: 0, dropped: 0 };

  constructor(options: WebhooksOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? realTimers;
    this.#maxUnsaved = options.maxUnsaved ?? 1000;
    const policy = { ...DEFAULT_DELIVERY_POLICY, ...options.policy };
    this.#ownDispatcher = options.dispatcher === undefined;
    this.#dispatcher =
      options.dispatcher ?? new Agent({ connections: policy.concurrency, connectTimeout: policy.timeoutMs });
    for (const hook of options.hooks) {
      this.#workers.set(
        hook.id,
        new HookWorker(hook, {
          outbox: options.outbox,
          consumer: options.consumer,
          policy,
          clock: this.#clock,
          timers: this.#timers,
          dispatcher: this.#dispatcher,
          random: options.random ?? Math.random,
          logger: options.logger,
        }),
      );
    }
  }

  /** Starts listening to the job changes and delivering what the outbox holds (from before a restart too). */
  start(): void {
    for (const worker of this.#workers.values()) {
      worker.start();
      void this.#listen(worker.hook);
    }
  }

  /** A configured hook, or undefined. */
  hook(id: string): WebhookHook | undefined {
    return this.#workers.get(id)?.hook;
  }

  deliveries(
    hookId: string,
    query: { statuses?: readonly DeliveryStatus[] | undefined; first: number },
  ): Promise<DeliveryRecord[]> {
    return this.#o.outbox.deliveries(hookId, query);
  }

  /** Undelivered events of the hook in the outbox. */
  backlog(hookId: string): Promise<number> {
    return this.#o.outbox.backlog(hookId);
  }

  stats(): WebhookStats {
    let inflight = 0;
    let posts = 0;
    for (const w of this.#workers.values()) {
      inflight += w.inflight;
      posts += w.posts;
    }
    return { ...this.#counts, unsaved: this.#unsaved.length, inflight, posts };
  }

  async #listen(hook: WebhookHook): Promise<void> {
    const signal = this.#abort.signal;
    try {
      for await (const job of this.#o.source(hook.scope, signal)) {
        if (signal.aborted) break;
        await this.offer(hook, job);
      }
    } catch (err) {
      if (signal.aborted) return;
      // The watch failed (its first read refused by the Atlas budget, every project of the scope
      // refused): the hook watches again later rather than never.
      this.#o.logger.error(
        { webhook: hook.id, error: (err as Error).message, retryInMs: RELISTEN_MS },
        'webhook job changes stopped; watching the scope again later',
      );
      const timer = this.#timers.setTimeout(() => {
        this.#relisten.delete(timer);
        void this.#listen(hook);
      }, RELISTEN_MS);
      this.#relisten.add(timer);
    }
  }

  /** One job change seen for `hook`: enqueued when the hook wants it. */
  async offer(hook: WebhookHook, job: RestoreJobSource): Promise<void> {
    if (!wants(hook, job)) return;
    const now = this.#clock.now();
    const event = jobCloudEvent(hook, job, now);
    const subject = {
      eventId: event.id,
      type: event.type,
      jobId: event.data.id,
      projectId: event.data.projectId,
      clusterName: event.data.clusterName,
    };
    try {
      const result = await this.#o.outbox.enqueue(hook.id, subject, JSON.stringify(event), now);
      if (result === 'added') {
        this.#counts.enqueued += 1;
        this.#workers.get(hook.id)?.kick();
      } else if (result === 'duplicate') this.#counts.duplicates += 1;
      else {
        this.#counts.dropped += 1;
        this.#o.logger.warn({ webhook: hook.id, eventId: event.id }, 'webhook outbox full; event dropped');
      }
    } catch (err) {
      this.#keepUnsaved(hook, job, err);
    }
  }

  // The outbox did not answer: the change waits here (bounded) and is offered again at the next tick.
  #keepUnsaved(hook: WebhookHook, job: RestoreJobSource, err: unknown): void {
    if (this.#unsaved.length >= this.#maxUnsaved) {
      this.#counts.dropped += 1;
      this.#o.logger.warn(
        { webhook: hook.id, jobId: job.dto.id, error: (err as Error).message },
        'webhook outbox unreachable and the unsaved buffer is full; event dropped',
      );
      return;
    }
    this.#unsaved.push({ hook, job });
    if (this.#retryTimer !== undefined || this.#abort.signal.aborted) return;
    const policy = { ...DEFAULT_DELIVERY_POLICY, ...this.#o.policy };
    this.#retryTimer = this.#timers.setTimeout(() => {
      this.#retryTimer = undefined;
      const again = this.#unsaved.splice(0);
      void (async () => {
        for (const u of again) await this.offer(u.hook, u.job);
      })();
    }, policy.tickMs);
  }

  /** Stops listening and delivering; POSTs in flight are handed back to the outbox. */
  async close(): Promise<void> {
    this.#abort.abort();
    if (this.#retryTimer !== undefined) this.#timers.clearTimeout(this.#retryTimer);
    for (const timer of this.#relisten) this.#timers.clearTimeout(timer);
    this.#relisten.clear();
    await Promise.all([...this.#workers.values()].map((w) => w.close()));
    if (this.#ownDispatcher) await this.#dispatcher.close().catch(() => undefined);
  }
}
