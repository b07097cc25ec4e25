import type { AtlasHttp, AtlasOperation, CallOptions } from './atlas-http.js';
import type { components, paths } from './generated/openapi.js';
import { collectAll, pageQuery, type AtlasPage, type CollectOptions, type PageParams } from './paginate.js';
import { parseObject, parsePage } from './parse-body.js';

/** A snapshot of an M2/M5 (tenant) cluster. */
export type TenantSnapshot = components['schemas']['BackupTenantSnapshot'];
/** A tenant restore or download job (`TenantRestore`); `clusterName` is the source cluster. */
export type TenantRestoreJob = components['schemas']['TenantRestore'];

/** Body of a tenant restore: the writable fields of `TenantRestore`. */
export interface TenantRestoreRequest {
  snapshotId: string;
  /** Cluster to restore into. */
  targetDeploymentItemName: string;
  /** @default the source project */
  targetProjectId?: string;
}

/** Body of a tenant download. */
export interface TenantDownloadRequest {
  snapshotId: string;
  /**
   * The spec reuses the full `TenantRestore` body for downloads, so this field is required upstream
   * although nothing is restored.
   * @default the source cluster's name
   */
  targetDeploymentItemName?: string;
}

export interface TenantBackupOptions {
  /**
   * Use the deprecated v1.0 routes (`/api/atlas/v1.0/…/backup/tenant/…`, `Accept: application/json`,
   * API keys only) instead of v2, whose tenant endpoints passed their sunset (2026-01-22).
   * @default false
   */
  legacyV1?: boolean;
}

type TenantOp = 'listSnapshots' | 'getSnapshot' | 'listRestores' | 'getRestore' | 'download' | 'restore';

const V2_MEDIA_TYPE = 'application/vnd.atlas.2023-01-01+json';
const V2 = '/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/tenant';
const V2_OPS = {
  listSnapshots: {
    id: 'listGroupClusterBackupTenantSnapshots',
    method: 'GET',
    path: `${V2}/snapshots` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    readKind: 'snapshots',
  },
  getSnapshot: {
    id: 'getGroupClusterBackupTenantSnapshot',
    method: 'GET',
    path: `${V2}/snapshots/{snapshotId}` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    readKind: 'snapshots',
  },
  listRestores: {
    id: 'listGroupClusterBackupTenantRestores',
    method: 'GET',
    path: `${V2}/restores` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    readKind: 'jobs',
  },
  getRestore: {
    id: 'getGroupClusterBackupTenantRestore',
    method: 'GET',
    path: `${V2}/restores/{restoreId}` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    readKind: 'jobs',
  },
  download: {
    id: 'downloadGroupClusterBackupTenant',
    method: 'POST',
    path: `${V2}/download` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    invalidatesJobs: true,
  },
  restore: {
    id: 'createGroupClusterBackupTenantRestore',
    method: 'POST',
    path: `${V2}/restore` satisfies keyof paths,
    mediaType: V2_MEDIA_TYPE,
    invalidatesJobs: true,
  },
} as const satisfies Record<TenantOp, AtlasOperation>;

/** Same paths under v1.0; v1.0 predates versioned media types. Ids get a `V1` suffix in stats and errors. */
const V1_OPS = Object.fromEntries(
  Object.entries(V2_OPS).map(([k, op]) => [
    k,
    {
      id: `${op.id}V1`,
      method: op.method,
      path: op.path.replace('/api/atlas/v2/', '/api/atlas/v1.0/'),
      mediaType: 'application/json',
      digestOnly: true,
      ...('readKind' in op ? { readKind: op.readKind } : {}),
      ...('invalidatesJobs' in op ? { invalidatesJobs: op.invalidatesJobs } : {}),
    } satisfies AtlasOperation,
  ]),
) as Record<TenantOp, AtlasOperation>;

interface ClusterRef {
  groupId: string;
  clusterName: string;
}

/**
 * Backups of M2/M5 clusters (`…/backup/tenant/…`). Tenant names: path `clusterName`, restore via
 * `POST …/restore` (singular) but read under `…/restores`.
 */
export interface TenantBackupApi {
  /**
   * One page. v2 declares no pagination parameters for tenant lists, so none are sent there and
   * Atlas's default page comes back; `params` apply to v1.0 only, which documented them.
   */
  listSnapshots(args: ClusterRef & PageParams, options?: CallOptions): Promise<AtlasPage<TenantSnapshot>>;
  /** All snapshots: v1.0 walks the pages; v2 can only make the one call (see `listSnapshots`). */
  listAllSnapshots(args: ClusterRef, options?: CallOptions & CollectOptions): Promise<TenantSnapshot[]>;
  getSnapshot(args: ClusterRef & { snapshotId: string }, options?: CallOptions): Promise<TenantSnapshot>;
  /** One page; the same pagination caveat as `listSnapshots`. */
  listRestores(args: ClusterRef & PageParams, options?: CallOptions): Promise<AtlasPage<TenantRestoreJob>>;
  listAllRestores(args: ClusterRef, options?: CallOptions & CollectOptions): Promise<TenantRestoreJob[]>;
  getRestore(args: ClusterRef & { restoreId: string }, options?: CallOptions): Promise<TenantRestoreJob>;
  /** Starts a download job; its `snapshotUrl` stays valid for four hours. */
  download(args: ClusterRef & TenantDownloadRequest, options?: CallOptions): Promise<TenantRestoreJob>;
  /** Starts a restore into `targetDeploymentItemName`. */
  restore(args: ClusterRef & TenantRestoreRequest, options?: CallOptions): Promise<TenantRestoreJob>;
}

/**
 * All of a v2 tenant list. Its operations declare no paging parameters, yet Atlas answers the
 * paginated envelope (100 items, `totalCount`, a `next` link), so the first call asks for nothing and
 * later ones follow the `next` link Atlas itself gave, until `totalCount` is reached.
 */
async function followNext<T>(
  fetchPage: (query: Record<string, string>) => Promise<AtlasPage<T>>,
  maxPages = 1000,
): Promise<T[]> {
  let page = await fetchPage({});
  const out = [...page.results];
  for (let n = 1; n < maxPages; n++) {
    const next = page.links.find((l) => l.rel === 'next')?.href;
    const done = page.totalCount !== undefined && out.length >= page.totalCount;
    if (!next || done || page.results.length === 0) break;
    page = await fetchPage(Object.fromEntries(new URL(next).searchParams));
    out.push(...page.results);
  }
  return out;
}

export function createTenantBackupApi(http: AtlasHttp, config: TenantBackupOptions = {}): TenantBackupApi {
  const legacy = config.legacyV1 ?? false;
  const OPS = legacy ? V1_OPS : V2_OPS;
  const listQuery = (page: PageParams, op: AtlasOperation): Record<string, string> =>
    legacy ? pageQuery(page, op.id) : {};

  const api: TenantBackupApi = {
    listSnapshots: ({ groupId, clusterName, ...page }, options) =>
      http.call(
        OPS.listSnapshots,
        { pathParams: { groupId, clusterName }, query: listQuery(page, OPS.listSnapshots), options },
        parsePage<TenantSnapshot>,
      ),
    listAllSnapshots: async (ref, options = {}) =>
      legacy
        ? collectAll((p) => api.listSnapshots({ ...ref, ...p }, options), options)
        : followNext((query) =>
            http.call(
              OPS.listSnapshots,
              { pathParams: { ...ref }, query, options },
              parsePage<TenantSnapshot>,
            ),
          ),
    getSnapshot: ({ groupId, clusterName, snapshotId }, options) =>
      http.call(
        OPS.getSnapshot,
        { pathParams: { groupId, clusterName, snapshotId }, options },
        parseObject<TenantSnapshot>,
      ),
    listRestores: ({ groupId, clusterName, ...page }, options) =>
      http.call(
        OPS.listRestores,
        { pathParams: { groupId, clusterName }, query: listQuery(page, OPS.listRestores), options },
        parsePage<TenantRestoreJob>,
      ),
    listAllRestores: async (ref, options = {}) =>
      legacy
        ? collectAll((p) => api.listRestores({ ...ref, ...p }, options), options)
        : followNext((query) =>
            http.call(
              OPS.listRestores,
              { pathParams: { ...ref }, query, options },
              parsePage<TenantRestoreJob>,
            ),
          ),
    getRestore: ({ groupId, clusterName, restoreId }, options) =>
      http.call(
        OPS.getRestore,
        { pathParams: { groupId, clusterName, restoreId }, options },
        parseObject<TenantRestoreJob>,
      ),
    download: ({ groupId, clusterName, snapshotId, targetDeploymentItemName }, options) =>
      http.call(
        OPS.download,
        {
          pathParams: { groupId, clusterName },
          body: { snapshotId, targetDeploymentItemName: targetDeploymentItemName ?? clusterName },
          options,
        },
        parseObject<TenantRestoreJob>,
      ),
    restore: ({ groupId, clusterName, snapshotId, targetDeploymentItemName, targetProjectId }, options) =>
      http.call(
        OPS.restore,
        {
          pathParams: { groupId, clusterName },
          body: {
            snapshotId,
            targetDeploymentItemName,
            ...(targetProjectId !== undefined ? { targetProjectId } : {}),
          },
          options,
        },
        parseObject<TenantRestoreJob>,
      ),
  };
  return api;
}
