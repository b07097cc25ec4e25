import { ATLAS_BUDGET_DEFAULTS } from '../replicas/atlas-budget.js';
import { UPSTREAM_ADMISSION_DEFAULTS } from '../replicas/upstream-admission.js';
import { envVar, integer, invalid } from './env-var.js';
import type { UpstreamConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

export const upstreamEnv = {
  GATEWAY_FAMILY_TTL_MS: envVar(
    {
      group: 'upstream',
      description: 'How long a learned cluster family (tenant or Flex) is trusted before it is asked again.',
      example: '60000',
      default: 600_000,
    },
    integer(0, 86_400_000),
  ),
  GATEWAY_UPSTREAM_CONCURRENCY: envVar(
    {
      group: 'upstream',
      description: 'Most Atlas calls one GraphQL request runs at once.',
      example: '4',
      default: 8,
    },
    integer(1, 256),
  ),
  GATEWAY_UPSTREAM_MAX_QUEUED: envVar(
    {
      group: 'upstream',
      description:
        "Atlas calls of the whole process that may wait for one of the pool's 32 sockets; one more is shed at once with `OVERLOADED` (HTTP 503, retryable, `Retry-After`) instead of queueing.",
      example: '64',
      default: UPSTREAM_ADMISSION_DEFAULTS.maxQueued,
    },
    integer(0, 1_000_000),
  ),
  GATEWAY_POLL_INTERVAL_MS: envVar(
    {
      group: 'upstream',
      description: 'Time between two Atlas reads of a job that a subscription watches.',
      example: '2000',
      default: 4000,
    },
    integer(100, 3_600_000),
  ),
  GATEWAY_ATLAS_BUDGET: envVar(
    {
      group: 'upstream',
      description:
        "Atlas requests per project per budget window, all callers (and replicas sharing Redis) together; keep it below Atlas's own limit. 0 turns the budget off.",
      example: '60',
      default: ATLAS_BUDGET_DEFAULTS.points,
    },
    integer(0, 1_000_000),
  ),
  GATEWAY_ATLAS_BUDGET_WINDOW_MS: envVar(
    {
      group: 'upstream',
      description:
        'The Atlas budget window in milliseconds (whole seconds); the budget refills every window.',
      example: '60000',
      default: ATLAS_BUDGET_DEFAULTS.windowMs,
    },
    (value) =>
      /^\d+$/.test(value) && Number(value) >= 1000 && Number(value) <= 3_600_000 && Number(value) % 1000 === 0
        ? Number(value)
        : invalid('a whole number of seconds in milliseconds, from 1000 to 3600000'),
  ),
  GATEWAY_ATLAS_BUDGET_CALLER_PERCENT: envVar(
    {
      group: 'upstream',
      description:
        "Most of a project's Atlas budget one caller (or all job pollers together) may spend per window, in percent.",
      example: '25',
      default: ATLAS_BUDGET_DEFAULTS.callerShare * 100,
    },
    integer(1, 100),
  ),
  GATEWAY_POST_SETTLE_MS: envVar(
    {
      group: 'upstream',
      description:
        'After a download/restore POST whose answer was lost, how long its job may still appear in Atlas; until then the outcome stays unknown, after it a list without the job proves there is none.',
      example: '300000',
      default: 120_000,
    },
    integer(1000, 86_400_000),
  ),
  GATEWAY_RESTORE_DEDUPE_WINDOW_MS: envVar(
    {
      group: 'upstream',
      description:
        'Identical requestRestore calls without an idempotency key within this long share one job (reused: true); 0 turns it off.',
      example: '300000',
      default: 60_000,
    },
    integer(0, 86_400_000),
  ),
};

export function upstreamFromEnv(v: EnvValues<typeof upstreamEnv>): UpstreamConfig {
  return {
    familyTtlMs: v.GATEWAY_FAMILY_TTL_MS,
    maxUpstreamConcurrency: v.GATEWAY_UPSTREAM_CONCURRENCY,
    maxQueuedUpstream: v.GATEWAY_UPSTREAM_MAX_QUEUED,
    pollIntervalMs: v.GATEWAY_POLL_INTERVAL_MS,
    atlasBudget:
      v.GATEWAY_ATLAS_BUDGET === 0
        ? false
        : {
            points: v.GATEWAY_ATLAS_BUDGET,
            windowMs: v.GATEWAY_ATLAS_BUDGET_WINDOW_MS,
            callerShare: v.GATEWAY_ATLAS_BUDGET_CALLER_PERCENT / 100,
          },
    postSettleMs: v.GATEWAY_POST_SETTLE_MS,
    restoreWindowMs: v.GATEWAY_RESTORE_DEDUPE_WINDOW_MS,
  };
}
