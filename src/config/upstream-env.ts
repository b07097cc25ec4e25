import { envVar, integer } from './env-var.js';
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
  GATEWAY_POLL_INTERVAL_MS: envVar(
    {
      group: 'upstream',
      description: 'Time between two Atlas reads of a job that a subscription watches.',
      example: '2000',
      default: 4000,
    },
    integer(100, 3_600_000),
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
    pollIntervalMs: v.GATEWAY_POLL_INTERVAL_MS,
    postSettleMs: v.GATEWAY_POST_SETTLE_MS,
    restoreWindowMs: v.GATEWAY_RESTORE_DEDUPE_WINDOW_MS,
  };
}
