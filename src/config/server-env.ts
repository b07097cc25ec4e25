import { envVar, integer, text } from './env-var.js';
import type { ServerConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

export const serverEnv = {
  PORT: envVar(
    {
      group: 'server',
      description: 'TCP port the gateway listens on (0 picks a free one).',
      example: '8080',
      default: 4000,
    },
    integer(0, 65535),
  ),
  HOST: envVar(
    {
      group: 'server',
      description: 'Address the gateway listens on (`0.0.0.0` for every interface).',
      example: '0.0.0.0',
      default: '127.0.0.1',
    },
    text,
  ),
  GATEWAY_SHUTDOWN_GRACE_MS: envVar(
    {
      group: 'server',
      description: 'How long in-flight requests may finish after SIGTERM before connections are cut.',
      example: '5000',
      default: 10_000,
    },
    integer(0, 600_000),
  ),
  GATEWAY_REPLICA_ID: envVar(
    {
      group: 'server',
      description: "This replica's name in the fleet (job leases, logs).",
      example: 'gateway-1',
      defaultText: 'a random UUID',
    },
    text,
  ),
};

export function serverFromEnv(v: EnvValues<typeof serverEnv>): ServerConfig {
  return {
    port: v.PORT,
    host: v.HOST,
    shutdownGraceMs: v.GATEWAY_SHUTDOWN_GRACE_MS,
    replicaId: v.GATEWAY_REPLICA_ID,
  };
}
