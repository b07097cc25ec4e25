import { describe, expect, it } from 'vitest';
import { AtlasApiError, AtlasNetworkError } from '../../src/atlas/errors.js';
import type { RestoreJobSource } from '../../src/backup/model.js';
import { MemoryJobChannel, type JobMessage, type PolledState } from '../../src/jobs/job-channel.js';
import { isShuttingDown, JobPollers, SHUTTING_DOWN, type JobEvent } from '../../src/jobs/job-pollers.js';
import { ManualTimers } from '../support/manual-timers.js';
import { GatewayError } from '../../src/errors/index.js';
import { ManualClock } from '../../src/simulator/index.js';

/*
 * JobPollers directly, with manual timers and a channel that records what the poller asks of it:
 * leases, publications, releases. Every step is driven by the test (`timers.fire()`), nothing waits.
 */

const KEY = 'job-key';

const job = (status: string, extra: Record<string, unknown> = {}): RestoreJobSource =>
  ({
    projectId: 'p',
    clusterName: 'c',
    family: 'TENANT',
    dto: { id: 'job-1', deliveryType: 'DOWNLOAD', snapshotId: 's', status, ...extra },
  }) as RestoreJobSource;

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};

/** Lets the pollers' pending promise callbacks run (no timer involved). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

/** A memory channel that records the poller's requests, and can be told to fail or hold them. */
class RecordingChannel extends MemoryJobChannel {
  readonly published: JobMessage<PolledState>[] = [];
  readonly leases: number[] = [];
  releases = 0;
  leadAnswer: () => Promise<boolean> = async () => true;
  failPublish = false;
  lastAnswer: (() => Promise<RestoreJobSource | undefined>) | undefined;

  override async publish(key: string, message: JobMessage): Promise<void> {
    this.published.push(message);
    if (this.failPublish) throw new Error('channel down');
    return super.publish(key, message);
  }
  override async lead(_key?: string, ttlMs?: number): Promise<boolean> {
    this.leases.push(ttlMs ?? -1);
    return this.leadAnswer();
  }
  override async release(): Promise<void> {
    this.releases++;
  }
  override async last(key: string): Promise<PolledState | undefined> {
    return this.lastAnswer ? this.lastAnswer() : super.last(key);
  }
}

function setup(
  fetch: () => Promise<RestoreJobSource>,
  options: { intervalMs?: number; maxBackoffMs?: number; failedTtlMs?: number; clock?: ManualClock } = {},
) {
  const timers = new ManualTimers();
  const channel = new RecordingChannel();
  const pollers = new JobPollers({ timers, channel, ...options });
  let reads = 0;
  const stream = () =>
    pollers.watch(KEY, () => {
      reads++;
      return fetch();
    });
  return { timers, channel, pollers, stream, reads: () => reads };
}

const statusOf = (r: IteratorResult<JobEvent>) =>
  r.done ? 'done' : isShuttingDown(r.value) ? 'shutting down' : r.value.dto.status;

const apiError = (
  status: number,
  errorCode: string,
  extra: Partial<{ retryAfterMs: number; nonceStale: boolean }> = {},
) => new AtlasApiError({ operation: 'getRestoreJob', status, errorCode, detail: 'the detail', ...extra });

describe('JobPollers: defaults and leases', () => {
  it('reads every 4 s by default, under a lease of 1.5 intervals, published to the channel', async () => {
    const running = job('RUNNING');
    const { timers, channel, stream } = setup(async () => running);
    const s = stream();
    expect(statusOf(await s.next())).toBe('RUNNING');
    await settle();
    expect(timers.delays).toEqual([4000]);
    expect(channel.leases).toEqual([6000]);
    expect(channel.published).toEqual([{ type: 'job', job: running }]);
    // The same state again is not published again.
    timers.fire();
    await settle();
    expect(channel.published).toHaveLength(1);
    expect(timers.delays).toEqual([4000, 4000]);
    await s.return?.();
    expect(channel.releases).toBe(1);
  });

  it('a replica that does not hold the lease does not read, and asks again after an interval', async () => {
    const { timers, channel, pollers, stream, reads } = setup(async () => job('RUNNING'), {
      intervalMs: 1000,
    });
    channel.leadAnswer = async () => false;
    const s = stream();
    const first = s.next();
    await settle();
    expect([reads(), pollers.polls, timers.delays]).toEqual([0, 0, [1000]]);
    // The holder publishes: this replica delivers it.
    channel.deliver(KEY, { type: 'job', job: job('QUEUED') });
    expect(statusOf(await first)).toBe('QUEUED');
    await s.return?.();
    expect(channel.releases).toBe(0);
  });

  it('reads anyway when the lease cannot be asked for (the channel failed)', async () => {
    const { channel, pollers, stream } = setup(async () => job('RUNNING'));
    channel.leadAnswer = async () => {
      throw new Error('redis down');
    };
    const s = stream();
    expect(statusOf(await s.next())).toBe('RUNNING');
    expect(pollers.polls).toBe(1);
    await s.return?.();
  });

  it('a poller stopped while asking for the lease neither reads nor releases', async () => {
    const lease = deferred<boolean>();
    const { channel, pollers, stream, timers } = setup(async () => job('RUNNING'));
    channel.leadAnswer = () => lease.promise;
    const s = stream();
    const next = s.next();
    await settle();
    await s.return?.();
    expect(await next).toEqual({ done: true, value: undefined });
    lease.resolve(true);
    await settle();
    expect([pollers.polls, channel.releases, timers.pending, pollers.stats()]).toEqual([
      0,
      0,
      0,
      { pollers: 0, subscribers: 0, polls: 0 },
    ]);
  });
});

describe('JobPollers: what a subscriber sees', () => {
  it('starts with the state another replica published, before any read of its own answers', async () => {
    const { channel, stream } = setup(() => new Promise<RestoreJobSource>(() => undefined));
    channel.deliver(KEY, { type: 'job', job: job('QUEUED') });
    const s = stream();
    expect(statusOf(await s.next())).toBe('QUEUED');
    await s.return?.();
  });

  it('one event per change: the same state delivered twice is one event', async () => {
    const { channel, stream } = setup(() => new Promise<RestoreJobSource>(() => undefined));
    const s = stream();
    const events: (string | undefined)[] = [];
    const reading = (async () => {
      for await (const e of s) events.push(isShuttingDown(e) ? 'shutting down' : e.dto.status);
    })();
    await settle();
    channel.deliver(KEY, { type: 'job', job: job('QUEUED') });
    channel.deliver(KEY, { type: 'job', job: job('QUEUED', { id: 'other-link-only' }) });
    channel.deliver(KEY, { type: 'job', job: job('RUNNING') });
    channel.deliver(KEY, { type: 'job', job: job('COMPLETED') });
    await reading;
    expect(events).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
  });

  it('a subscriber leaving does not stop the others; the last one leaving stops the poller', async () => {
    let state = job('QUEUED');
    const { timers, pollers, stream } = setup(async () => state);
    const a = stream();
    const b = stream();
    expect(statusOf(await a.next())).toBe('QUEUED');
    expect(statusOf(await b.next())).toBe('QUEUED');
    await a.return?.();
    expect(pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });
    state = job('RUNNING');
    await settle();
    timers.fire();
    expect(statusOf(await b.next())).toBe('RUNNING');
    await b.return?.();
    expect([pollers.stats().pollers, timers.pending]).toEqual([0, 0]);
  });

  it('ends the stream after a terminal state, and releases the lease once', async () => {
    const { channel, pollers, stream } = setup(async () => job('COMPLETED'));
    const s = stream();
    expect(statusOf(await s.next())).toBe('COMPLETED');
    expect(await s.next()).toEqual({ done: true, value: undefined });
    await settle();
    expect([channel.releases, pollers.stats().pollers]).toEqual([1, 0]);
  });

  it('delivers the state itself when the channel cannot publish it', async () => {
    const { channel, stream } = setup(async () => job('RUNNING'));
    channel.failPublish = true;
    const s = stream();
    expect(statusOf(await s.next())).toBe('RUNNING');
    await s.return?.();
  });

  it('close(): every subscriber gets SHUTTING_DOWN as its last event, then the stream ends', async () => {
    const { pollers, stream, timers } = setup(async () => job('RUNNING'));
    const a = stream();
    const b = stream();
    expect(statusOf(await a.next())).toBe('RUNNING');
    expect(statusOf(await b.next())).toBe('RUNNING');
    pollers.close();
    expect((await a.next()).value).toBe(SHUTTING_DOWN);
    expect(statusOf(await b.next())).toBe('shutting down');
    expect((await a.next()).done).toBe(true);
    expect([pollers.stats(), timers.pending]).toEqual([{ pollers: 0, subscribers: 0, polls: 1 }, 0]);
    expect(isShuttingDown(job('RUNNING'))).toBe(false);
  });
});

describe('JobPollers: failures', () => {
  it('a permanent Atlas error ends every stream with that error, and is published for the other replicas', async () => {
    const { channel, stream } = setup(async () => {
      throw apiError(404, 'RESTORE_JOB_NOT_FOUND');
    });
    const s = stream();
    const err = await s.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AtlasApiError);
    expect(err).toMatchObject({
      operation: 'getRestoreJob',
      status: 404,
      errorCode: 'RESTORE_JOB_NOT_FOUND',
      detail: 'the detail',
    });
    expect(channel.published).toEqual([
      { type: 'error', status: 404, errorCode: 'RESTORE_JOB_NOT_FOUND', detail: 'the detail' },
    ]);
  });

  it('the error reaches the subscribers when the channel cannot publish it', async () => {
    const { channel, stream } = setup(async () => {
      throw apiError(403, 'USER_UNAUTHORIZED');
    });
    channel.failPublish = true;
    await expect(stream().next()).rejects.toMatchObject({ status: 403, errorCode: 'USER_UNAUTHORIZED' });
  });

  it('transient failures back off (doubling, capped), honour Retry-After, and reset after a read', async () => {
    const failures: unknown[] = [
      apiError(404, 'HTTP_404'), // an unreadable error body: not known to be permanent
      apiError(401, 'UNAUTHORIZED', { nonceStale: true }),
      apiError(503, 'SERVICE_UNAVAILABLE'),
      apiError(429, 'RATE_LIMITED', { retryAfterMs: 90_000 }),
      new AtlasNetworkError('reset', { operation: 'getRestoreJob', code: 'ATLAS_NETWORK_ERROR', sent: true }),
    ];
    const { timers, pollers, stream } = setup(
      async () => {
        const f = failures.shift();
        if (f) throw f;
        return job('RUNNING');
      },
      { intervalMs: 1000, maxBackoffMs: 10_000 },
    );
    const s = stream();
    const first = s.next();
    for (let i = 0; i < 5; i++) {
      await settle();
      timers.fire();
    }
    expect(statusOf(await first)).toBe('RUNNING');
    await settle();
    expect(timers.delays).toEqual([2000, 4000, 8000, 90_000, 10_000, 1000]);
    expect(pollers.polls).toBe(6);
    await s.return?.();
  });

  it('nothing is read, published or scheduled for a poller stopped while its read was in flight', async () => {
    for (const outcome of ['job', 'permanent', 'transient'] as const) {
      const read = deferred<RestoreJobSource>();
      const { channel, timers, stream } = setup(() => read.promise);
      const s = stream();
      const next = s.next();
      await settle();
      await s.return?.();
      await next;
      if (outcome === 'job') read.resolve(job('RUNNING'));
      else read.reject(outcome === 'permanent' ? apiError(404, 'RESTORE_JOB_NOT_FOUND') : apiError(503, 'X'));
      await settle();
      expect([channel.published, timers.pending]).toEqual([[], 0]);
    }
  });
});

describe('JobPollers: what Atlas refused is remembered for a while', () => {
  it('a later watch of a refused job fails at once with the same error, without a read, for 30 s by default', async () => {
    const clock = new ManualClock();
    const { pollers, stream, reads } = setup(
      async () => {
        throw apiError(404, 'RESTORE_JOB_NOT_FOUND');
      },
      { clock },
    );
    await expect(stream().next()).rejects.toMatchObject({ status: 404 });
    expect(reads()).toBe(1);
    const again = await stream()
      .next()
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(AtlasApiError);
    expect(again).toMatchObject({
      operation: 'getRestoreJob',
      status: 404,
      errorCode: 'RESTORE_JOB_NOT_FOUND',
      detail: 'the detail',
    });
    expect([reads(), pollers.refusedFromMemory]).toEqual([1, 1]);
    clock.advance(30_001);
    await expect(stream().next()).rejects.toMatchObject({ status: 404 });
    expect([reads(), pollers.refusedFromMemory]).toEqual([2, 1]);
  });

  it('failedTtlMs: 0 remembers nothing', async () => {
    const { stream, reads } = setup(
      async () => {
        throw apiError(410, 'VERSION_GONE');
      },
      { failedTtlMs: 0, clock: new ManualClock() },
    );
    await expect(stream().next()).rejects.toMatchObject({ status: 410 });
    await expect(stream().next()).rejects.toMatchObject({ status: 410 });
    expect(reads()).toBe(2);
  });
});

describe('JobPollers: the gateway’s own Atlas budget', () => {
  const spent = (retryAfterMs?: unknown) =>
    new GatewayError('RATE_LIMITED', 'Your share of the Atlas budget is spent.', {
      extensions: retryAfterMs === undefined ? {} : { retryAfterMs },
    });

  it('refuses the first read of a watch: the subscriber gets RATE_LIMITED at once, and the poller stops', async () => {
    const err = spent(5_000);
    const { pollers, stream, timers } = setup(async () => {
      throw err;
    });
    await expect(stream().next()).rejects.toBe(err);
    await settle();
    expect([pollers.stats().pollers, timers.pending]).toEqual([0, 0]);
  });

  it('refuses a later read: the subscription stays, waiting what the budget asks (or the backoff)', async () => {
    const answers: (RestoreJobSource | Error)[] = [
      job('RUNNING'),
      spent(90_000),
      spent('soon'),
      job('COMPLETED'),
    ];
    const { stream, timers } = setup(
      async () => {
        const a = answers.shift()!;
        if (a instanceof Error) throw a;
        return a;
      },
      { intervalMs: 1000, maxBackoffMs: 10_000 },
    );
    const s = stream();
    expect(statusOf(await s.next())).toBe('RUNNING');
    const next = s.next();
    for (let i = 0; i < 3; i++) {
      await settle();
      timers.fire();
    }
    expect(statusOf(await next)).toBe('COMPLETED');
    expect(timers.delays).toEqual([1000, 90_000, 4000]);
  });
});

describe('JobPollers: late subscribers and a stop during publication', () => {
  it('a subscriber joining a running poller gets its last state at once, without a read', async () => {
    const { stream, reads } = setup(async () => job('RUNNING'));
    const a = stream();
    expect(statusOf(await a.next())).toBe('RUNNING');
    const b = stream();
    expect(statusOf(await b.next())).toBe('RUNNING');
    expect(reads()).toBe(1);
    await a.return?.();
    await b.return?.();
  });

  it('a poller stopped while publishing schedules nothing', async () => {
    const { channel, stream, timers } = setup(async () => job('RUNNING'));
    const gate = deferred<void>();
    const publish = channel.publish.bind(channel);
    channel.publish = async (key, message) => {
      await gate.promise;
      return publish(key, message);
    };
    const s = stream();
    const next = s.next();
    await settle();
    await s.return?.();
    await next;
    gate.resolve();
    await settle();
    expect(timers.pending).toBe(0);
  });
});
