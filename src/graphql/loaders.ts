import DataLoader from 'dataloader';
import type { BackupService } from '../backup/backup-service.js';
import {
  clusterKey,
  type BackupPage,
  type ClusterRef,
  type ClusterSource,
  type ProjectSource,
  type RestoreJobSource,
  type SnapshotSource,
} from '../backup/model.js';

/**
 * Counts of how the per-request loaders answered, across requests. Metrics read them as they are
 * (observability takes any object with these fields, so it imports nothing of the GraphQL layer).
 */
export class LoaderStats {
  /** GraphQL requests that made their loaders (a resolver read through them). */
  requests = 0;
  /** Items answered from a list the same request had read (no upstream call). */
  listHits = 0;
  /** Items read from Atlas one by one. */
  itemLoads = 0;
}

/** What the loaders need: the request's backup service, and where to count. */
export interface LoaderDeps {
  /**
   * This request's backup service: it carries the request's options (request id, abort signal,
   * caller's token) and concurrency limit (`backupPolicy`'s `read` use).
   */
  service: BackupService;
  /** Shared counters for metrics. @default a private one */
  stats?: LoaderStats;
}

export interface PageKey extends ClusterRef {
  pageNum: number;
  itemsPerPage: number;
}
export interface RecentKey extends ClusterRef {
  /** ISO-8601: jobs scheduled before it are not wanted. */
  since: string;
}
export interface ItemKey extends ClusterRef {
  id: string;
}

/**
 * The DataLoaders of one GraphQL request over its backup service: identical upstream reads happen
 * once, lists prime the item loaders, and items seen in a list are not read again. Which endpoint
 * backs a read, and the family fallback, are the service's; made new for every request by the
 * context factory.
 */
export interface Loaders {
  /** Every project, once per request. */
  projects(): Promise<ProjectSource[]>;
  project: DataLoader<string, ProjectSource | null>;
  /** The project's clusters with backups (tenant M2/M5 and Flex). */
  projectClusters: DataLoader<string, ClusterSource[]>;
  cluster: DataLoader<ClusterRef, ClusterSource | null, string>;
  /** One page of a cluster's snapshots; `whole` when the service answered the entire list. */
  snapshotPage: DataLoader<PageKey, BackupPage<SnapshotSource>, string>;
  allSnapshots: DataLoader<ClusterRef, SnapshotSource[], string>;
  snapshot: DataLoader<ItemKey, SnapshotSource | null, string>;
  jobPage: DataLoader<PageKey, BackupPage<RestoreJobSource>, string>;
  allJobs: DataLoader<ClusterRef, RestoreJobSource[], string>;
  /** The cluster's jobs scheduled since `since`, newest first, read from the recent end (bounded). */
  recentJobs: DataLoader<RecentKey, RestoreJobSource[], string>;
  job: DataLoader<ItemKey, RestoreJobSource | null, string>;
}

const pageKey = (k: PageKey) => `${clusterKey(k)}#${k.pageNum}x${k.itemsPerPage}`;
const itemKey = (k: ItemKey) => `${clusterKey(k)}#${k.id}`;
const refOf = (k: ClusterRef): ClusterRef => ({ projectId: k.projectId, clusterName: k.clusterName });
const pageOf = (k: PageKey) => ({ pageNum: k.pageNum, itemsPerPage: k.itemsPerPage });

// Atlas has no batch reads, so each key is its own call; DataLoader still dedupes keys and the
// service's limiter bounds how many run at once. A failed key yields its Error, the others their values.
function eachKey<K, V>(run: (key: K) => Promise<V>) {
  return async (keys: readonly K[]): Promise<(V | Error)[]> => {
    const settled = await Promise.allSettled(keys.map(run));
    return settled.map((s) => (s.status === 'fulfilled' ? s.value : toError(s.reason)));
  };
}
const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** The loaders of one request; every upstream read goes through `deps.service`. */
export function createLoaders(deps: LoaderDeps): Loaders {
  const { service } = deps;
  const stats = deps.stats ?? new LoaderStats();

  const primeCluster = (c: ClusterSource) => {
    loaders.cluster.prime({ projectId: c.projectId, clusterName: c.dto.name ?? '' }, c);
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

  let projectList: Promise<ProjectSource[]> | undefined;

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

  const loaders: Loaders = {
    projects: () =>
      (projectList ??= service.listProjects().then((groups) => {
        for (const g of groups) if (g.id) loaders.project.prime(g.id, g);
        return groups;
      })),

    project: new DataLoader(eachKey((id: string) => service.getProject(id))),

    projectClusters: new DataLoader(
      eachKey(async (projectId: string) => {
        const clusters = await service.listClusters(projectId);
        clusters.forEach(primeCluster);
        return clusters;
      }),
    ),

    cluster: new DataLoader(
      eachKey((ref: ClusterRef) => service.getCluster(refOf(ref))),
      { cacheKeyFn: clusterKey },
    ),

    // A page whose family takes no paging is the whole list: read through `allSnapshots`, so the page
    // and the full list of one cluster share one upstream call.
    snapshotPage: new DataLoader(
      eachKey((k: PageKey) =>
        listing(
          k,
          service
            .listSnapshotPage(refOf(k), pageOf(k), { readWhole: () => loaders.allSnapshots.load(refOf(k)) })
            .then((page) => ({ ...page, results: primeSnapshots(page.results) })),
        ),
      ),
      { cacheKeyFn: pageKey },
    ),

    allSnapshots: new DataLoader(
      eachKey((ref: ClusterRef) => listing(ref, service.listAllSnapshots(refOf(ref)).then(primeSnapshots))),
      { cacheKeyFn: clusterKey },
    ),

    snapshot: new DataLoader(
      eachKey((k: ItemKey) => seenOrFetch('s', k, () => service.findSnapshot(refOf(k), k.id))),
      { cacheKeyFn: itemKey },
    ),

    jobPage: new DataLoader(
      eachKey((k: PageKey) =>
        listing(
          k,
          service
            .listJobPage(refOf(k), pageOf(k), { readWhole: () => loaders.allJobs.load(refOf(k)) })
            .then((page) => ({ ...page, results: primeJobs(page.results) })),
        ),
      ),
      { cacheKeyFn: pageKey },
    ),

    allJobs: new DataLoader(
      eachKey((ref: ClusterRef) => listing(ref, service.listAllJobs(refOf(ref)).then(primeJobs))),
      { cacheKeyFn: clusterKey },
    ),

    recentJobs: new DataLoader(
      eachKey((k: RecentKey) =>
        listing(k, service.listRecentJobs(refOf(k), { since: k.since }).then(primeJobs)),
      ),
      { cacheKeyFn: (k: RecentKey) => `${clusterKey(k)}#${k.since}` },
    ),

    job: new DataLoader(
      eachKey((k: ItemKey) => seenOrFetch('j', k, () => service.findJob(refOf(k), k.id))),
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
  get recentJobs() {
    return this.#loaders.recentJobs;
  }
  get job() {
    return this.#loaders.job;
  }
}
