import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
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
  type AtlasClient,
  type AtlasClientConfig,
  type AtlasExchange,
} from './atlas/index.js';
import { systemClock, type Clock } from './time/clock.js';
import type { Authenticate } from './callers/caller.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from './jobs/idempotency-store.js';
import { JobPollers } from './jobs/job-pollers.js';
import type { Timers } from './time/timers.js';
import { RedisIdempotencyStore, type WithoutRedis } from './jobs/redis-idempotency-store.js';
import { RedisJobChannel } from './jobs/redis-job-channel.js';
import { ProjectBackoff } from './replicas/project-backoff.js';
import type { SharedRedis } from './replicas/redis.js';
import { CSRF_HEADERS, deadlineSignal, useBodyLimit } from './security/index.js';
import type { JobsRuntime } from './graphql/context.js';
import { FamilyCache } from './backup/family-cache.js';
import { backupServices } from './backup/backup-service.js';
import type { GatewayContext } from './graphql/context.js';
import { maskError } from './graphql/errors.js';
import { createLoaders, LazyLoaders, LoaderStats } from './graphql/loaders.js';
import { resolvers } from './graphql/resolvers.js';
import { attachGraphQLWs } from './graphql/websocket.js';
import { loadTypeDefs } from './graphql/type-defs.js';
import { createLogger, yogaLogger } from './observability/logger.js';
import { registerGatewayMetrics, registerProcessMetrics } from './observability/metrics.js';
import { useOperationSpans } from './observability/tracing.js';
import { useAccessLog } from './graphql/use-access-log.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  createReadinessCheck,
  draining as drainingReadiness,
  readinessResponse,
} from './gateway-readiness.js';
import { useRootPointer } from './gateway-root.js';
import { logUpstreamExchange } from './gateway-upstream-log.js';

/** Options of `createGateway`. */
export interface GatewayOptions {
  /** The Atlas client: base URL, credentials, and (for tests) an injected dispatcher, clock, sleep. */
  atlas: AtlasClientConfig;
  /** How long a learned cluster family is trusted. @default 600000 */
  familyTtlMs?: number;
  /** Most upstream calls one GraphQL request makes at once. @default 8 */
  maxUpstreamConcurrency?: number;
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
  /** yoga's CORS option. @default yoga's (reflects the request origin) */
  cors?: YogaServerOptions<Record<string, never>, GatewayContext>['cors'];
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
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, never>, GatewayContext>;
  /** The node HTTP server around yoga; not listening until `listen`. */
  server: Server;
  atlas: AtlasClient;
  families: FamilyCache;
  pollers: JobPollers;
  registry: Registry;
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
  const atlas = createAtlasClient({
    clock,
    ...options.atlas,
    beforeSend: (r) => {
      options.atlas.beforeSend?.(r);
      backoff.beforeSend(r);
    },
    onExchange: (e) => {
      options.atlas.onExchange?.(e);
      for (const observe of exchangeObservers) observe(e);
      backoff.onExchange(e);
      logExchange(e);
    },
  });
  const families = new FamilyCache({
    ...(options.redis ? { redis: options.redis } : {}),
    clock,
    ...(options.familyTtlMs !== undefined ? { ttlMs: options.familyTtlMs } : {}),
  });
  const loaderStats = new LoaderStats();
  const schema = makeExecutableSchema<GatewayContext>({ typeDefs: loadTypeDefs(), resolvers });

  const { authenticate } = options;
  const pollers = new JobPollers({
    ...(options.redis
      ? { channel: new RedisJobChannel(options.redis, options.replicaId ?? randomUUID()) }
      : {}),
    ...(options.pollIntervalMs !== undefined ? { intervalMs: options.pollIntervalMs } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
  });
  const jobs: JobsRuntime = {
    backup: backupServices({ atlas, families }),
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
  exchangeObservers.push(
    registerGatewayMetrics(registry, { atlas, families, pollers, loaderStats }).onExchange,
  );
  registerProcessMetrics(registry);
  const requestIds = new WeakMap<Request, string>();
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
    ...(options.cors !== undefined ? { cors: options.cors } : {}),
    batching: options.batching ?? false,
    // yoga's own limit pipes every body through a TransformStream (a Node pipeline, and a DOMException
    // when it ends): ~5 % of the CPU of a small query (bench/). useBodyLimit checks Content-Length unread.
    maxRequestBodySize: false,
    logging: yogaLogger(logger),
    context: async ({ request }) => {
      const requestId = requestIdOf(request);
      requestIds.set(request, requestId);
      const caller = await authenticate(request);
      return {
        requestId,
        caller,
        jobs,
        deadline: () => deadlineSignal(request),
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
              maxConcurrency: options.maxUpstreamConcurrency,
            }),
          });
        }),
      };
    },
    plugins: [
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
      usePrometheus({
        endpoint: '/metrics',
        registry,
        metrics: {
          // Walks every document on every request (~0.1 ms, bench/), and this schema deprecates only an
          // enum value, which that counter does not see anyway.
          graphql_envelop_deprecated_field: false,
          // The same durations as the request_duration histogram, as a summary: its sliding quantiles
          // cost CPU per request and cannot be summed across replicas; the histogram can.
          graphql_envelop_request_time_summary: false,
        },
      }),
      useOperationSpans(),
      useAccessLog(logger, requestIds),
      ...(options.plugins ?? []),
    ],
  });

  const server = createServer(yoga);
  const ws = withoutServerErrors(server, () => attachGraphQLWs(server, yoga));
  // Once listening, an error of the server itself (accept failing: EMFILE) is logged, not fatal.
  server.on('error', (err) => {
    if (server.listening) logger.error({ err }, 'HTTP server error');
  });
  return {
    yoga,
    server,
    atlas,
    families,
    pollers,
    registry,
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
      await atlas.close();
    },
  };
}

// ws forwards the HTTP server's 'error' events to its WebSocket server, where graphql-ws prints any
// of them as "Internal error emitted on the WebSocket server" with a stack; the only such errors are
// listen errors, which listen() rejects with for the entry point to explain in one line.
function withoutServerErrors<T>(server: Server, attach: () => T): T {
  const before = new Set(server.listeners('error'));
  const attached = attach();
  for (const l of server.listeners('error')) {
    if (!before.has(l)) server.off('error', l as (err: Error) => void);
  }
  return attached;
}

// A caller's x-request-id is kept when it is a sane token (it ends up in Atlas's logs); else a new one.
function requestIdOf(request: Request): string {
  const given = request.headers.get('x-request-id');
  return given && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : randomUUID();
}
