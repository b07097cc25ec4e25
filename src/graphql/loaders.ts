import DataLoader from 'dataloader';
import pLimit from 'p-limit';
import type { AtlasClient, CallOptions } from '../atlas/index.js';
import type { AtlasGroup } from '../atlas/projects.js';
import { AtlasApiError } from '../atlas/errors.js';
import { routeByFamily } from '../backup/backup-router.js';
import type { FamilyCache } from '../backup/family-cache.js';
import { isTenantBackupCluster } from '../backup/mappers.js';
import {
  clusterKey,
  type ClusterRef,
  type ClusterSource,
  type RestoreJobSource,
  type SnapshotSource,
} from '../backup/model.js';
import type { UpstreamPage } from './connection.js';

/** What the loaders need from the gateway: the Atlas client and the process-wide family cache. */
export interface LoaderDeps {
  atlas: AtlasClient;
  families: FamilyCache;
  /** Passed to every upstream call of this request (request id, abort signal, caller's token). */
  callOptions?: CallOptions;
  /** Most upstream calls of one GraphQL request in flight at once. @default 8 */
  maxConcurrency?: number;
}

export interface PageKey extends ClusterRef {
  pageNum: number;
  itemsPerPage: number;
}
export interface ItemKey extends ClusterRef {
  id: string;
}

/**
 * The DataLoaders of one GraphQL request: identical upstream reads happen once, lists prime the item
 * loaders, and upstream concurrency is bounded. Made new for every request by the context factory.
 */
export interface Loaders {
  /** `listGroups`, every page, once per request. */
  projects(): Promise<AtlasGroup[]>;
  project: DataLoader<string, AtlasGroup | null>;
  /** The project's tenant (M2/M5) and Flex clusters: one call per family. */
  projectClusters: DataLoader<string, ClusterSource[]>;
  cluster: DataLoader<ClusterRef, ClusterSource | null, string>;
  /** One Flex page, or a tenant cluster's whole list (tenant lists take no paging parameters). */
  snapshotPage: DataLoader<PageKey, UpstreamPage<SnapshotSource> & { whole: boolean }, string>;
  allSnapshots: DataLoader<ClusterRef, SnapshotSource[], string>;
  snapshot: DataLoader<ItemKey, SnapshotSource | null, string>;
  jobPage: DataLoader<PageKey, UpstreamPage<RestoreJobSource> & { whole: boolean }, string>;
  allJobs: DataLoader<ClusterRef, RestoreJobSource[], string>;
  job: DataLoader<ItemKey, RestoreJobSource | null, string>;
}

const pageKey = (k: PageKey) => `${clusterKey(k)}#${k.pageNum}x${k.itemsPerPage}`;
const itemKey = (k: ItemKey) => `${clusterKey(k)}#${k.id}`;

/** 404s of single-item reads become null: the schema's "null when it does not exist". */
function nullIfMissing<T>(p: Promise<T>): Promise<T | null> {
  return p.catch((err: unknown) => {
    if (err instanceof AtlasApiError && err.status === 404) return null;
    throw err;
  });
}

// Atlas has no batch reads, so each key is its own call; DataLoader still dedupes keys and the
// limiter bounds how many run at once. A failed key yields its Error, the others their values.
function eachKey<K, V>(run: (key: K) => Promise<V>) {
  return async (keys: readonly K[]): Promise<(V | Error)[]> => {
    const settled = await Promise.allSettled(keys.map(run));
    return settled.map((s) => (s.status === 'fulfilled' ? s.value : toError(s.reason)));
  };
}
const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export function createLoaders(deps: LoaderDeps): Loaders {
  const { atlas, families } = deps;
  const limit = pLimit(deps.maxConcurrency ?? 8);
  const o = deps.callOptions ?? {};
  const up = <T>(fn: () => Promise<T>): Promise<T> => limit(fn);

  const primeCluster = (c: ClusterSource) => {
    const ref = { projectId: c.projectId, clusterName: c.dto.name ?? '' };
    families.set(ref, c.family);
    loaders.cluster.prime(ref, c);
  };
  const snapshotsOf = (ref: ClusterRef, family: SnapshotSource['family'], dtos: SnapshotSource['dto'][]) =>
    dtos.map((dto): SnapshotSource => {
      const s = { ...ref, family, dto };
      loaders.snapshot.prime({ ...ref, id: dto.id ?? '' }, s);
      seen.set(`s:${itemKey({ ...ref, id: dto.id ?? '' })}`, s);
      return s;
    });
  const jobsOf = (ref: ClusterRef, family: RestoreJobSource['family'], dtos: RestoreJobSource['dto'][]) =>
    dtos.map((dto): RestoreJobSource => {
      const j = { ...ref, family, dto };
      loaders.job.prime({ ...ref, id: dto.id ?? '' }, j);
      seen.set(`j:${itemKey({ ...ref, id: dto.id ?? '' })}`, j);
      return j;
    });
  const tenantRef = (r: ClusterRef) => ({ groupId: r.projectId, clusterName: r.clusterName });
  const flexRef = (r: ClusterRef) => ({ groupId: r.projectId, name: r.clusterName });

  let projectList: Promise<AtlasGroup[]> | undefined;

  // Sibling fields resolve together, so `snapshot(id)` may be asked while the list holding it is still
  // in flight, too late for DataLoader's prime. Item loads wait for that cluster's pending lists and
  // take what they saw before calling Atlas.
  const seen = new Map<string, SnapshotSource | RestoreJobSource>();
  const pending = new Map<string, Set<Promise<unknown>>>();
  const listing = <T>(ref: ClusterRef, p: Promise<T>): Promise<T> => {
    const key = clusterKey(ref);
    const set = pending.get(key) ?? new Set();
    pending.set(key, set);
    set.add(p);
    void p.finally(() => set.delete(p)).catch(() => undefined);
    return p;
  };
  const seenOrFetch = async <T extends SnapshotSource | RestoreJobSource>(
    kind: 's' | 'j',
    k: ItemKey,
    fetch: () => Promise<T | null>,
  ): Promise<T | null> => {
    await Promise.allSettled([...(pending.get(clusterKey(k)) ?? [])]);
    return (seen.get(`${kind}:${itemKey(k)}`) as T | undefined) ?? fetch();
  };

  const loaders: Loaders = {
    projects: () =>
      (projectList ??= up(() => atlas.projects.listAllGroups(o)).then((groups) => {
        for (const g of groups) if (g.id) loaders.project.prime(g.id, g);
        return groups;
      })),

    project: new DataLoader(
      eachKey((id: string) => nullIfMissing(up(() => atlas.projects.getGroup({ groupId: id }, o)))),
    ),

    projectClusters: new DataLoader(
      eachKey(async (projectId: string) => {
        const [tenant, flex] = await Promise.all([
          up(() => atlas.clusters.listAllGroupClusters({ groupId: projectId }, o)),
          up(() => atlas.flexClusters.listAllGroupFlexClusters({ groupId: projectId }, o)),
        ]);
        const out: ClusterSource[] = [
          ...tenant
            .filter(isTenantBackupCluster)
            .map((dto) => ({ family: 'TENANT' as const, projectId, dto })),
          ...flex.map((dto) => ({ family: 'FLEX' as const, projectId, dto })),
        ];
        out.forEach(primeCluster);
        return out;
      }),
    ),

    cluster: new DataLoader(
      eachKey((ref: ClusterRef) =>
        nullIfMissing(
          routeByFamily<ClusterSource | null>(families, ref, {
            FLEX: async () => ({
              family: 'FLEX',
              projectId: ref.projectId,
              dto: await up(() => atlas.flexClusters.getGroupFlexCluster(flexRef(ref), o)),
            }),
            TENANT: async () => {
              const dto = await up(() => atlas.clusters.getGroupCluster(tenantRef(ref), o));
              // A dedicated or M0 cluster has no backups this API serves.
              return isTenantBackupCluster(dto) ? { family: 'TENANT', projectId: ref.projectId, dto } : null;
            },
          }),
        ),
      ),
      { cacheKeyFn: clusterKey },
    ),

    snapshotPage: new DataLoader(
      eachKey((k: PageKey) =>
        listing(
          k,
          routeByFamily<UpstreamPage<SnapshotSource> & { whole: boolean }>(families, k, {
            TENANT: async () => {
              const all = await loaders.allSnapshots.load(k);
              return { results: all, totalCount: all.length, whole: true };
            },
            FLEX: async () => {
              const page = await up(() =>
                atlas.flexBackup.listSnapshots(
                  { ...flexRef(k), pageNum: k.pageNum, itemsPerPage: k.itemsPerPage },
                  o,
                ),
              );
              return {
                results: snapshotsOf(k, 'FLEX', page.results),
                totalCount: page.totalCount,
                whole: false,
              };
            },
          }),
        ),
      ),
      { cacheKeyFn: pageKey },
    ),

    allSnapshots: new DataLoader(
      eachKey((ref: ClusterRef) =>
        listing(
          ref,
          routeByFamily(families, ref, {
            TENANT: async () =>
              snapshotsOf(
                ref,
                'TENANT',
                await up(() => atlas.tenantBackup.listAllSnapshots(tenantRef(ref), o)),
              ),
            FLEX: async () =>
              snapshotsOf(ref, 'FLEX', await up(() => atlas.flexBackup.listAllSnapshots(flexRef(ref), o))),
          }),
        ),
      ),
      { cacheKeyFn: clusterKey },
    ),

    snapshot: new DataLoader(
      eachKey((k: ItemKey) =>
        seenOrFetch('s', k, () =>
          nullIfMissing(
            routeByFamily<SnapshotSource>(families, k, {
              TENANT: async () => ({
                ...k,
                family: 'TENANT',
                dto: await up(() => atlas.tenantBackup.getSnapshot({ ...tenantRef(k), snapshotId: k.id }, o)),
              }),
              FLEX: async () => ({
                ...k,
                family: 'FLEX',
                dto: await up(() => atlas.flexBackup.getSnapshot({ ...flexRef(k), snapshotId: k.id }, o)),
              }),
            }),
          ),
        ),
      ),
      { cacheKeyFn: itemKey },
    ),

    jobPage: new DataLoader(
      eachKey((k: PageKey) =>
        listing(
          k,
          routeByFamily<UpstreamPage<RestoreJobSource> & { whole: boolean }>(families, k, {
            TENANT: async () => {
              const all = await loaders.allJobs.load(k);
              return { results: all, totalCount: all.length, whole: true };
            },
            FLEX: async () => {
              const page = await up(() =>
                atlas.flexBackup.listRestoreJobs(
                  { ...flexRef(k), pageNum: k.pageNum, itemsPerPage: k.itemsPerPage },
                  o,
                ),
              );
              return { results: jobsOf(k, 'FLEX', page.results), totalCount: page.totalCount, whole: false };
            },
          }),
        ),
      ),
      { cacheKeyFn: pageKey },
    ),

    allJobs: new DataLoader(
      eachKey((ref: ClusterRef) =>
        listing(
          ref,
          routeByFamily(families, ref, {
            TENANT: async () =>
              jobsOf(ref, 'TENANT', await up(() => atlas.tenantBackup.listAllRestores(tenantRef(ref), o))),
            FLEX: async () =>
              jobsOf(ref, 'FLEX', await up(() => atlas.flexBackup.listAllRestoreJobs(flexRef(ref), o))),
          }),
        ),
      ),
      { cacheKeyFn: clusterKey },
    ),

    job: new DataLoader(
      eachKey((k: ItemKey) =>
        seenOrFetch('j', k, () =>
          nullIfMissing(
            routeByFamily<RestoreJobSource>(families, k, {
              TENANT: async () => ({
                ...k,
                family: 'TENANT',
                dto: await up(() => atlas.tenantBackup.getRestore({ ...tenantRef(k), restoreId: k.id }, o)),
              }),
              FLEX: async () => ({
                ...k,
                family: 'FLEX',
                dto: await up(() => atlas.flexBackup.getRestoreJob({ ...flexRef(k), restoreJobId: k.id }, o)),
              }),
            }),
          ),
        ),
      ),
      { cacheKeyFn: itemKey },
    ),
  };
  return loaders;
}
