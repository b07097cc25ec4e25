import type { BackupServices } from '../backup/backup-service.js';
import type { Clock } from '../time/clock.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { JobPollers } from './job-pollers.js';
import type { JobRequestDeps, JobRequestResult } from './job-requests.js';

/**
 * Process-wide state the mutations, the subscriptions and the download route share across requests
 * (the resolvers get it as `GatewayContext.jobs`).
 */
export interface JobsRuntime {
  /** Makes the backup service of a mutation or a poller (the only way to Atlas from here). */
  backup: BackupServices;
  clock: Clock;
  idempotency: IdempotencyStore;
  pollers: JobPollers;
  inflightDownloads: Map<string, Promise<JobRequestResult>>;
  /** The job requests' tunables (settle time, dedupe window), the same for every request. @default {} */
  requestOptions?: Pick<JobRequestDeps, 'postSettleMs' | 'restoreWindowMs'>;
}
