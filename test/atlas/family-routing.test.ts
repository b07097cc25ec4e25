import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAtlasClient, type AtlasClient } from '../../src/atlas/index.js';
import { DEFAULT_SIM_CREDENTIALS, ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startContractSimulator, type ContractSimulator } from '../support/contract.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const TENANT = { groupId: SEED.tenant.groupId, clusterName: SEED.tenant.clusterName };
const FLEX = { groupId: SEED.flex.groupId, name: SEED.flex.clusterName };

let sim: ContractSimulator;
let client: AtlasClient;

beforeAll(async () => {
  sim = await startContractSimulator({ clock: new ManualClock() });
  client = createAtlasClient({
    baseUrl: sim.url,
    auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
    clock: sim.clock,
  });
});

afterAll(async () => {
  await client.close();
  await sim.close();
});

describe('REST families against the simulator (every call must pass its media type check)', () => {
  it('projects: list (all pages) and get', async () => {
    const all = await client.projects.listAllGroups({ itemsPerPage: 2 });
    expect(all.map((g) => g.name).sort()).toEqual(['Analytics', 'Payments', 'Sandbox']);
    const page = await client.projects.listGroups({ itemsPerPage: 1, pageNum: 2, includeCount: false });
    expect(page.results).toHaveLength(1);
    expect(page.totalCount).toBeUndefined();
    expect(page.links.some((l) => l.rel === 'next')).toBe(true);
    await expect(client.projects.getGroup({ groupId: SEED.projects.payments.id })).resolves.toMatchObject({
      name: 'Payments',
      orgId: SEED.orgId,
    });
  });

  it('clusters (2024-08-05) and flex clusters (2024-11-13)', async () => {
    const clusters = await client.clusters.listAllGroupClusters({ groupId: TENANT.groupId });
    expect(clusters.map((c) => c.name)).toContain(TENANT.clusterName);
    const c = await client.clusters.getGroupCluster(TENANT);
    expect(c.name).toBe(TENANT.clusterName);
    const regions = c.replicationSpecs?.[0]?.regionConfigs ?? [];
    const tenantRegion = regions.find((r) => r.providerName === 'TENANT');
    // The generated union narrows on providerName (src/atlas/codegen.ts keeps the discriminator).
    expect(tenantRegion?.providerName === 'TENANT' ? tenantRegion.backingProviderName : undefined).toBe(
      'AWS',
    );

    const flex = await client.flexClusters.listAllGroupFlexClusters({ groupId: FLEX.groupId });
    expect(flex.map((f) => f.name)).toContain(FLEX.name);
    await expect(client.flexClusters.getGroupFlexCluster(FLEX)).resolves.toMatchObject({
      name: FLEX.name,
      providerSettings: { providerName: 'FLEX', backingProviderName: 'AWS' },
    });
  });

  it('tenant backup (v2): snapshots, restores, download and restore', async () => {
    const page = await client.tenantBackup.listSnapshots(TENANT);
    expect(page.results).toHaveLength(SEED.tenant.snapshotCount);
    expect(await client.tenantBackup.listAllSnapshots(TENANT)).toHaveLength(SEED.tenant.snapshotCount);
    await expect(
      client.tenantBackup.getSnapshot({ ...TENANT, snapshotId: SEED.tenant.failedSnapshotId }),
    ).resolves.toMatchObject({ id: SEED.tenant.failedSnapshotId, status: 'FAILED' });
    expect(await client.tenantBackup.listAllRestores(TENANT)).toHaveLength(SEED.tenant.restoreJobCount);
    await expect(
      client.tenantBackup.getRestore({ ...TENANT, restoreId: SEED.tenant.downloadJobId }),
    ).resolves.toMatchObject({
      id: SEED.tenant.downloadJobId,
      deliveryType: 'DOWNLOAD',
      clusterName: TENANT.clusterName,
    });

    const download = await client.tenantBackup.download({
      ...TENANT,
      snapshotId: SEED.tenant.completedSnapshotId,
    });
    expect(download).toMatchObject({ deliveryType: 'DOWNLOAD', snapshotId: SEED.tenant.completedSnapshotId });
    const restore = await client.tenantBackup.restore({
      ...TENANT,
      snapshotId: SEED.tenant.completedSnapshotId,
      targetDeploymentItemName: SEED.tenant.m5ClusterName,
    });
    expect(restore).toMatchObject({
      deliveryType: 'RESTORE',
      targetDeploymentItemName: SEED.tenant.m5ClusterName,
    });
    await expect(
      client.tenantBackup.getRestore({ ...TENANT, restoreId: restore.id! }),
    ).resolves.toMatchObject({
      id: restore.id,
    });
  });

  it('flex backup: paged snapshots, restore jobs, download and restore', async () => {
    const first = await client.flexBackup.listSnapshots(FLEX);
    expect(first.results).toHaveLength(100);
    expect(first.totalCount).toBe(SEED.flex.snapshotCount);
    const before = client.stats().requestsByOperation.listGroupFlexClusterBackupSnapshots ?? 0;
    const all = await client.flexBackup.listAllSnapshots(FLEX, { itemsPerPage: 50 });
    expect(all).toHaveLength(SEED.flex.snapshotCount);
    expect(new Set(all.map((s) => s.id)).size).toBe(SEED.flex.snapshotCount);
    expect(client.stats().requestsByOperation.listGroupFlexClusterBackupSnapshots! - before).toBe(3);
    await expect(
      client.flexBackup.getSnapshot({ ...FLEX, snapshotId: SEED.flex.completedSnapshotId }),
    ).resolves.toMatchObject({ status: 'COMPLETED' });
    const empty = { groupId: SEED.flex.empty.groupId, name: SEED.flex.empty.clusterName };
    await expect(client.flexBackup.listAllSnapshots(empty)).resolves.toEqual([]);

    const jobs = await client.flexBackup.listAllRestoreJobs(FLEX);
    expect(jobs.length).toBeGreaterThanOrEqual(SEED.flex.restoreJobCount);
    await expect(
      client.flexBackup.getRestoreJob({ ...FLEX, restoreJobId: SEED.flex.freshDownloadJobId }),
    ).resolves.toMatchObject({ deliveryType: 'DOWNLOAD', instanceName: FLEX.name });
    const dl = await client.flexBackup.download({ ...FLEX, snapshotId: SEED.flex.completedSnapshotId });
    expect(dl).toMatchObject({ deliveryType: 'DOWNLOAD' });
    const job = await client.flexBackup.createRestoreJob({
      ...FLEX,
      snapshotId: SEED.flex.completedSnapshotId,
      targetDeploymentItemName: SEED.flex.other.clusterName,
      targetProjectId: SEED.flex.other.groupId,
    });
    expect(job).toMatchObject({ deliveryType: 'RESTORE', targetProjectId: SEED.flex.other.groupId });
    await expect(client.flexBackup.getRestoreJob({ ...FLEX, restoreJobId: job.id! })).resolves.toMatchObject({
      id: job.id,
    });
  });

  it('passes through family-mismatch errors the CLI branches on', async () => {
    const err = await client.flexBackup
      .listSnapshots({ groupId: TENANT.groupId, name: TENANT.clusterName })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ATLAS_API_ERROR',
      status: 400,
      errorCode: 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API',
    });
  });
});
