import { afterEach, describe, expect, it } from 'vitest';
import { createAtlasClient } from '../../src/atlas/index.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { passThroughAuth } from '../../src/callers/pass-through.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { subscribeSse } from '../support/sse.js';
import { OWNER, startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';
import { apiKeyCallers, keyCaller } from '../support/caller-requests.js';

// The shared upstream read cache (docs/caching.md) on the production gateway over the simulator: who
// shares an answer, how old it may be, what a mutation clears, and that N identical reads cost one.

const F = SEED.flex;
const P = F.groupId;
const JOBS_TTL = 5_000;
const ENV = { GATEWAY_CACHE: 'on', GATEWAY_CACHE_TTL_JOBS_MS: String(JOBS_TTL) };

const JOBS = /* GraphQL */ `
  query Jobs($p: ID!, $c: String!) {
    cluster(projectId: $p, name: $c) {
      restoreJobs(first: 50) {
        totalCount
        nodes {
          id
        }
      }
    }
  }
`;
type JobsData = { cluster: { restoreJobs: { totalCount: number; nodes: { id: string }[] } } };
const vars = { p: P, c: F.clusterName };

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

async function stackWith(opts: Parameters<typeof startStack>[0] = {}): Promise<Stack> {
  const stack = await startStack({ env: ENV, ...opts });
  stacks.push(stack);
  return stack;
}

async function post<T = JobsData>(
  stack: Stack,
  headers: Record<string, string>,
  query = JOBS,
  variables: Record<string, unknown> = vars,
): Promise<GraphQLAnswer<T>> {
  const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<T>, 'status'>) };
}

/** The upstream calls (token requests excluded) a read made, and what it answered. */
async function read(stack: Stack, headers: Record<string, string> = {}) {
  let answer: GraphQLAnswer<JobsData> | undefined;
  const calls = await stack.upstreamCalls(async () => {
    answer = await post(stack, headers);
  });
  expect(answer?.errors).toBeUndefined();
  return { calls: calls.length, ids: answer!.data!.cluster.restoreJobs.nodes.map((n) => n.id) };
}

/** A download job made in Atlas behind the gateway's back (another tool, the Atlas UI). */
async function jobMadeElsewhere(stack: Stack): Promise<string> {
  const atlas = createAtlasClient({
    baseUrl: stack.sim.url,
    auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
    clock: stack.clock,
  });
  try {
    const job = await atlas.flexBackup.download({
      groupId: P,
      name: F.clusterName,
      snapshotId: F.completedSnapshotId,
    });
    return job.id!;
  } finally {
    await atlas.close();
  }
}

describe('freshness', () => {
  it('serves a repeated read from the cache until its kind’s bound, then reads Atlas again', async () => {
    const stack = await stackWith();
    const first = await read(stack);
    expect(first.calls).toBeGreaterThan(0);
    const made = await jobMadeElsewhere(stack);

    // Within the bound: no upstream call, and the job made elsewhere is not seen yet (the documented staleness).
    stack.clock.advance(JOBS_TTL - 1);
    const cached = await read(stack);
    expect(cached).toEqual({ calls: 0, ids: first.ids });
    expect(cached.ids).not.toContain(made);

    // At the bound: the jobs from Atlas again, and the truth; the cluster (30 s bound) still cached.
    stack.clock.advance(1);
    const fresh = await read(stack);
    expect(fresh.calls).toBeGreaterThan(0);
    expect(fresh.calls).toBeLessThan(first.calls);
    expect(fresh.ids).toContain(made);
    stack.clock.advance(30_000);
    expect((await read(stack)).calls).toBe(first.calls);
    expect(stack.gateway.readCache?.stats.hits).toBeGreaterThan(0);
  });

  it('reads fresh for a request with Cache-Control: no-cache, and refreshes the cache for the next', async () => {
    const stack = await stackWith();
    const first = await read(stack);
    const made = await jobMadeElsewhere(stack);
    const asked = await read(stack, { 'cache-control': 'no-cache' });
    expect(asked.calls).toBe(first.calls);
    expect(asked.ids).toContain(made);
    // The refreshed answer serves the callers after it.
    expect(await read(stack)).toEqual({ calls: 0, ids: asked.ids });
    expect((await read(stack, { pragma: 'no-cache' })).calls).toBe(first.calls);
    const metrics = await (await stack.gateway.yoga.fetch('http://gateway.test/metrics')).text();
    expect(metrics).toContain('gateway_read_cache_total{outcome="refreshes"} ' + String(2 * first.calls));
    expect(metrics).toContain('gateway_read_cache_total{outcome="hits"} ' + String(first.calls));
  });

  it('never caches a kind whose bound is 0, nor anything with GATEWAY_CACHE=off', async () => {
    const noJobs = await stackWith({ env: { ...ENV, GATEWAY_CACHE_TTL_JOBS_MS: '0' } });
    const a = await read(noJobs);
    const b = await read(noJobs);
    // The cluster itself is cached, its jobs are not.
    expect(b.calls).toBeGreaterThan(0);
    expect(b.calls).toBeLessThan(a.calls);
    const off = await stackWith({ env: { GATEWAY_CACHE: 'off' } });
    expect(off.gateway.readCache).toBeUndefined();
    const c = await read(off);
    expect((await read(off)).calls).toBe(c.calls);
  });
});

describe('failures', () => {
  it('are never served from the cache: the next read asks Atlas again', async () => {
    const stack = await stackWith();
    const op = 'listGroupFlexClusterBackupRestoreJobs';
    // Twice: a failure after a cached success expired must not bring the old answer back either.
    for (let round = 0; round < 2; round++) {
      const id = stack.sim.faults.add({ operationId: op, status: 503 });
      const failed = await post(stack, {});
      expect(failed.errors?.length).toBeGreaterThan(0);
      stack.sim.faults.remove(id);
      const calls = await stack.upstreamCalls(async () => {
        const ok = await post(stack, {});
        expect(ok.errors).toBeUndefined();
      });
      expect(calls.map((c) => c.operationId)).toContain(op);
      stack.clock.advance(JOBS_TTL);
    }
  });
});

describe('invalidation', () => {
  it('shows the job a mutation made in the very next read, across the cluster’s cached job lists', async () => {
    const stack = await stackWith();
    const before = await read(stack);
    expect((await read(stack)).calls).toBe(0);
    const res = await post<{ requestDownload: { job: { id: string } } }>(
      stack,
      {},
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
      {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    );
    expect(res.errors).toBeUndefined();
    const made = res.data!.requestDownload.job.id;
    expect(before.ids).not.toContain(made);
    const after = await read(stack);
    expect(after.ids).toContain(made);
    // Only the job list was read again: the cluster stayed cached.
    expect(after.calls).toBeGreaterThan(0);
    expect(after.calls).toBeLessThan(before.calls);
    expect(stack.gateway.readCache?.stats.invalidations).toBe(1);
  });
});

describe('pollers', () => {
  it('read a watched job from Atlas at every poll, never from the cache', async () => {
    // The manual clock stands still: any cached job state would stay live for the whole test.
    const stack = await stackWith({
      env: { ...ENV, GATEWAY_POLL_INTERVAL_MS: '100' },
      sim: { jobMs: 3_600_000 },
    });
    const url = await stack.gateway.listen(0);
    const made = await post<{ requestDownload: { job: { id: string } } }>(
      stack,
      {},
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
      {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    );
    const jv = { ...vars, j: made.data!.requestDownload.job.id };
    const JOB = `query($p: ID!, $c: String!, $j: ID!) { restoreJob(projectId: $p, clusterName: $c, id: $j) { status } }`;
    await post(stack, {}, JOB, jv);
    expect(await stack.upstreamCalls(() => post(stack, {}, JOB, jv))).toEqual([]);
    const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) { restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { status } }`;
    const polls = await stack.upstreamCalls(async () => {
      const sub = track(await subscribeSse(url, WATCH, jv), 'sse');
      expect((await sub.next())?.event).toBe('next');
      const start = stack.gateway.pollers.stats().polls;
      // `polls` counts a poll when it starts: once the fourth has started, the three before it have
      // had their answers (a poller reads one at a time). Waiting for the third let the test stop
      // while that read was still on its way (seen once in CI).
      while (stack.gateway.pollers.stats().polls < start + 4) await new Promise((r) => setTimeout(r, 20));
      await sub.close();
    });
    const reads = polls.filter((c) => c.operationId === 'getGroupFlexClusterBackupRestoreJob').length;
    expect(reads).toBeGreaterThanOrEqual(3);
  });
});

describe('coalescing', () => {
  it('answers N concurrent identical reads with one upstream request per GET', async () => {
    const stack = await stackWith();
    const N = 20;
    const answers: GraphQLAnswer<JobsData>[] = [];
    const calls = await stack.upstreamCalls(async () => {
      answers.push(...(await Promise.all(Array.from({ length: N }, () => post(stack, {})))));
    });
    expect(answers.every((a) => a.errors === undefined && a.data?.cluster.restoreJobs.nodes.length)).toBe(
      true,
    );
    const perTarget = new Map<string, number>();
    for (const c of calls) perTarget.set(c.target, (perTarget.get(c.target) ?? 0) + 1);
    expect([...perTarget.values()].every((n) => n === 1)).toBe(true);
    const single = await stackWith();
    const { calls: one } = await read(single);
    expect(calls.length).toBe(one);
    expect(stack.gateway.readCache!.stats.coalesced).toBeGreaterThanOrEqual(N - 1);
  });
});

describe('scoping', () => {
  const CALLERS = {
    owner: keyCaller('owner', [P], ['read', 'download', 'restore']),
    ownerToo: keyCaller('owner-too', [P], ['read', 'download', 'restore']),
    reader: keyCaller('reader', [P], ['read']),
    everywhere: keyCaller('everywhere', '*', ['read', 'download', 'restore']),
  };
  const apiKeyStack = () =>
    stackWith({
      gateway: {
        authenticate: apiKeyCallers(CALLERS),
      },
    });
  const as = (c: keyof typeof CALLERS) => ({ 'x-api-key': CALLERS[c].key });

  it('shares between API-key callers with the same projects and rights, never across different ones', async () => {
    const stack = await apiKeyStack();
    const owner = await read(stack, as('owner'));
    expect(owner.calls).toBeGreaterThan(0);
    expect((await read(stack, as('owner'))).calls).toBe(0);
    // Another key with the same visibility and rights: the same answer may serve it.
    expect((await read(stack, as('ownerToo'))).calls).toBe(0);
    // Different rights, different visibility: each reads Atlas for itself.
    expect((await read(stack, as('reader'))).calls).toBe(owner.calls);
    expect((await read(stack, as('everywhere'))).calls).toBe(owner.calls);
    expect((await read(stack, as('reader'))).calls).toBe(0);
  });

  it('never shares between two pass-through tokens, even of one Atlas principal; one token shares with itself', async () => {
    const stack = await stackWith({ gateway: { authenticate: authenticateWith([passThroughAuth()]) } });
    const tokenOf = async () => {
      const res = await fetch(`${stack.sim.url}/api/oauth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${OWNER.clientId}:${OWNER.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const [a, b] = [await tokenOf(), await tokenOf()];
    expect(a).not.toBe(b);
    const first = await read(stack, { 'x-atlas-access-token': a });
    expect(first.calls).toBeGreaterThan(0);
    expect((await read(stack, { 'x-atlas-access-token': a })).calls).toBe(0);
    const other = await stack.upstreamCalls(() => post(stack, { 'x-atlas-access-token': b }));
    expect(other.length).toBe(first.calls);
    // Only token a's repeat was answered from the cache.
    expect(stack.gateway.readCache!.stats.hits).toBe(first.calls);
  });
});
