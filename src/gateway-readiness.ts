import { AtlasApiError, AtlasAuthError, AtlasNetworkError, type AtlasClient } from './atlas/index.js';
import type { SharedRedis } from './replicas/redis.js';
import type { Clock } from './time/clock.js';

/** Options of {@link createReadinessCheck}. */
export interface ReadinessOptions {
  atlas: AtlasClient;
  clock: Clock;
  /** When set, the replica is not ready while Redis is away. @default none */
  redis?: Pick<SharedRedis, 'ready'> | undefined;
  /** Atlas is asked at most this often; probes in between get the last answer. @default 5000 */
  intervalMs?: number;
  /**
   * The gateway holds no Atlas credentials of its own (pass-through only): Atlas answering 401 to a
   * credential-less call is then as ready as it gets, and there is no `credentials` check. @default false
   */
  passThroughOnly?: boolean;
}

/** One check of `/readyz`: passed, or why not (for the operator reading the probe's body). */
export type ReadinessCheck = { ok: true } | { ok: false; reason: string };

/** What `/readyz` answers: the verdict and every check that made it. */
export interface Readiness {
  status: 'ready' | 'not ready';
  checks: {
    /** Atlas answered the check at all (an HTTP answer that is not a 5xx or 429). */
    atlas: ReadinessCheck;
    /** Atlas accepted the gateway's own credentials; absent when it holds none (pass-through only). */
    credentials?: ReadinessCheck;
    /** The shared Redis is connected; absent when none is configured. */
    redis?: ReadinessCheck;
    /** Present (and failed) once a graceful shutdown started: the load balancer should drain. */
    shutdown?: ReadinessCheck;
  };
}

/** The readiness while shutting down: whatever else holds, not ready, and why. */
export function draining(readiness: Readiness): Readiness {
  return {
    status: 'not ready',
    checks: { ...readiness.checks, shutdown: { ok: false, reason: 'the gateway is shutting down' } },
  };
}

type UpstreamChecks = Pick<Readiness['checks'], 'atlas' | 'credentials'>;

const OK: ReadinessCheck = { ok: true };
const NOT_CHECKED: ReadinessCheck = { ok: false, reason: 'not checked: Atlas did not answer' };

/**
 * The `/readyz` check: Atlas reachable and accepting the gateway's credentials (one cheap
 * `listGroups` page), and Redis up when configured. Each check says why it failed, so a 503 in a
 * probe log names its cause.
 */
export function createReadinessCheck(options: ReadinessOptions): () => Promise<Readiness> {
  const { atlas, clock, redis } = options;
  const intervalMs = options.intervalMs ?? 5000;
  const passThroughOnly = options.passThroughOnly ?? false;
  let lastCheck: { at: number; checks: UpstreamChecks } | undefined;
  let checking: Promise<UpstreamChecks> | undefined;
  const upstream = (): Promise<UpstreamChecks> => {
    if (lastCheck && clock.now() - lastCheck.at < intervalMs) return Promise.resolve(lastCheck.checks);
    // Single flight: a burst of probes makes one upstream call.
    checking ??= atlas.projects
      .listGroups({ itemsPerPage: 1, includeCount: false })
      .then(
        () => (passThroughOnly ? { atlas: OK } : { atlas: OK, credentials: OK }),
        (err: unknown) => upstreamFailure(err, passThroughOnly),
      )
      .then((checks) => {
        lastCheck = { at: clock.now(), checks };
        checking = undefined;
        return checks;
      });
    return checking;
  };
  return async () => {
    const checks: Readiness['checks'] = { ...(await upstream()) };
    // With Redis configured but away, this replica works but its fleet guarantees do not hold.
    if (redis) checks.redis = redis.ready() ? OK : { ok: false, reason: 'Redis is not connected' };
    const ready = Object.values(checks).every((c) => c.ok);
    return { status: ready ? 'ready' : 'not ready', checks };
  };
}

function upstreamFailure(err: unknown, passThroughOnly: boolean): UpstreamChecks {
  const refused = (reason: string): UpstreamChecks => ({
    atlas: OK,
    credentials: { ok: false, reason },
  });
  const away = (reason: string): UpstreamChecks => ({
    atlas: { ok: false, reason },
    ...(passThroughOnly ? {} : { credentials: NOT_CHECKED }),
  });
  if (err instanceof AtlasApiError) {
    if (err.status === 401 || err.status === 403) {
      // A credential-less call refused is what a pass-through gateway expects: Atlas is there.
      return passThroughOnly ? { atlas: OK } : refused(`Atlas answered ${err.status} ${err.errorCode}`);
    }
    return away(`Atlas answered ${err.status} ${err.errorCode}`);
  }
  if (err instanceof AtlasAuthError) {
    const answer = `Atlas's token endpoint answered ${err.status ?? 'nothing'} ${err.authError ?? ''}`.trim();
    // 4xx other than 429: the service account itself was refused; otherwise the endpoint is unwell.
    return err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 429
      ? refused(answer)
      : away(answer);
  }
  if (err instanceof AtlasNetworkError) return away(`Atlas unreachable (${err.code}: ${err.message})`);
  return away(`Atlas check failed: ${err instanceof Error ? err.message : String(err)}`);
}

/** `/readyz`'s answer: 200 when ready, else 503; the checks as JSON either way. */
export function readinessResponse(readiness: Readiness, ResponseClass: typeof Response = Response): Response {
  return new ResponseClass(JSON.stringify(readiness), {
    status: readiness.status === 'ready' ? 200 : 503,
    // A probe's answer is about now: no cache in between may keep an old one.
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  });
}
