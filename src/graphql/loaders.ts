import DataLoader from 'dataloader';
import pLimit from 'p-limit';
import type { AtlasClient, CallOptions } from '../atlas/index.js';
import type { AtlasGroup } from '../atlas/projects.js';
import { AtlasApiError } from '../atlas/errors.js';
import { routeByFamily } from '../backup/backup-router.js';
import { createBackupService, type BackupService } from '../backup/backup-service.js';
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
import { LoaderStats } from '../observability/metrics.js';

/** What the loaders need from the gateway: the Atlas client and the process-wide family cache. */
export interface LoaderDeps {
  atlas: AtlasClient;
  families: FamilyCache;
  /** Passed to every upstream call of this request (request id, abort signal, caller's token). */
  callOptions?: CallOptions;
  /** Most upstream calls of one GraphQL request in flight at once. @default 8 */
  maxConcurrency?: number;
  /** Shared counters for metrics. @default a private one */
  stats?: LoaderStats;
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
  /** Family-routed backup calls with this request's options and concurrency limit (mutations use it). */
  service: BackupService;
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
  const stats = deps.stats ?? new LoaderStats();
  const up = <T>(fn: () => Promise<T>): Promise<T> => limit(fn);

  const primeCluster = (c: ClusterSource) => {
    const ref = { projectId: c.projectId, clusterName: c.dto.name ?? '' };
    families.set(ref, c.family);
    loaders.cluster.prime(ref, c);
  };
  const primeSnapshots = (items: SnapshotSource[]) => {
    for (const s of items) {
      const key = { projectId: s.projectId, clusterName: s.clusterName, id: s.dto.id ?? '' };
      loaders.snapshot.prime(key, s);
      seen.set(`s:${itemKey(key)}`, s);
    }
    return items;
  };
  const primeJobs = (items: RestoreJobSource[]) => {
    for (const j of items) {
      const key = { projectId: j.projectId, clusterName: j.clusterName, id: j.dto.id ?? '' };
      loaders.job.prime(key, j);
      seen.set(`j:${itemKey(key)}`, j);
    }
    return items;
  };
  const service = createBackupService({ atlas, families, callOptions: o, run: up });
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
    const hit = seen.get(`${kind}:${itemKey(k)}`) as T | undefined;
    if (hit) stats.listHits += 1;
    else stats.itemLoads += 1;
    return hit ?? fetch();
  };

  /**
   * One page of a cluster's list: Flex reads exactly that Atlas page; tenant lists take no paging
   * parameters upstream, so the whole list is read once and sliced.
   */
  const pageLoader = <T extends SnapshotSource | RestoreJobSource>(
    all: () => DataLoader<ClusterRef, T[], string>,
    flexPage: (k: PageKey) => Promise<{ results: T['dto'][]; totalCount: number | undefined }>,
    prime: (items: T[]) => T[],
  ) =>
    new DataLoader<PageKey, UpstreamPage<T> & { whole: boolean }, string>(
      eachKey((k: PageKey) =>
        listing(
          k,
          routeByFamily<UpstreamPage<T> & { whole: boolean }>(families, k, {
            TENANT: async () => {
              const items = await all().load(k);
              return { results: items, totalCount: items.length, whole: true };
            },
            FLEX: async () => {
              const page = await up(() => flexPage(k));
              // Snapshots and jobs share this shape: where they live, the family, the Atlas DTO.
              const results = prime(
                page.results.map((dto) => ({ ...k, family: 'FLEX', dto }) as unknown as T),
              );
              return { results, totalCount: page.totalCount, whole: false };
            },
          }),
        ),
      ),
      { cacheKeyFn: pageKey },
    );

  const loaders: Loaders = {
    service,
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
              const dto = await up(() =>
                atlas.clusters.getGroupCluster({ groupId: ref.projectId, clusterName: ref.clusterName }, o),
              );
              // A dedicated or M0 cluster has no backups this API serves.
              return isTenantBackupCluster(dto) ? { family: 'TENANT', projectId: ref.projectId, dto } : null;
            },
          }),
        ),
      ),
      { cacheKeyFn: clusterKey },
    ),

    snapshotPage: pageLoader(
      () => loaders.allSnapshots,
      (k) =>
        atlas.flexBackup.listSnapshots(
          { ...flexRef(k), pageNum: k.pageNum, itemsPerPage: k.itemsPerPage },
          o,
        ),
      primeSnapshots,
    ),

    allSnapshots: new DataLoader(
      eachKey((ref: ClusterRef) => listing(ref, service.listAllSnapshots(ref).then(primeSnapshots))),
      { cacheKeyFn: clusterKey },
    ),

    snapshot: new DataLoader(
      eachKey((k: ItemKey) => seenOrFetch('s', k, () => nullIfMissing(service.getSnapshot(k, k.id)))),
      { cacheKeyFn: itemKey },
    ),

    jobPage: pageLoader(
      () => loaders.allJobs,
      (k) =>
        atlas.flexBackup.listRestoreJobs(
          { ...flexRef(k), pageNum: k.pageNum, itemsPerPage: k.itemsPerPage },
          o,
        ),
      primeJobs,
    ),

    allJobs: new DataLoader(
      eachKey((ref: ClusterRef) => listing(ref, service.listAllJobs(ref).then(primeJobs))),
      { cacheKeyFn: clusterKey },
    ),

    job: new DataLoader(
      eachKey((k: ItemKey) => seenOrFetch('j', k, () => nullIfMissing(service.getJob(k, k.id)))),
      { cacheKeyFn: itemKey },
    ),
  };
  return loaders;
}

/**
 * The loaders of one request, made when a resolver first uses one: a subscription, an introspection
 * or a refused request never pays for nine DataLoaders and their abort signal. The laziness sits
 * here, one level below the context, because yoga merges the context factory's result into its
 * context with `Object.assign`, which reads (and so ran) a lazy getter on the context itself.
 */
export class LazyLoaders implements Loaders {
  #make: () => Loaders;
  #made: Loaders | undefined;

  constructor(make: () => Loaders) {
    this.#make = make;
  }

  get #loaders(): Loaders {
    return (this.#made ??= this.#make());
  }

  get service() {
    return this.#loaders.service;
  }
  projects() {
    return this.#loaders.projects();
  }
  get project() {
    return this.#loaders.project;
  }
  get projectClusters() {
    return this.#loaders.projectClusters;
  }
  get cluster() {
    return this.#loaders.cluster;
  }
  get snapshotPage() {
    return this.#loaders.snapshotPage;
  }
  get allSnapshots() {
    return this.#loaders.allSnapshots;
  }
  get snapshot() {
    return this.#loaders.snapshot;
  }
  get jobPage() {
    return this.#loaders.jobPage;
  }
  get allJobs() {
    return this.#loaders.allJobs;
  }
  get job() {
    return this.#loaders.job;
  }
}
