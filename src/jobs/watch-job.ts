import type { BackupService, BackupServices } from '../backup/backup-service.js';
import type { ClusterRef } from '../backup/model.js';
import { POLLERS_SPENDER } from '../replicas/atlas-budget.js';
import type { JobEvent, JobPollers } from './job-pollers.js';

export interface WatchJobDeps {
  pollers: JobPollers;
  backup: BackupServices;
}

export interface WatchJobRequest extends ClusterRef, PollerCredentials {
  jobId: string;
}

/**
 * The poller a watch joins. Pass-through callers read with their own token, so they share a poller
 * only with themselves: another caller's token might not see the job at all. Everyone else reads with
 * the gateway's credentials and shares one poller per job (across replicas too, through the channel).
 */
export function jobWatchKey(req: WatchJobRequest): string {
  return `${readerKey(req)}${req.projectId}/${req.clusterName}/${req.jobId}`;
}

/** The part of a poller's key that says whose token reads (pass-through callers only; see `jobWatchKey`). */
export const readerKey = (who: PollerCredentials): string => (who.bearerToken ? `${who.callerId}|` : '');

/**
 * A job's states for a subscription: the current one first, then each change, ending after COMPLETED
 * or FAILED (see `JobPollers.watch`). Arguments are assumed checked and access granted by the caller.
 *
 * The Atlas budget: the read that starts a poller (the one check a subscription to a made-up job
 * costs) spends the subscriber's own share; the poller's later reads, made for every subscriber of
 * the job at once, spend the pollers' shared share (`POLLERS_SPENDER`). A watch that joins a running
 * poller reads nothing.
 */
export function watchJob(deps: WatchJobDeps, req: WatchJobRequest): AsyncIterableIterator<JobEvent> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  const service = pollerServices(deps.backup, req);
  return deps.pollers.watch(jobWatchKey(req), () => service().getJob(ref, req.jobId));
}

/** Who a poller reads for: the subscriber that starts it, and whose token (pass-through) it uses. */
export interface PollerCredentials {
  callerId: string;
  /** The caller's own Atlas token (pass-through). @default the gateway's credentials */
  bearerToken?: string | undefined;
}

/**
 * The backup service of each read of one poller, by the budget rule every poller follows (see
 * `watchJob`): the first read spends the subscriber's share (`callerId`), every later one the
 * pollers' shared share (`POLLERS_SPENDER`). Call it once per read.
 */
export function pollerServices(backup: BackupServices, who: PollerCredentials): () => BackupService {
  // Not a request's service: the poller outlives the request that started it.
  const first = backup({ use: 'poll', bearerToken: who.bearerToken, spender: who.callerId });
  let later: BackupService | undefined;
  let reads = 0;
  return () => {
    reads += 1;
    return reads === 1
      ? first
      : (later ??= backup({ use: 'poll', bearerToken: who.bearerToken, spender: POLLERS_SPENDER }));
  };
}
