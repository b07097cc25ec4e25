import type { RestoreJobSource } from '../backup/model.js';
import type { WebhookScope } from './webhook-hook.js';

/**
 * Where the webhooks learn of job changes: every state change of the jobs in `scope`, as a stream
 * that ends when `signal` aborts. The jobs feed (`src/jobs/`) provides the shared one; tests may pass
 * their own.
 */
export type JobChangeSource = (scope: WebhookScope, signal: AbortSignal) => AsyncIterable<RestoreJobSource>;
