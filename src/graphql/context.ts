import type { Caller } from '../callers/caller.js';
import type { JobsRuntime } from '../jobs/jobs-runtime.js';
import type { Loaders } from './loaders.js';
import type { UnknownValues } from '../backup/unknown-values.js';
import type { Webhooks } from '../webhooks/webhooks.js';

export type { JobsRuntime } from '../jobs/jobs-runtime.js';

/** What every resolver gets: who calls, this request's loaders, and the shared job machinery. */
export interface GatewayContext {
  /** Sent upstream as `x-request-id`, answered to the client, and in every log line of the request. */
  requestId: string;
  caller: Caller;
  /**
   * A pass-through caller whose token Atlas has not accepted yet: rate limits key it by client
   * address (`rateLimitKey`), so made-up tokens are no fresh budget each. @default false
   */
  unverifiedToken?: boolean;
  loaders: Loaders;
  jobs: JobsRuntime;
  /** Where enum values Atlas sent that the gateway does not know are noted (logged once, counted). @default not noted */
  unknownValues?: UnknownValues | undefined;
  /**
   * The request's execution deadline, once its operation runs (`deadlineSignal`): mutations answer by
   * it. @default none (no execution timeout)
   */
  deadline?: () => AbortSignal | undefined;
  /**
   * How download links are answered: whether `snapshotUrl` is shown at all, and the origin
   * `downloadUrl` is built on. @default snapshotUrl shown, no downloadUrl
   */
  downloads?: { exposeSnapshotUrl: boolean; baseUrl: string };
  /** The configured webhooks (`webhookDeliveries`). @default none configured */
  webhooks?: Webhooks | undefined;
}
