import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AtlasClient, type AtlasCluster } from '../../src/atlas/index.js';
import { AtlasApiError, AtlasNetworkError } from '../../src/atlas/errors.js';
import {
  backupPolicy,
  backupServices,
  createBackupService,
  type BackupService,
} from '../../src/backup/backup-service.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import { clusterFields } from '../../src/backup/mappers.js';
import type { ClusterRef } from '../../src/backup/model.js';
import type { ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { startContractSimulator } from '../support/contract.js';
import { startAtlasClient } from '../support/atlas-client.js';

const P = SEED.projects.payments.id;
const T = SEED.tenant;
const F = SEED.flex;
const TENANT: ClusterRef = { projectId: T.groupId, clusterName: T.clusterName };
const FLEX: ClusterRef = { projectId: F.groupId, clusterName: F.clusterName };

let sim: Awaited<ReturnType<typeof startContractSimulator>>;
let atlas: AtlasClient;
let clock: ManualClock;

beforeAll(async () => {
  // The shared helper: spec-checked simulator (a violation fails the file) and client, both closed by it.
  ({ sim, client: atlas, clock } = await startAtlasClient({ sleepMovesClock: false }));
});
afterEach(() => {
  sim.faults.clear();
  sim.store.setTenantSunset(false);
});

/** A service with an empty family cache, as a freshly started gateway has. */
function fresh(client: AtlasClient = atlas): { service: BackupService; families: FamilyCache } {
  const families = new FamilyCache({ clock });
  return { service: createBackupService({ atlas: client, families }), families };
}

/** Upstream API calls (token requests excluded) made while `fn` ran. */
async function upstream(fn: () => Promise<unknown>) {
  const before = sim.stats().requests.length;
  await fn();
  return sim
    .stats()
    .requests.slice(before)
    .filter((r) => !r.operationId.startsWith('oauth.'));
}
const ops = async (fn: () => Promise<unknown>) => (await upstream(fn)).map((r) => r.operationId);

describe('routing per family', () => {
  it('asks Flex first for a cluster it does not know: a Flex cluster costs one call', async () => {
    const { service, families } = fresh();
    let family: string | undefined;
    expect(
      await ops(async () => {
        family = (await service.getSnapshot(FLEX, F.completedSnapshotId)).family;
      }),
    ).toEqual(['getGroupFlexClusterBackupSnapshot']);
    expect(family).toBe('FLEX');
    expect(families.get(FLEX)).toBe('FLEX');
  });

  it('falls back to tenant on CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API once, then asks tenant first', async () => {
    const { service, families } = fresh();
    let count = 0;
    expect(
      await ops(async () => {
        count = (await service.listAllJobs(TENANT)).length;
      }),
    ).toEqual(['listGroupFlexClusterBackupRestoreJobs', 'listGroupClusterBackupTenantRestores']);
    expect(count).toBe(sim.store.listRestoreJobs(T.groupId, T.clusterName).length);
    expect(families.get(TENANT)).toBe('TENANT');
    expect(await ops(() => service.listAllJobs(TENANT))).toEqual(['listGroupClusterBackupTenantRestores']);
  });

  it('falls back to Flex on CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API when it wrongly believed tenant', async () => {
    const { service, families } = fresh();
    families.set(FLEX, 'TENANT');
    let job: Awaited<ReturnType<BackupService['getJob']>> | undefined;
    expect(
      await ops(async () => {
        job = await service.getJob(FLEX, F.freshDownloadJobId);
      }),
    ).toEqual(['getGroupClusterBackupTenantRestore', 'getGroupFlexClusterBackupRestoreJob']);
    expect(job).toMatchObject({ family: 'FLEX', ...FLEX, dto: { id: F.freshDownloadJobId } });
    expect(families.get(FLEX)).toBe('FLEX');
  });

  it('serves a migrated M2/M5 from Flex after the tenant route answers 410 VERSION_GONE', async () => {
    const { service, families } = fresh();
    families.set(TENANT, 'TENANT');
    sim.store.setTenantSunset(true);
    let family: string | undefined;
    expect(
      await ops(async () => {
        family = (await service.getSnapshot(TENANT, T.completedSnapshotId)).family;
      }),
    ).toEqual(['getGroupClusterBackupTenantSnapshot', 'getGroupFlexClusterBackupSnapshot']);
    expect(family).toBe('FLEX');
    expect(families.get(TENANT)).toBe('FLEX');
    expect(await ops(() => service.getSnapshot(TENANT, T.completedSnapshotId))).toEqual([
      'getGroupFlexClusterBackupSnapshot',
    ]);
  });

  it('leaves any other error to the caller: a 404 is not asked of the other family', async () => {
    const { service } = fresh();
    let err: unknown;
    expect(
      await ops(async () => {
        err = await service.getSnapshot(FLEX, SEED.unknownId).catch((e: unknown) => e);
      }),
    ).toEqual(['getGroupFlexClusterBackupSnapshot']);
    expect(err).toBeInstanceOf(AtlasApiError);
    expect((err as AtlasApiError).status).toBe(404);
  });

  it('answers null for a single item Atlas says does not exist; an unknown cluster is asked of both families (CLUSTER_NOT_FOUND is a family signal)', async () => {
    const { service } = fresh();
    const found: unknown[] = [];
    const calls = await ops(async () => {
      found.push(await service.findSnapshot(FLEX, SEED.unknownId));
      found.push(await service.findJob(FLEX, SEED.unknownId));
      found.push(await service.getProject(SEED.unknownId));
      found.push(await service.getCluster({ projectId: P, clusterName: 'nope' }));
    });
    expect(found).toEqual([null, null, null, null]);
    expect(calls).toEqual([
      'getGroupFlexClusterBackupSnapshot',
      'getGroupFlexClusterBackupRestoreJob',
      'getGroup',
      'getGroupFlexCluster',
      'getGroupCluster',
    ]);
  });

  it('routes the POSTs too, and a family-mismatch answer creates nothing', async () => {
    const { service } = fresh();
    const before = sim.store.jobsCreatedFor(T.completedSnapshotId);
    let job: Awaited<ReturnType<BackupService['download']>> | undefined;
    const calls = await upstream(async () => {
      job = await service.download(TENANT, T.completedSnapshotId);
    });
    expect(calls.map((c) => `${c.method} ${c.operationId}`)).toEqual([
      'POST downloadGroupFlexClusterBackup',
      'POST downloadGroupClusterBackupTenant',
    ]);
    expect(sim.store.jobsCreatedFor(T.completedSnapshotId)).toBe(before + 1);
    expect(job).toMatchObject({ family: 'TENANT', ...TENANT, dto: { deliveryType: 'DOWNLOAD' } });

    const target = { projectId: F.other.groupId, clusterName: F.other.clusterName };
    let restore: Awaited<ReturnType<BackupService['restore']>> | undefined;
    expect(
      await ops(async () => {
        restore = await service.restore(FLEX, F.completedSnapshotId, target);
      }),
    ).toEqual(['createGroupFlexClusterBackupRestoreJob']);
    expect(restore).toMatchObject({
      family: 'FLEX',
      dto: { deliveryType: 'RESTORE', targetProjectId: target.projectId },
    });
  });
});

describe('pages', () => {
  it('answers a tenant page with the whole list, read without paging parameters', async () => {
    const { service, families } = fresh();
    families.set(TENANT, 'TENANT');
    let page: Awaited<ReturnType<BackupService['listSnapshotPage']>> | undefined;
    const calls = await upstream(async () => {
      page = await service.listSnapshotPage(TENANT, { pageNum: 3, itemsPerPage: 5 });
    });
    expect(calls.map((c) => c.operationId)).toEqual(['listGroupClusterBackupTenantSnapshots']);
    // v2 declares no paging parameters for tenant lists; sending some would be outside the spec.
    expect(new URL(calls[0]!.target, sim.url).searchParams.has('pageNum')).toBe(false);
    expect(page!.whole).toBe(true);
    expect(page!.results).toHaveLength(T.snapshotCount);
    expect(page!.totalCount).toBe(T.snapshotCount);
    expect(page!.results.every((s) => s.family === 'TENANT' && s.clusterName === T.clusterName)).toBe(true);
  });

  it('reads a tenant page through the caller’s whole list when given one, making no call', async () => {
    const { service, families } = fresh();
    families.set(TENANT, 'TENANT');
    const cached = await service.listAllJobs(TENANT);
    let page: Awaited<ReturnType<BackupService['listJobPage']>> | undefined;
    expect(
      await ops(async () => {
        page = await service.listJobPage(
          TENANT,
          { pageNum: 1, itemsPerPage: 2 },
          { readWhole: async () => cached },
        );
      }),
    ).toEqual([]);
    expect(page).toEqual({ results: cached, totalCount: cached.length, whole: true });
  });

  it('answers a Flex page with exactly that Atlas page', async () => {
    const { service } = fresh();
    let readWhole = 0;
    let page: Awaited<ReturnType<BackupService['listSnapshotPage']>> | undefined;
    const calls = await upstream(async () => {
      page = await service.listSnapshotPage(
        FLEX,
        { pageNum: 2, itemsPerPage: 50 },
        {
          readWhole: async () => {
            readWhole += 1;
            return [];
          },
        },
      );
    });
    expect(calls.map((c) => c.operationId)).toEqual(['listGroupFlexClusterBackupSnapshots']);
    const query = new URL(calls[0]!.target, sim.url).searchParams;
    expect([query.get('pageNum'), query.get('itemsPerPage')]).toEqual(['2', '50']);
    expect(readWhole).toBe(0);
    expect(page!.whole).toBe(false);
    expect(page!.results).toHaveLength(50);
    expect(page!.totalCount).toBe(F.snapshotCount);
    const all = await service.listAllSnapshots(FLEX);
    expect(page!.results.map((s) => s.dto.id)).toEqual(all.slice(50, 100).map((s) => s.dto.id));
  });

  it('falls back from a Flex page to the whole tenant list for a tenant cluster it did not know', async () => {
    const { service } = fresh();
    let page: Awaited<ReturnType<BackupService['listJobPage']>> | undefined;
    expect(
      await ops(async () => {
        page = await service.listJobPage(TENANT, { pageNum: 1, itemsPerPage: 1 });
      }),
    ).toEqual(['listGroupFlexClusterBackupRestoreJobs', 'listGroupClusterBackupTenantRestores']);
    expect(page!.whole).toBe(true);
    expect(page!.results).toHaveLength(sim.store.listRestoreJobs(T.groupId, T.clusterName).length);
  });
});

describe('projects and clusters', () => {
  it('lists projects with one call, and reads one', async () => {
    const { service } = fresh();
    let names: string[] = [];
    expect(
      await ops(async () => {
        names = (await service.listProjects()).map((p) => p.name).sort();
      }),
    ).toEqual(['listGroups']);
    expect(names).toEqual(['Analytics', 'Payments', 'Sandbox']);
    expect(await service.getProject(P)).toMatchObject({ id: P, name: 'Payments' });
  });

  it('lists a project’s tenant and Flex clusters with one call per family, and learns their families', async () => {
    const { service, families } = fresh();
    let clusters: Awaited<ReturnType<BackupService['listClusters']>> = [];
    const calls = await ops(async () => {
      clusters = await service.listClusters(P);
    });
    expect(calls.sort()).toEqual(['listGroupClusters', 'listGroupFlexClusters']);
    expect(clusters.map((c) => [c.dto.name, c.family]).sort()).toEqual(
      [
        [T.clusterName, 'TENANT'],
        [T.m5ClusterName, 'TENANT'],
        [F.clusterName, 'FLEX'],
      ].sort(),
    );
    expect(families.get(TENANT)).toBe('TENANT');
    // Learned from the listing: no Flex attempt before the tenant read.
    expect(await ops(() => service.getCluster(TENANT))).toEqual(['getGroupCluster']);
  });

  // The simulator serves only M2/M5 and Flex; an M0 and a dedicated cluster are made from its M2.
  const variant = (dto: AtlasCluster, name: string, provider: string, size: string): AtlasCluster => ({
    ...(JSON.parse(
      JSON.stringify(dto)
        .replaceAll('"providerName":"TENANT"', `"providerName":"${provider}"`)
        .replaceAll('"instanceSize":"M2"', `"instanceSize":"${size}"`),
    ) as AtlasCluster),
    name,
  });

  it('keeps only clusters with tenant backups (M2/M5) from the cluster API: not M0, not dedicated', async () => {
    const withOthers: AtlasClient = {
      ...atlas,
      clusters: {
        ...atlas.clusters,
        listAllGroupClusters: async (args, options) => {
          const real = await atlas.clusters.listAllGroupClusters(args, options);
          const m2 = real.find((c) => c.name === T.clusterName)!;
          return [...real, variant(m2, 'free', 'TENANT', 'M0'), variant(m2, 'dedicated', 'AWS', 'M10')];
        },
      },
    };
    const { service } = fresh(withOthers);
    const names = (await service.listClusters(P)).map((c) => c.dto.name).sort();
    expect(names).toEqual([T.clusterName, T.m5ClusterName, F.clusterName].sort());
  });

  describe('before the tenant sunset, when the cluster API lists Flex clusters too', () => {
    const BEFORE_SUNSET = '2025-12-15T12:00:00Z';
    let after: number;
    beforeEach(() => {
      after = clock.now();
      clock.set(BEFORE_SUNSET);
    });
    afterEach(() => {
      clock.set(after);
    });

    it('lists a Flex cluster once, as FLEX, even when /flexClusters does not name it', async () => {
      const noFlexList: AtlasClient = {
        ...atlas,
        flexClusters: { ...atlas.flexClusters, listAllGroupFlexClusters: async () => [] },
      };
      const { service, families } = fresh(noFlexList);
      const clusters = await service.listClusters(P);
      expect(clusters.map((c) => [c.dto.name, c.family]).sort()).toEqual(
        [
          [T.clusterName, 'TENANT'],
          [T.m5ClusterName, 'TENANT'],
          [F.clusterName, 'FLEX'],
        ].sort(),
      );
      const flex = clusters.find((c) => c.dto.name === F.clusterName)!;
      expect(clusterFields(flex)).toMatchObject({
        name: F.clusterName,
        instanceSize: 'FLEX',
        backingProviderRaw: 'AWS',
        region: 'US_EAST_1',
        stateRaw: 'IDLE',
        backupEnabled: true,
      });
      expect(families.get(FLEX)).toBe('FLEX');
    });

    it('lists a Flex cluster both APIs name once, as /flexClusters describes it', async () => {
      const { service } = fresh();
      const clusters = await service.listClusters(P);
      expect(clusters.map((c) => [c.dto.name, c.family]).sort()).toEqual(
        [
          [T.clusterName, 'TENANT'],
          [T.m5ClusterName, 'TENANT'],
          [F.clusterName, 'FLEX'],
        ].sort(),
      );
      const fromFlexApi = (await atlas.flexClusters.listAllGroupFlexClusters({ groupId: P })).find(
        (c) => c.name === F.clusterName,
      );
      expect(clusters.find((c) => c.dto.name === F.clusterName)!.dto).toEqual(fromFlexApi);
    });

    it('answers a Flex cluster the cluster API describes as FLEX, and reads it through the Flex routes from then on', async () => {
      const { service, families } = fresh();
      // Believed tenant (say, learned by an older gateway of the fleet): the cluster API still answers.
      families.set(FLEX, 'TENANT');
      let cluster: Awaited<ReturnType<BackupService['getCluster']>> = null;
      expect(
        await ops(async () => {
          cluster = await service.getCluster(FLEX);
        }),
      ).toEqual(['getGroupCluster']);
      expect(cluster).toMatchObject({ family: 'FLEX', projectId: P, dto: { name: F.clusterName } });
      expect(families.get(FLEX)).toBe('FLEX');
      expect(await ops(() => service.findSnapshot(FLEX, F.completedSnapshotId))).toEqual([
        'getGroupFlexClusterBackupSnapshot',
      ]);
    });
  });

  it('answers null for a single cluster without these backups', async () => {
    const m0: AtlasClient = {
      ...atlas,
      clusters: {
        ...atlas.clusters,
        getGroupCluster: async (args, options) =>
          variant(await atlas.clusters.getGroupCluster(args, options), args.clusterName, 'TENANT', 'M0'),
      },
    };
    const { service } = fresh(m0);
    let cluster: unknown;
    expect(
      await ops(async () => {
        cluster = await service.getCluster(TENANT);
      }),
    ).toEqual(['getGroupFlexCluster', 'getGroupCluster']);
    expect(cluster).toBeNull();
    expect(await fresh().service.getCluster(TENANT)).toMatchObject({ family: 'TENANT', projectId: P });
  });
});

describe('policies', () => {
  it('writes each use’s call options down once', () => {
    const signal = new AbortController().signal;
    const read = backupPolicy({ use: 'read', requestId: 'r', signal, bearerToken: 'tok' });
    expect(read.callOptions).toEqual({ requestId: 'r', signal, bearerToken: 'tok', cache: 'use' });
    expect(read.run).toBeTypeOf('function');
    expect(
      backupPolicy({ use: 'read', requestId: 'r', signal, fresh: true, cacheScope: 'rights' }).callOptions,
    ).toEqual({ requestId: 'r', signal, cache: 'refresh', cacheScope: 'rights' });
    expect(backupPolicy({ use: 'write', requestId: 'w', bearerToken: 'tok' })).toEqual({
      callOptions: { requestId: 'w', bearerToken: 'tok', cache: 'refresh' },
    });
    expect(backupPolicy({ use: 'write', requestId: 'w' })).toEqual({
      callOptions: { requestId: 'w', cache: 'refresh' },
    });
    expect(backupPolicy({ use: 'poll', bearerToken: 'tok' })).toEqual({
      callOptions: { bearerToken: 'tok', cache: 'bypass' },
    });
    expect(backupPolicy({ use: 'poll' })).toEqual({ callOptions: { cache: 'bypass' } });
  });

  it('stops a read when its request ends, while a write of the same request still runs', async () => {
    const make = backupServices({ atlas, families: new FamilyCache({ clock }) });
    const ended = new AbortController();
    ended.abort();
    const read = make({ use: 'read', requestId: 'req-1', signal: ended.signal });
    const write = make({ use: 'write', requestId: 'req-1' });
    const err = await read.getSnapshot(FLEX, F.completedSnapshotId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasNetworkError);
    expect((err as AtlasNetworkError).code).toBe('ATLAS_ABORTED');
    const calls = await upstream(() => write.getSnapshot(FLEX, F.completedSnapshotId));
    expect(calls.map((c) => [c.operationId, c.requestId])).toEqual([
      ['getGroupFlexClusterBackupSnapshot', 'req-1'],
    ]);
  });

  it('bounds a read service’s calls in flight', async () => {
    const make = backupServices({ atlas, families: new FamilyCache({ clock }) });
    const read = make({
      use: 'read',
      requestId: 'req-2',
      signal: new AbortController().signal,
      maxConcurrency: 2,
    });
    await read.getProject(P); // the token is fetched once, before the measured burst
    // Every answer waits 30 ms, so the reads would overlap unless the service holds them back.
    sim.faults.add({ latencyMs: 30 });
    sim.resetStats();
    await Promise.all(Array.from({ length: 6 }, () => read.getProject(P)));
    expect(sim.stats().peakInFlight).toBe(2);
  });
});

// What each call hands on is where it came from: its family and cluster travel with every source (the
// job channel and the idempotency stores keep them in Redis as they are), and the POSTs' bodies.
describe('every call names the family that served it', () => {
  const families = ['TENANT', 'FLEX'] as const;
  const refOf = { TENANT, FLEX };
  const snapshotOf = { TENANT: T.completedSnapshotId, FLEX: F.completedSnapshotId };
  const fromHere =
    (family: string, ref: ClusterRef) => (s: { family: string; projectId: string; clusterName: string }) =>
      s.family === family && s.projectId === ref.projectId && s.clusterName === ref.clusterName;

  for (const family of families) {
    it(`${family}: lists, pages, single reads and POSTs`, async () => {
      const ref = refOf[family];
      const { service, families: cache } = fresh();
      cache.set(ref, family);
      const expected = sim.store.listRestoreJobs(ref.projectId, ref.clusterName).length;
      const snaps = await service.listAllSnapshots(ref);
      expect(snaps).toHaveLength(family === 'TENANT' ? T.snapshotCount : F.snapshotCount);
      expect(snaps.every(fromHere(family, ref))).toBe(true);
      const jobs = await service.listAllJobs(ref);
      expect(jobs).toHaveLength(expected);
      expect(jobs.every(fromHere(family, ref))).toBe(true);
      const recent = await service.listRecentJobs(ref);
      expect(recent).toHaveLength(expected);
      expect(recent.every(fromHere(family, ref))).toBe(true);
      const snapPage = await service.listSnapshotPage(ref, { pageNum: 1, itemsPerPage: 2 });
      expect(snapPage.results.every(fromHere(family, ref))).toBe(true);
      const jobPage = await service.listJobPage(ref, { pageNum: 1, itemsPerPage: 2 });
      expect(jobPage.results.every(fromHere(family, ref))).toBe(true);
      expect(fromHere(family, ref)(await service.getSnapshot(ref, snapshotOf[family]))).toBe(true);
      const job = await service.getJob(ref, jobs[0]!.dto.id!);
      expect(fromHere(family, ref)(job)).toBe(true);
      expect(job.dto.id).toBe(jobs[0]!.dto.id);
      expect(fromHere(family, ref)(await service.download(ref, snapshotOf[family]))).toBe(true);
      expect(await service.getCluster(ref)).toMatchObject({
        family,
        projectId: ref.projectId,
        dto: { name: ref.clusterName },
      });
    });
  }

  it('a Flex page is that Atlas page of jobs, with Atlas’s count', async () => {
    const { service } = fresh();
    let page: Awaited<ReturnType<BackupService['listJobPage']>> | undefined;
    const calls = await upstream(async () => {
      page = await service.listJobPage(FLEX, { pageNum: 2, itemsPerPage: 1 });
    });
    expect(calls.map((c) => c.operationId)).toEqual(['listGroupFlexClusterBackupRestoreJobs']);
    const query = new URL(calls[0]!.target, sim.url).searchParams;
    expect([query.get('pageNum'), query.get('itemsPerPage')]).toEqual(['2', '1']);
    const all = await service.listAllJobs(FLEX);
    expect(page).toEqual({ results: [all[1]], totalCount: all.length, whole: false });
  });

  it('a tenant restore asks Atlas for the target given, and answers the tenant job', async () => {
    const { service, families: cache } = fresh();
    cache.set(TENANT, 'TENANT');
    const target = { projectId: P, clusterName: T.m5ClusterName };
    let restore: Awaited<ReturnType<BackupService['restore']>> | undefined;
    const calls = await upstream(async () => {
      restore = await service.restore(TENANT, T.completedSnapshotId, target);
    });
    expect(calls.map((c) => `${c.method} ${c.operationId}`)).toEqual([
      'POST createGroupClusterBackupTenantRestore',
    ]);
    expect(restore).toMatchObject({
      family: 'TENANT',
      ...TENANT,
      dto: { deliveryType: 'RESTORE', targetProjectId: P, targetDeploymentItemName: T.m5ClusterName },
    });
    expect(await service.getJob(TENANT, restore!.dto.id!)).toMatchObject({
      dto: { targetDeploymentItemName: T.m5ClusterName },
    });
  });
});
