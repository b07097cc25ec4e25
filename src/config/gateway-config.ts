import type { ApiKeyEntry } from '../callers/api-keys.js';
import type { AuthMode } from '../callers/credentials.js';
import type { WebhookHook } from '../webhooks/webhook-hook.js';
import type {
  PersistedManifest,
  PersistedOperationsMode,
  WebSocketLimits,
} from '../security/security-options.js';

/**
 * Everything the environment says, validated, as plain data: no functions, no open handles. Turning it
 * into objects (authentication, plugins, Redis, tracing) is `createGatewayFromConfig`'s job.
 */
export interface GatewayConfig {
  server: ServerConfig;
  /** No Atlas credentials and not pass-through alone: the embedded simulator plays Atlas. */
  demo: boolean;
  atlas: AtlasConfig;
  upstream: UpstreamConfig;
  /** The shared upstream read cache. */
  cache: CacheConfig;
  callers: CallersConfig;
  security: SecurityConfig;
  /** Shared state for several replicas; undefined = everything in this process. */
  redis: RedisConfig | undefined;
  /** What `ATLAS_SIM_*` said; the simulator fills in its own defaults. */
  simulator: SimulatorConfig;
  tracing: TracingConfig;
  logging: LoggingConfig;
  /** Signed job events POSTed to services (`GATEWAY_WEBHOOKS_FILE`); no hooks = off. */
  webhooks: WebhooksConfig;
  /** Downloads through the gateway (`/downloads/…`) and whether Atlas's raw link is shown. */
  downloads: DownloadsConfig;
}

/** Downloads through the gateway, and whether Atlas's raw link is shown. */
export interface DownloadsConfig {
  /** `false`: `RestoreJob.snapshotUrl` is always null. */
  exposeSnapshotUrl: boolean;
  /** The origin `downloadUrl` is built on; undefined = the asking request's. */
  publicUrl: string | undefined;
  /** A link expiring sooner than this is renewed before it is streamed. */
  renewMarginMs: number;
}

export interface ServerConfig {
  port: number;
  host: string;
  /** How long in-flight requests may finish after SIGTERM before connections are cut. */
  shutdownGraceMs: number;
  /** Names this replica in the fleet (job leases, logs); undefined = a random UUID. */
  replicaId: string | undefined;
  /** Timeouts and caps that hold off slow and piled-up connections. */
  connections: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    /** 0: no cap. */
    maxConnections: number;
    /** 0: no cap. */
    maxConnectionsPerAddress: number;
  };
  /** How many operation names the metrics learn from accepted callers (a manifest's names instead). */
  metricsOperationNames: number;
}

/** How the gateway calls Atlas with its own credentials. */
export type AtlasCredentialsConfig =
  | { type: 'oauth'; clientId: string; clientSecret: string }
  | { type: 'digest'; publicKey: string; privateKey: string }
  | { type: 'none' };

export interface AtlasConfig {
  /** Undefined in demo mode: the simulator's URL is known only once it listens. */
  baseUrl: string | undefined;
  /** A service account wins over an API key; `none` in demo mode and with pass-through alone. */
  auth: AtlasCredentialsConfig;
  legacyV1: boolean;
}

export interface UpstreamConfig {
  familyTtlMs: number;
  maxUpstreamConcurrency: number;
  /** Atlas calls that may wait for a socket of the pool beyond its sockets; more are shed (`OVERLOADED`). */
  maxQueuedUpstream: number;
  pollIntervalMs: number;
  /** Atlas requests per project and window, and one caller's share of them; false = no budget. */
  atlasBudget: { points: number; windowMs: number; callerShare: number } | false;
  /** How long after a lost POST answer its job may still appear in Atlas. */
  postSettleMs: number;
  /** Identical unkeyed restores within this long share one job; 0: off. */
  restoreWindowMs: number;
}

/** The shared upstream read cache (`GATEWAY_CACHE*`). */
export interface CacheConfig {
  enabled: boolean;
  /** Freshness bound per kind of Atlas read, in milliseconds; 0 never caches that kind. */
  ttlMs: { projects: number; clusters: number; snapshots: number; jobs: number };
  /** Most entries kept in this process. */
  maxEntries: number;
}

export interface CallersConfig {
  /**
   * `GATEWAY_AUTH`, parsed once: `unset` (open access, only possible in demo mode), `none` (open on
   * purpose), or the methods in the order they are tried (API key, JWT, pass-through).
   */
  gatewayAuth: 'unset' | 'none' | readonly AuthMode[];
  /** The key entries, when `apikey` is enabled (read inline or from the file). */
  apiKeys: readonly ApiKeyEntry[] | undefined;
  /** When `jwt` is enabled. */
  jwt: JwtConfig | undefined;
}

export interface JwtConfig {
  /** Exactly one source of signing keys. */
  key: { jwksUrl: string } | { publicKey: string } | { secret: string };
  issuer: readonly string[];
  audience: readonly string[];
  projectsClaim: string;
  rightsClaim: string;
  clockToleranceSec: number;
  /** Undefined: the defaults of the key kind (`jwtAuth`). */
  algorithms: readonly string[] | undefined;
}

/** The abuse limits with every default filled in (`SecurityOptions` minus the CSRF header list). */
export interface SecurityConfig {
  production: boolean;
  maxDepth: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
  maxCost: number;
  costListSize: number;
  batchLimit: number;
  maxBodyBytes: number;
  rateLimit: { points: number; windowMs: number } | false;
  /** Subscriptions one caller may run at once; 0 = no cap. */
  maxSubscriptions: number;
  trustProxy: boolean;
  executionTimeoutMs: number;
  persistedOperations: PersistedOperationsMode;
  /** Read from `GATEWAY_PERSISTED_OPERATIONS_FILE` and checked; empty when persisted operations are off. */
  persistedManifest: PersistedManifest;
  csrfPrevention: boolean;
  /** Normalised origins (`https://app.example.com`) or `['*']`; undefined = yoga's default. */
  corsOrigins: readonly string[] | undefined;
  /** graphql-ws's own limits (`GATEWAY_WS_*`); its Origin check uses `corsOrigins` and `production`. */
  webSocket: WebSocketLimits;
}

export interface RedisConfig {
  /** Holds the password, if any: never log it as is. */
  url: string;
  prefix: string;
  /** Keyed mutations while Redis is unreachable: refused, or kept in this process (one replica only). */
  withoutRedis: 'refuse' | 'single-replica';
  /** How long a claim on an idempotency key outlives the replica that holds it. */
  leaseMs: number;
}

/** Only what the environment said: undefined = the simulator's own default. */
export interface SimulatorConfig {
  /** The simulator's port; undefined: a free one in demo mode, 8080 for `npm run simulator`. */
  port: number | undefined;
  /** Replaces fields of the demo owner credential. */
  owner: {
    clientId: string | undefined;
    clientSecret: string | undefined;
    publicKey: string | undefined;
    privateKey: string | undefined;
  };
  jobMs: number | undefined;
  /** The simulator's data profile; undefined = `realistic`. */
  profile: 'realistic' | 'small' | undefined;
  tenantSunset: boolean | undefined;
  /** Token-bucket capacity per project; 0 turns limiting off. */
  rateLimit: number | undefined;
  rateRefillPerSec: number | undefined;
  adminRoutes: boolean | undefined;
}

export interface TracingConfig {
  /** `none` keeps the no-op API: no provider is registered. */
  exporter: 'otlp' | 'console' | 'none';
  /** The OTLP/HTTP base URL (`/v1/traces` is appended); undefined = the exporter's default. */
  endpoint: string | undefined;
  serviceName: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface LoggingConfig {
  level: (typeof LOG_LEVELS)[number];
}

export interface WebhooksConfig {
  /** The hooks, their secrets read (as key bytes: never log this group as is). */
  hooks: readonly WebhookHook[];
  policy: {
    maxAttempts: number;
    backoffMs: number;
    maxBackoffMs: number;
    timeoutMs: number;
    concurrency: number;
  };
  /** With Redis: how long a claimed delivery waits before another replica takes it over. */
  claimIdleMs: number;
  /** Without Redis: most undelivered events held in memory. */
  memoryOutboxMax: number;
}
