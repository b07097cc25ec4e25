import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../src/simulator/index.js';
import { SEED } from '../src/simulator/seed.js';
import type { Cleanup } from './cleanup.js';
import { startGatewayProcess, type ChildMemory } from './gateway-process.js';
import { graphql } from './graphql-client.js';
import { summarize } from './load.js';
import { REQUEST_DOWNLOAD, WATCH_JOB } from './operations.js';
import { treeRss } from './proc-stats.js';
import { inBatches, subscribeSse, type SseSubscription } from './sse-client.js';
import { startUpstream } from './upstream.js';

/** Delivery delays of one change, in ms, from the poll that saw it to each subscriber's receipt. */
export interface DelayStats {
  received: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One subscriber count. */
export interface SubscriptionRun {
  subscribers: number;
  /**
   * Whether identical subscriptions share one execution (the gateway's default). `false`: every
   * subscriber its own execution, as when each is a different caller.
   */
  shared: boolean;
  jobs: number;
  pollIntervalMs: number;
  /** Set when the run was skipped or failed; the other fields may then be missing. */
  error?: string;
  /** Time to open every subscription and receive its first event. */
  connectMs?: number;
  memory?: {
    baseline: ChildMemory;
    withSubscribers: ChildMemory;
    /** RSS of the gateway with the subscribers, before a GC. */
    rssBeforeGc: number;
    rssPerSubscriber: number;
    heapPerSubscriber: number;
  };
  polls?: {
    windowMs: number;
    total: number;
    /** Upstream reads per job per poll interval while every subscriber was connected: 1 is the target. */
    perJobPerInterval: number;
    /** Fewest and most reads one job got in the window. */
    minPerJob: number;
    maxPerJob: number;
    /** Shortest gap between two reads of the same job. */
    minGapMs: number;
    /** The gateway's pollers while the subscribers were connected (one per job). */
    pollers: number;
  };
  delivery?: { RUNNING: DelayStats; COMPLETED: DelayStats };
  /** Streams that ended with `complete` after COMPLETED. */
  completedStreams?: number;
  /** Pollers left once every job finished (0: nothing keeps polling). */
  pollersAfter?: number;
}

/** Options of `runSubscriptions`. */
export interface SubscriptionOptions {
  subscribers: number;
  jobs: number;
  pollIntervalMs: number;
  /** Poll intervals the polls are counted over. */
  windowIntervals: number;
  /** See `SubscriptionRun.shared`. @default true */
  shared?: boolean;
  cleanup: Cleanup;
}

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
// The simulator's jobs only move when the bench steps its clock, so the subscribers connect and the
// polls are counted while every job is QUEUED, and each change happens at a moment the bench chooses.
const JOB_MS = 600_000;

/** The soft `ulimit -n` of this process (children inherit it). */
export function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function delays(received: Float64Array, jobOf: Uint16Array, answeredAt: Map<number, number>): DelayStats {
  const values = new Float64Array(received.length);
  let n = 0;
  for (let i = 0; i < received.length; i++) {
    const at = received[i]!;
    const answer = answeredAt.get(jobOf[i]!);
    if (!Number.isNaN(at) && answer !== undefined) values[n++] = at - answer;
  }
  const s = summarize(values, n);
  return { received: n, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max };
}

async function until(what: string, timeoutMs: number, done: () => boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * Section 4: `subscribers` SSE subscriptions spread over `jobs` download jobs, against a gateway in
 * its own process: upstream polls per job per interval, gateway memory per subscriber, and the delay
 * from the poll that saw a change to each subscriber receiving it.
 */
export async function runSubscriptions(o: SubscriptionOptions): Promise<SubscriptionRun> {
  const shared = o.shared ?? true;
  const run: SubscriptionRun = {
    subscribers: o.subscribers,
    shared,
    jobs: o.jobs,
    pollIntervalMs: o.pollIntervalMs,
  };
  const limit = openFileLimit();
  // Each process holds one socket per subscriber, plus a margin for everything else.
  if (limit < o.subscribers + 1000) {
    run.error = `ulimit -n is ${limit}, too low for ${o.subscribers} sockets (needs ≥ ${o.subscribers + 1000}): raise it with \`ulimit -n ${o.subscribers + 1000}\``;
    return run;
  }

  const clock = new ManualClock();
  const upstream = await startUpstream({ clock, jobMs: JOB_MS });
  const closeUpstream = o.cleanup.defer('subscription simulator', () => upstream.close());
  const gateway = await startGatewayProcess({
    baseUrl: upstream.url,
    pollIntervalMs: o.pollIntervalMs,
    ...(shared ? {} : { leanSse: { sharedFields: [] } }),
  });
  const closeGateway = o.cleanup.defer('subscription gateway', () => gateway.close());
  const subs: SseSubscription[] = [];
  const closeSubs = o.cleanup.defer('subscribers', () => subs.forEach((s) => s.close()));
  try {
    const snapshots = upstream.sim.store
      .listSnapshots(P, F)
      .filter((s) => s.status === 'COMPLETED')
      .slice(0, o.jobs);
    if (snapshots.length < o.jobs)
      throw new Error(`only ${snapshots.length} COMPLETED snapshots for ${o.jobs} jobs`);
    const jobIds: string[] = [];
    for (const s of snapshots) {
      const d = await graphql<{ requestDownload: { job: { id: string } } }>(gateway.url, REQUEST_DOWNLOAD, {
        i: { projectId: P, clusterName: F, snapshotId: s.id, reuseExisting: false },
      });
      jobIds.push(d.requestDownload.job.id);
    }
    const jobIndex = new Map(jobIds.map((id, i) => [id, i]));

    // Warm-up: the first subscriptions compile and allocate what every later one reuses; only what
    // the measured subscribers add should count per subscriber.
    const warm = await Promise.all(
      jobIds.flatMap((j) =>
        [0, 1].map(async () => {
          let first!: () => void;
          const got = new Promise<void>((r) => (first = r));
          const sub = await subscribeSse(gateway.url, WATCH_JOB, { p: P, c: F, j }, () => first());
          await got;
          return sub;
        }),
      ),
    );
    warm.forEach((s) => s.close());
    // The server notices the closed sockets a moment later; then the pollers stop.
    for (let i = 0; i < 200 && (await gateway.memory(false)).pollers.pollers > 0; i++) await sleep(50);
    const baseline = await gateway.memory(true);

    // Per subscriber: its job, and when it received RUNNING and COMPLETED (NaN until then).
    const n = o.subscribers;
    const jobOf = new Uint16Array(n);
    const runningAt = new Float64Array(n).fill(NaN);
    const completedAt = new Float64Array(n).fill(NaN);
    let firstEvents = 0;
    let errors = 0;
    const t0 = performance.now();
    await inBatches(
      Array.from({ length: n }, (_, i) => i),
      200,
      async (i) => {
        const job = i % o.jobs;
        jobOf[i] = job;
        let first = true;
        let firstSeen!: () => void;
        const gotFirst = new Promise<void>((r) => (firstSeen = r));
        const sub = await subscribeSse(gateway.url, WATCH_JOB, { p: P, c: F, j: jobIds[job] }, (e) => {
          if (e.error) errors += 1;
          if (e.status === 'RUNNING') runningAt[i] = e.at;
          if (e.status === 'COMPLETED') completedAt[i] = e.at;
          if (first) {
            first = false;
            firstEvents += 1;
            firstSeen();
          }
        });
        subs.push(sub);
        await gotFirst;
      },
    );
    run.connectMs = performance.now() - t0;
    if (errors > 0) throw new Error(`${errors} subscriptions answered errors`);

    const rssBeforeGc = treeRss(gateway.pid);
    const withSubscribers = await gateway.memory(true);
    run.memory = {
      baseline,
      withSubscribers,
      rssBeforeGc,
      rssPerSubscriber: (withSubscribers.rss - baseline.rss) / n,
      heapPerSubscriber: (withSubscribers.heapUsed - baseline.heapUsed) / n,
    };

    // Polls while everyone is connected and nothing changes.
    const pollTimes: number[][] = jobIds.map(() => []);
    const answeredAt = { RUNNING: new Map<number, number>(), COMPLETED: new Map<number, number>() };
    let counting = true;
    const off = upstream.onAnswer((a) => {
      if (!a.job) return;
      const j = jobIndex.get(a.job.id);
      if (j === undefined) return;
      if (counting) pollTimes[j]!.push(a.at);
      if ((a.job.status === 'RUNNING' || a.job.status === 'COMPLETED') && !answeredAt[a.job.status].has(j)) {
        answeredAt[a.job.status].set(j, a.at);
      }
    });
    // The window as it really lasted: with 10,000 sockets in this process, the sleep can overrun by a
    // good part of an interval, and a nominal window would count a sixth poll of five.
    const windowStart = performance.now();
    await sleep(o.windowIntervals * o.pollIntervalMs);
    counting = false;
    const windowMs = performance.now() - windowStart;
    const perJob = pollTimes.map((t) => t.length);
    const total = perJob.reduce((a, b) => a + b, 0);
    const gaps = pollTimes.flatMap((t) => t.slice(1).map((at, i) => at - t[i]!));
    run.polls = {
      windowMs,
      total,
      perJobPerInterval: total / o.jobs / (windowMs / o.pollIntervalMs),
      minPerJob: Math.min(...perJob),
      maxPerJob: Math.max(...perJob),
      minGapMs: gaps.length ? Math.min(...gaps) : NaN,
      pollers: withSubscribers.pollers.pollers,
    };

    // Two changes, each seen by the next poll of every job: QUEUED → RUNNING → COMPLETED.
    const wait = 3 * o.pollIntervalMs + 20_000;
    clock.advance(0.2 * JOB_MS + 1);
    await until('every subscriber to receive RUNNING', wait, () => !runningAt.some(Number.isNaN)).catch(
      (err: Error) => (run.error = err.message),
    );
    clock.advance(JOB_MS);
    await until('every subscriber to receive COMPLETED', wait, () => !completedAt.some(Number.isNaN)).catch(
      (err: Error) => (run.error = err.message),
    );
    await Promise.race([Promise.all(subs.map((s) => s.ended)), sleep(10_000)]);
    off();
    run.delivery = {
      RUNNING: delays(runningAt, jobOf, answeredAt.RUNNING),
      COMPLETED: delays(completedAt, jobOf, answeredAt.COMPLETED),
    };
    run.completedStreams = subs.filter((s) => s.completed()).length;
    run.pollersAfter = (await gateway.memory(false)).pollers.pollers;
    if (firstEvents !== n) run.error ??= `${n - firstEvents} subscribers never got a first event`;
  } catch (err) {
    run.error = (err as Error).message;
  } finally {
    await closeSubs();
    await closeGateway();
    await closeUpstream();
  }
  return run;
}
