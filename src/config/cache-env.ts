import { envVar, integer, oneOf } from './env-var.js';
import type { CacheConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

const ttl = (kind: string, defaultMs: number, why: string) =>
  envVar(
    {
      group: 'upstream',
      description: `How old a cached ${kind} answer may be when served (ms); 0 never caches ${kind}. ${why}`,
      example: String(defaultMs / 2),
      default: defaultMs,
    },
    integer(0, 3_600_000),
  );

export const cacheEnv = {
  GATEWAY_CACHE: envVar(
    {
      group: 'upstream',
      description:
        'The shared upstream read cache (docs/caching.md): `on` lets identical Atlas reads of callers with the same credentials and rights share one answer for its kind’s bound below; `off` sends every read upstream.',
      example: 'off',
      default: 'on' as const,
    },
    oneOf(['on', 'off'], '"on" or "off"'),
  ),
  GATEWAY_CACHE_TTL_PROJECTS_MS: ttl('project', 60_000, 'Projects change by hand, rarely.'),
  GATEWAY_CACHE_TTL_CLUSTERS_MS: ttl('cluster', 30_000, 'A cluster’s state changes over minutes.'),
  GATEWAY_CACHE_TTL_SNAPSHOTS_MS: ttl(
    'snapshot',
    15_000,
    'Snapshots are taken hours apart, but one in progress changes status.',
  ),
  GATEWAY_CACHE_TTL_JOBS_MS: ttl(
    'restore/download job (lists and single jobs)',
    5_000,
    'Our own mutations drop a cluster’s job entries at once; subscriptions poll past the cache.',
  ),
  GATEWAY_CACHE_MAX_ENTRIES: envVar(
    {
      group: 'upstream',
      description:
        'Most answers the cache keeps in this process (the oldest goes first); Redis holds its own.',
      example: '2000',
      default: 10_000,
    },
    integer(1, 1_000_000),
  ),
};

export function cacheFromEnv(v: EnvValues<typeof cacheEnv>): CacheConfig {
  return {
    enabled: v.GATEWAY_CACHE === 'on',
    ttlMs: {
      projects: v.GATEWAY_CACHE_TTL_PROJECTS_MS,
      clusters: v.GATEWAY_CACHE_TTL_CLUSTERS_MS,
      snapshots: v.GATEWAY_CACHE_TTL_SNAPSHOTS_MS,
      jobs: v.GATEWAY_CACHE_TTL_JOBS_MS,
    },
    maxEntries: v.GATEWAY_CACHE_MAX_ENTRIES,
  };
}
