import { authFromEnv, type AuthSetup } from './callers/auth-config.js';
import { ConfigError, loadConfig, type GatewayConfig } from './config.js';
import { createGateway } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { setupTracing } from './observability/tracing.js';
import { connectRedis } from './replicas/redis.js';
import {
  securityFromEnv,
  securityPlugins,
  securityYogaOptions,
  type SecurityOptions,
} from './security/index.js';
import { SimEnvError, simulatorOptionsFromEnv, startSimulator, type Simulator } from './simulator/index.js';

// Reads the environment, builds, listens. Everything else lives in createGateway.
let config: GatewayConfig;
let simOptions;
let auth: AuthSetup;
let security: SecurityOptions;
try {
  config = loadConfig(process.env);
  auth = authFromEnv(process.env, { demo: config.demo });
  security = securityFromEnv(process.env);
  simOptions = config.demo ? simulatorOptionsFromEnv(process.env) : undefined;
} catch (err) {
  if (err instanceof ConfigError || err instanceof SimEnvError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

let sim: Simulator | undefined;
let atlas = { ...config.atlas };
if (simOptions) {
  sim = await startSimulator({ ...simOptions, port: 0 });
  const owner = simOptions.credentials?.[0];
  if (!owner) throw new Error('the simulator has no owner credential');
  atlas = {
    ...atlas,
    baseUrl: sim.url,
    auth: { type: 'oauth', clientId: owner.clientId, clientSecret: owner.clientSecret },
  };
}

const logger = createLogger({ level: config.logLevel });
const limits = securityYogaOptions(security);
const tracing = setupTracing(process.env);
const redis = config.redis
  ? connectRedis({
      url: config.redis.url,
      prefix: config.redis.prefix,
      logger,
      degraded: [
        'idempotency keys are per replica',
        'each replica polls the jobs its own subscribers watch',
        'cluster families and Atlas backoffs are learned per replica',
      ],
    })
  : undefined;
const gateway = createGateway({
  logger,
  atlas: { baseUrl: atlas.baseUrl, auth: atlas.auth, legacyV1: atlas.legacyV1 },
  familyTtlMs: config.familyTtlMs,
  maxUpstreamConcurrency: config.maxUpstreamConcurrency,
  pollIntervalMs: config.pollIntervalMs,
  authenticate: auth.authenticate,
  ...(redis ? { redis } : {}),
  ...(config.replicaId ? { replicaId: config.replicaId } : {}),
  plugins: securityPlugins(security),
  batching: limits.batching,
  graphiql: limits.graphiql,
  maxBodyBytes: limits.maxBodyBytes,
  ...(limits.cors !== undefined ? { cors: limits.cors } : {}),
});
const url = await gateway.listen(config.port, config.host);
console.log(`Atlas Backup GraphQL Gateway on ${url}/graphql  (GraphiQL: open it in a browser)`);
console.log(
  sim
    ? `  demo mode: no Atlas credentials set, so the embedded Atlas simulator at ${sim.url} answers (see README)`
    : `  upstream: ${atlas.baseUrl} with ${
        atlas.auth.type === 'oauth'
          ? 'a service account (OAuth)'
          : atlas.auth.type === 'digest'
            ? 'an API key (Digest)'
            : "each caller's own token (pass-through)"
      }`,
);
console.log(`  callers: ${auth.mode}`);
console.log(
  `  shared state: ${redis ? `Redis (${config.redis?.prefix})` : 'this process only (set REDIS_URL for several replicas)'}`,
);
console.log(`  health: ${url}/healthz  readiness: ${url}/readyz  metrics: ${url}/metrics`);

let stopping = false;
// SIGTERM: subscriptions end with their final event, in-flight requests get the grace period, the
// OAuth token is revoked, and the process exits within grace + 5 s whatever happens.
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
  setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownGraceMs + 5000).unref();
  await gateway.close({ graceMs: config.shutdownGraceMs });
  logger.info('gateway closed');
  await sim?.close();
  await redis?.close();
  await tracing?.shutdown();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
