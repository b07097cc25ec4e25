import { ConfigError, loadConfig, type GatewayConfig } from './config/index.js';
import { createGatewayFromConfig, type GatewayOverrides } from './gateway-from-config.js';
import { listenErrorLine, type ListenTarget } from './gateway-listen-error.js';
import type { Simulator } from './simulator/index.js';

// Reads the environment, builds, listens. Everything else lives in createGatewayFromConfig.
let config: GatewayConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

// A port in use or a host that is not one is the environment's fault, said in one line, exit 2 like a
// refused configuration (the stack would only point into node:net).
const listenOr2 = async <T>(listening: Promise<T>, at: ListenTarget): Promise<T> => {
  try {
    return await listening;
  } catch (err) {
    console.error(listenErrorLine(err, at));
    process.exit(2);
  }
};

let sim: Simulator | undefined;
let atlas: GatewayOverrides['atlas'];
if (config.demo) {
  // Loaded only in demo mode: production never carries the simulator (its code, its second server).
  const { startSimulator, simulatorOptionsFromConfig } = await import('./simulator/index.js');
  const options = simulatorOptionsFromConfig(config.simulator);
  const simPort = config.simulator.port ?? 0;
  sim = await listenOr2(startSimulator({ ...options, port: simPort }), {
    portVar: 'ATLAS_SIM_PORT',
    port: simPort,
    hostVar: 'the simulator host',
    host: '127.0.0.1',
  });
  const [owner] = options.credentials;
  atlas = {
    baseUrl: sim.url,
    auth: { type: 'oauth', clientId: owner.clientId, clientSecret: owner.clientSecret },
  };
}

const built = createGatewayFromConfig(config, atlas ? { atlas } : {});
const { gateway } = built;
const logger = gateway.logger;
const url = await listenOr2(gateway.listen(config.server.port, config.server.host), {
  portVar: 'PORT',
  port: config.server.port,
  hostVar: 'HOST',
  host: config.server.host,
});
const upstream = config.atlas.auth;
console.log(`Atlas Backup GraphQL Gateway on ${url}/graphql  (GraphiQL: open it in a browser)`);
console.log(
  sim
    ? `  demo mode: no Atlas credentials set, so the embedded Atlas simulator at ${sim.url} answers (docs/simulator.md)`
    : `  upstream: ${config.atlas.baseUrl} with ${
        upstream.type === 'oauth'
          ? 'a service account (OAuth)'
          : upstream.type === 'digest'
            ? 'an API key (Digest)'
            : "each caller's own token (pass-through)"
      }`,
);
console.log(`  callers: ${built.callers}`);
console.log(
  `  shared state: ${built.redis ? `Redis (${config.redis?.prefix})` : 'this process only (set REDIS_URL for several replicas)'}`,
);
const hooks = config.webhooks.hooks;
if (hooks.length > 0) {
  console.log(
    `  webhooks: ${hooks.map((h) => h.id).join(', ')} (outbox: ${built.redis ? 'Redis' : 'this process, not durable: a restart loses undelivered events'}; docs/webhooks.md)`,
  );
}
console.log(`  health: ${url}/healthz  readiness: ${url}/readyz  metrics: ${url}/metrics`);

const graceMs = config.server.shutdownGraceMs;
let stopping = false;
// SIGTERM: subscriptions end with their final event, in-flight requests get the grace period, the
// OAuth token is revoked, and the process exits within grace + 5 s whatever happens.
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal, graceMs }, 'shutting down');
  setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, graceMs + 5000).unref();
  // The gateway revokes its OAuth token on close, so the simulator stays up until it has.
  await built.close({ graceMs });
  logger.info('gateway closed');
  await sim?.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
