import { createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import { subscribeSse, type SseEvent } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';
import { newDownload } from '../support/new-download.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;
const T = SEED.tenant;
const JOB_MS = 10_000;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status snapshotUrl expirationDate isTerminal }
}`;

interface JobEvent {
  restoreJobStatus: {
    id: string;
    status: string;
    snapshotUrl: string | null;
    expirationDate: string | null;
    isTerminal: boolean;
  };
}

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

async function setup(timers?: ManualTimers, env: Record<string, string> = {}) {
  const stack = await startStack({
    env,
    sim: { jobMs: JOB_MS },
    gateway: { pollIntervalMs: 10, ...(timers ? { timers } : {}) },
  });
  stacks.push(stack);
  const url = await stack.gateway.listen(0);
  return { stack, url };
}

const statusOf = (e: SseEvent | undefined) =>
  (e?.data as { data?: JobEvent } | undefined)?.data?.restoreJobStatus;

/** Reads events until `status` arrives; every event must be a change (no repeats). */
async function until(sub: { next(): Promise<SseEvent | undefined> }, status: string, seen: string[]) {
  for (;;) {
    const e = await sub.next();
    if (!e) throw new Error(`stream ended before ${status}; saw ${seen.join(' → ')}`);
    const s = statusOf(e);
    if (!s) throw new Error(`unexpected event ${JSON.stringify(e)}`);
    seen.push(s.status);
    if (s.status === status) return s;
  }
}

describe('restoreJobStatus over SSE', () => {
  it.each([
    ['FLEX', F.clusterName, F.completedSnapshotId],
    ['TENANT', T.clusterName, T.completedSnapshotId],
  ])(
    'streams a %s download QUEUED → RUNNING → COMPLETED with its URL, then completes',
    async (_f, cluster, snapshot) => {
      const { stack, url } = await setup();
      const jobId = await newDownload(stack, cluster, snapshot);
      const sub = await subscribeSse(url, WATCH, { p: P, c: cluster, j: jobId });
      const seen: string[] = [];
      const first = await until(sub, 'QUEUED', seen);
      expect(first).toMatchObject({ id: jobId, snapshotUrl: null, isTerminal: false });
      stack.clock.advance(JOB_MS / 2);
      await until(sub, 'RUNNING', seen);
      stack.clock.advance(JOB_MS);
      const done = await until(sub, 'COMPLETED', seen);
      expect(done.snapshotUrl).toMatch(/\/backup\/download\//);
      expect(done.expirationDate).not.toBeNull();
      expect(done.isTerminal).toBe(true);
      expect(seen).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
      expect((await sub.next())?.event).toBe('complete');
      await sub.closed;
      expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
    },
  );

  it('yields one event and completes for a job already finished', async () => {
    const { url } = await setup();
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: F.downloadJobId });
    expect(statusOf(await sub.next())).toMatchObject({ status: 'COMPLETED', isTerminal: true });
    expect((await sub.next())?.event).toBe('complete');
  });

  // Regression: the loaders were a lazy getter on the context, but yoga merges the context factory's
  // result with Object.assign, which read the getter: every SSE subscriber held nine DataLoaders.
  it('a subscription builds no DataLoaders (yoga’s Object.assign of the context read the lazy getter)', async () => {
    const { stack, url } = await setup();
    const loaderRequests = async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(/^gateway_loader_requests_total (\d+)$/m.exec(text)?.[1]);
    };
    const before = await loaderRequests();
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: F.downloadJobId });
    expect(statusOf(await sub.next())).toMatchObject({ status: 'COMPLETED' });
    expect((await sub.next())?.event).toBe('complete');
    expect(await loaderRequests()).toBe(before);
    // A query that reads Atlas does make them, once.
    const res = await stack.query(`{ projects { id } }`);
    expect(res.errors).toBeUndefined();
    expect(await loaderRequests()).toBe(before + 1);
  });

  it('ends with a typed NOT_FOUND error for a job Atlas does not have', async () => {
    const { url } = await setup();
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: SEED.unknownId });
    const e = await sub.next();
    expect((e?.data as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'NOT_FOUND',
    );
    await sub.close();
  });

  it('refuses a malformed job id before any upstream call', async () => {
    const { stack, url } = await setup();
    const calls = await stack.upstreamCalls(async () => {
      const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: 'nope' });
      const e = await sub.next();
      expect(JSON.stringify(e?.data)).toContain('BAD_USER_INPUT');
      await sub.close();
    });
    expect(calls).toEqual([]);
  });
});

describe('restoreJobStatus over graphql-ws', () => {
  it('streams the same ordered statuses over a WebSocket on the same port, then completes', async () => {
    const { stack, url } = await setup();
    const jobId = await newDownload(stack);
    const client = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const statuses: string[] = [];
      const completed = new Promise<void>((resolve, reject) => {
        client.subscribe<JobEvent>(
          { query: WATCH, variables: { p: P, c: F.clusterName, j: jobId } },
          {
            next: (r) => {
              const s = r.data?.restoreJobStatus.status;
              if (s && statuses.at(-1) !== s) statuses.push(s);
              if (s === 'QUEUED') stack.clock.advance(JOB_MS / 2);
              if (s === 'RUNNING') stack.clock.advance(JOB_MS);
            },
            error: reject,
            complete: resolve,
          },
        );
      });
      await completed;
      expect(statuses).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    } finally {
      await client.dispose();
    }
  });
});

describe('one poller per job', () => {
  /** Drives a job to COMPLETED with `n` SSE subscribers; answers the upstream reads of the job. */
  async function watchWith(n: number) {
    const timers = new ManualTimers();
    // Every subscriber comes from one address, which is one caller to the per-caller cap.
    const { stack, url } = await setup(timers, { GATEWAY_MAX_SUBSCRIPTIONS: String(n) });
    const jobId = await newDownload(stack);
    const reads = async (fn: () => Promise<void>) =>
      (await stack.upstreamCalls(fn)).filter((c) => c.operationId === 'getGroupFlexClusterBackupRestoreJob')
        .length;
    const subs: Awaited<ReturnType<typeof subscribeSse>>[] = [];
    let count = await reads(async () => {
      for (let i = 0; i < n; i++) {
        const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
        expect(statusOf(await sub.next())?.status).toBe('QUEUED');
        subs.push(sub);
      }
    });
    for (const [advance, status] of [
      [JOB_MS / 2, 'RUNNING'],
      [JOB_MS, 'COMPLETED'],
    ] as const) {
      stack.clock.advance(advance);
      count += await reads(async () => {
        expect(timers.fire()).toBe(1);
        for (const sub of subs) expect(statusOf(await sub.next())?.status).toBe(status);
      });
    }
    for (const sub of subs) expect((await sub.next())?.event).toBe('complete');
    expect(timers.pending).toBe(0);
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
    return count;
  }

  it('reads the job as often for 50 subscribers as for one', async () => {
    const one = await watchWith(1);
    const fifty = await watchWith(50);
    // RUNNING and COMPLETED: the first state (QUEUED) is the mutation's answer, primed (issue #19).
    expect(one).toBe(2);
    expect(fifty).toBe(one);
  });

  it('leaves no poller, timer or socket behind when the clients disconnect', async () => {
    const timers = new ManualTimers();
    const { stack, url } = await setup(timers);
    const jobId = await newDownload(stack);
    const subs = await Promise.all(
      Array.from({ length: 5 }, () => subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId })),
    );
    for (const s of subs) expect(statusOf(await s.next())?.status).toBe('QUEUED');
    // Five identical SSE subscriptions of one caller: one execution (useLeanSse's sharedFields).
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });
    expect(stack.gateway.leanSse).toMatchObject({ open: 5, executions: 1 });
    expect(timers.pending).toBe(1);
    for (const s of subs) await s.close();
    await expect.poll(() => stack.gateway.pollers.stats().pollers).toBe(0);
    expect(timers.pending).toBe(0);
    expect(stack.gateway.leanSse).toMatchObject({ open: 0, executions: 0 });
    await expect
      .poll(async () => ((await stack.gateway.server[Symbol.asyncDispose]) ? countConnections(stack) : 0))
      .toBe(0);
  });
});

function countConnections(stack: Stack): Promise<number> {
  return new Promise((resolve, reject) =>
    stack.gateway.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

describe('upstream trouble while watching', () => {
  it('keeps the subscription through 503s and 429s, backing off and honouring Retry-After', async () => {
    const timers = new ManualTimers();
    const { stack, url } = await setup(timers);
    const jobId = await newDownload(stack);
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
    expect(statusOf(await sub.next())?.status).toBe('QUEUED');
    // More failures than the client's own retries, so the poller sees the error.
    stack.sim.faults.add({ operationId: 'getGroupFlexClusterBackupRestoreJob', status: 503, times: 4 });
    timers.fire();
    await expect.poll(() => timers.pending).toBe(1);
    expect(timers.delays.at(-1)).toBe(20);
    stack.sim.faults.clear();
    stack.sim.faults.add({
      operationId: 'getGroupFlexClusterBackupRestoreJob',
      status: 503,
      retryAfterSec: 7,
      times: 4,
    });
    timers.fire();
    await expect.poll(() => timers.delays.at(-1)).toBe(7000);
    stack.sim.faults.clear();
    stack.clock.advance(2 * JOB_MS);
    timers.fire();
    expect(statusOf(await sub.next())?.status).toBe('COMPLETED');
    expect((await sub.next())?.event).toBe('complete');
  });

  it('waits out Atlas’s 429 RATE_LIMITED for the Retry-After it names, then carries on', async () => {
    const timers = new ManualTimers();
    const stack = await startStack({
      sim: { jobMs: JOB_MS, rateLimit: { capacity: 6, refillPerSecond: 1 } },
      gateway: { pollIntervalMs: 10, timers },
    });
    stacks.push(stack);
    const url = await stack.gateway.listen(0);
    const jobId = await newDownload(stack);
    const sub = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
    expect(statusOf(await sub.next())?.status).toBe('QUEUED');
    // Empty the project's bucket: the simulator's clock does not move, so nothing refills.
    while (stack.sim.rateLimiter!.take(P).ok);
    timers.fire();
    await expect.poll(() => timers.pending).toBe(1);
    expect(timers.delays.at(-1)).toBe(1000);
    expect(stack.sim.stats().requests.some((r) => r.status === 429)).toBe(true);
    stack.clock.advance(2 * JOB_MS);
    timers.fire();
    expect(statusOf(await sub.next())?.status).toBe('COMPLETED');
  });
});
