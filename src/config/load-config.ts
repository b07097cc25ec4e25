import { atlasEnv, atlasFromEnv } from './atlas-env.js';
import { cacheEnv, cacheFromEnv } from './cache-env.js';
import { downloadsEnv, downloadsFromEnv } from './downloads-env.js';
import { callersEnv, callersFromEnv, checkProductionDemo } from './callers-env.js';
import type { GatewayConfig, SimulatorConfig } from './gateway-config.js';
import { checkUpstreamTransport, insecureUpstreamEnv } from './insecure-upstream-env.js';
import { loggingEnv, loggingFromEnv } from './logging-env.js';
import { readEnv, type Env } from './read-env.js';
import { redisEnv, redisFromEnv } from './redis-env.js';
import { securityEnv, securityFromEnv } from './security-env.js';
import { serverEnv, serverFromEnv } from './server-env.js';
import { simulatorEnv, simulatorFromEnv } from './simulator-env.js';
import { tracingEnv, tracingFromEnv } from './tracing-env.js';
import { upstreamEnv, upstreamFromEnv } from './upstream-env.js';
import { webhooksEnv, webhooksFromEnv } from './webhooks-env.js';

/** Every variable the gateway reads, once, in the order of the docs table and of the problem lines. */
export const ENV = {
  ...serverEnv,
  ...atlasEnv,
  ...upstreamEnv,
  ...cacheEnv,
  ...insecureUpstreamEnv,
  ...callersEnv,
  ...securityEnv,
  ...downloadsEnv,
  ...redisEnv,
  ...webhooksEnv,
  ...simulatorEnv,
  ...tracingEnv,
  ...loggingEnv,
};

/**
 * Reads and checks the whole environment in one pass: a `ConfigError` lists every problem of every
 * group, else the config comes back as plain data. Names follow the Atlas CLI and Terraform.
 */
export function loadConfig(env: Env): GatewayConfig {
  return readEnv(env, ENV, (v, reading) => {
    // GATEWAY_AUTH is parsed once; demo mode and caller authentication both follow from that parse.
    const { demo, atlas } = atlasFromEnv(v, v.GATEWAY_AUTH, reading);
    const security = securityFromEnv(v, reading);
    const redis = redisFromEnv(v);
    checkProductionDemo(demo, security.production, reading);
    checkUpstreamTransport(v, { atlasBaseUrl: atlas.baseUrl, redisUrl: redis?.url }, reading);
    return {
      server: serverFromEnv(v, reading),
      demo,
      atlas,
      upstream: upstreamFromEnv(v),
      cache: cacheFromEnv(v),
      callers: callersFromEnv(v, demo, reading),
      security,
      redis,
      simulator: simulatorFromEnv(v),
      tracing: tracingFromEnv(v),
      logging: loggingFromEnv(v),
      downloads: downloadsFromEnv(v),
      webhooks: webhooksFromEnv(v, reading, redis !== undefined),
    };
  });
}

/** The simulator's group alone, for `npm run simulator` (the gateway's variables do not concern it). */
export function loadSimulatorConfig(env: Env): SimulatorConfig {
  return readEnv(env, simulatorEnv, simulatorFromEnv);
}
