import type { AtlasHttp, AtlasOperation, CallOptions } from './atlas-http.js';
import type { components, paths } from './generated/openapi.js';
import { collectAll, pageQuery, type AtlasPage, type CollectOptions, type PageParams } from './paginate.js';
import { parseObject, parsePage } from './parse-body.js';

export type FlexSnapshot = components['schemas']['FlexBackupSnapshot20241113'];
/** A flex restore or download job; `instanceName` (not `clusterName`) is the source. */
export type FlexRestoreJob = components['schemas']['FlexBackupRestoreJob20241113'];

/** Body of `createRestoreJob`: the writable fields of `FlexBackupRestoreJobCreate20241113`. */
export interface FlexRestoreJobRequest {
  snapshotId: string;
  targetDeploymentItemName: string;
  /** @default the source project */
  targetProjectId?: string;
}

/** Body of `download` (`FlexBackupSnapshotDownloadCreate20241113`). */
export interface FlexDownloadRequest {
  snapshotId: string;
}

const MEDIA_TYPE = 'application/vnd.atlas.2024-11-13+json';
const BASE = '/api/atlas/v2/groups/{groupId}/flexClusters/{name}/backup';

const OPS = {
  listSnapshots: {
    id: 'listGroupFlexClusterBackupSnapshots',
    method: 'GET',
    path: `${BASE}/snapshots` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'snapshots',
  },
  getSnapshot: {
    id: 'getGroupFlexClusterBackupSnapshot',
    method: 'GET',
    path: `${BASE}/snapshots/{snapshotId}` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'snapshots',
  },
  listRestoreJobs: {
    id: 'listGroupFlexClusterBackupRestoreJobs',
    method: 'GET',
    path: `${BASE}/restoreJobs` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'jobs',
  },
  getRestoreJob: {
    id: 'getGroupFlexClusterBackupRestoreJob',
    method: 'GET',
    path: `${BASE}/restoreJobs/{restoreJobId}` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'jobs',
  },
  createRestoreJob: {
    id: 'createGroupFlexClusterBackupRestoreJob',
    method: 'POST',
    path: `${BASE}/restoreJobs` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    invalidatesJobs: true,
  },
  download: {
    id: 'downloadGroupFlexClusterBackup',
    method: 'POST',
    path: `${BASE}/download` satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    invalidatesJobs: true,
  },
} as const satisfies Record<string, AtlasOperation>;

interface FlexRef {
  groupId: string;
  /** The flex cluster's name (Flex paths say `name`, tenant ones `clusterName`). */
  name: string;
}

/** Backups of Flex clusters (`/flexClusters/{name}/backup/…`). */
export interface FlexBackupApi {
  listSnapshots(args: FlexRef & PageParams, options?: CallOptions): Promise<AtlasPage<FlexSnapshot>>;
  listAllSnapshots(args: FlexRef, options?: CallOptions & CollectOptions): Promise<FlexSnapshot[]>;
  getSnapshot(args: FlexRef & { snapshotId: string }, options?: CallOptions): Promise<FlexSnapshot>;
  listRestoreJobs(args: FlexRef & PageParams, options?: CallOptions): Promise<AtlasPage<FlexRestoreJob>>;
  listAllRestoreJobs(args: FlexRef, options?: CallOptions & CollectOptions): Promise<FlexRestoreJob[]>;
  getRestoreJob(args: FlexRef & { restoreJobId: string }, options?: CallOptions): Promise<FlexRestoreJob>;
  /** Starts a restore (automated restore only on Flex). */
  createRestoreJob(args: FlexRef & FlexRestoreJobRequest, options?: CallOptions): Promise<FlexRestoreJob>;
  /** Starts a download job; answers with a restore job whose `snapshotUrl` is valid for four hours. */
  download(args: FlexRef & FlexDownloadRequest, options?: CallOptions): Promise<FlexRestoreJob>;
}

export function createFlexBackupApi(http: AtlasHttp): FlexBackupApi {
  const api: FlexBackupApi = {
    listSnapshots: ({ groupId, name, ...page }, options) =>
      http.call(
        OPS.listSnapshots,
        { pathParams: { groupId, name }, query: pageQuery(page, OPS.listSnapshots.id), options },
        parsePage<FlexSnapshot>,
      ),
    listAllSnapshots: (ref, options = {}) =>
      collectAll((p) => api.listSnapshots({ ...ref, ...p }, options), options),
    getSnapshot: ({ groupId, name, snapshotId }, options) =>
      http.call(
        OPS.getSnapshot,
        { pathParams: { groupId, name, snapshotId }, options },
        parseObject<FlexSnapshot>,
      ),
    listRestoreJobs: ({ groupId, name, ...page }, options) =>
      http.call(
        OPS.listRestoreJobs,
        { pathParams: { groupId, name }, query: pageQuery(page, OPS.listRestoreJobs.id), options },
        parsePage<FlexRestoreJob>,
      ),
    listAllRestoreJobs: (ref, options = {}) =>
      collectAll((p) => api.listRestoreJobs({ ...ref, ...p }, options), options),
    getRestoreJob: ({ groupId, name, restoreJobId }, options) =>
      http.call(
        OPS.getRestoreJob,
        { pathParams: { groupId, name, restoreJobId }, options },
        parseObject<FlexRestoreJob>,
      ),
    createRestoreJob: ({ groupId, name, snapshotId, targetDeploymentItemName, targetProjectId }, options) =>
      http.call(
        OPS.createRestoreJob,
        {
          pathParams: { groupId, name },
          body: {
            snapshotId,
            targetDeploymentItemName,
            ...(targetProjectId !== undefined ? { targetProjectId } : {}),
          },
          options,
        },
        parseObject<FlexRestoreJob>,
      ),
    download: ({ groupId, name, snapshotId }, options) =>
      http.call(
        OPS.download,
        { pathParams: { groupId, name }, body: { snapshotId }, options },
        parseObject<FlexRestoreJob>,
      ),
  };
  return api;
}
