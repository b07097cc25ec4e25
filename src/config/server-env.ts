import { resolveConnectionLimits } from '../security/connection-limits.js';
import { envVar, integer, text } from './env-var.js';
import type { ServerConfig } from './gateway-config.js';
import type { EnvReading, EnvValues } from './read-env.js';

// The connection limits' defaults are the module's own, so the two cannot drift apart.
const CONNECTIONS = resolveConnectionLimits();

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
  GATEWAY_HEADERS_TIMEOUT_MS: envVar(
    {
      group: 'server',
      description:
        'Time a client has to send the headers of a request (HTTP 408 after it); also how long a new connection may stay silent.',
      example: '5000',
      default: CONNECTIONS.headersTimeoutMs,
    },
    integer(50, 300_000),
  ),
  GATEWAY_REQUEST_TIMEOUT_MS: envVar(
    {
      group: 'server',
      description:
        'Time a client has to send a whole request, headers and body (HTTP 408 after it); answers and streams are not limited.',
      example: '15000',
      default: CONNECTIONS.requestTimeoutMs,
    },
    integer(50, 300_000),
  ),
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: envVar(
    {
      group: 'server',
      description:
        'How long an idle keep-alive connection waits for its next request; above the idle timeout of a proxy in front.',
      example: '65000',
      default: CONNECTIONS.keepAliveTimeoutMs,
    },
    integer(50, 600_000),
  ),
  GATEWAY_MAX_CONNECTIONS: envVar(
    {
      group: 'server',
      description:
        'Most connections open at once (HTTP, SSE, WebSocket); more are closed on accept. Keep it below `ulimit -n`; 0: no cap.',
      example: '20000',
      default: CONNECTIONS.maxConnections,
    },
    integer(0, 10_000_000),
  ),
  GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: envVar(
    {
      group: 'server',
      description:
        'Most connections open at once from one client address (IPv6: one /64); behind a proxy, above its pool size, or 0 (no cap).',
      example: '32',
      default: CONNECTIONS.maxConnectionsPerAddress,
    },
    integer(0, 10_000_000),
  ),
  GATEWAY_METRICS_OPERATION_NAMES: envVar(
    {
      group: 'server',
      description:
        'Operation names /metrics labels as themselves: the first N that accepted callers run (the rest read `other`); with a persisted-operations manifest, its names instead.',
      example: '20',
      default: 50,
    },
    integer(0, 10_000),
  ),
};

export function serverFromEnv(v: EnvValues<typeof serverEnv>, reading: EnvReading): ServerConfig {
  if (
    v.GATEWAY_HEADERS_TIMEOUT_MS > v.GATEWAY_REQUEST_TIMEOUT_MS &&
    !reading.refused('GATEWAY_HEADERS_TIMEOUT_MS') &&
    !reading.refused('GATEWAY_REQUEST_TIMEOUT_MS')
  ) {
    reading.problem(
      'GATEWAY_HEADERS_TIMEOUT_MS',
      `GATEWAY_HEADERS_TIMEOUT_MS: expected at most GATEWAY_REQUEST_TIMEOUT_MS (${v.GATEWAY_REQUEST_TIMEOUT_MS}), got ${v.GATEWAY_HEADERS_TIMEOUT_MS}`,
    );
  }
  return {
    port: v.PORT,
    host: v.HOST,
    shutdownGraceMs: v.GATEWAY_SHUTDOWN_GRACE_MS,
    replicaId: v.GATEWAY_REPLICA_ID,
    connections: {
      headersTimeoutMs: v.GATEWAY_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: v.GATEWAY_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: v.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: v.GATEWAY_MAX_CONNECTIONS,
      maxConnectionsPerAddress: v.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS,
    },
    metricsOperationNames: v.GATEWAY_METRICS_OPERATION_NAMES,
  };
}
