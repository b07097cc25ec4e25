import pLimit from 'p-limit';
import type { AtlasClient, CallOptions } from '../atlas/index.js';
import { AtlasApiError } from '../atlas/errors.js';
import { NotSharedOrFlexError, routeByFamily } from './backup-router.js';
import type { CompletedSnapshots, KnownSnapshot } from './completed-snapshots.js';
import { createdAt } from './created-at.js';
import type { FamilyCache } from './family-cache.js';
import { flexFromClusterApi, isFlexInClusterApi, isTenantBackupCluster } from './mappers.js';
import { readNewestFirst, sortNewestFirst, timeOf } from './newest-first.js';
import type {
  BackupPage,
  ClusterRef,
  ClusterSource,
  Family,
  PageRequest,
  ProjectSource,
  RestoreJobSource,
  SnapshotSource,
} from './model.js';

/**
 * The gateway's only door to Atlas: the read model (projects, clusters, snapshots, jobs) and the job
 * requests, each routed to the family that serves the cluster. Which endpoint backs which call is
 * written down here and nowhere else:
 *
 * | call             | TENANT (M2/M5, 2023-01-01)                      | FLEX (2024-11-13)                          |
 * | ---------------- | ----------------------------------------------- | ------------------------------------------ |
 * | listProjects     | GET /groups, every page (no family)             | (same)                                     |
 * | getProject       | GET /groups/{groupId}                           | (same)                                     |
 * | listClusters     | GET …/clusters, every page; M2/M5 kept ¹        | GET …/flexClusters, every page             |
 * | getCluster       | GET …/clusters/{name}; null unless M2/M5 ¹      | GET …/flexClusters/{name}                  |
 * | listSnapshotPage | GET …/clusters/{name}/backup/tenant/snapshots ² | GET …/flexClusters/{name}/backup/snapshots |
 * | listAllSnapshots | GET …/backup/tenant/snapshots, next links       | GET …/backup/snapshots, every page         |
 * | get/findSnapshot | GET …/backup/tenant/snapshots/{id}              | GET …/backup/snapshots/{id}                |
 * | listJobPage      | GET …/backup/tenant/restores ²                  | GET …/backup/restoreJobs                   |
 * | listAllJobs      | GET …/backup/tenant/restores, next links        | GET …/backup/restoreJobs, every page       |
 * | get/findJob      | GET …/backup/tenant/restores/{id}               | GET …/backup/restoreJobs/{id}              |
 * | download         | POST …/backup/tenant/download (TenantRestore)   | POST …/backup/download ({snapshotId})      |
 * | restore          | POST …/backup/tenant/restore                    | POST …/backup/restoreJobs                  |
 * | knownCompleted…  | no call: snapshots read COMPLETED before ³      | (same)                                     |
 *
 * ¹ the clusters API (2024-08-05); `listClusters` asks both families at once. ² no paging parameters
 * exist upstream, so a page is the whole list (`whole: true`); Flex pages send `pageNum`/`itemsPerPage`.
 * ³ every snapshot this service maps (pages, whole lists, single reads) feeds the gateway's
 * `CompletedSnapshots`; a 404 answer to `download` or `restore` forgets the snapshot.
 *
 * A cluster whose family is not known yet is asked on Flex first, and on the other family when Atlas
 * names it (`routeByFamily`). `get*` reject with Atlas's 404 when the item does not exist (a mutation
 * answers NOT_FOUND); `find*`, `getProject` and `getCluster` answer null instead (the schema's
 * nullable fields).
 */
export interface BackupService {
  /** Every project the credentials can see. */
  listProjects(): Promise<ProjectSource[]>;
  /** One project, or null when Atlas says it does not exist. */
  getProject(projectId: string): Promise<ProjectSource | null>;
  /** The project's clusters with backups these APIs serve (tenant M2/M5 and Flex); learns their families. */
  listClusters(projectId: string): Promise<ClusterSource[]>;
  /** One cluster, or null when it does not exist or has no backups these APIs serve (M0, dedicated). */
  getCluster(ref: ClusterRef): Promise<ClusterSource | null>;
  /** One page of snapshots: that Atlas page on Flex, the whole list (`whole: true`) on tenant. */
  listSnapshotPage(
    ref: ClusterRef,
    page: PageRequest,
    options?: WholeListOptions<SnapshotSource>,
  ): Promise<BackupPage<SnapshotSource>>;
  listAllSnapshots(ref: ClusterRef): Promise<SnapshotSource[]>;
  getSnapshot(ref: ClusterRef, snapshotId: string): Promise<SnapshotSource>;
  /**
   * The snapshot, with no call, when a read of this gateway saw it COMPLETED (a final status) and it
   * has not expired since; undefined otherwise (then read it). See `CompletedSnapshots`.
   */
  knownCompletedSnapshot(ref: ClusterRef, snapshotId: string): KnownSnapshot | undefined;
  findSnapshot(ref: ClusterRef, snapshotId: string): Promise<SnapshotSource | null>;
  /** One page of restore/download jobs: that Atlas page on Flex, the whole list on tenant. */
  listJobPage(
    ref: ClusterRef,
    page: PageRequest,
    options?: WholeListOptions<RestoreJobSource>,
  ): Promise<BackupPage<RestoreJobSource>>;
  listAllJobs(ref: ClusterRef): Promise<RestoreJobSource[]>;
  /**
   * The cluster's most recent jobs, newest first, read from the newest end of the list (see
   * `RecentJobsOptions` for the bound): what reuse detection, lost-POST recovery and a snapshot's jobs
   * need, without the whole list of a cluster with thousands of jobs.
   */
  listRecentJobs(ref: ClusterRef, options?: RecentJobsOptions): Promise<RestoreJobSource[]>;
  getJob(ref: ClusterRef, jobId: string): Promise<RestoreJobSource>;
  findJob(ref: ClusterRef, jobId: string): Promise<RestoreJobSource | null>;
  /** Starts a download job. Not retried: Atlas POSTs are not idempotent (see src/jobs/job-requests). */
  download(ref: ClusterRef, snapshotId: string): Promise<RestoreJobSource>;
  /** Starts a restore into `target`. Not retried, like `download`. */
  restore(
    ref: ClusterRef,
    snapshotId: string,
    target: { projectId: string; clusterName: string },
  ): Promise<RestoreJobSource>;
}

/** How a page call reads a whole list, for the family whose lists take no paging (tenant). */
export interface WholeListOptions<T> {
  /**
   * Reads the cluster's whole list. A caller that caches whole lists (the request's loaders) passes
   * its cache, so a page and the full list of one cluster cost one upstream call.
   * @default the tenant list, read by this service
   */
  readWhole?: () => Promise<T[]>;
}

/**
 * How far back `listRecentJobs` reads. Jobs come newest first in chunks of `RECENT_JOBS_CHUNK`; the
 * read stops at the first job scheduled before `since`, or after `maxJobs`.
 */
export interface RecentJobsOptions {
  /**
   * Jobs scheduled before this instant (ISO-8601 or epoch ms) are not wanted: a job of a snapshot is
   * never older than the snapshot, and a download URL is dead four hours after its job finished.
   * A job is dated by `createdAt` (its ObjectId when Atlas sends no date); one that cannot be dated is
   * kept (it may be the job a lost POST made).
   * @default no time bound (only `maxJobs`)
   */
  since?: string | number | undefined;
  /**
   * Most jobs read. A real Flex cluster had 2,160 jobs (about 47 KB per 100, 1 MB in all, against a
   * Flex rate limit of 1,200 requests): 500 keeps the worst case to about 235 KB and, with the
   * covering page size, 2 to 6 calls, while a day of jobs of any cluster we have seen fits in it.
   * @default 500
   */
  maxJobs?: number;
}

/** Jobs per newest-first read of `listRecentJobs`: one page holds a busy day of one cluster. */
export const RECENT_JOBS_CHUNK = 100;
/** `RecentJobsOptions.maxJobs`'s default. */
export const RECENT_JOBS_MAX = 500;

/** What every backup service of the process shares. */
export interface BackupShared {
  atlas: AtlasClient;
  /** Which family serves each cluster, learned once per process (and fleet). */
  families: FamilyCache;
  /**
   * The snapshots read as COMPLETED, one memo for every caller of the gateway (why that is safe:
   * `CompletedSnapshots`). @default none: every job request reads its snapshot first
   */
  completed?: CompletedSnapshots | undefined;
}

export interface BackupServiceDeps extends BackupShared {
  /** Per-call options (the caller's token for pass-through, a request id, an abort signal). @default {} */
  callOptions?: CallOptions;
  /** Wraps each upstream call, e.g. a per-request concurrency limit. @default runs it directly */
  run?: <T>(call: () => Promise<T>) => Promise<T>;
}

/** The loaders of one GraphQL request. */
export interface ReadUse {
  use: 'read';
  /** Sent as `x-request-id` on each upstream call. */
  requestId: string;
  /** The caller's own Atlas token (pass-through). @default the gateway's credentials */
  bearerToken?: string | undefined;
  /** Aborts when the request ends (client gone, execution deadline): its reads stop with it. */
  signal: AbortSignal;
  /** Most upstream calls of the request in flight at once. @default 8 */
  maxConcurrency?: number | undefined;
  /** Whose share of the Atlas budget the calls spend: the caller's id. @default none (the project's only) */
  spender?: string | undefined;
  /**
   * Who may share cached reads made with the gateway's credentials: a fingerprint of the caller's
   * visibility and rights (`CallOptions.cacheScope`). @default '' (one scope)
   */
  cacheScope?: string | undefined;
  /** The caller asked for fresh data (`Cache-Control: no-cache`): read upstream, refresh the cache. @default false */
  fresh?: boolean | undefined;
}

/** The mutations of one GraphQL request. */
export interface WriteUse {
  use: 'write';
  /** Sent as `x-request-id` on each upstream call. */
  requestId: string;
  /** The caller's own Atlas token (pass-through). @default the gateway's credentials */
  bearerToken?: string | undefined;
  /** Whose share of the Atlas budget the calls spend: the caller's id. @default none (the project's only) */
  spender?: string | undefined;
}

/** A job poller, shared by every subscriber of the job and outliving the request that started it. */
export interface PollUse {
  use: 'poll';
  /** The caller's own Atlas token (pass-through). @default the gateway's credentials */
  bearerToken?: string | undefined;
  /**
   * Whose share of the Atlas budget the reads spend: the subscriber's id for a poller's first read,
   * `POLLERS_SPENDER` for the others (see `watchJob`). @default none (the project's only)
   */
  spender?: string | undefined;
}

/** Who a backup service works for: its policy follows from that alone (`backupPolicy`). */
export type BackupUse = ReadUse | WriteUse | PollUse;

/**
 * The call options and call wrapper of each use, written down once:
 * - read: calls carry the request's abort signal, so they stop when the request ends, and at most
 *   `maxConcurrency` run at once;
 * - write: no abort signal, because a POST cut short may still have created the job, and finishing
 *   the call keeps the idempotency key true to what Atlas did;
 * - poll: neither a request signal nor a request id, because the poller outlives the request; only
 *   the caller's token, since a pass-through caller reads with its own.
 * Each use's `spender` names whose share of the Atlas budget its calls take. The read cache: reads
 * use it (or refresh it when the caller asked for fresh data), within the caller's `cacheScope`;
 * a mutation's reads (reuse detection, lost-POST recovery) always go upstream and refresh it; pollers
 * bypass it, so a watched job's state is never older than one poll interval.
 */
export function backupPolicy(u: BackupUse): Pick<BackupServiceDeps, 'callOptions' | 'run'> {
  const token = {
    ...(u.bearerToken ? { bearerToken: u.bearerToken } : {}),
    ...(u.spender !== undefined ? { spender: u.spender } : {}),
  };
  switch (u.use) {
    case 'read': {
      const limit = pLimit(u.maxConcurrency ?? 8);
      return {
        callOptions: {
          requestId: u.requestId,
          signal: u.signal,
          ...token,
          cache: u.fresh ? 'refresh' : 'use',
          ...(u.cacheScope !== undefined ? { cacheScope: u.cacheScope } : {}),
        },
        run: (call) => limit(call),
      };
    }
    case 'write':
      return { callOptions: { requestId: u.requestId, ...token, cache: 'refresh' } };
    case 'poll':
      return { callOptions: { ...token, cache: 'bypass' } };
  }
}

/** Makes a backup service for one use; what process-wide code holds instead of the Atlas client. */
export type BackupServices = (use: BackupUse) => BackupService;

/** Backup services over the process's Atlas client and family cache, each with its use's policy. */
export function backupServices(shared: BackupShared): BackupServices {
  return (use) => createBackupService({ ...shared, ...backupPolicy(use) });
}

/**
 * Atlas's 404 of a single item as null: the schema's "null when it does not exist". A cluster neither
 * family serves (dedicated, M0) has no such item either.
 */
function nullIfMissing<T>(p: Promise<T>): Promise<T | null> {
  return p.catch((err: unknown) => {
    if (err instanceof AtlasApiError && err.status === 404) return null;
    if (err instanceof NotSharedOrFlexError) return null;
    throw err;
  });
}

/** The backup service over one Atlas client with these call options; prefer `backupServices`. */
export function createBackupService(deps: BackupServiceDeps): BackupService {
  const { atlas, families, completed } = deps;
  const o = deps.callOptions ?? {};
  const up = deps.run ?? (<T>(call: () => Promise<T>) => call());
  const t = (r: ClusterRef) => ({ groupId: r.projectId, clusterName: r.clusterName });
  const f = (r: ClusterRef) => ({ groupId: r.projectId, name: r.clusterName });
  const paging = (p: PageRequest) => ({ pageNum: p.pageNum, itemsPerPage: p.itemsPerPage });
  // Both families' DTOs omit where they live; sources carry the cluster (and only it) with them.
  // Every snapshot DTO passes here (pages, whole lists, single reads): each feeds the memo.
  const snap =
    (ref: ClusterRef, family: Family) =>
    (dto: SnapshotSource['dto']): SnapshotSource => {
      const source: SnapshotSource = { projectId: ref.projectId, clusterName: ref.clusterName, family, dto };
      completed?.saw(source);
      return source;
    };
  // A POST naming a snapshot that Atlas answers 404 (deleted or expired, or the cluster gone): the
  // memo forgets it, so the next request reads it again. A restore's 404 may be its target's; the
  // entry is then only read once more.
  const forgetOn404 = async <T>(ref: ClusterRef, snapshotId: string, post: Promise<T>): Promise<T> => {
    try {
      return await post;
    } catch (err) {
      if (err instanceof AtlasApiError && err.status === 404) completed?.forget(ref, snapshotId);
      throw err;
    }
  };
  const job =
    (ref: ClusterRef, family: Family) =>
    (dto: RestoreJobSource['dto']): RestoreJobSource => ({
      projectId: ref.projectId,
      clusterName: ref.clusterName,
      family,
      dto,
    });
  const whole = async <T>(items: Promise<T[]>): Promise<BackupPage<T>> => {
    const results = await items;
    return { results, totalCount: results.length, whole: true };
  };
  const tenantSnapshots = async (ref: ClusterRef) =>
    (await up(() => atlas.tenantBackup.listAllSnapshots(t(ref), o))).map(snap(ref, 'TENANT'));
  const tenantJobs = async (ref: ClusterRef) =>
    (await up(() => atlas.tenantBackup.listAllRestores(t(ref), o))).map(job(ref, 'TENANT'));

  const service: BackupService = {
    listProjects: () => up(() => atlas.projects.listAllGroups(o)),

    getProject: (projectId) => nullIfMissing(up(() => atlas.projects.getGroup({ groupId: projectId }, o))),

    listClusters: async (projectId) => {
      const [tenant, flex] = await Promise.all([
        up(() => atlas.clusters.listAllGroupClusters({ groupId: projectId }, o)),
        up(() => atlas.flexClusters.listAllGroupFlexClusters({ groupId: projectId }, o)),
      ]);
      // Before the sunset the clusters API lists Flex clusters too (`isFlexInClusterApi`): each is
      // listed once, as FLEX, from /flexClusters when that names it (the fuller description).
      const flexNames = new Set(flex.map((dto) => dto.name));
      const out: ClusterSource[] = [
        ...tenant.filter(isTenantBackupCluster).map((dto) => ({ family: 'TENANT' as const, projectId, dto })),
        ...flex.map((dto) => ({ family: 'FLEX' as const, projectId, dto })),
        ...tenant
          .filter((dto) => isFlexInClusterApi(dto) && !flexNames.has(dto.name))
          .map((dto) => ({ family: 'FLEX' as const, projectId, dto: flexFromClusterApi(dto) })),
      ];
      // A listing names each cluster's family: later reads of these clusters need no fallback.
      for (const c of out) families.set({ projectId, clusterName: c.dto.name ?? '' }, c.family);
      return out;
    },

    getCluster: async (ref) => {
      const found = await nullIfMissing(
        routeByFamily<ClusterSource | null>(families, ref, {
          FLEX: async () => ({
            family: 'FLEX',
            projectId: ref.projectId,
            dto: await up(() => atlas.flexClusters.getGroupFlexCluster(f(ref), o)),
          }),
          TENANT: async () => {
            const dto = await up(() => atlas.clusters.getGroupCluster(t(ref), o));
            // Before the sunset a Flex cluster answers here too (as TENANT, effectiveInstanceSize FLEX).
            if (isFlexInClusterApi(dto)) {
              return { family: 'FLEX', projectId: ref.projectId, dto: flexFromClusterApi(dto) };
            }
            // A dedicated or M0 cluster answers here too, but has no backups these APIs serve.
            return isTenantBackupCluster(dto) ? { family: 'TENANT', projectId: ref.projectId, dto } : null;
          },
        }),
      );
      // routeByFamily remembers the route that answered; a Flex cluster found on the clusters API is
      // read through the Flex routes from now on.
      if (found?.family === 'FLEX') families.set(ref, 'FLEX');
      return found;
    },

    // Tenant lists take no paging parameters upstream (v2 declares none), so any page is the whole
    // list and the caller slices it.
    listSnapshotPage: (ref, page, options = {}) =>
      routeByFamily(families, ref, {
        TENANT: () => whole(options.readWhole?.() ?? tenantSnapshots(ref)),
        FLEX: async () => {
          const p = await up(() => atlas.flexBackup.listSnapshots({ ...f(ref), ...paging(page) }, o));
          return { results: p.results.map(snap(ref, 'FLEX')), totalCount: p.totalCount, whole: false };
        },
      }),

    listAllSnapshots: (ref) =>
      routeByFamily(families, ref, {
        TENANT: () => tenantSnapshots(ref),
        FLEX: async () =>
          (await up(() => atlas.flexBackup.listAllSnapshots(f(ref), o))).map(snap(ref, 'FLEX')),
      }),

    getSnapshot: (ref, snapshotId) =>
      routeByFamily(families, ref, {
        TENANT: async () =>
          snap(ref, 'TENANT')(await up(() => atlas.tenantBackup.getSnapshot({ ...t(ref), snapshotId }, o))),
        FLEX: async () =>
          snap(ref, 'FLEX')(await up(() => atlas.flexBackup.getSnapshot({ ...f(ref), snapshotId }, o))),
      }),

    knownCompletedSnapshot: (ref, snapshotId) => completed?.get(ref, snapshotId),

    findSnapshot: (ref, snapshotId) => nullIfMissing(service.getSnapshot(ref, snapshotId)),

    listJobPage: (ref, page, options = {}) =>
      routeByFamily(families, ref, {
        TENANT: () => whole(options.readWhole?.() ?? tenantJobs(ref)),
        FLEX: async () => {
          const p = await up(() => atlas.flexBackup.listRestoreJobs({ ...f(ref), ...paging(page) }, o));
          return { results: p.results.map(job(ref, 'FLEX')), totalCount: p.totalCount, whole: false };
        },
      }),

    listAllJobs: (ref) =>
      routeByFamily(families, ref, {
        TENANT: () => tenantJobs(ref),
        FLEX: async () =>
          (await up(() => atlas.flexBackup.listAllRestoreJobs(f(ref), o))).map(job(ref, 'FLEX')),
      }),

    listRecentJobs: async (ref, options = {}) => {
      const sinceMs =
        typeof options.since === 'number'
          ? options.since
          : options.since === undefined
            ? -Infinity
            : timeOf(options.since);
      const max = options.maxJobs ?? RECENT_JOBS_MAX;
      // By `createdAt` (the ObjectId's seconds when the date is missing); a job whose age cannot be
      // read is kept: it may be the one a lost POST made (src/jobs/job-requests.ts, `findLostJob`).
      const when = createdAt;
      const keep = (jobs: RestoreJobSource[]) => jobs.filter((j) => !(when(j) < sinceMs)).slice(0, max);
      const sorted = (jobs: RestoreJobSource[]) =>
        keep(
          sortNewestFirst(
            jobs,
            (j) => j.dto.restoreScheduledDate,
            (j) => j.dto.id ?? '',
          ),
        );
      return routeByFamily(families, ref, {
        // Tenant lists take no paging upstream: the whole list is one call anyway.
        TENANT: async () => sorted(await tenantJobs(ref)),
        FLEX: async () => {
          const out: RestoreJobSource[] = [];
          let before: number | undefined;
          while (out.length < max) {
            const read = await readNewestFirst<RestoreJobSource>(
              async (pageNum, itemsPerPage) => {
                const p = await up(() =>
                  atlas.flexBackup.listRestoreJobs({ ...f(ref), pageNum, itemsPerPage }, o),
                );
                return { results: p.results.map(job(ref, 'FLEX')), totalCount: p.totalCount };
              },
              {
                before,
                count: Math.min(RECENT_JOBS_CHUNK, max - out.length),
                // The first read learns where the newest end is: a page of a chunk answers a cluster
                // of up to 100 jobs in one call; a longer list costs one more (its oldest 100 jobs,
                // about 47 KB, read only for `totalCount`).
                probeSize: RECENT_JOBS_CHUNK,
                isOlder: (a, b) => when(a) < when(b),
              },
            );
            // Atlas's order is not the one assumed (see newest-first.ts): read it all and sort.
            if (read.orderBroken) {
              return sorted(
                (await up(() => atlas.flexBackup.listAllRestoreJobs(f(ref), o))).map(job(ref, 'FLEX')),
              );
            }
            out.push(...read.items);
            const oldest = read.items.at(-1);
            if (read.olderCount === 0 || oldest === undefined || when(oldest) < sinceMs) break;
            before = read.olderCount;
          }
          return keep(out);
        },
      });
    },

    getJob: (ref, jobId) =>
      routeByFamily(families, ref, {
        TENANT: async () =>
          job(
            ref,
            'TENANT',
          )(await up(() => atlas.tenantBackup.getRestore({ ...t(ref), restoreId: jobId }, o))),
        FLEX: async () =>
          job(
            ref,
            'FLEX',
          )(await up(() => atlas.flexBackup.getRestoreJob({ ...f(ref), restoreJobId: jobId }, o))),
      }),

    findJob: (ref, jobId) => nullIfMissing(service.getJob(ref, jobId)),

    // POSTs go through routeByFamily too: a family-mismatch or 410 answer means Atlas created nothing,
    // so asking the other family is safe. Transport failures are not retried here (see job-requests).
    download: (ref, snapshotId) =>
      forgetOn404(
        ref,
        snapshotId,
        routeByFamily(families, ref, {
          TENANT: async () =>
            job(
              ref,
              'TENANT',
            )(
              await up(() =>
                // Atlas requires a full TenantRestore body even for a download; the target is the source.
                atlas.tenantBackup.download(
                  { ...t(ref), snapshotId, targetDeploymentItemName: ref.clusterName },
                  o,
                ),
              ),
            ),
          FLEX: async () =>
            job(ref, 'FLEX')(await up(() => atlas.flexBackup.download({ ...f(ref), snapshotId }, o))),
        }),
      ),

    restore: (ref, snapshotId, target) => {
      const body = {
        snapshotId,
        targetDeploymentItemName: target.clusterName,
        targetProjectId: target.projectId,
      };
      return forgetOn404(
        ref,
        snapshotId,
        routeByFamily(families, ref, {
          TENANT: async () =>
            job(ref, 'TENANT')(await up(() => atlas.tenantBackup.restore({ ...t(ref), ...body }, o))),
          FLEX: async () =>
            job(ref, 'FLEX')(await up(() => atlas.flexBackup.createRestoreJob({ ...f(ref), ...body }, o))),
        }),
      );
    },
  };
  return service;
}
