import type { AtlasAuthConfig } from './atlas/index.js';

/** Everything `src/index.ts` needs, validated. */
export interface GatewayConfig {
  port: number;
  host: string;
  /** No Atlas credentials set: run the embedded simulator and point at it. */
  demo: boolean;
  atlas: {
    /** Empty in demo mode (the simulator's URL is known only once it listens). */
    baseUrl: string;
    auth: AtlasAuthConfig;
    legacyV1: boolean;
  };
  familyTtlMs: number;
  maxUpstreamConcurrency: number;
  pollIntervalMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long in-flight requests may finish after SIGTERM before connections are cut. */
  shutdownGraceMs: number;
  /** Shared state for several replicas; none = everything in this process. */
  redis: { url: string; prefix: string } | undefined;
  /** Names this replica in the fleet (job leases, logs). */
  replicaId: string | undefined;
}

/** All the bad variables at once, one line each: name, what was expected, what arrived. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads the environment (names follow the Atlas CLI and Terraform). Secrets are never echoed back
 * in a message: only whether they were set.
 */
export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return def;
    }
    return Number(raw);
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = str(name);
    if (raw === undefined) return def;
    if (raw !== 'true' && raw !== 'false') {
      problems.push(`${name}: expected "true" or "false", got "${raw}"`);
      return def;
    }
    return raw === 'true';
  };

  const port = int('PORT', 4000, 0, 65535);
  const host = str('HOST') ?? '127.0.0.1';
  const baseUrl = str('MONGODB_ATLAS_BASE_URL');
  if (baseUrl !== undefined) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(baseUrl).protocol);
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`MONGODB_ATLAS_BASE_URL: expected an http(s) URL, got "${baseUrl}"`);
  }

  const clientId = str('MONGODB_ATLAS_CLIENT_ID');
  const clientSecret = str('MONGODB_ATLAS_CLIENT_SECRET');
  // Terraform's names are accepted too, so one environment serves both tools.
  const publicKey = str('MONGODB_ATLAS_PUBLIC_API_KEY') ?? str('MONGODB_ATLAS_PUBLIC_KEY');
  const privateKey = str('MONGODB_ATLAS_PRIVATE_API_KEY') ?? str('MONGODB_ATLAS_PRIVATE_KEY');
  const pair = (a: string, av: string | undefined, b: string, bv: string | undefined) => {
    if ((av === undefined) !== (bv === undefined)) {
      problems.push(
        `${av === undefined ? a : b}: must be set together with ${av === undefined ? b : a}, which is set`,
      );
    }
  };
  pair('MONGODB_ATLAS_CLIENT_ID', clientId, 'MONGODB_ATLAS_CLIENT_SECRET', clientSecret);
  pair('MONGODB_ATLAS_PUBLIC_API_KEY', publicKey, 'MONGODB_ATLAS_PRIVATE_API_KEY', privateKey);

  let auth: AtlasAuthConfig = { type: 'none' };
  // Service accounts are Atlas's recommended method; API keys are legacy. With both set, OAuth wins.
  if (clientId && clientSecret) auth = { type: 'oauth', clientId, clientSecret };
  else if (publicKey && privateKey) auth = { type: 'digest', publicKey, privateKey };
  // Pass-through alone: callers bring their own Atlas tokens and the gateway holds none, against Atlas.
  const passThroughOnly = str('GATEWAY_AUTH')?.replace(/\s/g, '') === 'passthrough';
  const demo = auth.type === 'none' && !passThroughOnly;
  if (demo && baseUrl !== undefined) {
    problems.push(
      'MONGODB_ATLAS_BASE_URL: set, but no Atlas credentials are (MONGODB_ATLAS_CLIENT_ID/SECRET or MONGODB_ATLAS_PUBLIC_API_KEY/PRIVATE_API_KEY); unset it for demo mode',
    );
  }
  const legacyV1 = bool('ATLAS_TENANT_LEGACY_V1', false);
  if (legacyV1 && auth.type === 'oauth') {
    problems.push(
      'ATLAS_TENANT_LEGACY_V1: the v1.0 routes take API keys (Digest) only, not a service account',
    );
  }
  const familyTtlMs = int('GATEWAY_FAMILY_TTL_MS', 600_000, 0, 86_400_000);
  const maxUpstreamConcurrency = int('GATEWAY_UPSTREAM_CONCURRENCY', 8, 1, 256);
  const pollIntervalMs = int('GATEWAY_POLL_INTERVAL_MS', 4000, 100, 3_600_000);
  const redisUrl = str('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push(
      `REDIS_URL: expected a redis:// or rediss:// URL, got "${redisUrl.replace(/\/\/[^@]*@/, '//[redacted]@')}"`,
    );
  }
  const shutdownGraceMs = int('GATEWAY_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000);
  const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  const level = str('LOG_LEVEL') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) {
    problems.push(`LOG_LEVEL: expected one of ${LEVELS.join(', ')}, got "${level}"`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    demo,
    atlas: { baseUrl: demo ? '' : (baseUrl ?? 'https://cloud.mongodb.com'), auth, legacyV1 },
    familyTtlMs,
    maxUpstreamConcurrency,
    pollIntervalMs,
    logLevel: (LEVELS as readonly string[]).includes(level) ? (level as GatewayConfig['logLevel']) : 'info',
    shutdownGraceMs,
    replicaId: str('GATEWAY_REPLICA_ID'),
    redis: redisUrl ? { url: redisUrl, prefix: str('REDIS_PREFIX') ?? 'atlas-gw:' } : undefined,
  };
}
