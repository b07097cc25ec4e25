import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Clock } from '../time/clock.js';
import type { Timers } from '../time/timers.js';
import { sendWebhook } from './send-webhook.js';
import { signWebhook } from './sign-webhook.js';
import type { WebhookHook } from './webhook-hook.js';
import type { AttemptOutcome, ClaimedDelivery, WebhookOutbox } from './webhook-outbox.js';

/** How deliveries are attempted; the same for every hook. */
export interface DeliveryPolicy {
  /** POSTs per event before it is dead-lettered. @default 8 */
  maxAttempts: number;
  /** The first retry's wait; each next one doubles, with jitter. @default 1000 */
  backoffMs: number;
  /** Longest wait between two attempts, a receiver's `Retry-After` included. @default 3600000 */
  maxBackoffMs: number;
  /** Longest wait for a receiver's answer (headers, then each body chunk). @default 10000 */
  timeoutMs: number;
  /** POSTs in flight per hook and replica: all a slow receiver can hold in memory. @default 2 */
  concurrency: number;
  /** How often the outbox is checked for events other replicas added and retries that fell due. @default 1000 */
  tickMs: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  maxAttempts: 8,
  backoffMs: 1000,
  maxBackoffMs: 3_600_000,
  timeoutMs: 10_000,
  concurrency: 2,
  tickMs: 1000,
};

/**
 * The wait before attempt `attempt + 1` after `attempt` failures: exponential, "equal jitter" (half
 * fixed, half random, so replicas retrying the same receiver spread out without ever retrying at
 * once), and at least what the receiver asked for with `Retry-After`, all capped at `maxBackoffMs`.
 */
export function backoffMs(
  attempt: number,
  policy: Pick<DeliveryPolicy, 'backoffMs' | 'maxBackoffMs'>,
  random: () => number,
  retryAfterMs?: number,
): number {
  const exp = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(exp / 2 + random() * (exp / 2));
  return Math.min(policy.maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0));
}

export interface HookWorkerDeps {
  outbox: WebhookOutbox;
  /** This replica's consumer name in the outbox. */
  consumer: string;
  policy: DeliveryPolicy;
  clock: Clock;
  timers: Timers;
  dispatcher: Dispatcher;
  random: () => number;
  logger: Logger;
}

/**
 * Delivers one hook's events from the outbox, apart from polling: it takes at most `concurrency`
 * events at a time, so a receiver that never answers holds that many bodies in memory and no more
 * (the rest wait in the outbox). Woken when this replica enqueues, after each attempt, and by a timer
 * (`tickMs`, or the next retry when sooner).
 */
export class HookWorker {
  readonly #inflight = new Map<string, { claimed: ClaimedDelivery; abort: AbortController }>();
  #pumping = false;
  #again = false;
  #timer: unknown;
  #closed = false;
  // One warning per outage of the outbox, not one per tick.
  #outboxDown = false;
  /** POSTs this replica made for the hook. */
  posts = 0;

  constructor(
    readonly hook: WebhookHook,
    readonly deps: HookWorkerDeps,
  ) {}

  /** Deliveries being attempted now (bodies held in memory). */
  get inflight(): number {
    return this.#inflight.size;
  }

  start(): void {
    this.kick();
  }

  /** Looks for work now. */
  kick(): void {
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    const { outbox, policy, clock, consumer } = this.deps;
    try {
      do {
        this.#again = false;
        const free = policy.concurrency - this.#inflight.size;
        if (free <= 0) break;
        const claimed = await outbox.claim(this.hook.id, consumer, free, clock.now());
        if (this.#closed) {
          for (const c of claimed) await outbox.release(this.hook.id, c, clock.now()).catch(() => undefined);
          return;
        }
        for (const c of claimed) this.#attempt(c);
        if (claimed.length === free) this.#again = true;
        this.#outboxDown = false;
      } while (this.#again && !this.#closed);
    } catch (err) {
      if (!this.#outboxDown) {
        this.deps.logger.warn(
          { webhook: this.hook.id, error: (err as Error).message },
          'webhook outbox unreachable; deliveries wait until it answers',
        );
      }
      this.#outboxDown = true;
    } finally {
      this.#pumping = false;
    }
    await this.#arm();
  }

  // The next look: at the next tick, or when the hook's next retry falls due if that is sooner.
  async #arm(): Promise<void> {
    if (this.#closed) return;
    const { clock, timers, policy, outbox } = this.deps;
    const due = await outbox.nextRetryAt(this.hook.id).catch(() => undefined);
    if (this.#closed) return;
    const wait = due === undefined ? policy.tickMs : Math.max(0, Math.min(policy.tickMs, due - clock.now()));
    if (this.#timer !== undefined) timers.clearTimeout(this.#timer);
    this.#timer = timers.setTimeout(() => {
      this.#timer = undefined;
      this.kick();
    }, wait);
  }

  #attempt(claimed: ClaimedDelivery): void {
    const abort = new AbortController();
    this.#inflight.set(claimed.eventId, { claimed, abort });
    void this.#deliver(claimed, abort.signal).finally(() => {
      this.#inflight.delete(claimed.eventId);
      this.kick();
    });
  }

  async #deliver(claimed: ClaimedDelivery, signal: AbortSignal): Promise<void> {
    const { clock, policy, outbox, dispatcher, random, logger } = this.deps;
    const sentAt = clock.now();
    const result = await sendWebhook({
      url: this.hook.url,
      body: claimed.body,
      headers: {
        'content-type': 'application/cloudevents+json; charset=utf-8',
        'user-agent': 'atlas-backup-graphql-gateway (webhooks)',
        // Signed at each attempt: the timestamp is the attempt's, so a receiver's replay window holds.
        ...signWebhook(this.hook.key, claimed.eventId, sentAt, claimed.body),
      },
      dispatcher,
      timeoutMs: policy.timeoutMs,
      signal,
      nowMs: sentAt,
    });
    // Shut down mid-POST: handed back unattempted, so another replica (or the next start) sends it.
    if (signal.aborted) {
      await outbox.release(this.hook.id, claimed, clock.now()).catch(() => undefined);
      return;
    }
    this.posts += 1;
    const attempt = claimed.attempts + 1;
    const now = clock.now();
    let outcome: AttemptOutcome;
    if (result.ok) outcome = { kind: 'delivered', statusCode: result.statusCode };
    else if (attempt >= policy.maxAttempts) {
      outcome = { kind: 'dead', statusCode: result.statusCode, error: result.error };
      logger.warn(
        { webhook: this.hook.id, eventId: claimed.eventId, attempts: attempt, error: result.error },
        'webhook delivery dead-lettered',
      );
    } else {
      const wait = backoffMs(attempt, policy, random, result.retryAfterMs);
      outcome = {
        kind: 'retry',
        statusCode: result.statusCode,
        error: result.error,
        nextAttemptAt: now + wait,
      };
    }
    try {
      await outbox.settle(this.hook.id, claimed, outcome, now);
    } catch (err) {
      // Left claimed: after the claim time another look (here or on another replica) takes it again.
      logger.warn(
        { webhook: this.hook.id, eventId: claimed.eventId, error: (err as Error).message },
        'webhook outcome not recorded; the delivery will be attempted again',
      );
    }
  }

  /** Stops: no new claims, POSTs in flight aborted and handed back to the outbox. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.deps.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const { outbox, clock } = this.deps;
    const inflight = [...this.#inflight.values()];
    for (const { abort } of inflight) abort.abort();
    // #deliver releases each aborted one; wait for those hand-backs so a restart finds them due.
    await Promise.all(
      inflight.map(({ claimed }) =>
        outbox.release(this.hook.id, claimed, clock.now()).catch(() => undefined),
      ),
    );
  }
}
