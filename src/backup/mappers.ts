import type { AtlasCluster } from '../atlas/clusters.js';
import type { FlexCluster } from '../atlas/flex-clusters.js';
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
  electableSpecs?: { instanceSize?: string; effectiveInstanceSize?: string };
}

function tenantRegion(dto: AtlasCluster): RegionView | undefined {
  const specs = (dto as { replicationSpecs?: { regionConfigs?: RegionView[] }[] }).replicationSpecs ?? [];
  return specs.flatMap((s) => s.regionConfigs ?? []).find((r) => r.providerName === 'TENANT');
}

/**
 * Whether an entry of `listGroupClusters`/`getGroupCluster` is a Flex cluster. Until the tenant
 * sunset (2026-01-22) Atlas listed Flex clusters there too, as TENANT with `instanceSize` M2/M5 (the
 * size they were created as or migrated from) and `effectiveInstanceSize: "FLEX"`, "the true tenant
 * instance size" (spec: `TenantHardwareSpec20240805`). Their backups are on the Flex routes only.
 */
export function isFlexInClusterApi(dto: AtlasCluster): boolean {
  return tenantRegion(dto)?.electableSpecs?.effectiveInstanceSize === 'FLEX';
}

/**
 * Whether a cluster of `listGroupClusters` has tenant backups: `providerName` TENANT with M2 or M5,
 * and not a Flex cluster shown that way (`isFlexInClusterApi`). M0 is TENANT too but has no backups;
 * dedicated tiers use the other backup API.
 */
export function isTenantBackupCluster(dto: AtlasCluster): boolean {
  if (isFlexInClusterApi(dto)) return false;
  const size = tenantRegion(dto)?.electableSpecs?.instanceSize;
  return size === 'M2' || size === 'M5';
}

/**
 * A Flex cluster the clusters API described (`isFlexInClusterApi`), as the Flex API describes it:
 * the fields `clusterFields` reads, so it shows the same whichever API named it.
 */
export function flexFromClusterApi(dto: AtlasCluster): FlexCluster {
  const region = tenantRegion(dto);
  const backing = region?.backingProviderName;
  return {
    ...(dto.id !== undefined ? { id: dto.id } : {}),
    ...(dto.name !== undefined ? { name: dto.name } : {}),
    ...(dto.groupId !== undefined ? { groupId: dto.groupId } : {}),
    ...(dto.createDate !== undefined ? { createDate: dto.createDate } : {}),
    ...(dto.mongoDBVersion !== undefined ? { mongoDBVersion: dto.mongoDBVersion } : {}),
    ...(dto.stateName !== undefined ? { stateName: dto.stateName } : {}),
    // Required by the Flex schema, which allows only these values (a Flex cluster is one replica set
    // on LTS releases); the gateway reads none of them.
    clusterType: 'REPLICASET',
    versionReleaseSystem: 'LTS',
    terminationProtectionEnabled: dto.terminationProtectionEnabled ?? false,
    backupSettings: { enabled: dto.backupEnabled ?? true },
    providerSettings: {
      providerName: 'FLEX',
      ...(backing !== undefined ? { backingProviderName: backing as 'AWS' | 'AZURE' | 'GCP' } : {}),
      ...(typeof region?.regionName === 'string' ? { regionName: region.regionName } : {}),
    },
  };
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
