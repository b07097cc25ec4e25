import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { AtlasClientConfig } from './atlas/index.js';
import { apiKeyAuth } from './callers/api-keys.js';
import { authenticateWith } from './callers/authenticate-with.js';
import { openAccess, type Authenticate } from './callers/caller.js';
import type { CredentialMethod } from './callers/credentials.js';
import { jwtAuth, type JwtKeySource } from './callers/jwt.js';
import { passThroughAuth } from './callers/pass-through.js';
import type { CallersConfig, GatewayConfig, JwtConfig, SecurityConfig } from './config/index.js';
import { createGateway, type Gateway, type GatewayOptions, type GatewayWebhooksOptions } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { operationNamesOf } from './observability/operation-name.js';
import { setupTracing, type TracingSetup } from './observability/tracing.js';
import { connectRedis, type SharedRedis } from './replicas/redis.js';
import {
  callerRateLimit,
  securityPlugins,
  securityYogaOptions,
  type SecurityOptions,
} from './security/index.js';

/**
 * What a caller of `createGatewayFromConfig` injects instead of what the config would build: any
 * `createGateway` option (a logger, a clock, timers, `logging: false`, …), applied last.
 */
export interface GatewayOverrides extends Partial<Omit<GatewayOptions, 'atlas' | 'webhooks'>> {
  /** Merged over the configured webhooks (a test's job changes, timers, jitter). @default the config's */
  webhooks?: Partial<GatewayWebhooksOptions>;
  /**
   * Merged over the config's Atlas settings: demo mode's simulator URL and credentials (required in
   * demo mode, where the config has no base URL), or a test's dispatcher, clock and sleep.
   * @default the config's `atlas` group
   */
  atlas?: Partial<AtlasClientConfig>;
  /** Spans go here, with or without tracing configured (tests). @default the configured exporter */
  spanExporter?: SpanExporter;
}

/** A gateway built from a config, and what it opened besides. */
export interface ConfiguredGateway {
  gateway: Gateway;
  /** How callers authenticate, for the start-up line: `apikey,jwt`, `none`, or `none (demo)`. */
  callers: string;
  /** Opened here from `config.redis`; undefined without it, or when `overrides.redis` was given. */
  redis: SharedRedis | undefined;
  tracing: TracingSetup | undefined;
  /** `gateway.close`, then what was opened here: Redis, then the span exporter (flushed). */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Turns a validated config into a running-ready gateway (not listening): caller authentication, the
 * security plugins, Redis, tracing, then `createGateway`. In-process and side-effect free apart from
 * what it returns to close, so tests build gateways the way `npm start` does.
 */
export function createGatewayFromConfig(
  config: GatewayConfig,
  overrides: GatewayOverrides = {},
): ConfiguredGateway {
  const { atlas: atlasOverrides, spanExporter, webhooks: webhookOverrides, ...gatewayOverrides } = overrides;
  const baseUrl = atlasOverrides?.baseUrl ?? config.atlas.baseUrl;
  if (baseUrl === undefined) {
    throw new Error("demo mode: pass the simulator's URL and credentials in overrides.atlas");
  }
  const logger =
    overrides.logger ??
    createLogger({ level: overrides.logging === false ? 'silent' : config.logging.level });
  const security: SecurityOptions = {
    ...securityOptions(config.security),
    // Demo mode answers pages of this machine (a frontend dev server) unless origins are listed: it
    // serves the simulator's data, never Atlas's.
    corsLoopback: config.demo && !config.security.production && config.security.corsOrigins === undefined,
  };
  const yoga = securityYogaOptions(security);
  // One per-caller budget for GraphQL operations and downloads alike.
  const rateLimit = callerRateLimit(security);
  const callers = callerAuthentication(config.callers);

  const tracing = setupTracing(config.tracing, spanExporter);
  const redis =
    config.redis && !overrides.redis
      ? connectRedis({
          url: config.redis.url,
          prefix: config.redis.prefix,
          logger,
          degraded: [
            config.redis.withoutRedis === 'refuse'
              ? 'keyed mutations are refused (STORE_UNAVAILABLE)'
              : 'idempotency keys are kept in this replica (single-replica mode)',
            'each replica polls the jobs its own subscribers watch',
            'cluster families and Atlas backoffs are learned per replica',
            'the Atlas budget is counted per replica',
            'each replica caches Atlas reads for itself, and our mutations clear only its own entries',
          ],
        })
      : undefined;
  const closeOpened = async () => {
    await redis?.close();
    await tracing?.shutdown();
  };

  let gateway: Gateway;
  try {
    gateway = createGateway({
      logger,
      atlas: {
        auth: config.atlas.auth,
        legacyV1: config.atlas.legacyV1,
        ...atlasOverrides,
        baseUrl,
      },
      familyTtlMs: config.upstream.familyTtlMs,
      maxUpstreamConcurrency: config.upstream.maxUpstreamConcurrency,
      upstreamAdmission: { maxQueued: config.upstream.maxQueuedUpstream },
      pollIntervalMs: config.upstream.pollIntervalMs,
      readCache: config.cache.enabled
        ? { ttlMs: config.cache.ttlMs, maxEntries: config.cache.maxEntries }
        : false,
      atlasBudget: config.upstream.atlasBudget,
      authenticate: callers.authenticate,
      ...(redis ? { redis } : {}),
      ...(config.redis
        ? { idempotencyWithoutRedis: config.redis.withoutRedis, idempotencyLeaseMs: config.redis.leaseMs }
        : {}),
      postSettleMs: config.upstream.postSettleMs,
      restoreWindowMs: config.upstream.restoreWindowMs,
      ...(config.server.replicaId !== undefined ? { replicaId: config.server.replicaId } : {}),
      connections: config.server.connections,
      metricsOperationNames:
        config.security.persistedOperations === 'off'
          ? { max: config.server.metricsOperationNames }
          : { known: operationNamesOf(config.security.persistedManifest.values()) },
      plugins: securityPlugins(security, { rateLimit }),
      batching: yoga.batching,
      graphiql: yoga.graphiql,
      maxBodyBytes: yoga.maxBodyBytes,
      corsPolicy: yoga.corsPolicy,
      webSocket: webSocketOptions(config.security),
      downloads: {
        // The same per-caller budget as GraphQL operations: a download is a way to the data too.
        ...(rateLimit ? { admit: (context: unknown) => rateLimit.take(context) } : {}),
        exposeSnapshotUrl: config.downloads.exposeSnapshotUrl,
        renewMarginMs: config.downloads.renewMarginMs,
        ...(config.downloads.publicUrl !== undefined ? { publicBaseUrl: config.downloads.publicUrl } : {}),
      },
      webhooks: {
        hooks: config.webhooks.hooks,
        policy: config.webhooks.policy,
        claimIdleMs: config.webhooks.claimIdleMs,
        memoryOutboxMax: config.webhooks.memoryOutboxMax,
        ...webhookOverrides,
      },
      ...gatewayOverrides,
    });
  } catch (err) {
    // Nothing else holds them: a failed build must not leave Redis sockets keeping the process alive.
    void closeOpened();
    throw err;
  }
  return {
    gateway,
    callers: callers.mode,
    redis,
    tracing,
    async close(options) {
      await gateway.close(options);
      await closeOpened();
    },
  };
}

/** The abuse limits' options from the config's `security` group. */
export function securityOptions(security: SecurityConfig): SecurityOptions {
  const { corsOrigins, ...rest } = security;
  return { ...rest, ...(corsOrigins !== undefined ? { corsOrigins } : {}) };
}

/**
 * graphql-ws's limits. Its upgrade's `Origin` is checked by the gateway against the same CORS policy as
 * HTTP (`createGateway`), so both transports let the same pages in.
 */
export function webSocketOptions(security: SecurityConfig): NonNullable<GatewayOptions['webSocket']> {
  return { limits: security.webSocket, trustProxy: security.trustProxy };
}

/** How callers are authenticated, and a short summary for the start-up line. */
export function callerAuthentication(callers: CallersConfig): { authenticate: Authenticate; mode: string } {
  const modes = callers.gatewayAuth;
  if (modes === 'unset') return { authenticate: openAccess, mode: 'none (demo)' };
  if (modes === 'none') return { authenticate: openAccess, mode: 'none' };
  const methods: CredentialMethod[] = modes.map((mode) => {
    if (mode === 'apikey') return apiKeyAuth({ keys: [...required(callers.apiKeys, 'apiKeys')] });
    if (mode === 'jwt') return jwtFromConfig(required(callers.jwt, 'jwt'));
    // Alone, pass-through may take the token from Authorization: Bearer; next to API keys and JWTs
    // a bearer is theirs, and an unknown one must not be forwarded to Atlas.
    return passThroughAuth({ acceptBearer: modes.length === 1 });
  });
  return { authenticate: authenticateWith(methods), mode: modes.join(',') };
}

function required<T>(value: T | undefined, field: string): T {
  // loadConfig never returns a method without its settings; a hand-made config could.
  if (value === undefined) throw new Error(`callers.${field}: required by callers.gatewayAuth`);
  return value;
}

function jwtFromConfig(jwt: JwtConfig): CredentialMethod {
  const key: JwtKeySource = 'jwksUrl' in jwt.key ? { jwksUrl: new URL(jwt.key.jwksUrl) } : jwt.key;
  return jwtAuth({
    key,
    issuer: [...jwt.issuer],
    audience: [...jwt.audience],
    projectsClaim: jwt.projectsClaim,
    rightsClaim: jwt.rightsClaim,
    clockToleranceSec: jwt.clockToleranceSec,
    ...(jwt.algorithms ? { algorithms: [...jwt.algorithms] } : {}),
  });
}
