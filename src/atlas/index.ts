import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { AtlasHttp } from './atlas-http.js';
import { AtlasStats, type AtlasStatsSnapshot } from './atlas-stats.js';
import { noAuth, type AuthStrategy } from './credentials/auth-strategy.js';
import { DigestAuth } from './credentials/digest-auth.js';
import { OAuthAuth } from './credentials/oauth-auth.js';
import { createOAuthFormPost } from './credentials/oauth-form-post.js';
import { systemClock, type Clock } from '../time/clock.js';
import { createClustersApi, type ClustersApi } from './clusters.js';
import { createAtlasDispatcher, type AtlasDispatcherOptions } from './dispatcher.js';
import { AtlasConfigError } from './errors.js';
import { createFlexBackupApi, type FlexBackupApi } from './flex-backup.js';
import { createFlexClustersApi, type FlexClustersApi } from './flex-clusters.js';
import { createProjectsApi, type ProjectsApi } from './projects.js';
import { RETRY_DEFAULTS, type RetryOptions } from './retry.js';
import type { ReadCache } from './read-cache.js';
import { realSleep, type Sleep } from '../time/sleep.js';
import { createTenantBackupApi, type TenantBackupApi } from './tenant-backup.js';
import { createTransport, type AtlasExchange, type BeforeSend } from './transport.js';

export type AtlasAuthConfig =
  | {
      type: 'oauth';
      clientId: string;
      clientSecret: string;
      /**
       * Renew this long before expiry; capped at half the token lifetime.
       * @default 600000
       */
      refreshMarginMs?: number;
    }
  | {
      type: 'digest';
      publicKey: string;
      privateKey: string;
      /** @default 16 random hex characters per request */
      cnonce?: () => string;
    }
  | { type: 'none' };

/** Timeouts of each upstream request. */
export interface AtlasTimeouts {
  /**
   * TCP+TLS connect; only applies to the dispatcher the client creates itself.
   * @default 5000
   */
  connectMs?: number;
  /**
   * Until the response headers are in (per request, so an injected dispatcher gets it too).
   * @default 30000
   */
  headersMs?: number;
  /**
   * Longest silence while the body streams (per request).
   * @default 30000
   */
  bodyMs?: number;
}

export interface AtlasClientConfig {
  /**
   * Atlas origin, optionally with a path prefix.
   * @default 'https://cloud.mongodb.com'
   */
  baseUrl?: string;
  /** Client credentials; a call's `bearerToken` overrides them for that call. */
  auth: AtlasAuthConfig;
  /**
   * The undici dispatcher for every request. An injected one is the caller's to close.
   * @default createAtlasDispatcher({ ...pool, timeouts }), closed by `close()`
   */
  dispatcher?: Dispatcher;
  /** Pool settings for the dispatcher the client creates (ignored with `dispatcher`). @default {} */
  pool?: Omit<AtlasDispatcherOptions, 'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs'>;
  /** @default RETRY_DEFAULTS (4 attempts, 30 s budget, 200 ms base, 10 s cap, 429/502/503/504) */
  retry?: RetryOptions;
  /** @default { connectMs: 5000, headersMs: 30000, bodyMs: 30000 } */
  timeouts?: AtlasTimeouts;
  /**
   * Tenant backups over the legacy v1.0 routes (API keys only).
   * @default false
   */
  legacyV1?: boolean;
  /** @default systemClock */
  clock?: Clock;
  /** @default realSleep (timers/promises, abortable) */
  sleep?: Sleep;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
  /** @default 'atlas-backup-graphql-gateway/0.1.0' */
  userAgent?: string;
  /**
   * Larger response bodies fail with `ATLAS_BAD_RESPONSE` instead of filling memory.
   * @default 16777216 (16 MiB)
   */
  maxResponseBytes?: number;
  /** Called once per upstream round trip when it ends (logs, metrics). @default none */
  onExchange?: (exchange: AtlasExchange) => void;
  /**
   * Called before each round trip, awaited; may throw to keep it unsent (a shared backoff, a spent
   * budget). A refused call is not reported to `onExchange`. @default none
   */
  beforeSend?: (request: BeforeSend) => void | Promise<void>;
  /**
   * The shared read cache of GETs (`ReadCache`), keyed by credential scope; our own job POSTs drop
   * their cluster's job entries from it. @default none: every GET goes upstream
   */
  readCache?: ReadCache | undefined;
}

/**
 * Typed calls of the Atlas Admin API operations the gateway uses, one group per REST family, each
 * with its versioned media type. It knows nothing of cluster families beyond the routes: which family
 * serves a cluster, and the fallback between them, belong to the backup service (src/backup), which
 * is the only user of this client besides the gateway's wiring (readiness, metrics, shutdown).
 */
export interface AtlasClient {
  projects: ProjectsApi;
  clusters: ClustersApi;
  flexClusters: FlexClustersApi;
  tenantBackup: TenantBackupApi;
  flexBackup: FlexBackupApi;
  /** Counters since creation. */
  stats(): AtlasStatsSnapshot;
  /** Revokes the OAuth token and closes the dispatcher the client created. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_BASE_URL = 'https://cloud.mongodb.com';
const DEFAULT_USER_AGENT = 'atlas-backup-graphql-gateway/0.1.0';

/**
 * The process's one Atlas client: one connection pool, one OAuth token (or Digest nonce), shared
 * counters. GETs (and POSTs a call marks `idempotent`) are retried on `retry.retryOnStatuses` and
 * network errors within the retry budget; other POSTs never are, since Atlas may have applied them.
 * Throws `AtlasConfigError` for a base URL that is not http(s), or for legacy v1.0 routes with a
 * service account (Atlas takes only API keys there).
 */
export function createAtlasClient(config: AtlasClientConfig): AtlasClient {
  const base = new URL(config.baseUrl ?? DEFAULT_BASE_URL);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new AtlasConfigError(`baseUrl must be http(s), got ${base.protocol}`);
  }
  if (config.legacyV1 && config.auth.type === 'oauth') {
    throw new AtlasConfigError('legacyV1 routes accept API keys (Digest) only, not service accounts');
  }
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const timeouts = config.timeouts ?? {};
  const ownsDispatcher = config.dispatcher === undefined;
  const dispatcher =
    config.dispatcher ??
    createAtlasDispatcher({
      ...config.pool,
      ...(timeouts.connectMs !== undefined ? { connectTimeoutMs: timeouts.connectMs } : {}),
      ...(timeouts.headersMs !== undefined ? { headersTimeoutMs: timeouts.headersMs } : {}),
      ...(timeouts.bodyMs !== undefined ? { bodyTimeoutMs: timeouts.bodyMs } : {}),
    });
  const stats = new AtlasStats();
  const clock = config.clock ?? systemClock;
  const sleep = config.sleep ?? realSleep;
  const random = config.random ?? Math.random;
  const userAgent = config.userAgent ?? DEFAULT_USER_AGENT;
  const retry = { ...RETRY_DEFAULTS, ...definedOnly(config.retry ?? {}) };
  const transport = createTransport({
    dispatcher,
    origin: base.origin,
    headersTimeoutMs: timeouts.headersMs,
    bodyTimeoutMs: timeouts.bodyMs,
    maxResponseBytes: config.maxResponseBytes ?? 16 * 1024 * 1024,
    onSend: (op) => stats.request(op),
    onExchange: config.onExchange,
    beforeSend: config.beforeSend,
  });

  let auth: AuthStrategy;
  switch (config.auth.type) {
    case 'oauth':
      auth = new OAuthAuth(config.auth, {
        post: createOAuthFormPost({ transport, userAgent, retry, clock, sleep, random, stats }),
        clock,
        stats,
        pathPrefix,
      });
      break;
    case 'digest':
      auth = new DigestAuth(config.auth, { stats });
      break;
    case 'none':
      auth = noAuth;
      break;
  }

  const http = new AtlasHttp({
    transport,
    auth,
    pathPrefix,
    userAgent,
    retry,
    clock,
    sleep,
    random,
    stats,
    cache: config.readCache,
    ownScope: ownScopeOf(config.auth, base.href),
  });
  let closing: Promise<void> | undefined;
  return {
    projects: createProjectsApi(http),
    clusters: createClustersApi(http),
    flexClusters: createFlexClustersApi(http),
    tenantBackup: createTenantBackupApi(http, { legacyV1: config.legacyV1 ?? false }),
    flexBackup: createFlexBackupApi(http),
    stats: () => stats.snapshot(),
    close: () =>
      (closing ??= (async () => {
        http.close();
        try {
          await auth.close();
        } finally {
          if (ownsDispatcher) await dispatcher.close();
        }
      })()),
  };
}

/**
 * Names the client's own credentials (their public half and the Atlas they call) in read cache keys,
 * so two fleets with different credentials on one Redis prefix could still never share an answer.
 */
function ownScopeOf(auth: AtlasAuthConfig, baseUrl: string): string {
  const id = auth.type === 'oauth' ? auth.clientId : auth.type === 'digest' ? auth.publicKey : '';
  return createHash('sha256').update(`${auth.type}\n${id}\n${baseUrl}`).digest('base64url');
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export { AtlasHttp, type AtlasOperation, type CallOptions } from './atlas-http.js';
export type { AtlasStatsSnapshot } from './atlas-stats.js';
export {
  READ_KINDS,
  ReadCache,
  type CacheMode,
  type CachedRead,
  type ReadCacheOptions,
  type ReadCacheStats,
  type ReadKind,
  type SharedReadStore,
  type TagAt,
} from './read-cache.js';
export type { AtlasExchange, BeforeSend } from './transport.js';
export type { Clock } from '../time/clock.js';
export { createAtlasDispatcher, type AtlasDispatcherOptions } from './dispatcher.js';
export * from './errors.js';
export {
  collectAll,
  iteratePages,
  type AtlasLink,
  type AtlasPage,
  type CollectOptions,
  type PageParams,
} from './paginate.js';
export {
  RETRY_DEFAULTS,
  isRetryableError,
  parseRetryAfter,
  retryDelayMs,
  type RetryOptions,
} from './retry.js';
export type { Sleep } from '../time/sleep.js';
export type { AtlasGroup, ProjectsApi } from './projects.js';
export type { AtlasCluster, ClustersApi } from './clusters.js';
export type { FlexCluster, FlexClustersApi } from './flex-clusters.js';
export type {
  TenantBackupApi,
  TenantDownloadRequest,
  TenantRestoreJob,
  TenantRestoreRequest,
  TenantSnapshot,
} from './tenant-backup.js';
export type {
  FlexBackupApi,
  FlexDownloadRequest,
  FlexRestoreJob,
  FlexRestoreJobRequest,
  FlexSnapshot,
} from './flex-backup.js';
