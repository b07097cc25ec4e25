import type { AtlasCluster } from '../atlas/clusters.js';
import type { FlexCluster } from '../atlas/flex-clusters.js';
import type { AtlasGroup } from '../atlas/projects.js';
import type { TenantRestoreJob, TenantSnapshot } from '../atlas/tenant-backup.js';
import type { FlexRestoreJob, FlexSnapshot } from '../atlas/flex-backup.js';

/** Which Atlas REST family serves a cluster's backups (the GraphQL enum's values). */
export type Family = 'TENANT' | 'FLEX';

/** A project (Atlas group) as `listGroups`/`getGroup` describe it; resolvers map the rest. */
export type ProjectSource = AtlasGroup;

/** A cluster as one family's REST API describes it, plus where it lives. Resolvers map the rest. */
export type ClusterSource =
  | { family: 'TENANT'; projectId: string; dto: AtlasCluster }
  | { family: 'FLEX'; projectId: string; dto: FlexCluster };

/** Where a snapshot or job lives: both families' DTOs omit the project and the cluster. */
export interface ClusterRef {
  projectId: string;
  clusterName: string;
}

/** A snapshot DTO (tenant and flex share the shape) with its cluster. */
export interface SnapshotSource extends ClusterRef {
  family: Family;
  dto: TenantSnapshot | FlexSnapshot;
}

/** A restore/download job DTO (tenant `clusterName` vs flex `instanceName`) with its cluster. */
export interface RestoreJobSource extends ClusterRef {
  family: Family;
  dto: TenantRestoreJob | FlexRestoreJob;
}

/** Which page of a cluster's list: Atlas's `pageNum` (from 1) and `itemsPerPage` (1..500). */
export interface PageRequest {
  pageNum: number;
  itemsPerPage: number;
}

/**
 * One page of a cluster's snapshots or jobs. `whole` says the results are the cluster's entire list
 * whatever page was asked for: tenant lists take no paging parameters upstream, so the caller slices.
 */
export interface BackupPage<T> {
  results: T[];
  /** Atlas's count; for a whole list, its length. */
  totalCount: number | undefined;
  whole: boolean;
}

/** One key string per cluster, for caches and loaders. */
export const clusterKey = (ref: ClusterRef): string => `${ref.projectId}/${ref.clusterName}`;
