import type { AtlasClient, CallOptions } from '../atlas/index.js';
import { routeByFamily } from './backup-router.js';
import type { FamilyCache } from './family-cache.js';
import type { ClusterRef, Family, RestoreJobSource, SnapshotSource } from './model.js';

/**
 * Every backup call of the gateway, routed to the family that serves the cluster. Which endpoint
 * backs which call is written down here and nowhere else:
 *
 * | call            | TENANT (M2/M5, 2023-01-01)                         | FLEX (2024-11-13)                                |
 * | --------------- | -------------------------------------------------- | ------------------------------------------------ |
 * | listSnapshots   | GET …/clusters/{name}/backup/tenant/snapshots      | GET …/flexClusters/{name}/backup/snapshots       |
 * | getSnapshot     | GET …/backup/tenant/snapshots/{id}                 | GET …/backup/snapshots/{id}                      |
 * | listJobs        | GET …/backup/tenant/restores                       | GET …/backup/restoreJobs                         |
 * | getJob          | GET …/backup/tenant/restores/{id}                  | GET …/backup/restoreJobs/{id}                    |
 * | download        | POST …/backup/tenant/download (TenantRestore body) | POST …/backup/download ({snapshotId})            |
 * | restore         | POST …/backup/tenant/restore                       | POST …/backup/restoreJobs                        |
 */
export interface BackupService {
  listAllSnapshots(ref: ClusterRef): Promise<SnapshotSource[]>;
  getSnapshot(ref: ClusterRef, snapshotId: string): Promise<SnapshotSource>;
  listAllJobs(ref: ClusterRef): Promise<RestoreJobSource[]>;
  getJob(ref: ClusterRef, jobId: string): Promise<RestoreJobSource>;
  download(ref: ClusterRef, snapshotId: string): Promise<RestoreJobSource>;
  restore(
    ref: ClusterRef,
    snapshotId: string,
    target: { projectId: string; clusterName: string },
  ): Promise<RestoreJobSource>;
}

export interface BackupServiceDeps {
  atlas: AtlasClient;
  families: FamilyCache;
  /** Per-call options (the caller's token for pass-through, a request id, an abort signal). */
  callOptions?: CallOptions;
  /** Wraps each upstream call, e.g. a per-request concurrency limit. @default runs it directly */
  run?: <T>(call: () => Promise<T>) => Promise<T>;
}

export function createBackupService(deps: BackupServiceDeps): BackupService {
  const { atlas, families } = deps;
  const o = deps.callOptions ?? {};
  const up = deps.run ?? (<T>(call: () => Promise<T>) => call());
  const t = (r: ClusterRef) => ({ groupId: r.projectId, clusterName: r.clusterName });
  const f = (r: ClusterRef) => ({ groupId: r.projectId, name: r.clusterName });
  const snap = (ref: ClusterRef, family: Family) => (dto: SnapshotSource['dto']) => ({ ...ref, family, dto });
  const job = (ref: ClusterRef, family: Family) => (dto: RestoreJobSource['dto']) => ({
    ...ref,
    family,
    dto,
  });

  return {
    listAllSnapshots: (ref) =>
      routeByFamily(families, ref, {
        TENANT: async () =>
          (await up(() => atlas.tenantBackup.listAllSnapshots(t(ref), o))).map(snap(ref, 'TENANT')),
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
    listAllJobs: (ref) =>
      routeByFamily(families, ref, {
        TENANT: async () =>
          (await up(() => atlas.tenantBackup.listAllRestores(t(ref), o))).map(job(ref, 'TENANT')),
        FLEX: async () =>
          (await up(() => atlas.flexBackup.listAllRestoreJobs(f(ref), o))).map(job(ref, 'FLEX')),
      }),
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
    // POSTs go through routeByFamily too: a family-mismatch or 410 answer means Atlas created nothing,
    // so asking the other family is safe. Transport failures are not retried here (see job-requests).
    download: (ref, snapshotId) =>
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
    restore: (ref, snapshotId, target) =>
      routeByFamily(families, ref, {
        TENANT: async () =>
          job(
            ref,
            'TENANT',
          )(
            await up(() =>
              atlas.tenantBackup.restore(
                {
                  ...t(ref),
                  snapshotId,
                  targetDeploymentItemName: target.clusterName,
                  targetProjectId: target.projectId,
                },
                o,
              ),
            ),
          ),
        FLEX: async () =>
          job(
            ref,
            'FLEX',
          )(
            await up(() =>
              atlas.flexBackup.createRestoreJob(
                {
                  ...f(ref),
                  snapshotId,
                  targetDeploymentItemName: target.clusterName,
                  targetProjectId: target.projectId,
                },
                o,
              ),
            ),
          ),
      }),
  };
}
