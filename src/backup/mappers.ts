import type { AtlasCluster } from '../atlas/clusters.js';
import type { ClusterSource, Family, RestoreJobSource } from './model.js';

/** What the GraphQL Cluster type shows, read the same way from both families' cluster DTOs. */
export interface ClusterFields {
  id: string;
  name: string;
  instanceSize: string;
  /** As Atlas sent it; `readEnum` maps it (unknown values to UNKNOWN). */
  backingProviderRaw: string | null;
  region: string | null;
  /** As Atlas sent it (`stateName`). */
  stateRaw: string | null;
  mongoDBVersion: string | null;
  backupEnabled: boolean;
  createDate: string | null;
}

// The 2024-08-05 cluster schema is a discriminated union too deep to narrow usefully; this is the part
// of a TENANT region config the gateway reads.
interface RegionView {
  providerName?: string;
  backingProviderName?: string;
  regionName?: unknown;
  electableSpecs?: { instanceSize?: string };
}

function tenantRegion(dto: AtlasCluster): RegionView | undefined {
  const specs = (dto as { replicationSpecs?: { regionConfigs?: RegionView[] }[] }).replicationSpecs ?? [];
  return specs.flatMap((s) => s.regionConfigs ?? []).find((r) => r.providerName === 'TENANT');
}

/**
 * Whether a cluster of `listGroupClusters` has tenant backups: `providerName` TENANT with M2 or M5.
 * M0 is TENANT too but has no backups; dedicated tiers use the other backup API.
 */
export function isTenantBackupCluster(dto: AtlasCluster): boolean {
  const size = tenantRegion(dto)?.electableSpecs?.instanceSize;
  return size === 'M2' || size === 'M5';
}

const raw = (v: unknown): string | null =>
  v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);

export function clusterFields(source: ClusterSource): ClusterFields {
  if (source.family === 'FLEX') {
    const d = source.dto;
    return {
      id: d.id ?? '',
      name: d.name ?? '',
      instanceSize: 'FLEX',
      backingProviderRaw: raw(d.providerSettings?.backingProviderName),
      region: d.providerSettings?.regionName ?? null,
      stateRaw: raw(d.stateName),
      mongoDBVersion: d.mongoDBVersion ?? null,
      // Flex backups are always on; Atlas marks the field readOnly with default true.
      backupEnabled: d.backupSettings?.enabled ?? true,
      createDate: d.createDate ?? null,
    };
  }
  const d = source.dto;
  const region = tenantRegion(d);
  return {
    id: d.id ?? '',
    name: d.name ?? '',
    instanceSize: region?.electableSpecs?.instanceSize ?? 'M2',
    backingProviderRaw: raw(region?.backingProviderName),
    // The spec types regionName as an object (a oneOf of enums); Atlas sends the name as a string.
    region: typeof region?.regionName === 'string' ? region.regionName : null,
    stateRaw: raw(d.stateName),
    mongoDBVersion: d.mongoDBVersion ?? null,
    backupEnabled: d.backupEnabled ?? true,
    createDate: d.createDate ?? null,
  };
}

/** The source cluster of a job: tenant says `clusterName`, flex says `instanceName`. */
export function jobClusterName(job: RestoreJobSource): string {
  const dto = job.dto as { clusterName?: string; instanceName?: string };
  return dto.clusterName ?? dto.instanceName ?? job.clusterName;
}

/** Atlas's terminal statuses for jobs (the CLI's watchers stop on these). */
export function isTerminal(status: string | undefined): boolean {
  return status === 'COMPLETED' || status === 'FAILED';
}

/** The family label for logs and errors. */
export const familyLabel = (f: Family): string => (f === 'TENANT' ? 'tenant (M2/M5)' : 'Flex');
