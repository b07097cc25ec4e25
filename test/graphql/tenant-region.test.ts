import { afterAll, beforeAll, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

// Issue #17: Atlas sets a tenant cluster's regionConfigs[].regionName (`US_EAST_1`); the simulator
// left it out, so Cluster.region was always null for tenant clusters and no test could see it.
it('a tenant cluster shows its region, as Atlas sends it in regionConfigs[].regionName', async () => {
  const res = await stack.query<{ a: { region: string | null }; b: { region: string | null } }>(`{
    a: cluster(projectId: "${SEED.tenant.groupId}", name: "${SEED.tenant.clusterName}") { region }
    b: cluster(projectId: "${SEED.tenant.groupId}", name: "${SEED.tenant.m5ClusterName}") { region }
  }`);
  expect(res.errors).toBeUndefined();
  expect(res.data).toEqual({ a: { region: 'US_EAST_1' }, b: { region: 'US_EAST_2' } });
});

// Issue #17: dates gained `.000` milliseconds on the way through; the schema says "as Atlas sends it".
it('DateTime passes the string Atlas sent through unchanged (whole seconds, no .000 added)', async () => {
  const ref = { projectId: SEED.flex.groupId, clusterName: SEED.flex.clusterName };
  const sent = stack.sim.store.getSnapshot(ref.projectId, ref.clusterName, SEED.flex.completedSnapshotId)!;
  const res = await stack.query<{ snapshot: { scheduledTime: string; expiration: string } }>(
    `{ snapshot(projectId: "${ref.projectId}", clusterName: "${ref.clusterName}", id: "${SEED.flex.completedSnapshotId}") { scheduledTime expiration } }`,
  );
  expect(res.errors).toBeUndefined();
  expect(res.data!.snapshot).toEqual({ scheduledTime: sent.scheduledTime, expiration: sent.expiration });
  expect(res.data!.snapshot.scheduledTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
