import type { BackupService, BackupServices } from '../backup/backup-service.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import { POLLERS_SPENDER } from '../replicas/atlas-budget.js';
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
 *
 * The Atlas budget: the read that starts a poller (the one check a subscription to a made-up job
 * costs) spends the subscriber's own share; the poller's later reads, made for every subscriber of
 * the job at once, spend the pollers' shared share (`POLLERS_SPENDER`). A watch that joins a running
 * poller reads nothing.
 */
export function watchJob(deps: WatchJobDeps, req: WatchJobRequest): AsyncIterableIterator<JobEvent> {
  const ref = { projectId: req.projectId, clusterName: req.clusterName };
  // Not the request's service: the poller outlives the request that started it.
  const first = deps.backup({ use: 'poll', bearerToken: req.bearerToken, spender: req.callerId });
  let later: BackupService | undefined;
  let reads = 0;
  return deps.pollers.watch(
    jobWatchKey(req),
    () => {
      reads += 1;
      const service =
        reads === 1
          ? first
          : (later ??= deps.backup({ use: 'poll', bearerToken: req.bearerToken, spender: POLLERS_SPENDER }));
      return service.getJob(ref, req.jobId);
    },
    req.callerId,
  );
}

/**
 * Hands a job state a mutation just read from Atlas (the POST's answer, or the job it reused) to the
 * poller `req` would join, so a subscription started right after the mutation gets it as its first
 * event without reading it again (`JobPollers.prime`).
 */
export function primeWatch(pollers: JobPollers, req: WatchJobRequest, job: RestoreJobSource): void {
  pollers.prime(jobWatchKey(req), job, req.callerId);
}
