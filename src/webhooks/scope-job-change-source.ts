import { watchJobsInScope, type ScopeWatcherDeps } from '../jobs/job-scope-watcher.js';
import type { RestoreJobSource } from '../backup/model.js';
import type { Logger } from 'pino';
import type { JobChangeSource } from './job-change-source.js';

/** The webhooks' share of the Atlas budget, and their name on the pollers (never a caller's). */
export const WEBHOOKS_CALLER_ID = 'webhooks';

/**
 * The job changes of a hook's scope from the jobs feed's scope watcher: its pollers are shared with
 * the `jobEvents` subscriptions and, through Redis, across replicas, so a hook costs no reads of its
 * own for clusters someone already watches. Reads with the gateway's own credentials.
 */
export function scopeJobChangeSource(deps: ScopeWatcherDeps, logger: Logger): JobChangeSource {
  return (scope, signal) => ({
    [Symbol.asyncIterator]: () => {
      const changes = watchJobsInScope(
        deps,
        { projectIds: scope.projectIds, clusterNames: scope.clusterNames, families: scope.families },
        { callerId: WEBHOOKS_CALLER_ID },
        {
          onDropped: (where, err) =>
            logger.warn(
              { ...where, error: (err as Error).message },
              'webhooks: Atlas refused a project or cluster of a hook scope for good; it is no longer watched',
            ),
        },
      );
      signal.addEventListener('abort', () => void changes.return?.(), { once: true });
      return {
        next: async (): Promise<IteratorResult<RestoreJobSource>> => {
          const r = await changes.next();
          return r.done ? { done: true, value: undefined } : { done: false, value: r.value.job };
        },
        return: async (): Promise<IteratorResult<RestoreJobSource>> => {
          await changes.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  });
}
