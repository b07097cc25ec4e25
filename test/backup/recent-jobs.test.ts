import { beforeAll, describe, expect, it } from 'vitest';
import type { AtlasClient } from '../../src/atlas/index.js';
import { AtlasApiError } from '../../src/atlas/errors.js';
import { backupPolicy, createBackupService, type BackupService } from '../../src/backup/backup-service.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import type { ClusterRef, RestoreJobSource } from '../../src/backup/model.js';
import type { ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { startContractSimulator } from '../support/contract.js';
import { startAtlasClient } from '../support/atlas-client.js';

// `listRecentJobs` on the realistic data (a Flex cluster with 2,160 jobs, and the tenant cluster),
// compared job by job with the whole list read the long way.
const BUSY: ClusterRef = { projectId: SEED.realistic.groupId, clusterName: SEED.realistic.busyClusterName };
const TENANT: ClusterRef = { projectId: SEED.tenant.groupId, clusterName: SEED.tenant.clusterName };

let sim: Awaited<ReturnType<typeof startContractSimulator>>;
let atlas: AtlasClient;
let clock: ManualClock;
beforeAll(async () => {
  ({
    sim,
    client: atlas,
    clock,
  } = await startAtlasClient({ sim: { profile: 'realistic' }, sleepMovesClock: false }));
});

const service = (): BackupService => createBackupService({ atlas, families: new FamilyCache({ clock }) });
const when = (j: RestoreJobSource) => Date.parse(j.dto.restoreScheduledDate ?? '');
const ids = (jobs: RestoreJobSource[]) => jobs.map((j) => j.dto.id);
/** Every job of the cluster, newest first. */
async function allNewestFirst(ref: ClusterRef) {
  const all = await service().listAllJobs(ref);
  return [...all].sort((a, b) => when(b) - when(a));
}

describe('listRecentJobs', () => {
  it('answers the newest 500 by default, newest first, of a Flex cluster with 2,160 jobs', async () => {
    const all = await allNewestFirst(BUSY);
    expect(all.length).toBe(SEED.realistic.busyJobCount);
    expect(new Set(all.map(when)).size).toBe(all.length);
    expect(ids(await service().listRecentJobs(BUSY))).toEqual(ids(all.slice(0, 500)));
  });

  it('stops at `since` (epoch ms or ISO-8601, the job at `since` itself included) and at maxJobs', async () => {
    const all = await allNewestFirst(BUSY);
    const since = when(all[9]!);
    expect(ids(await service().listRecentJobs(BUSY, { since }))).toEqual(ids(all.slice(0, 10)));
    expect(ids(await service().listRecentJobs(BUSY, { since: new Date(since).toISOString() }))).toEqual(
      ids(all.slice(0, 10)),
    );
    expect(ids(await service().listRecentJobs(BUSY, { since, maxJobs: 3 }))).toEqual(ids(all.slice(0, 3)));
    // Reaching further back than one chunk of reads.
    const far = when(all[700]!);
    expect(ids(await service().listRecentJobs(BUSY, { since: far, maxJobs: 1000 }))).toEqual(
      ids(all.slice(0, 701)),
    );
  });

  it('filters and sorts a tenant cluster’s whole list the same way', async () => {
    const all = await allNewestFirst(TENANT);
    expect(all.length).toBeGreaterThan(1);
    expect(ids(await service().listRecentJobs(TENANT))).toEqual(ids(all));
    const since = when(all[0]!);
    expect(ids(await service().listRecentJobs(TENANT, { since }))).toEqual(
      ids(all.filter((j) => when(j) >= since)),
    );
    expect(ids(await service().listRecentJobs(TENANT, { maxJobs: 1 }))).toEqual(ids(all.slice(0, 1)));
  });
});

/**
 * An Atlas whose only Flex cluster lists `jobs` in the order given (Atlas's own is oldest first),
 * recording each list call: `[pageNum, itemsPerPage]`, or `'all'` for the whole list.
 */
function listedAtlas(jobs: RestoreJobSource['dto'][]) {
  const calls: ([number, number] | 'all')[] = [];
  const atlas = {
    flexBackup: {
      listRestoreJobs: async (q: { pageNum: number; itemsPerPage: number }) => {
        calls.push([q.pageNum, q.itemsPerPage]);
        const from = (q.pageNum - 1) * q.itemsPerPage;
        return { results: jobs.slice(from, from + q.itemsPerPage), totalCount: jobs.length };
      },
      listAllRestoreJobs: async () => {
        calls.push('all');
        return jobs;
      },
    },
  } as unknown as AtlasClient;
  return { service: createBackupService({ atlas, families: new FamilyCache({ clock }) }), calls };
}

// Cases of #16's `jobsCreatedSince` (the look for a lost POST's job), kept when it was folded into
// `listRecentJobs`: Atlas's order is checked, not trusted, and an undated job still counts as recent.
describe('listRecentJobs, whatever Atlas’s order', () => {
  const T0 = Date.parse('2026-08-10T00:00:00Z');
  const dto = (n: number, at: number) => ({ id: `j${n}`, restoreScheduledDate: new Date(at).toISOString() });
  // 350 jobs a minute apart, oldest first; the last 30 are "recent".
  const oldestFirst = Array.from({ length: 350 }, (_, n) => dto(n, T0 + n * 60_000));
  const since = T0 + 320 * 60_000;
  const newest30 = Array.from({ length: 30 }, (_, n) => `j${349 - n}`);

  it('oldest first (as Atlas): the probe, then one page of the covering size', async () => {
    const { service, calls } = listedAtlas(oldestFirst);
    expect(ids(await service.listRecentJobs(BUSY, { since }))).toEqual(newest30);
    // Jobs [250, 350) are one page of the smallest covering size, 117 (page 3 = jobs 234..350).
    expect(calls).toEqual([
      [1, 100],
      [3, 117],
    ]);
  });

  it('newest first (not Atlas’s order): the page read contradicts it, so the whole list is read and sorted', async () => {
    const { service, calls } = listedAtlas([...oldestFirst].reverse());
    const recent = await service.listRecentJobs(BUSY, { since });
    expect(ids(recent)).toEqual(newest30);
    expect(calls).toEqual([[1, 100], [3, 117], 'all']);
    // Read the long way, they are still the Flex cluster's jobs.
    expect(recent.every((j) => j.family === 'FLEX' && j.clusterName === BUSY.clusterName)).toBe(true);
  });

  it('a first page of jobs of one second tells no order, and is no contradiction either', async () => {
    const same = [...Array.from({ length: 100 }, (_, n) => dto(n, T0)), dto(100, T0 + 60_000)];
    const { service, calls } = listedAtlas(same);
    expect(ids(await service.listRecentJobs(BUSY, { since: T0 + 30_000 }))).toEqual(['j100']);
    // Jobs [1, 101) are one page of 101 (page 1).
    expect(calls).toEqual([
      [1, 100],
      [1, 101],
    ]);
  });

  it('a job without a date is dated by its ObjectId; one whose age cannot be read counts as recent', async () => {
    const objectId = (at: number) => `${Math.floor(at / 1000).toString(16)}${'0'.repeat(16)}`;
    const { service } = listedAtlas([
      { id: objectId(T0) },
      dto(1, T0 + 60_000),
      { id: 'not-an-object-id' },
      { id: objectId(T0 + 120_000) },
    ]);
    expect(ids(await service.listRecentJobs(BUSY, { since: T0 + 30_000 }))).toEqual([
      objectId(T0 + 120_000),
      'not-an-object-id',
      'j1',
    ]);
  });
});

describe('listRecentJobs: what it costs', () => {
  /** The Flex job list pages `fn` read, as `pageNum x itemsPerPage`. */
  async function pages(fn: () => Promise<unknown>) {
    const before = sim.stats().requests.length;
    await fn();
    return sim
      .stats()
      .requests.slice(before)
      .filter((r) => r.operationId === 'listGroupFlexClusterBackupRestoreJobs')
      .map((r) => {
        const q = new URL(r.target, 'http://x').searchParams;
        return `${q.get('pageNum')}x${q.get('itemsPerPage')}`;
      });
  }

  it('reads back only as far as `since` or `maxJobs` asks', async () => {
    const all = await allNewestFirst(BUSY);
    // The first call learns where the newest end is (its page of 100 holds the oldest jobs); each
    // next one reads a chunk of about 100 newest-first, until `since` or `maxJobs` is reached.
    const ten = await pages(() => service().listRecentJobs(BUSY, { since: when(all[9]!) }));
    const three = await pages(() => service().listRecentJobs(BUSY, { maxJobs: 3 }));
    const byDefault = await pages(() => service().listRecentJobs(BUSY));
    const far = await pages(() => service().listRecentJobs(BUSY, { since: when(all[700]!), maxJobs: 1000 }));
    expect([ten.length, three.length, byDefault.length, far.length]).toEqual([2, 2, 6, 9]);
    expect([ten[0], three[1]]).toEqual(['1x100', '720x3']);
  });
});

describe('findJob and backupPolicy', () => {
  it('answers null only for a job Atlas says does not exist: a 500 reaches the caller', async () => {
    expect(await service().findJob(BUSY, SEED.unknownId)).toBeNull();
    const id = sim.faults.add({ operationId: 'getGroupFlexClusterBackupRestoreJob', status: 500 });
    try {
      const err = await service()
        .findJob(BUSY, SEED.unknownId)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AtlasApiError);
      expect((err as AtlasApiError).status).toBe(500);
    } finally {
      sim.faults.remove(id);
    }
  });

  it('names whose share of the Atlas budget a use spends, only when told', () => {
    expect(backupPolicy({ use: 'poll', spender: 'apikey:svc' })).toEqual({
      callOptions: { spender: 'apikey:svc', cache: 'bypass' },
    });
    expect(backupPolicy({ use: 'write', requestId: 'w', spender: '' })).toEqual({
      callOptions: { requestId: 'w', spender: '', cache: 'refresh' },
    });
    expect(Object.keys(backupPolicy({ use: 'poll' }).callOptions ?? {})).toEqual(['cache']);
  });
});

describe('listRecentJobs: where the Flex read stops', () => {
  const T0 = Date.parse('2026-08-10T00:00:00Z');
  const dto = (n: number, at: number) => ({ id: `j${n}`, restoreScheduledDate: new Date(at).toISOString() });
  const oldestFirst = Array.from({ length: 350 }, (_, n) => dto(n, T0 + n * 60_000));

  it('a list shorter than a chunk is read with the one probe: nothing older is asked for', async () => {
    const { service, calls } = listedAtlas(oldestFirst.slice(0, 30));
    expect(ids(await service.listRecentJobs(BUSY))).toEqual(
      Array.from({ length: 30 }, (_, n) => `j${29 - n}`),
    );
    expect(calls).toEqual([[1, 100]]);
  });

  it('a second chunk asks only for what maxJobs still needs', async () => {
    const { service, calls } = listedAtlas(oldestFirst);
    const newest150 = Array.from({ length: 150 }, (_, n) => `j${349 - n}`);
    expect(ids(await service.listRecentJobs(BUSY, { maxJobs: 150 }))).toEqual(newest150);
    // [250, 350) in one page of 117 (page 3), then the 50 before: [200, 250) is page 5 of 50.
    expect(calls).toEqual([
      [1, 100],
      [3, 117],
      [5, 50],
    ]);
  });

  it('a chunk ending exactly at `since` reads on: an older job of that same second is still recent', async () => {
    const tied = oldestFirst.map((j, n) => (n === 249 ? dto(249, T0 + 250 * 60_000) : j));
    const { service, calls } = listedAtlas(tied);
    const recent = ids(await service.listRecentJobs(BUSY, { since: T0 + 250 * 60_000 }));
    expect(recent).toHaveLength(101);
    expect(recent.at(-1)).toBe('j249');
    expect(calls).toHaveLength(3);
  });

  it('jobs deleted between the probe and the page make the answer shorter, not an error', async () => {
    const jobs = [...oldestFirst];
    const calls: [number, number][] = [];
    const shrinking = {
      flexBackup: {
        listRestoreJobs: async (q: { pageNum: number; itemsPerPage: number }) => {
          calls.push([q.pageNum, q.itemsPerPage]);
          const from = (q.pageNum - 1) * q.itemsPerPage;
          const page = { results: jobs.slice(from, from + q.itemsPerPage), totalCount: jobs.length };
          // The probe has learned 350 jobs; all but 50 are gone before the page of the newest is read.
          jobs.splice(50);
          return page;
        },
      },
    } as unknown as AtlasClient;
    const svc = createBackupService({ atlas: shrinking, families: new FamilyCache({ clock }) });
    expect(await svc.listRecentJobs(BUSY)).toEqual([]);
    expect(calls).toEqual([
      [1, 100],
      [3, 117],
    ]);
  });

  it('a tenant list breaks ties of one second by id, newest (largest) first', async () => {
    const at = new Date(T0).toISOString();
    const listed = [
      { id: 'a1', restoreScheduledDate: at },
      { id: 'a3', restoreScheduledDate: at },
      { id: 'a0', restoreScheduledDate: new Date(T0 + 1000).toISOString() },
      { id: 'a2', restoreScheduledDate: at },
    ];
    const tenantAtlas = { tenantBackup: { listAllRestores: async () => listed } } as unknown as AtlasClient;
    const families = new FamilyCache({ clock });
    families.set(TENANT, 'TENANT');
    const svc = createBackupService({ atlas: tenantAtlas, families });
    expect(ids(await svc.listRecentJobs(TENANT))).toEqual(['a0', 'a3', 'a2', 'a1']);
  });
});

describe('a dedicated cluster: no backups served here', () => {
  const DEDICATED: ClusterRef = {
    projectId: SEED.realistic.groupId,
    clusterName: SEED.realistic.dedicatedClusterName,
  };

  it('finds nothing (null), and a get answers NOT_FOUND naming the cluster', async () => {
    const s = service();
    expect(await s.findJob(DEDICATED, SEED.unknownId)).toBeNull();
    expect(await s.findSnapshot(DEDICATED, SEED.unknownId)).toBeNull();
    expect(await s.getCluster(DEDICATED)).toBeNull();
    const err = await s.getJob(DEDICATED, SEED.unknownId).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_FOUND', extensions: { reason: 'NOT_SHARED_TIER_OR_FLEX' } });
  });
});
