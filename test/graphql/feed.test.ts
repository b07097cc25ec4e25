import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/callers/api-keys.js';
import type { Right } from '../../src/callers/caller.js';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import { sseSubscription, wsClient, type Payload } from '../support/subscription-clients.js';
import { apiKeyCallers } from '../support/caller-requests.js';
import { startStack, type Stack } from '../support/stack.js';
import { operationOver, TRANSPORTS } from '../support/transports.js';

/*
 * The feed features against the spec-checked simulator, over real sockets to the gateway, with
 * manual poll timers (each `timers.fire()` is one poll interval) and the simulator's manual clock.
 * Upstream calls are counted from the simulator's request log.
 */

const P = SEED.projects.payments.id;
const A = SEED.projects.analytics.id;
const F = SEED.flex;
const T = SEED.tenant;
const SNAPSHOT_MS = 10_000;

const ALL: Right[] = ['read', 'download', 'restore'];
const key = (id: string, projects: string[] | '*', rights: Right[]) => ({
  id,
  key: generateApiKey(),
  projects,
  rights,
});
const CALLERS = {
  everyone: key('everyone', '*', ALL),
  /** Sees only Analytics. */
  analyst: key('analyst', [A], ALL),
};
const as = (c: keyof typeof CALLERS) => ({ 'x-api-key': CALLERS[c].key });

let stack: Stack;
let url: string;
let timers: ManualTimers;
beforeAll(async () => {
  timers = new ManualTimers();
  stack = await startStack({
    sim: { jobMs: SNAPSHOT_MS, profile: 'realistic' },
    gateway: {
      pollIntervalMs: 1000,
      timers,
      authenticate: apiKeyCallers(CALLERS),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

/** Waits for a state the test can observe (a count, a poller), never for a duration. */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

const ops = (calls: { operationId: string }[]) => calls.map((c) => c.operationId);
const count = (calls: { operationId: string }[], op: string) => ops(calls).filter((o) => o === op).length;

async function http<T>(query: string, variables: Record<string, unknown>, caller = as('everyone')) {
  const a = await operationOver('HTTP', url, { query, variables }, caller);
  return a as { how: string; data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

const WATCH_SNAPSHOT = `subscription($p: ID!, $c: String!, $s: ID!) {
  snapshotStatus(projectId: $p, clusterName: $c, snapshotId: $s) { id status startTime finishTime }
}`;
const statusesOf = (payloads: Payload[]) =>
  payloads.map(
    (p) =>
      (p.data?.snapshotStatus as { status: string } | undefined)?.status ?? p.errors?.[0]?.extensions?.code,
  );

describe('Cluster.latestCompletedSnapshot', () => {
  const Q = `query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { latestCompletedSnapshot { id status } } }`;

  it.each([
    // Tenant lists come whole: one call. Flex: a probe of 5 for totalCount, then the newest page.
    ['tenant', T.clusterName, 'listGroupClusterBackupTenantSnapshots', 1],
    ['Flex', F.clusterName, 'listGroupFlexClusterBackupSnapshots', 2],
  ])(
    'answers the newest COMPLETED %s snapshot from the newest end of the list',
    async (_f, cluster, op, reads) => {
      stack.sim.store.takeSnapshot(P, cluster);
      let answer:
        | Awaited<ReturnType<typeof http<{ cluster: { latestCompletedSnapshot: { id: string } } }>>>
        | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await http(Q, { p: P, c: cluster });
      });
      expect(answer?.errors).toBeUndefined();
      // The newest snapshot is still QUEUED: the newest COMPLETED one is further down the list.
      const expected = stack.sim.store.listSnapshots(P, cluster).find((s) => s.status === 'COMPLETED')!.id;
      expect(stack.sim.store.listSnapshots(P, cluster)[0]!.status).not.toBe('COMPLETED');
      expect(answer?.data?.cluster.latestCompletedSnapshot).toEqual({ id: expected, status: 'COMPLETED' });
      expect(count(calls, op)).toBe(reads);
      expect(ops(calls).filter((o) => o.includes('Snapshot') && o !== op)).toEqual([]);
    },
  );
});

describe('snapshotStatus', () => {
  it.each([
    ['Flex', F.clusterName],
    ['tenant', T.clusterName],
  ])(
    'follows a new %s snapshot QUEUED → RUNNING → COMPLETED over SSE and graphql-ws, one read per interval for all',
    async (_family, cluster) => {
      const snap = stack.sim.store.takeSnapshot(P, cluster, { durationMs: SNAPSHOT_MS });
      const vars = { p: P, c: cluster, s: snap.id };
      // Every read of this snapshot (its id is in the path), after the cluster's family is known.
      const reads = () => stack.sim.stats().requests.filter((r) => r.target.includes(snap.id)).length;
      await http('query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { family } }', {
        p: P,
        c: cluster,
      });
      const joinedBefore = stack.gateway.leanSse.joined;
      const sse = [
        await sseSubscription(url, WATCH_SNAPSHOT, vars, as('everyone')),
        await sseSubscription(url, WATCH_SNAPSHOT, vars, as('everyone')),
      ];
      const ws = wsClient(url, as('everyone')).start(WATCH_SNAPSHOT, vars);
      await until('graphql-ws got the first state', () => ws.payloads.length === 1);
      for (const s of sse) expect(await s.pull()).toBe(true);
      expect(statusesOf([...sse.flatMap((s) => s.payloads), ...ws.payloads])).toEqual([
        'QUEUED',
        'QUEUED',
        'QUEUED',
      ]);
      // Three clients, one poller, one read so far; the two identical SSE subscriptions of one caller
      // are one execution (useLeanSse's sharedFields), so the poller has two subscribers.
      expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 2 });
      expect(stack.gateway.leanSse).toMatchObject({ open: 2, executions: 1 });
      expect(stack.gateway.leanSse.joined - joinedBefore).toBe(1);
      expect(reads()).toBe(1);

      stack.clock.advance(SNAPSHOT_MS / 2);
      timers.fire();
      for (const s of sse) expect(await s.pull()).toBe(true);
      await until('graphql-ws got RUNNING', () => ws.payloads.length === 2);
      expect(reads()).toBe(2);

      stack.clock.advance(SNAPSHOT_MS);
      timers.fire();
      const ends = await Promise.all([...sse.map((s) => s.rest()), ws.ended]);
      for (const end of ends) expect(statusesOf(end.payloads)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
      const last = ends[0]!.payloads[2]!.data!.snapshotStatus as { finishTime: string | null };
      expect(last.finishTime).not.toBeNull();
      expect(reads()).toBe(3);
      expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
    },
  );

  it('a snapshot already COMPLETED is one event, then the stream completes', async () => {
    const sub = await sseSubscription(
      url,
      WATCH_SNAPSHOT,
      { p: P, c: F.clusterName, s: F.completedSnapshotId },
      as('everyone'),
    );
    expect(statusesOf((await sub.rest()).payloads)).toEqual(['COMPLETED']);
  });

  it('answers NOT_FOUND, with no upstream call, to a caller who cannot see the project, on SSE and graphql-ws', async () => {
    const vars = { p: P, c: F.clusterName, s: F.completedSnapshotId };
    const answers: unknown[] = [];
    const calls = await stack.upstreamCalls(async () => {
      for (const transport of TRANSPORTS.filter((t) => t !== 'HTTP')) {
        const a = await operationOver(
          transport,
          url,
          { query: WATCH_SNAPSHOT, variables: vars },
          as('analyst'),
        );
        answers.push([transport, a.errors?.[0]?.extensions?.code]);
      }
    });
    expect(answers).toEqual([
      ['SSE', 'NOT_FOUND'],
      ['graphql-ws', 'NOT_FOUND'],
    ]);
    expect(calls).toEqual([]);
  });
});

interface FeedPage {
  jobs: {
    nodes: {
      id: string;
      status: string;
      deliveryType: string;
      restoreScheduledDate: string;
      cluster: { name: string; projectId: string; family: string };
    }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}
const FEED = `query($f: JobFeedFilter, $n: Int, $a: String) {
  jobs(filter: $f, first: $n, after: $a) {
    nodes { id status deliveryType restoreScheduledDate cluster { name projectId family } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const FEED_IDS = `query($f: JobFeedFilter, $n: Int, $a: String) {
  jobs(filter: $f, first: $n, after: $a) { nodes { id restoreScheduledDate } pageInfo { hasNextPage endCursor } }
}`;

/** Every job of the clusters, newest first by the gateway's order, from the simulator's store. */
function truth(clusters: [string, string][]) {
  return clusters
    .flatMap(([p, c]) => stack.sim.store.listRestoreJobs(p, c))
    .map((j) => ({ id: j.id, at: Math.floor(j.createdAt / 1000) }))
    .sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1))
    .map((j) => j.id);
}

/** Every node of the feed, page after page. */
async function walk(f: Record<string, unknown>, n: number) {
  const out: FeedPage['jobs']['nodes'] = [];
  let a: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res: Awaited<ReturnType<typeof http<FeedPage>>> = await http<FeedPage>(FEED, { f, n, a });
    expect(res.errors).toBeUndefined();
    out.push(...res.data!.jobs.nodes);
    if (!res.data!.jobs.pageInfo.hasNextPage) return out;
    a = res.data!.jobs.pageInfo.endCursor;
  }
  throw new Error('the feed never ended');
}

describe('Query.jobs', () => {
  const BOTH = {
    projectIds: [P, A],
    clusterNames: [T.clusterName, F.clusterName, 'reporting-m5', F.other.clusterName],
  };
  const CLUSTERS: [string, string][] = [
    [P, T.clusterName],
    [P, F.clusterName],
    [A, 'reporting-m5'],
    [A, F.other.clusterName],
  ];

  it('pages through the jobs of two projects and both families, newest first, with counted upstream calls per page', async () => {
    // One more job of each family, so the feed's newest end is not the seed's.
    stack.sim.store.createRestoreJob({
      groupId: A,
      clusterName: F.other.clusterName,
      snapshotId: stack.sim.store.listSnapshots(A, F.other.clusterName).find((s) => s.status === 'COMPLETED')!
        .id,
      deliveryType: 'DOWNLOAD',
      targetProjectId: A,
      targetDeploymentItemName: F.other.clusterName,
    });
    stack.sim.store.createRestoreJob({
      groupId: P,
      clusterName: T.clusterName,
      snapshotId: T.completedSnapshotId,
      deliveryType: 'DOWNLOAD',
      targetProjectId: P,
      targetDeploymentItemName: T.clusterName,
    });
    const expected = truth(CLUSTERS);
    expect(expected.length).toBeGreaterThan(6);
    const seen: string[] = [];
    const perPage: string[][] = [];
    let after: string | null = null;
    let families = new Set<string>();
    for (let page = 0; page < 10; page++) {
      let answer: Awaited<ReturnType<typeof http<FeedPage>>> | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await http<FeedPage>(FEED, { f: BOTH, n: 3, a: after });
      });
      expect(answer?.errors).toBeUndefined();
      const jobs = answer!.data!.jobs;
      seen.push(...jobs.nodes.map((n) => n.id));
      families = new Set([...families, ...jobs.nodes.map((n) => n.cluster.family)]);
      perPage.push(ops(calls).sort());
      if (!jobs.pageInfo.hasNextPage) break;
      after = jobs.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    expect(families).toEqual(new Set(['TENANT', 'FLEX']));
    // Per page: two cluster lists per project, and one read per cluster not yet done (tenant lists
    // are whole; these Flex lists fit one page of `first`, or a covering page once the cursor knows
    // where it is).
    for (const calls of perPage) {
      expect(calls.filter((c) => c === 'listGroupClusters').length).toBe(2);
      expect(calls.filter((c) => c === 'listGroupFlexClusters').length).toBe(2);
    }
    // Job reads per page: page 1 reads each of the 4 clusters, payments-flex twice (a probe of 3
    // learns where its 4 jobs end, then the page holding the newest 3); later pages read only the
    // clusters not done, one call each (tenant lists come whole; the Flex cursor names its page).
    expect(perPage.map((calls) => calls.filter((c) => c.includes('Restore')).length)).toEqual([5, 3, 3, 1]);
    expect(perPage.map((calls) => calls.length)).toEqual([9, 7, 7, 5]);
  });

  it('reads only the newest end of a cluster with thousands of jobs: two calls for its first page', async () => {
    const busy = SEED.realistic.busyClusterName;
    let answer: Awaited<ReturnType<typeof http<FeedPage>>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      answer = await http<FeedPage>(FEED_IDS, { f: { projectIds: [P], clusterNames: [busy] }, n: 10 });
    });
    expect(answer?.errors).toBeUndefined();
    expect(answer!.data!.jobs.nodes.map((n) => n.id)).toEqual(truth([[P, busy]]).slice(0, 10));
    expect(count(calls, 'listGroupFlexClusterBackupRestoreJobs')).toBe(2);
    // The next page knows where it is: one covering page.
    const next = await stack.upstreamCalls(async () => {
      answer = await http<FeedPage>(FEED_IDS, {
        f: { projectIds: [P], clusterNames: [busy] },
        n: 10,
        a: answer!.data!.jobs.pageInfo.endCursor,
      });
    });
    expect(answer!.data!.jobs.nodes.map((n) => n.id)).toEqual(truth([[P, busy]]).slice(10, 20));
    expect(count(next, 'listGroupFlexClusterBackupRestoreJobs')).toBe(1);
  });

  it('filters by status and delivery type, and `since` bounds the reads', async () => {
    const all = await walk(BOTH, 100);
    const filtered = await walk(
      { ...BOTH, statuses: ['FAILED', 'COMPLETED'], deliveryTypes: ['DOWNLOAD'] },
      2,
    );
    const expected = all.filter(
      (n) => ['FAILED', 'COMPLETED'].includes(n.status) && n.deliveryType === 'DOWNLOAD',
    );
    expect(expected.length).toBeGreaterThan(1);
    expect(expected.length).toBeLessThan(all.length);
    expect(filtered.map((n) => n.id)).toEqual(expected.map((n) => n.id));

    const since = new Date(stack.clock.now() - 60_000).toISOString();
    const recent = await http<FeedPage>(FEED, { f: { ...BOTH, since }, n: 50 });
    expect(
      recent.data!.jobs.nodes.every((n) => Date.parse(n.restoreScheduledDate) >= Date.parse(since)),
    ).toBe(true);
    expect(recent.data!.jobs.pageInfo.hasNextPage).toBe(false);
  });

  it('refuses a cursor it did not make, naming the argument', async () => {
    const res = await http<FeedPage>(FEED_IDS, { f: BOTH, a: 'bm9wZQ' });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(res.errors?.[0]?.message).toContain('after');
  });

  it('gives a caller nothing from a project it cannot see, on every transport, and reads nothing of it', async () => {
    for (const transport of TRANSPORTS) {
      let answer: Awaited<ReturnType<typeof operationOver>> | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await operationOver(
          transport,
          url,
          { query: FEED, variables: { f: { projectIds: [P, A] }, n: 50 } },
          as('analyst'),
        );
      });
      const nodes = (answer?.data as FeedPage).jobs.nodes;
      expect(nodes.length).toBeGreaterThan(0);
      expect(nodes.every((n) => n.cluster.projectId === A)).toBe(true);
      expect(calls.filter((c) => c.target.includes(P))).toEqual([]);
    }
  });
});

describe('jobEvents', () => {
  const EVENTS = `subscription($f: JobFeedFilter) { jobEvents(filter: $f) { kind previousStatus job { id status cluster { name } } } }`;
  type Ev = {
    jobEvents: {
      kind: string;
      previousStatus: string | null;
      job: { id: string; status: string; cluster: { name: string } };
    };
  };

  it('sends one event per change over graphql-ws and SSE, one read per cluster per interval for all subscribers', async () => {
    const f = { projectIds: [A], clusterNames: [F.other.clusterName], deliveryTypes: ['DOWNLOAD'] };
    // Jobs made by the tests above are over by now: the only changes are this test's.
    stack.clock.advance(2 * SNAPSHOT_MS);
    const ws = wsClient(url, as('analyst')).start(EVENTS, { f });
    const sse = await sseSubscription(url, EVENTS, { f }, as('everyone'));
    // Both subscribers share the project's cluster list and the cluster's jobs.
    await until(
      'pollers started',
      () => stack.gateway.pollers.stats().subscribers === 4 && timers.pending === 2,
    );
    expect(stack.gateway.pollers.stats().pollers).toBe(2);
    const reads = () => count(stack.sim.stats().requests, 'listGroupFlexClusterBackupRestoreJobs');
    const job = stack.sim.store.createRestoreJob({
      groupId: A,
      clusterName: F.other.clusterName,
      snapshotId: stack.sim.store.listSnapshots(A, F.other.clusterName).find((s) => s.status === 'COMPLETED')!
        .id,
      deliveryType: 'DOWNLOAD',
      targetProjectId: A,
      targetDeploymentItemName: F.other.clusterName,
    });
    const before = reads();
    timers.fireUpTo(1000);
    await until('graphql-ws got APPEARED', () => ws.payloads.length === 1);
    expect(await sse.pull()).toBe(true);
    expect(reads() - before).toBe(1);
    const appeared = {
      kind: 'APPEARED',
      previousStatus: null,
      job: { id: job.id, status: 'QUEUED', cluster: { name: F.other.clusterName } },
    };
    expect((ws.payloads[0]!.data as Ev).jobEvents).toEqual(appeared);
    expect((sse.payloads[0]!.data as Ev).jobEvents).toEqual(appeared);
    stack.clock.advance(SNAPSHOT_MS / 2);
    timers.fireUpTo(1000);
    await until('graphql-ws got CHANGED', () => ws.payloads.length === 2);
    expect(await sse.pull()).toBe(true);
    expect(reads() - before).toBe(2);
    for (const p of [ws.payloads[1]!, sse.payloads[1]!]) {
      expect((p.data as Ev).jobEvents).toMatchObject({
        kind: 'CHANGED',
        previousStatus: 'QUEUED',
        job: { status: 'RUNNING' },
      });
    }
    // Leaving a quiet scope stops its pollers at once, not at the next change.
    await sse.close();
    ws.stop();
    await until('pollers stopped', () => stack.gateway.pollers.stats().pollers === 0);
    expect(timers.pending).toBe(0);
  });

  it('a project the caller cannot see is out of its scope on every subscription transport: no event, nothing read', async () => {
    for (const transport of TRANSPORTS.filter((t) => t !== 'HTTP')) {
      let answer: Awaited<ReturnType<typeof operationOver>> | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await operationOver(
          transport,
          url,
          { query: EVENTS, variables: { f: { projectIds: [P] } } },
          as('analyst'),
        );
      });
      // An empty scope: the stream completes at once, with no event.
      expect([transport, answer?.data, answer?.errors]).toEqual([transport, undefined, undefined]);
      expect(calls).toEqual([]);
    }
  });
});
