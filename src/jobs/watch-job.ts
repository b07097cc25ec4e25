import type { BackupServices } from '../backup/backup-service.js';
import type { ClusterRef } from '../backup/model.js';
import type { JobEvent, JobPollers } from './job-pollers.js';

export interface WatchJobDeps {
  pollers: JobPollers;
  backup: BackupServices;
}

export interface WatchJobRequest extends ClusterRef {
  jobId: string;
  /** Who watches; names the poller only for pass-through callers (see `jobWatchKey`). */
  callerId: string;
  /** The caller's own Atlas token (pass-through). @default the gateway's credentials */
  bearerToken?: string | undefined;
}

/**
 * The poller a watch joins. Pass-through callers read with their own token, so they share a poller
 * only with themselves: another caller's token might not see the job at all. Everyone else reads with
 * the gateway's credentials and shares one poller per job (across replicas too, through the channel).
 */
export function jobWatchKey(req: WatchJobRequest): string {
  return `${req.bearerToken ? `${req.callerId}|` : ''}${req.projectId}/${req.clusterName}/${req.jobId}`;
}

/**
 * A job's states for a subscription: the current one first, then each change, ending after COMPLETED
 * or FAILED (see `JobPollers.watch`). Arguments are assumed checked and access granted by the caller.
 */
export function watchJob(deps: WatchJobDeps, req: WatchJobRequest): AsyncIterableIterator<JobEvent> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  // Not the request's service: the poller outlives the request that started it.
  const service = deps.backup({ use: 'poll', bearerToken: req.bearerToken });
  return deps.pollers.watch(jobWatchKey(req), () => service.getJob(ref, req.jobId));
}
