import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import {
  createYoga,
  useReadinessCheck,
  type Plugin,
  type YogaServerInstance,
  type YogaServerOptions,
} from 'graphql-yoga';
import { Registry } from 'prom-client';
import {
  createAtlasClient,
  ReadCache,
  type AtlasClient,
  type AtlasClientConfig,
  type AtlasExchange,
  type ReadKind,
} from './atlas/index.js';
import { RedisReadStore } from './replicas/redis-read-store.js';
import { cacheScopeOf, wantsFreshData } from './callers/cache-scope.js';
import { systemClock, type Clock } from './time/clock.js';
import type { Authenticate, Caller } from './callers/caller.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from './jobs/idempotency-store.js';
import { JobPollers } from './jobs/job-pollers.js';
import { realTimers, type Timers } from './time/timers.js';
import { RedisIdempotencyStore, type WithoutRedis } from './jobs/redis-idempotency-store.js';
import { RedisJobChannel } from './jobs/redis-job-channel.js';
import { ProjectBackoff } from './replicas/project-backoff.js';
import { AtlasBudget, type AtlasBudgetOptions } from './replicas/atlas-budget.js';
import { UpstreamAdmission } from './replicas/upstream-admission.js';
import { DISPATCHER_DEFAULTS } from './atlas/dispatcher.js';
import { ExpiringMap } from './time/expiring-map.js';
import type { SharedRedis } from './replicas/redis.js';
import {
  CSRF_HEADERS,
  corsPolicy as makeCorsPolicy,
  deadlineSignal,
  isSameOrigin,
  limitConnections,
  serverTimeouts,
  useBodyLimit,
  type ConnectionLimits,
  type ConnectionStats,
  type CorsPolicy,
} from './security/index.js';
import type { JobsRuntime } from './graphql/context.js';
import { FamilyCache } from './backup/family-cache.js';
import { CompletedSnapshots } from './backup/completed-snapshots.js';
import { backupServices } from './backup/backup-service.js';
import type { GatewayContext } from './graphql/context.js';
import { expectedErrorLine, maskError } from './graphql/errors.js';
import { createLoaders, LazyLoaders, LoaderStats } from './graphql/loaders.js';
import { resolvers } from './graphql/resolvers.js';
import { feedResolvers } from './graphql/feed-resolvers.js';
import { downloadResolvers } from './graphql/download-resolvers.js';
import { enforceRequiredRights } from './graphql/requires-right.js';
import { attachGraphQLWs, type GraphQLWs, type WebSocketOptions } from './graphql/websocket.js';
import { loadTypeDefs } from './graphql/type-defs.js';
import { createLogger, yogaLogger } from './observability/logger.js';
import { UnknownValues } from './backup/unknown-values.js';
import {
  registerConnectionMetrics,
  registerGatewayMetrics,
  registerProcessMetrics,
} from './observability/metrics.js';
import { useOperationSpans } from './observability/tracing.js';
import type { OperationNameLabelsOptions } from './observability/operation-name-labels.js';
import { useBoundedPrometheus } from './observability/use-bounded-prometheus.js';
import { useAccessLog } from './graphql/use-access-log.js';
import { useRefusalStatus } from './graphql/use-refusal-status.js';
import { LeanSseStats, useLeanSse, type LeanSseOptions } from './graphql/use-lean-sse.js';
import { useDocumentCache } from './graphql/use-document-cache.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  createReadinessCheck,
  draining as drainingReadiness,
  readinessResponse,
} from './gateway-readiness.js';
import { useRootPointer } from './gateway-root.js';
import { logUpstreamExchange } from './gateway-upstream-log.js';
import {
  createDownloadRoute,
  type DownloadCounts,
  type DownloadRouteOptions,
} from './downloads/download-route.js';
import { registerDownloadMetrics } from './downloads/download-metrics.js';
import { registerWebhookMetrics } from './webhooks/webhook-metrics.js';
import { webhookResolvers } from './graphql/webhook-resolvers.js';
import { Webhooks } from './webhooks/webhooks.js';
import type { WebhookHook } from './webhooks/webhook-hook.js';
import type { DeliveryPolicy } from './webhooks/webhook-worker.js';
import type { JobChangeSource } from './webhooks/job-change-source.js';
import { RedisWebhookOutbox } from './webhooks/redis-webhook-outbox.js';
import { MemoryWebhookOutbox } from './webhooks/memory-webhook-outbox.js';
import { scopeJobChangeSource } from './webhooks/scope-job-change-source.js';

/** Options of `createGateway`. */
export interface GatewayOptions {
  /** The Atlas client: base URL, credentials, and (for tests) an injected dispatcher, clock, sleep. */
  atlas: AtlasClientConfig;
  /** How long a learned cluster family is trusted. @default 600000 */
  familyTtlMs?: number;
  /** Most upstream calls one GraphQL request makes at once. @default 8 */
  maxUpstreamConcurrency?: number;
  /**
   * Admission control of the process's Atlas calls: at most the pool's sockets (`atlas.pool.connections`)
   * plus `maxQueued` in flight; one more fails unsent with `OVERLOADED` (HTTP 503, retryable, a
   * `Retry-After` hint) rather than queueing without bound. `false` admits everything.
   * @default { maxQueued: 256 }
   */
  upstreamAdmission?: { maxQueued: number; retryAfterMs?: number } | false;
  /** @default systemClock */
  clock?: Clock;
  /** Serve GraphiQL on GET /graphql from a browser. @default true */
  graphiql?: boolean;
  /** `/readyz` asks Atlas at most this often and answers from the last result between. @default 5000 */
  readinessIntervalMs?: number;
  /** Structured logs (pino). @default a JSON logger on stdout at `info` */
  logger?: Logger;
  /** `false` silences the logs (tests). @default true */
  logging?: boolean;
  /**
   * Who calls: API keys, JWT, pass-through, or `openAccess` said on purpose. Required: a gateway that
   * forgot its caller check would let anyone act with its Atlas credentials.
   */
  authenticate: Authenticate;
  /** More yoga/envelop plugins (limits, security), run after the gateway's own. @default [] */
  plugins?: Plugin[];
  /**
   * Which cross-origin pages may read the answers (also for a WebSocket upgrade's `Origin`).
   * @default corsPolicy(): none (no CORS headers; yoga's own default would reflect any origin with credentials)
   */
  corsPolicy?: CorsPolicy;
  /** Time between two upstream reads of a watched job. @default 4000 */
  pollIntervalMs?: number;
  /** Timers of the job pollers (tests step them). @default real timers */
  timers?: Timers;
  /** Where idempotency keys live. @default Redis when `redis` is given, else this process (24 h) */
  idempotency?: IdempotencyStore;
  /**
   * Shares job polling, idempotency keys, cluster families and Atlas backoffs with the other replicas.
   * @default none: everything stays in this process
   */
  redis?: SharedRedis;
  /**
   * Keyed mutations while `redis` is unreachable: refused with STORE_UNAVAILABLE, or kept in this
   * process and written to Redis when it returns (`single-replica`: only right for one replica).
   * @default 'refuse'
   */
  idempotencyWithoutRedis?: WithoutRedis;
  /** How long a replica's claim on an idempotency key outlives it (Redis only). @default 10000 */
  idempotencyLeaseMs?: number;
  /**
   * After a POST whose answer was lost, how long its job may still appear in Atlas: until then the
   * outcome stays unknown, after it a list without the job proves there is none. @default 120000
   */
  postSettleMs?: number;
  /** Identical `requestRestore`s without a key within this long share one job; 0 turns it off. @default 60000 */
  restoreWindowMs?: number;
  /** This replica's name in the fleet (job leases). @default a random UUID */
  replicaId?: string;
  /**
   * Largest request body accepted; above it HTTP 413 (a declared `Content-Length` is refused unread,
   * a chunked body is read up to the limit). @default 25000000 (yoga's own default)
   */
  maxBodyBytes?: number;
  /** yoga's request batching (an array of operations in one request). @default false */
  batching?: YogaServerOptions<Record<string, never>, GatewayContext>['batching'];
  /**
   * Which operation names the GraphQL metrics label with: a manifest's (`known`), or the first `max`
   * that accepted callers ran; every other name, and every refused operation, is `other`.
   * @default { max: 50 }
   */
  metricsOperationNames?: OperationNameLabelsOptions;
  /**
   * Timeouts and connection caps of the HTTP server, against slow and piled-up connections.
   * @default resolveConnectionLimits(): 10 s headers, 30 s request, 5 s keep-alive, 10,000 connections, 128 per address
   */
  connections?: ConnectionLimits;
  /**
   * Budgets upstream requests per Atlas project, and caps each caller's share of it (`AtlasBudget`;
   * shared through `redis` when given). `createGatewayFromConfig` passes the configured one.
   * @default false (no budget)
   */
  atlasBudget?: Partial<AtlasBudgetOptions> | false;
  /**
   * graphql-ws: its limits (payload, connections, operations and subscribe rate per socket, init
   * timeout), which `Origin` may open a socket, and whether to trust `X-Forwarded-For`.
   * @default DEFAULT_WEBSOCKET_LIMITS; only the gateway's own origin and non-browser clients
   */
  webSocket?: WebSocketOptions;
  /**
   * The shared upstream read cache (docs/caching.md): freshness bound per kind of Atlas read (0: that
   * kind is not cached), and most entries in this process; shared through `redis` when given.
   * `createGatewayFromConfig` passes the configured one (on by default there).
   * @default false (every read goes upstream)
   */
  readCache?: { ttlMs: Readonly<Record<ReadKind, number>>; maxEntries?: number } | false;
  /**
   * Subscriptions over SSE are written by the gateway's lean stream writer (`useLeanSse`: the same
   * plugins and bytes, a fraction of yoga's memory per open stream); `false` leaves them to yoga's
   * own SSE processor. `pingIntervalMs`: time between two keep-alive comments on an open stream;
   * `sharedFields`: identical subscriptions of one caller to these fields share one execution;
   * `maxBufferedBytes`: unread bytes after which a client's stream is cut (see `LeanSseOptions`).
   * @default { pingIntervalMs: 12000, sharedFields: ['restoreJobStatus', 'snapshotStatus'], maxBufferedBytes: 262144 }
   */
  leanSse?: false | Omit<LeanSseOptions, 'stats'>;
  /**
   * Downloads through the gateway (`RestoreJob.downloadUrl`, `/downloads/…`) and whether the raw
   * `snapshotUrl` is shown at all.
   * @default { exposeSnapshotUrl: true }, URLs from the request's origin, links renewed 60 s before expiry
   */
  downloads?: DownloadsOptions;
  /**
   * Signed job events POSTed to services: the hooks and how deliveries are tried; the outbox is in
   * `redis` when given (durable, shared), else in this process (bounded, lost on restart).
   * @default none (no hooks)
   */
  webhooks?: GatewayWebhooksOptions;
}

/** Options of the download route and of the fields around it. */
export interface DownloadsOptions extends Pick<
  DownloadRouteOptions,
  'dispatcher' | 'renewMarginMs' | 'renewValidityMs' | 'renewWaitMs' | 'admit'
> {
  /** `false`: `RestoreJob.snapshotUrl` is always null (downloads go through `downloadUrl`). @default true */
  exposeSnapshotUrl?: boolean;
  /** Origin `downloadUrl` is built on (behind a proxy). @default the origin of the request that asks */
  publicBaseUrl?: string;
}

/** The webhooks of a gateway (`GatewayOptions.webhooks`). */
export interface GatewayWebhooksOptions {
  hooks: readonly WebhookHook[];
  /** @default DEFAULT_DELIVERY_POLICY */
  policy?: Partial<DeliveryPolicy>;
  /** With Redis: how long a claimed delivery waits before another replica takes it over. @default 60000 */
  claimIdleMs?: number;
  /** Without Redis: most undelivered events in memory. @default 1000 */
  memoryOutboxMax?: number;
  /**
   * Where job changes come from. @default the jobs feed's scope watcher on this gateway's pollers
   * (`timers`/`pollIntervalMs` pace it)
   */
  source?: JobChangeSource;
  /** Timers of the delivery workers (tests step them). @default real timers */
  timers?: Timers;
  /** The jitter of retries (tests fix it). @default Math.random */
  random?: () => number;
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, never>, GatewayContext>;
  /** The node HTTP server around yoga; not listening until `listen`. */
  server: Server;
  atlas: AtlasClient;
  /** The shared upstream read cache, when on (its counters: tests, metrics, the bench). */
  readCache: ReadCache | undefined;
  families: FamilyCache;
  /** The snapshots read as COMPLETED, whose job requests skip the snapshot read (tests). */
  completedSnapshots: CompletedSnapshots;
  pollers: JobPollers;
  registry: Registry;
  /** Open connections and those the caps refused. */
  connections: ConnectionStats;
  /** Which cross-origin pages may call (`allowed(origin)`), for checks outside yoga (WebSocket upgrades). */
  corsPolicy: CorsPolicy;
  /** Atlas calls admitted and in flight, and those shed with `OVERLOADED` (metrics, tests). */
  upstream: { inFlight(): number; shed(): number };
  /** The graphql-ws side: open connections and running operations (metrics, tests). */
  webSocket: Pick<GraphQLWs, 'openConnections' | 'activeOperations'>;
  /**
   * SSE streams the lean writer served, those open now, those that joined a running execution, and
   * the executions writing to them (all 0 with `leanSse: false`).
   */
  leanSse: LeanSseStats;
  /** The `/downloads/…` route's counts (streams, bytes, renewals, resumes). */
  downloads: DownloadCounts;
  /** The webhooks, when hooks are configured. */
  webhooks: Webhooks | undefined;
  /** Listens and answers the base URL (`http://host:port`). */
  listen(port?: number, host?: string): Promise<string>;
  logger: Logger;
  /**
   * Graceful stop: ends every subscription (their streams complete), stops accepting, lets in-flight
   * requests finish for up to `graceMs`, then cuts what is left and revokes the OAuth token.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/** GraphiQL opens on this: a first query that walks the whole model. */
export const EXAMPLE_QUERY = `# The backups of every shared-tier and Flex cluster you can see.
query Dashboard {
  projects {
    id
    name
    clusters {
      name
      family
      instanceSize
      backingProvider
      state
      snapshots(first: 3) {
        totalCount
        nodes { id status finishTime }
        pageInfo { hasNextPage endCursor }
      }
      restoreJobs(first: 3) {
        nodes { id status deliveryType snapshotUrl expirationDate }
      }
    }
  }
}
`;

/** Builds the gateway (schema, yoga, Atlas client, HTTP server) without listening. Tests import this. */
export function createGateway(options: GatewayOptions): Gateway {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: options.logging === false ? 'silent' : 'info' });
  const registry = new Registry();
  // The metrics need the client they observe, so they subscribe to its exchanges once both exist.
  const exchangeObservers: ((e: AtlasExchange) => void)[] = [];
  const logExchange = logUpstreamExchange(logger);
  const backoff = new ProjectBackoff(clock, options.redis);
  const budget = options.atlasBudget ? new AtlasBudget(options.atlasBudget, options.redis) : undefined;
  const admission =
    options.upstreamAdmission === false
      ? undefined
      : new UpstreamAdmission({
          sockets: options.atlas.pool?.connections ?? DISPATCHER_DEFAULTS.connections,
          ...(options.upstreamAdmission ?? {}),
        });
  // Pass-through callers (their id is their token's hash) Atlas has answered 2xx: until then a token
  // is unverified and the rate limits key its caller by address, so random tokens gain nothing.
  const acceptedCallers = new ExpiringMap<string, true>({ ttlMs: 3_600_000, maxEntries: 10_000, clock });
  const readCache = options.readCache
    ? new ReadCache({
        ttlMs: options.readCache.ttlMs,
        clock,
        ...(options.readCache.maxEntries !== undefined ? { maxEntries: options.readCache.maxEntries } : {}),
        ...(options.redis ? { shared: new RedisReadStore(options.redis) } : {}),
      })
    : undefined;
  const atlas = createAtlasClient({
    clock,
    readCache,
    ...options.atlas,
    beforeSend: async (r) => {
      await options.atlas.beforeSend?.(r);
      backoff.beforeSend(r);
      await budget?.beforeSend(r);
      // Last: a call another check refused never takes a place.
      admission?.beforeSend();
    },
    onExchange: (e) => {
      admission?.onExchange();
      options.atlas.onExchange?.(e);
      for (const observe of exchangeObservers) observe(e);
      backoff.onExchange(e);
      if (e.spender !== undefined && e.status !== undefined && e.status >= 200 && e.status < 300) {
        acceptedCallers.set(e.spender, true);
      }
      logExchange(e);
    },
  });
  const families = new FamilyCache({
    ...(options.redis ? { redis: options.redis } : {}),
    clock,
    ...(options.familyTtlMs !== undefined ? { ttlMs: options.familyTtlMs } : {}),
  });
  // One memo for every caller and every use (reads feed it, job requests consult it): it only skips
  // the CONFLICT pre-check of a snapshot already seen COMPLETED; see CompletedSnapshots for why that is
  // safe to share. Per replica: another replica's first request reads the snapshot once.
  const completedSnapshots = new CompletedSnapshots({ clock });
  const loaderStats = new LoaderStats();
  const unknownValues = new UnknownValues((kind, raw) =>
    logger.warn(
      { kind, value: raw },
      'Atlas sent an enum value the gateway does not know; answered as UNKNOWN',
    ),
  );
  // Field-level rights (`@requiresRight` in the SDL) are enforced here, once, for every transport.
  const schema = enforceRequiredRights(
    makeExecutableSchema<GatewayContext>({
      typeDefs: loadTypeDefs(),
      resolvers: [resolvers, feedResolvers, downloadResolvers, webhookResolvers],
    }),
  );

  const { authenticate } = options;
  // An operation over graphql-ws runs as the caller its socket authenticated as at connection_init.
  const socketCallers = new WeakMap<Request, Caller>();
  const replicaId = options.replicaId ?? randomUUID();
  const pollers = new JobPollers({
    ...(options.redis ? { channel: new RedisJobChannel(options.redis, replicaId) } : {}),
    ...(options.pollIntervalMs !== undefined ? { intervalMs: options.pollIntervalMs } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    clock,
  });
  const jobs: JobsRuntime = {
    backup: backupServices({ atlas, families, completed: completedSnapshots }),
    clock,
    idempotency:
      options.idempotency ??
      (options.redis
        ? new RedisIdempotencyStore(options.redis, {
            clock,
            logger,
            ...(options.idempotencyWithoutRedis ? { withoutRedis: options.idempotencyWithoutRedis } : {}),
            ...(options.idempotencyLeaseMs !== undefined ? { leaseMs: options.idempotencyLeaseMs } : {}),
          })
        : new MemoryIdempotencyStore({ clock })),
    pollers,
    inflightDownloads: new Map(),
    requestOptions: {
      ...(options.postSettleMs !== undefined ? { postSettleMs: options.postSettleMs } : {}),
      ...(options.restoreWindowMs !== undefined ? { restoreWindowMs: options.restoreWindowMs } : {}),
    },
  };
  const webhooks = createWebhooks(options, { backup: jobs.backup, pollers, clock, logger, replicaId });
  webhooks?.start();
  exchangeObservers.push(
    registerGatewayMetrics(registry, {
      atlas,
      families,
      pollers,
      loaderStats,
      unknownValues,
      readCache,
      ...(admission ? { upstream: { inFlight: () => admission.inFlight, shed: () => admission.shed } } : {}),
    }).onExchange,
  );
  registerProcessMetrics(registry);
  const requestIds = new WeakMap<Request, string>();
  const leanSse = new LeanSseStats();
  const corsPolicy = options.corsPolicy ?? makeCorsPolicy();
  const prometheus = useBoundedPrometheus({
    registry,
    endpoint: '/metrics',
    ...(options.metricsOperationNames ? { operationNames: options.metricsOperationNames } : {}),
  });
  // Set when close() starts: /readyz answers 503 from then on.
  let draining = false;
  const upstreamReady = createReadinessCheck({
    atlas,
    clock,
    redis: options.redis,
    ...(options.readinessIntervalMs !== undefined ? { intervalMs: options.readinessIntervalMs } : {}),
    passThroughOnly: options.atlas.auth.type === 'none',
  });

  const yoga = createYoga<Record<string, never>, GatewayContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/healthz',
    landingPage: false,
    graphiql:
      options.graphiql === false
        ? false
        : {
            title: 'Atlas Backup GraphQL Gateway',
            defaultQuery: EXAMPLE_QUERY,
            // Subscriptions leave GraphiQL as GET requests, which CSRF prevention refuses without one of
            // its headers; GraphiQL is a same-origin page, so it may send one (a cross-site page cannot
            // without a CORS preflight, which is the protection).
            additionalHeaders: { [CSRF_HEADERS[0]!]: '1' },
          },
    renderGraphiQL,
    maskedErrors: { maskError },
    cors: corsPolicy.yoga,
    batching: options.batching ?? false,
    // yoga's own limit pipes every body through a TransformStream (a Node pipeline, and a DOMException
    // when it ends): ~5 % of the CPU of a small query (bench/). useBodyLimit checks Content-Length unread.
    maxRequestBodySize: false,
    // Replaced by useDocumentCache (first plugin below): yoga's own arms two 1 ms timers per request.
    parserAndValidationCache: false,
    logging: yogaLogger(logger, expectedErrorLine),
    context: async ({ request }) => {
      const requestId = requestIdOf(request);
      requestIds.set(request, requestId);
      const caller = socketCallers.get(request) ?? (await authenticate(request));
      return {
        requestId,
        caller,
        unverifiedToken: caller.kind === 'passThrough' && !acceptedCallers.has(caller.id),
        jobs,
        unknownValues,
        webhooks,
        deadline: () => deadlineSignal(request),
        downloads: {
          exposeSnapshotUrl: options.downloads?.exposeSnapshotUrl ?? true,
          baseUrl: options.downloads?.publicBaseUrl ?? new URL(request.url).origin,
        },
        // Made on first use: a subscription never needs them.
        loaders: new LazyLoaders(() => {
          loaderStats.requests++;
          const deadline = deadlineSignal(request);
          return createLoaders({
            stats: loaderStats,
            service: jobs.backup({
              use: 'read',
              // One id per GraphQL request, sent upstream as x-request-id on each of its Atlas calls.
              requestId,
              // A request that ends (client gone, execution deadline) stops its Atlas calls too.
              signal: deadline ? AbortSignal.any([request.signal, deadline]) : request.signal,
              bearerToken: caller.atlasBearerToken,
              spender: caller.id,
              maxConcurrency: options.maxUpstreamConcurrency,
              // Callers who may see different things never share a cached answer.
              cacheScope: cacheScopeOf(caller),
              fresh: wantsFreshData(request.headers),
            }),
          });
        }),
      };
    },
    plugins: [
      useDocumentCache(),
      useBodyLimit(options.maxBodyBytes ?? 25_000_000),
      // yoga's readiness plugin sends a Response the check makes as it is: the body names each check.
      useReadinessCheck({
        endpoint: '/readyz',
        check: async ({ fetchAPI }) => {
          const readiness = await upstreamReady();
          return readinessResponse(draining ? drainingReadiness(readiness) : readiness, fetchAPI.Response);
        },
      }),
      useRootPointer({ graphiql: options.graphiql !== false }),
      prometheus.metrics,
      useOperationSpans(),
      useAccessLog(logger, requestIds),
      useRefusalStatus(),
      ...(options.plugins ?? []),
      // Last: only what every check above let run is labelled by its operation name.
      prometheus.admission,
      // After every plugin's own onResultProcess: it only changes how an accepted stream is written.
      ...(options.leanSse === false ? [] : [useLeanSse({ ...options.leanSse, stats: leanSse })]),
    ],
  });

  const downloadRoute = createDownloadRoute({
    jobs,
    authenticate,
    logger,
    ...(options.downloads?.dispatcher ? { dispatcher: options.downloads.dispatcher } : {}),
    ...(options.downloads?.renewMarginMs !== undefined
      ? { renewMarginMs: options.downloads.renewMarginMs }
      : {}),
    ...(options.downloads?.renewValidityMs !== undefined
      ? { renewValidityMs: options.downloads.renewValidityMs }
      : {}),
    ...(options.downloads?.renewWaitMs !== undefined ? { renewWaitMs: options.downloads.renewWaitMs } : {}),
    ...(options.downloads?.admit ? { admit: options.downloads.admit } : {}),
  });
  registerDownloadMetrics(registry, downloadRoute.counts);
  if (webhooks) registerWebhookMetrics(registry, webhooks);
  // Archives bypass yoga: they are piped socket to socket (see createDownloadRoute).
  const server = createServer(serverTimeouts(options.connections), (req, res) => {
    if (downloadRoute.handles(req.url)) downloadRoute.handle(req, res);
    else void yoga(req, res);
  });
  const connections = limitConnections(server, options.connections);
  registerConnectionMetrics(registry, connections);
  const ws = attachGraphQLWs(server, yoga, {
    // One origin policy for both transports: the upgrade is checked as a CORS request would be.
    allowOrigin: (origin, host) => isSameOrigin(origin, host) || corsPolicy.allowed(origin),
    ...options.webSocket,
    authenticate,
    socketCallers,
    logger,
  });
  // Once listening, an error of the server itself (accept failing: EMFILE) is logged, not fatal.
  server.on('error', (err) => {
    if (server.listening) logger.error({ err }, 'HTTP server error');
  });
  return {
    yoga,
    server,
    atlas,
    readCache,
    families,
    completedSnapshots,
    pollers,
    registry,
    connections,
    corsPolicy,
    upstream: { inFlight: () => admission?.inFlight ?? 0, shed: () => admission?.shed ?? 0 },
    downloads: downloadRoute.counts,
    webSocket: { openConnections: () => ws.openConnections(), activeOperations: () => ws.activeOperations() },
    leanSse,
    webhooks,
    listen: (port = 0, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    logger,
    close: async ({ graceMs = 10_000 } = {}) => {
      // Not ready any more first, so a load balancer stops sending new work; then every subscription
      // gets its last event (SHUTTING_DOWN) and completes, so its connection can close cleanly.
      draining = true;
      pollers.close();
      await ws.close({ graceMs });
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      // After the requests in flight had their grace: they settle their keys; what is left is orphaned
      // (the lease runs out) and resolved by another replica.
      jobs.idempotency.close?.();
      // POSTs in flight are handed back to the outbox (due at once) before Redis goes.
      await webhooks?.close();
      await downloadRoute.close();
      await atlas.close();
    },
  };
}

/** The webhooks of `options.webhooks`, or undefined when no hook is configured. */
function createWebhooks(
  options: GatewayOptions,
  deps: {
    backup: JobsRuntime['backup'];
    pollers: JobPollers;
    clock: Clock;
    logger: Logger;
    replicaId: string;
  },
): Webhooks | undefined {
  const w = options.webhooks;
  if (!w || w.hooks.length === 0) return undefined;
  const timers = w.timers ?? realTimers;
  return new Webhooks({
    hooks: w.hooks,
    outbox: options.redis
      ? new RedisWebhookOutbox(options.redis, {
          ...(w.claimIdleMs !== undefined ? { claimIdleMs: w.claimIdleMs } : {}),
        })
      : new MemoryWebhookOutbox({
          ...(w.memoryOutboxMax !== undefined ? { maxBacklog: w.memoryOutboxMax } : {}),
        }),
    source: w.source ?? scopeJobChangeSource({ pollers: deps.pollers, backup: deps.backup }, deps.logger),
    consumer: deps.replicaId,
    clock: deps.clock,
    timers,
    logger: deps.logger,
    ...(w.policy ? { policy: w.policy } : {}),
    ...(w.random ? { random: w.random } : {}),
  });
}

// A caller's x-request-id is kept when it is a sane token (it ends up in Atlas's logs); else a new one.
function requestIdOf(request: Request): string {
  const given = request.headers.get('x-request-id');
  return given && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : randomUUID();
}
