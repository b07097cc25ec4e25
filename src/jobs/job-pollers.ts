import { Repeater } from 'graphql-yoga';
import { AtlasApiError } from '../atlas/errors.js';
import { isTerminal } from '../backup/mappers.js';
import type { RestoreJobSource } from '../backup/model.js';
import { GatewayError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/clock.js';
import { ExpiringMap } from '../time/expiring-map.js';
import { realTimers, type Timers } from '../time/timers.js';
import { MemoryJobChannel, type JobChannel, type JobMessage, type PolledState } from './job-channel.js';

export interface JobPollersOptions {
  /** Time between two reads of a job (the Atlas CLI's `watch` waits 4 s). @default 4000 */
  intervalMs?: number;
  /** Longest wait after failures; `Retry-After` may ask for more and is honoured. @default 60000 */
  maxBackoffMs?: number;
  /** @default realTimers */
  timers?: Timers;
  /** How replicas share jobs (one polls, all deliver). @default this process only */
  channel?: JobChannel;
  /**
   * How long a job Atlas refused for good (404: no such job, 403, 401, …) is answered from memory:
   * watching it again within that time fails at once with the same error and no upstream read, so
   * repeated subscribes to made-up ids cost nothing. 0 turns it off.
   * @default 30000
   */
  failedTtlMs?: number;
  /** Most refused jobs remembered; the oldest goes first. @default 10000 */
  maxFailed?: number;
  /** Times `failedTtlMs` and `primedMaxAgeMs`. @default systemClock */
  clock?: Clock;
  /**
   * How old a job state handed over by `prime` (a mutation's answer) may be and still be a new watch's
   * first event; older, the watch reads the job first. @default intervalMs
   */
  primedMaxAgeMs?: number;
}

/**
 * Atlas answers that will not change by asking again: the job or the right to read it is gone. An
 * error body we could not read (`HTTP_<status>`) says nothing of the kind, so it is retried; nor does
 * a Digest nonce that kept going stale while the resends travelled (the key was accepted).
 */
const permanent = (err: unknown): err is AtlasApiError =>
  err instanceof AtlasApiError &&
  [400, 401, 403, 404, 410].includes(err.status) &&
  !err.errorCode.startsWith('HTTP_') &&
  !err.nonceStale;

/**
 * What kind of thing a poller follows: how to tell that it changed and that it ended. One poller
 * mechanism serves every kind (a job, a snapshot, a cluster's recent jobs); the kind's `name` keeps
 * keys of different kinds apart on this replica and on the channel.
 */
export interface PollKind<T extends PolledState> {
  /** Prefixes the poller's key ('' for jobs, so their channel keys stay what they always were). */
  readonly name: string;
  /** The Atlas operation named by the error a permanent refusal becomes. */
  readonly operation: string;
  /** What a watcher can see change: a new signature is one event, the same one is none. */
  signature(state: T): string;
  /** The state after which nothing changes any more: the stream completes. */
  isFinal(state: T): boolean;
  /**
   * Reads of this kind are this many poll intervals apart (a list that changes rarely need not be
   * read as often as a running job). @default 1
   */
  readonly intervalFactor?: number;
}

/** Restore and download jobs (`restoreJobStatus`). */
export const JOB_KIND: PollKind<RestoreJobSource> = {
  name: '',
  operation: 'getRestoreJob',
  // Only what a watcher can see change; links and ids are left out so they never cause an event.
  signature: (j) => {
    const d = j.dto;
    return JSON.stringify([
      d.status,
      d.snapshotUrl,
      d.expirationDate,
      d.restoreScheduledDate,
      d.restoreFinishedDate,
      d.snapshotFinishedDate,
    ]);
  },
  isFinal: (j) => isTerminal(j.dto.status),
};

interface Subscriber<T> {
  push(state: T): void;
  fail(err: unknown): void;
  end(): void;
  /** The gateway is going away: one last event that says so, then the stream ends. */
  shutDown(): void;
}

/**
 * The last event of every stream when the gateway shuts down, so that a client never takes the end
 * of a stream for the end of its job (the job may still be QUEUED); the subscription resolver turns
 * it into a `SHUTTING_DOWN` error.
 */
export const SHUTTING_DOWN = { shuttingDown: true } as const;
/** What a watch of kind `T` yields: its states, and `SHUTTING_DOWN` last when the gateway stops. */
export type PollEvent<T> = T | typeof SHUTTING_DOWN;
export type JobEvent = PollEvent<RestoreJobSource>;
export const isShuttingDown = <T>(event: PollEvent<T>): event is typeof SHUTTING_DOWN =>
  event === SHUTTING_DOWN;

/** This replica's watch of one key: its subscribers, and (when it holds the lease) the polling. */
class Poller<T extends PolledState> {
  readonly subscribers = new Set<Subscriber<T>>();
  last: T | undefined;
  #sig = '';
  #timer: unknown;
  #failures = 0;
  #stopped = false;
  #leading = false;
  readonly #unlisten: () => void;
  readonly #intervalMs: number;

  constructor(
    readonly kind: PollKind<T>,
    readonly key: string,
    readonly fetch: () => Promise<T>,
    readonly owner: JobPollers,
  ) {
    this.#unlisten = owner.channel.listen(key, (m) => this.#receive(m as JobMessage<T>));
    this.#intervalMs = owner.intervalMs * (kind.intervalFactor ?? 1);
  }

  async start(primed?: Primed): Promise<void> {
    if (primed) {
      // The job as Atlas answered it moments ago (the mutation that made it): that is "the job as it
      // is now", so the first read waits one interval from that answer instead of repeating it.
      this.#receive({ type: 'job', job: primed.job as T });
      const age = this.owner.clock.now() - primed.at;
      this.#schedule(Math.max(0, this.#intervalMs - age));
      return;
    }
    // A late subscriber first gets the state another replica (or an earlier watch) published.
    const known = await this.owner.channel.last(this.key).catch(() => undefined);
    if (known && !this.#stopped) this.#receive({ type: 'job', job: known as T });
    if (!this.#stopped) void this.#tick();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.owner.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unlisten();
    if (this.#leading) void this.owner.channel.release(this.key).catch(() => undefined);
    this.owner.forget(this);
  }

  #receive(m: JobMessage<T>): void {
    if (this.#stopped) return;
    if (m.type === 'error') {
      this.owner.remember(this.key, m, this.kind.operation);
      const err = failure(m, this.kind.operation);
      for (const s of [...this.subscribers]) s.fail(err);
      this.stop();
      return;
    }
    const sig = this.kind.signature(m.job);
    if (sig !== this.#sig) {
      this.#sig = sig;
      this.last = m.job;
      for (const s of [...this.subscribers]) s.push(m.job);
    }
    if (this.kind.isFinal(m.job)) {
      for (const s of [...this.subscribers]) s.end();
      this.stop();
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.owner.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, ms);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    // The lease outlives one interval by half, so the holder renews it in time; when the holder dies,
    // another replica takes over at its next tick after the lease ran out.
    this.#leading = await this.owner.channel.lead(this.key, this.#intervalMs * 1.5).catch(() => true);
    if (this.#stopped) return;
    if (!this.#leading) {
      this.#schedule(this.#intervalMs);
      return;
    }
    this.owner.polls += 1;
    let job: T;
    try {
      job = await this.fetch();
    } catch (err) {
      if (this.#stopped) return;
      if (this.last === undefined && spentBudget(err)) {
        // The read that starts a poller is its subscriber's (watchJob): a subscriber over its share
        // gets RATE_LIMITED now, with the wait, rather than a subscription that silently waits.
        for (const s of [...this.subscribers]) s.fail(err);
        this.stop();
        return;
      }
      const refusal = refusalOf(err);
      if (refusal) {
        await this.owner.channel.publish(this.key, refusal).catch(() => this.#receive(refusal));
        return;
      }
      // Transient (429, 5xx, network): keep the subscription, wait longer, honour Retry-After.
      this.#failures += 1;
      const backoff = Math.min(this.#intervalMs * 2 ** this.#failures, this.owner.maxBackoffMs);
      const retryAfter = retryAfterOf(err);
      this.#schedule(Math.max(backoff, retryAfter));
      return;
    }
    if (this.#stopped) return;
    this.#failures = 0;
    if (this.kind.signature(job) !== this.#sig) {
      await this.owner.channel
        .publish(this.key, { type: 'job', job })
        .catch(() => this.#receive({ type: 'job', job }));
    }
    this.#schedule(this.#intervalMs);
  }
}

type Failure = Extract<JobMessage, { type: 'error' }>;

/**
 * A read's error as a refusal for good, as it travels on the channel; undefined when asking again may
 * help. Besides Atlas's own, the gateway's final answers: a NOT_FOUND or GONE it decided itself (a
 * cluster neither family serves, dedicated or M0, is NOT_FOUND `NOT_SHARED_TIER_OR_FLEX`). Taken for
 * transient, a subscription to a job of such a cluster was retried forever and its client never heard
 * a word.
 */
function refusalOf(err: unknown): Failure | undefined {
  if (permanent(err)) {
    return { type: 'error', status: err.status, errorCode: err.errorCode, detail: err.detail };
  }
  if (err instanceof GatewayError && FINAL_GATEWAY_CODES.has(err.code)) {
    const reason = err.extensions.reason;
    return {
      type: 'error',
      status: err.status,
      errorCode: typeof reason === 'string' ? reason : err.code,
      detail: err.message,
    };
  }
  return undefined;
}

const FINAL_GATEWAY_CODES: ReadonlySet<string> = new Set(['NOT_FOUND', 'GONE']);

/** A state some request just read from Atlas, and when (`JobPollers.prime`). */
interface Primed {
  job: PolledState;
  at: number;
  /** Who made the request that read it: only that caller's watch starts from it. */
  callerId: string;
}

const failure = (m: Failure, operation: string) =>
  new AtlasApiError({
    operation,
    status: m.status,
    errorCode: m.errorCode,
    detail: m.detail,
  });

// The gateway's own Atlas budget refused the read unsent (src/replicas/atlas-budget.ts).
const spentBudget = (err: unknown): err is GatewayError =>
  err instanceof GatewayError && err.code === 'RATE_LIMITED';

// Atlas's Retry-After, or the wait the gateway's own Atlas budget asks for (RATE_LIMITED).
function retryAfterOf(err: unknown): number {
  if (err instanceof AtlasApiError) return err.retryAfterMs ?? 0;
  if (err instanceof GatewayError && typeof err.extensions.retryAfterMs === 'number') {
    return err.extensions.retryAfterMs;
  }
  return 0;
}

/**
 * One poller per job shared by every subscriber of that job — in this process, and with a shared
 * channel across replicas (one lease holder polls, every replica delivers): N subscribers cost one
 * upstream read per interval. A poller stops when its job ends or its last subscriber leaves.
 */
export class JobPollers {
  readonly intervalMs: number;
  readonly maxBackoffMs: number;
  readonly timers: Timers;
  readonly channel: JobChannel;
  /** Upstream reads made by this replica's pollers so far. */
  polls = 0;
  /** Watches answered from the refused jobs in memory, with no upstream read. */
  refusedFromMemory = 0;
  /** `close` was called: the gateway is shutting down, streams that end now end for that reason. */
  closed = false;
  /** Watches that started from a primed state instead of a read. */
  primedStarts = 0;
  readonly clock: Clock;
  readonly #pollers = new Map<string, Poller<PolledState>>();
  readonly #failed: ExpiringMap<string, { m: Failure; operation: string }> | undefined;
  readonly #primed: ExpiringMap<string, Primed>;

  constructor(options: JobPollersOptions = {}) {
    this.intervalMs = options.intervalMs ?? 4000;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.timers = options.timers ?? realTimers;
    this.channel = options.channel ?? new MemoryJobChannel();
    this.clock = options.clock ?? systemClock;
    this.#primed = new ExpiringMap({
      ttlMs: options.primedMaxAgeMs ?? this.intervalMs,
      maxEntries: 10_000,
      clock: this.clock,
    });
    const ttlMs = options.failedTtlMs ?? 30_000;
    this.#failed =
      ttlMs > 0
        ? new ExpiringMap({
            ttlMs,
            maxEntries: options.maxFailed ?? 10_000,
            clock: options.clock ?? systemClock,
          })
        : undefined;
  }

  /**
   * Hands over a job state just read from Atlas (a mutation's answer): a watch of `key` by the same
   * caller that starts within `primedMaxAgeMs` takes it as its first event and makes its first read one
   * interval after it, not at once. Another caller's watch reads as before (the read that starts a
   * poller is its subscriber's, on its own Atlas budget); a watch already running ignores it.
   */
  prime(key: string, job: PolledState, callerId: string): void {
    if (this.#pollers.has(key)) return;
    this.#primed.set(key, { job, at: this.clock.now(), callerId });
  }

  /** @internal A job Atlas refused for good: later watches fail at once (`failedTtlMs`). */
  remember(key: string, m: Failure, operation: string): void {
    this.#failed?.set(key, { m, operation });
  }

  /**
   * The job's states: the current one first, then each change; ends after COMPLETED or FAILED, or
   * throws the upstream error when the job cannot be read any more (at once, with no read, when Atlas
   * refused this key for good within `failedTtlMs`). `key` names the job (and, for pass-through
   * callers, whose token reads it).
   */
  watch(
    key: string,
    fetch: () => Promise<RestoreJobSource>,
    /** Who watches, to take a state this caller's own mutation primed. @default nobody */
    callerId?: string,
  ): AsyncIterableIterator<JobEvent> {
    return this.watchKind(JOB_KIND, key, fetch, callerId);
  }

  /**
   * `watch` for any kind of polled state (a snapshot, a cluster's recent jobs): the same sharing,
   * leases, backoff and refusal memory, keyed `${kind.name}${key}`. Without an `isFinal` state it
   * runs until its last subscriber leaves.
   */
  watchKind<T extends PolledState>(
    kind: PollKind<T>,
    rawKey: string,
    fetch: () => Promise<T>,
    /** Who watches, to take a state this caller's own mutation primed (`prime`). @default nobody */
    callerId?: string,
  ): AsyncIterableIterator<PollEvent<T>> {
    const key = `${kind.name}${rawKey}`;
    const refused = this.#failed?.get(key);
    if (refused) {
      this.refusedFromMemory += 1;
      return new Repeater<PollEvent<T>>((_push, stop) => stop(failure(refused.m, refused.operation)));
    }
    return new Repeater<PollEvent<T>>(async (push, stop) => {
      let poller = this.#pollers.get(key) as Poller<T> | undefined;
      const fresh = !poller;
      const offered = fresh ? this.#primed.get(key) : undefined;
      const primed = offered && offered.callerId === callerId ? offered : undefined;
      if (primed) {
        this.#primed.delete(key);
        this.primedStarts += 1;
      }
      if (!poller) {
        poller = new Poller<T>(kind, key, fetch, this);
        this.#pollers.set(key, poller as unknown as Poller<PolledState>);
      }
      const subscriber: Subscriber<T> = {
        push: (job) => void push(job),
        fail: (err) => stop(err),
        end: () => stop(),
        shutDown: () => {
          // Values pushed before stop are still delivered, then the stream completes.
          void push(SHUTTING_DOWN);
          stop();
        },
      };
      poller.subscribers.add(subscriber);
      if (poller.last) {
        subscriber.push(poller.last);
        if (kind.isFinal(poller.last)) subscriber.end();
      }
      if (fresh) void poller.start(primed);
      await stop;
      poller.subscribers.delete(subscriber);
      if (poller.subscribers.size === 0) poller.stop();
    });
  }

  /** @internal */
  forget<T extends PolledState>(poller: Poller<T>): void {
    if ((this.#pollers.get(poller.key) as Poller<T> | undefined) === poller) this.#pollers.delete(poller.key);
  }

  stats(): { pollers: number; subscribers: number; polls: number } {
    let subscribers = 0;
    for (const p of this.#pollers.values()) subscribers += p.subscribers.size;
    return { pollers: this.#pollers.size, subscribers, polls: this.polls };
  }

  /** Ends every subscription (shutdown): each gets `SHUTTING_DOWN` as its last event, then completes. */
  close(): void {
    this.closed = true;
    for (const p of [...this.#pollers.values()]) {
      for (const s of [...p.subscribers]) s.shutDown();
      p.stop();
    }
  }
}
