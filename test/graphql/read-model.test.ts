import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

const P = SEED.projects.payments.id;
const T = SEED.tenant;
const F = SEED.flex;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});
afterEach(() => {
  stack.sim.faults.clear();
  stack.sim.store.setTenantSunset(false);
});

interface Conn {
  totalCount: number | null;
  nodes: { id: string; status?: string; deliveryType?: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

describe('root fields', () => {
  it('projects lists every project with its clusters of both families', async () => {
    const res = await stack.query<{
      projects: { id: string; name: string; clusters: { name: string; family: string }[] }[];
    }>('{ projects { id name clusters { name family } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.projects.map((p) => p.name).sort()).toEqual(['Analytics', 'Payments', 'Sandbox']);
    const payments = res.data!.projects.find((p) => p.id === P)!;
    expect(payments.clusters).toEqual(
      expect.arrayContaining([
        { name: T.clusterName, family: 'TENANT' },
        { name: T.m5ClusterName, family: 'TENANT' },
        { name: F.clusterName, family: 'FLEX' },
      ]),
    );
  });

  it('project(id) answers the project, or null when it does not exist', async () => {
    const res = await stack.query<{ p: { name: string; orgId: string }; none: null }>(
      `{ p: project(id: "${P}") { name orgId } none: project(id: "${SEED.unknownId}") { name } }`,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ p: { name: 'Payments', orgId: SEED.orgId }, none: null });
  });

  it('cluster(projectId, name) maps both families into one shape', async () => {
    const res = await stack.query<Record<string, Record<string, unknown> | null>>(`{
      t: cluster(projectId: "${P}", name: "${T.clusterName}") { name family instanceSize backingProvider state mongoDBVersion backupEnabled projectId }
      f: cluster(projectId: "${P}", name: "${F.clusterName}") { name family instanceSize backingProvider region state backupEnabled }
      none: cluster(projectId: "${P}", name: "nope") { name }
    }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.t).toMatchObject({
      family: 'TENANT',
      instanceSize: 'M2',
      backingProvider: 'AWS',
      state: 'IDLE',
      backupEnabled: true,
      projectId: P,
    });
    expect(res.data!.f).toMatchObject({
      family: 'FLEX',
      instanceSize: 'FLEX',
      backingProvider: 'AWS',
      region: 'US_EAST_1',
      backupEnabled: true,
    });
    expect(res.data!.none).toBeNull();
  });

  it('snapshot and restoreJob answer one item of either family, or null', async () => {
    const res = await stack.query<Record<string, Record<string, unknown> | null>>(`{
      ts: snapshot(projectId: "${P}", clusterName: "${T.clusterName}", id: "${T.completedSnapshotId}") { id status finishTime cluster { family } }
      fs: snapshot(projectId: "${P}", clusterName: "${F.clusterName}", id: "${F.completedSnapshotId}") { id status cluster { family } }
      tj: restoreJob(projectId: "${P}", clusterName: "${T.clusterName}", id: "${T.downloadJobId}") { id deliveryType isTerminal cluster { name } }
      fj: restoreJob(projectId: "${P}", clusterName: "${F.clusterName}", id: "${F.freshDownloadJobId}") { id deliveryType snapshotUrl expirationDate isTerminal cluster { name } }
      missing: snapshot(projectId: "${P}", clusterName: "${F.clusterName}", id: "${SEED.unknownId}") { id }
    }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.ts).toMatchObject({
      id: T.completedSnapshotId,
      status: 'COMPLETED',
      cluster: { family: 'TENANT' },
    });
    expect(res.data!.fs).toMatchObject({
      id: F.completedSnapshotId,
      status: 'COMPLETED',
      cluster: { family: 'FLEX' },
    });
    expect(res.data!.tj).toMatchObject({
      deliveryType: 'DOWNLOAD',
      isTerminal: true,
      cluster: { name: T.clusterName },
    });
    expect(res.data!.fj).toMatchObject({
      deliveryType: 'DOWNLOAD',
      isTerminal: true,
      cluster: { name: F.clusterName },
    });
    expect(res.data!.fj!.snapshotUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/backup\/download\//);
    expect(res.data!.missing).toBeNull();
  });
});

describe('nested paths', () => {
  it('walks project → cluster → snapshot → restoreJobs → snapshot → cluster → project', async () => {
    const res = await stack.query<{
      project: {
        cluster: {
          project: { id: string };
          snapshot: {
            id: string;
            restoreJobs: Conn & { nodes: { snapshot: { id: string; cluster: { name: string } } }[] };
          };
        };
      };
    }>(`{
      project(id: "${P}") {
        cluster(name: "${F.clusterName}") {
          project { id }
          snapshot(id: "${F.completedSnapshotId}") {
            id
            restoreJobs { totalCount nodes { id snapshot { id cluster { name } } } }
          }
        }
      }
    }`);
    expect(res.errors).toBeUndefined();
    const c = res.data!.project.cluster;
    expect(c.project.id).toBe(P);
    for (const j of c.snapshot.restoreJobs.nodes) {
      expect(j.snapshot.id).toBe(F.completedSnapshotId);
      expect(j.snapshot.cluster.name).toBe(F.clusterName);
    }
  });
});

describe('connections', () => {
  const walk = async (cluster: string, first: number) => {
    const ids: string[] = [];
    let after: string | null = null;
    let total: number | null = null;
    for (let i = 0; i < 50; i++) {
      const res: { data?: { cluster: { snapshots: Conn } } | null; errors?: unknown } = await stack.query(
        `query($after: String) { cluster(projectId: "${P}", name: "${cluster}") { snapshots(first: ${first}, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }`,
        { after },
      );
      expect(res.errors).toBeUndefined();
      const page = res.data!.cluster.snapshots;
      total = page.totalCount;
      ids.push(...page.nodes.map((n) => n.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    return { ids, total };
  };

  it('pages a Flex list past Atlas’s default page with first/after and totalCount', async () => {
    const { ids, total } = await walk(F.clusterName, 50);
    expect(total).toBe(120);
    expect(ids).toHaveLength(120);
    expect(new Set(ids).size).toBe(120);
  });

  it('pages a tenant list the same way', async () => {
    const { ids, total } = await walk(T.clusterName, 10);
    expect(total).toBe(T.snapshotCount);
    expect(new Set(ids).size).toBe(T.snapshotCount);
  });

  it('order: a connection answers newest first against the oldest-first simulator, reading only the pages needed', async () => {
    let walked: Awaited<ReturnType<typeof walk>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      walked = await walk(F.clusterName, 40);
    });
    // Newest first: the running snapshot (the newest) leads, and scheduled times only go back.
    expect(walked!.ids[0]).toBe(F.runningSnapshotId);
    const times = walked!.ids.map((id) =>
      Date.parse(stack.sim.store.getSnapshot(P, F.clusterName, id)!.scheduledTime),
    );
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const lists = calls.filter((c) => c.operationId === 'listGroupFlexClusterBackupSnapshots');
    // Page 1 of 40 learns totalCount (120), then each page of the walk is one Atlas page from the
    // newest end: 81-120 (page 3), 41-80 (page 2), 1-40 (page 1).
    expect(
      lists.map((c) => {
        const q = new URL(c.target, 'http://x').searchParams;
        return `${q.get('pageNum')}x${q.get('itemsPerPage')}`;
      }),
    ).toEqual(['1x40', '3x40', '2x40', '1x40']);
  });

  it('filters snapshots by status and jobs by delivery type', async () => {
    const res = await stack.query<{ cluster: { done: Conn; failed: Conn; downloads: Conn } }>(`{
      cluster(projectId: "${P}", name: "${F.clusterName}") {
        done: snapshots(first: 500, status: [COMPLETED]) { totalCount nodes { status } }
        failed: snapshots(status: [FAILED, RUNNING]) { nodes { id status } }
        downloads: restoreJobs(deliveryType: DOWNLOAD) { nodes { deliveryType } }
      }
    }`);
    expect(res.errors).toBeUndefined();
    const c = res.data!.cluster;
    expect(c.done.nodes.every((n) => n.status === 'COMPLETED')).toBe(true);
    expect(c.done.totalCount).toBe(c.done.nodes.length);
    expect(c.failed.nodes.map((n) => n.id)).toEqual(
      expect.arrayContaining([F.failedSnapshotId, F.runningSnapshotId]),
    );
    expect(c.failed.nodes.every((n) => n.status === 'FAILED' || n.status === 'RUNNING')).toBe(true);
    expect(c.downloads.nodes.length).toBeGreaterThan(0);
    expect(c.downloads.nodes.every((n) => n.deliveryType === 'DOWNLOAD')).toBe(true);
  });
});

describe('upstream economy', () => {
  it('answers the nested dashboard with exactly the calls a careful REST client needs, no duplicate GET', async () => {
    const store = stack.sim.store;
    const projects = store.listProjects();
    const clusters = projects.flatMap((p) => store.listClusters(p.id));
    const calls = await stack.upstreamCalls(async () => {
      const res = await stack.query(`{
        projects { id name clusters {
          name family
          snapshots(first: 5) { totalCount nodes { id status cluster { name } } }
          restoreJobs(first: 5) { nodes { id status snapshotId cluster { name } } }
        } }
      }`);
      expect(res.errors).toBeUndefined();
    });
    // listGroups + (clusters + flexClusters) per project + (snapshots + restore jobs) per cluster, and
    // on a Flex list longer than the page one more read: the first learns where the newest end is.
    const longFlexLists = clusters
      .filter((c) => c.family === 'flex')
      .flatMap((c) => [store.listSnapshots(c.groupId, c.name), store.listRestoreJobs(c.groupId, c.name)])
      .filter((list) => list.length > 5).length;
    expect(calls).toHaveLength(1 + 2 * projects.length + 2 * clusters.length + longFlexLists);
    const gets = calls.map((c) => `${c.method} ${c.target}`);
    expect(new Set(gets).size).toBe(gets.length);
    expect(calls.every((c) => c.method === 'GET')).toBe(true);
  });

  it('does not fetch a snapshot it saw in a list', async () => {
    const calls = await stack.upstreamCalls(() =>
      stack.query(`{ cluster(projectId: "${P}", name: "${F.clusterName}") {
        snapshots(first: 120) { nodes { id } }
        snapshot(id: "${F.runningSnapshotId}") { id status }
      } }`),
    );
    expect(calls.map((c) => c.operationId)).not.toContain('getGroupFlexClusterBackupSnapshot');
  });

  it('makes one call for repeated identical reads in one operation', async () => {
    const calls = await stack.upstreamCalls(() =>
      stack.query(`{
        a: project(id: "${P}") { name }
        b: project(id: "${P}") { name }
        c: project(id: "${P}") { id }
      }`),
    );
    expect(calls.map((c) => c.operationId)).toEqual(['getGroup']);
  });

  it('bounds upstream concurrency per request', async () => {
    const bounded = await startStack({ gateway: { maxUpstreamConcurrency: 2 } });
    try {
      // Every answer waits 30 ms, so the dashboard's calls would overlap unless the gateway holds them back.
      bounded.sim.faults.add({ latencyMs: 30 });
      await bounded.query(`{ projects { id } }`);
      bounded.sim.resetStats();
      const res = await bounded.query(`{ projects { clusters { snapshots(first: 1) { nodes { id } } } } }`);
      expect(res.errors).toBeUndefined();
      expect(bounded.sim.stats().peakInFlight).toBe(2);
    } finally {
      await bounded.close();
    }
  });
});

describe('family routing', () => {
  it('learns a tenant cluster from CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API, then asks the right family first', async () => {
    const fresh = await startStack();
    try {
      const q = `{ cluster(projectId: "${P}", name: "${T.clusterName}") { family snapshots(first: 1) { nodes { id } } } }`;
      const first = await fresh.upstreamCalls(async () =>
        expect((await fresh.query(q)).errors).toBeUndefined(),
      );
      expect(first.map((c) => c.operationId)).toEqual([
        'getGroupFlexCluster',
        'getGroupCluster',
        'listGroupClusterBackupTenantSnapshots',
      ]);
      const again = await fresh.upstreamCalls(() => fresh.query(q));
      expect(again.map((c) => c.operationId)).toEqual([
        'getGroupCluster',
        'listGroupClusterBackupTenantSnapshots',
      ]);
      expect(fresh.sim.violations).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it('serves a migrated cluster from the Flex routes after 410 VERSION_GONE, and remembers it', async () => {
    const fresh = await startStack();
    try {
      const q = `{ snapshot(projectId: "${P}", clusterName: "${T.clusterName}", id: "${T.completedSnapshotId}") { id status } }`;
      await fresh.query(`{ project(id: "${P}") { clusters { name family } } }`);
      fresh.sim.store.setTenantSunset(true);
      const calls = await fresh.upstreamCalls(async () => {
        const res = await fresh.query<{ snapshot: { id: string } }>(q);
        expect(res.errors).toBeUndefined();
        expect(res.data!.snapshot.id).toBe(T.completedSnapshotId);
      });
      expect(calls.map((c) => c.operationId)).toEqual([
        'getGroupClusterBackupTenantSnapshot',
        'getGroupFlexClusterBackupSnapshot',
      ]);
      const again = await fresh.upstreamCalls(() => fresh.query(q));
      expect(again.map((c) => c.operationId)).toEqual(['getGroupFlexClusterBackupSnapshot']);
      const family = await fresh.query<{ cluster: { family: string } }>(
        `{ cluster(projectId: "${P}", name: "${T.clusterName}") { family instanceSize } }`,
      );
      expect(family.data!.cluster.family).toBe('FLEX');
    } finally {
      await fresh.close();
    }
  });
});

describe('errors', () => {
  it('rejects a malformed id before any upstream call, naming the argument and what arrived', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const res = await stack.query(`{ project(id: "xyz") { name } }`);
      expect(res.errors![0]).toMatchObject({
        message: 'Argument "id" must be a 24-character lowercase hex id; got "xyz".',
        extensions: { code: 'BAD_USER_INPUT', argumentName: 'id', received: 'xyz' },
      });
    });
    expect(calls).toEqual([]);
  });

  it('rejects a bad cluster name, a bad first and a forged cursor', async () => {
    const res = await stack.query(`{
      a: cluster(projectId: "${P}", name: "-bad_") { name }
      b: cluster(projectId: "${P}", name: "${F.clusterName}") { snapshots(first: 501) { totalCount } }
      c: cluster(projectId: "${P}", name: "${F.clusterName}") { snapshots(after: "nonsense") { totalCount } }
    }`);
    const byPath = Object.fromEntries(res.errors!.map((e) => [e.path![0], e.extensions]));
    expect(byPath.a).toMatchObject({ code: 'BAD_USER_INPUT', argumentName: 'name' });
    expect(byPath.b).toMatchObject({ code: 'BAD_USER_INPUT', argumentName: 'first', received: 501 });
    expect(byPath.c).toMatchObject({ code: 'BAD_USER_INPUT', argumentName: 'after' });
  });

  it('keeps partial data: a failing field errors with extensions.atlas, the others resolve', async () => {
    stack.sim.faults.add({ operationId: 'listGroupFlexClusters', status: 500, times: 1 });
    const res = await stack.query<{ broken: unknown; fine: { name: string } }>(`{
      broken: project(id: "${P}") { clusters { name } }
      fine: project(id: "${SEED.projects.sandbox.id}") { name }
    }`);
    expect(res.data!.fine).toEqual({ name: 'Sandbox' });
    expect(res.data!.broken).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({
      path: ['broken', 'clusters'],
      extensions: {
        code: 'UPSTREAM_UNAVAILABLE',
        retryable: false,
        atlas: { status: 500, errorCode: 'UNEXPECTED_ERROR', reason: 'Internal Server Error' },
      },
    });
  });

  it('reports RATE_LIMITED as retryable once Atlas keeps answering 429', async () => {
    stack.sim.faults.clear();
    const limited = await startStack({ sim: { rateLimit: { capacity: 1, refillPerSecond: 1 } } });
    try {
      const res = await limited.query(
        `{ a: project(id: "${P}") { name } b: project(id: "${P}") { clusters { name } } }`,
      );
      expect(res.errors?.[0]?.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        retryable: true,
        atlas: { status: 429 },
      });
    } finally {
      await limited.close();
    }
  });

  it('reports UPSTREAM_UNAVAILABLE when Atlas cannot be reached', async () => {
    stack.sim.faults.add({ operationId: 'getGroup', reset: 'before' });
    const res = await stack.query(`{ project(id: "${P}") { name } }`);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
  });

  it('reports UNAUTHENTICATED when Atlas refuses the gateway’s API key', async () => {
    const wrong = await startStack({ auth: { type: 'digest', publicKey: 'demoowner', privateKey: 'wrong' } });
    try {
      const res = await wrong.query(`{ projects { id } }`);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', atlas: { status: 401 } });
    } finally {
      await wrong.close();
    }
  });
});
