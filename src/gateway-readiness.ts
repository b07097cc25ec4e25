import { AtlasApiError, type AtlasClient } from './atlas/index.js';
import type { SharedRedis } from './replicas/redis.js';
import type { Clock } from './time/clock.js';

/** Options of {@link createReadinessCheck}. */
export interface ReadinessOptions {
  atlas: AtlasClient;
  clock: Clock;
  /** When set, the replica is not ready while Redis is away. @default none */
  redis?: SharedRedis | undefined;
  /** Atlas is asked at most this often; probes in between get the last answer. @default 5000 */
  intervalMs?: number;
  /**
   * The gateway holds no Atlas credentials of its own (pass-through only): Atlas answering 401 to a
   * credential-less call is then as ready as it gets. @default false
   */
  passThroughOnly?: boolean;
}

/**
 * The `/readyz` check: Atlas reachable and accepting the gateway's credentials (one cheap
 * `listGroups` page), and Redis up when configured.
 */
export function createReadinessCheck(options: ReadinessOptions): () => Promise<boolean> {
  const { atlas, clock, redis } = options;
  const intervalMs = options.intervalMs ?? 5000;
  let lastCheck: { at: number; ok: boolean } | undefined;
  let checking: Promise<boolean> | undefined;
  return async () => {
    // With Redis configured but away, this replica works but its fleet guarantees do not hold.
    if (redis && !redis.ready()) return false;
    if (lastCheck && clock.now() - lastCheck.at < intervalMs) return lastCheck.ok;
    // Single flight: a burst of probes makes one upstream call.
    checking ??= atlas.projects
      .listGroups({ itemsPerPage: 1, includeCount: false })
      .then(
        () => true,
        (err: unknown) => !!options.passThroughOnly && err instanceof AtlasApiError && err.status === 401,
      )
      .then((ok) => {
        lastCheck = { at: clock.now(), ok };
        checking = undefined;
        return ok;
      });
    return checking;
  };
}
