import { isTerminal } from '../backup/mappers.js';
import type { ClusterRef, SnapshotSource } from '../backup/model.js';
import type { PollEvent, PollKind } from './job-pollers.js';
import { pollerServices, readerKey, type PollerCredentials, type WatchJobDeps } from './watch-job.js';

/** Snapshots (`snapshotStatus`): they end at COMPLETED or FAILED, as jobs do. */
export const SNAPSHOT_KIND: PollKind<SnapshotSource> = {
  name: 'snapshot:',
  operation: 'getSnapshot',
  // What a watcher can see change; the id and links never cause an event.
  signature: (s) =>
    JSON.stringify([s.dto.status, s.dto.startTime, s.dto.finishTime, s.dto.expiration, s.dto.mongoDBVersion]),
  isFinal: (s) => isTerminal(s.dto.status),
};

export interface WatchSnapshotRequest extends ClusterRef, PollerCredentials {
  snapshotId: string;
}

/** The poller a snapshot watch joins: one per snapshot, per caller only for pass-through callers. */
export const snapshotWatchKey = (req: WatchSnapshotRequest): string =>
  `${readerKey(req)}${req.projectId}/${req.clusterName}/${req.snapshotId}`;

/**
 * A snapshot's states for a subscription (the Atlas CLI's `backups snapshots watch`): the current one
 * first, then each change, ending after COMPLETED or FAILED. The same pollers, leases and budget rule
 * as `watchJob`; arguments are assumed checked and access granted by the caller.
 */
export function watchSnapshot(
  deps: WatchJobDeps,
  req: WatchSnapshotRequest,
): AsyncIterableIterator<PollEvent<SnapshotSource>> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const service = pollerServices(deps.backup, req);
  return deps.pollers.watchKind(SNAPSHOT_KIND, snapshotWatchKey(req), () =>
    service().getSnapshot(ref, req.snapshotId),
  );
}
