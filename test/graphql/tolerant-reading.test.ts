import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

// Issue #17: a proxy changed one Flex job's status to a value outside our enum (`CANCELLED`) and the
// whole dashboard came back `data: null`. Atlas adds enum values without a new API version.
const P = SEED.projects.payments.id;
const F = SEED.flex;
const T = SEED.tenant;

const DASHBOARD = `{
  projects { id name clusters {
    name state stateRaw backingProvider backingProviderRaw
    snapshots(first: 3) { nodes { id status statusRaw } }
    restoreJobs(first: 10) { nodes { id status statusRaw deliveryType deliveryTypeRaw } }
  } }
}`;

interface Job {
  id: string;
  status: string;
  statusRaw: string | null;
  deliveryType: string;
  deliveryTypeRaw: string | null;
}
interface Dashboard {
  projects: ({
    id: string;
    clusters: ({
      name: string;
      state: string | null;
      stateRaw: string | null;
      backingProvider: string | null;
      backingProviderRaw: string | null;
      snapshots: { nodes: ({ id: string; status: string; statusRaw: string } | null)[] };
      restoreJobs: { nodes: (Job | null)[] };
    } | null)[];
  } | null)[];
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

/** An edit of the items of one list answer: `edit` gets each item and its index. */
function editItems(operationId: string, edit: (item: Record<string, unknown>, i: number) => void) {
  stack.sim.overrides.add({
    operationId,
    times: 1,
    edit: (body) => {
      (body as { results: Record<string, unknown>[] }).results.forEach(edit);
      return body;
    },
  });
}

const metric = async (kind: string) => {
  const text = await (await stack.gateway.yoga.fetch('http://gateway.test/metrics')).text();
  const m = new RegExp(`^gateway_unknown_enum_values_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
};

describe('tolerant reading of what Atlas sends', () => {
  it('finding: an unknown status on one job leaves the rest of the dashboard intact (UNKNOWN, statusRaw kept, counted)', async () => {
    const op = 'listGroupFlexClusterBackupRestoreJobs';
    const flexJobs = stack.sim.store.listRestoreJobs(P, F.clusterName);
    // Which job Atlas changed: the first item of the payments-flex answer (the only list of that
    // cluster's jobs in this request).
    let changed = '';
    editItems(op, (item, i) => {
      if (i === 0 && flexJobs.some((j) => j.id === item.id)) {
        changed = item.id as string;
        item.status = 'CANCELLED';
      }
    });
    // The simulator's contract check sees what a real Atlas with a new value would send.
    stack.sim.expectViolations({ operationId: op, status: 200, problem: 'status' });
    const before = await metric('status');
    const res = await stack.query<Dashboard>(DASHBOARD);
    expect(res.errors).toBeUndefined();
    expect(res.data!.projects).toHaveLength(3);
    const clusters = res.data!.projects.flatMap((p) => p!.clusters);
    const jobs = clusters.flatMap((c) => c!.restoreJobs.nodes);
    expect(jobs.every((j) => j !== null)).toBe(true);
    const odd = jobs.filter((j) => j!.status === 'UNKNOWN');
    expect(odd).toEqual([
      expect.objectContaining({ id: changed, status: 'UNKNOWN', statusRaw: 'CANCELLED' }),
    ]);
    // Everything else as Atlas sent it.
    expect(jobs.filter((j) => j!.id !== changed).every((j) => j!.status === j!.statusRaw)).toBe(true);
    expect(await metric('status')).toBe(before + 1);
  });

  it('finding: unknown delivery type, cluster state and provider map to UNKNOWN with the raw value, nothing nulled', async () => {
    editItems('listGroupFlexClusters', (item) => {
      if (item.name === F.clusterName) {
        item.stateName = 'PAUSED';
        (item.providerSettings as Record<string, unknown>).backingProviderName = 'ORACLE';
      }
    });
    editItems('listGroupFlexClusterBackupRestoreJobs', (item, i) => {
      if (i === 0) item.deliveryType = 'EXPORT';
    });
    stack.sim.expectViolations(
      { operationId: 'listGroupFlexClusters', status: 200 },
      { operationId: 'listGroupFlexClusterBackupRestoreJobs', status: 200 },
    );
    const res = await stack.query<Dashboard>(DASHBOARD);
    expect(res.errors).toBeUndefined();
    const flex = res.data!.projects.flatMap((p) => p!.clusters).find((c) => c!.name === F.clusterName)!;
    expect(flex).toMatchObject({
      state: 'UNKNOWN',
      stateRaw: 'PAUSED',
      backingProvider: 'UNKNOWN',
      backingProviderRaw: 'ORACLE',
    });
    const exports = res
      .data!.projects.flatMap((p) => p!.clusters)
      .flatMap((c) => c!.restoreJobs.nodes)
      .filter((j) => j!.deliveryType === 'UNKNOWN');
    expect(exports.length).toBeGreaterThanOrEqual(1);
    expect(exports.every((j) => j!.deliveryTypeRaw === 'EXPORT')).toBe(true);
  });

  it('finding: a snapshot without its required status is a field error on that snapshot, not a null project list', async () => {
    const op = 'listGroupClusterBackupTenantSnapshots';
    let dropped = '';
    editItems(op, (item, i) => {
      if (i === 0 && dropped === '') {
        dropped = item.id as string;
        delete item.status;
      }
    });
    const res = await stack.query<{ cluster: { snapshots: { nodes: ({ id: string } | null)[] } } }>(
      `{ cluster(projectId: "${P}", name: "${T.clusterName}") { snapshots(first: 5) { nodes { id status } } } }`,
    );
    expect(res.data!.cluster.snapshots.nodes).toHaveLength(5);
    expect(res.data!.cluster.snapshots.nodes.filter((n) => n === null)).toHaveLength(1);
    expect(res.errors).toEqual([
      expect.objectContaining({
        message: 'Atlas sent a Snapshot without its required field "status".',
        extensions: expect.objectContaining({ code: 'UPSTREAM_UNAVAILABLE', field: 'status' }),
      }),
    ]);
  });

  it('finding: a project without its name nulls that project alone, with a field error', async () => {
    editItems('listGroups', (item) => {
      if (item.id === SEED.projects.sandbox.id) delete item.name;
    });
    stack.sim.expectViolations({ operationId: 'listGroups', status: 200 });
    const res = await stack.query<{ projects: ({ id: string; name: string } | null)[] }>(
      `{ projects { id name } }`,
    );
    expect(res.data!.projects).toHaveLength(3);
    expect(res.data!.projects.filter((p) => p === null)).toHaveLength(1);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', field: 'name' });
  });
});
