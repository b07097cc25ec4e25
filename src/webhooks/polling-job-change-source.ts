import { Repeater } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { BackupServices } from '../backup/backup-service.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import type { Clock } from '../time/clock.js';
import type { Timers } from '../time/timers.js';
import type { JobChangeSource } from './job-change-source.js';

export interface PollingJobChangeSourceOptions {
  backup: BackupServices;
  clock: Clock;
  timers: Timers;
  /** Time between two scans of a scope. @default 15000 */
  intervalMs?: number;
  logger: Logger;
}

/**
 * A job change source of its own (one scan of the scope per interval: the clusters of each project,
 * then each cluster's jobs of the last day), used when the gateway is given no shared one. Each
 * replica scans; the outbox's event ids make their findings one event. The first scan only learns
 * what exists, so jobs that ended before the start raise no event.
 */
export function pollingJobChangeSource(o: PollingJobChangeSourceOptions): JobChangeSource {
  const intervalMs = o.intervalMs ?? 15_000;
  return (scope, signal) =>
    new Repeater<RestoreJobSource>(async (push, stop) => {
      const service = o.backup({ use: 'poll' });
      let seen = new Map<string, string>();
      let first = true;
      let timer: unknown;
      const clusters = async (projectId: string): Promise<ClusterRef[]> => {
        if (scope.clusterNames) return scope.clusterNames.map((clusterName) => ({ projectId, clusterName }));
        const all = await service.listClusters(projectId);
        return all
          .filter((c) => !scope.families || scope.families.includes(c.family))
          .map((c) => ({ projectId, clusterName: c.dto.name ?? '' }));
      };
      const scan = async () => {
        const now = new Map<string, string>();
        for (const projectId of scope.projectIds) {
          for (const ref of await clusters(projectId)) {
            const jobs = await service.listRecentJobs(ref, {
              since: o.clock.now() - 86_400_000,
              maxJobs: 100,
            });
            for (const job of jobs) {
              const key = `${ref.projectId}/${ref.clusterName}/${job.dto.id ?? ''}`;
              const status = job.dto.status ?? '';
              now.set(key, status);
              if (!first && seen.get(key) !== status) await push(job);
            }
          }
        }
        // Only what the last scan saw is kept: memory follows the scope, not the gateway's age.
        seen = now;
        first = false;
      };
      const loop = async () => {
        timer = undefined;
        if (signal.aborted) return;
        try {
          await scan();
        } catch (err) {
          o.logger.warn(
            { error: (err as Error).message },
            'webhook job scan failed; next scan at the next interval',
          );
        }
        if (!signal.aborted) timer = o.timers.setTimeout(() => void loop(), intervalMs);
      };
      const end = () => stop();
      signal.addEventListener('abort', end, { once: true });
      void loop();
      await stop;
      signal.removeEventListener('abort', end);
      if (timer !== undefined) o.timers.clearTimeout(timer);
    });
}
