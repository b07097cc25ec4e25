import { normaliseOrigin } from '../security/cors-policy.js';
import { loadPersistedManifest } from '../security/load-persisted-manifest.js';
import { resolveSecurityOptions } from '../security/security-options.js';
import { boolean, commaList, envVar, integer, invalid, oneOf, text } from './env-var.js';
import type { SecurityConfig } from './gateway-config.js';
import type { EnvReading, EnvValues } from './read-env.js';

// The variables' defaults are the security options' own, so the two cannot drift apart.
const DEFAULTS = resolveSecurityOptions();
const DEFAULT_RATE_LIMIT =
  DEFAULTS.rateLimit === false ? { points: 0, windowMs: 60_000 } : DEFAULTS.rateLimit;

// graphql-ws's own limits (src/graphql/websocket-limits.ts); the GraphQL limits above apply to it too.
const WS = DEFAULTS.webSocket;
const webSocketEnv = {
  GATEWAY_WS_MAX_PAYLOAD_BYTES: envVar(
    {
      group: 'security',
      description:
        'Largest graphql-ws message in bytes; a larger one closes the socket (1009) before it is read.',
      example: '32768',
      default: WS.maxPayloadBytes,
    },
    integer(1024, 16 * 1024 * 1024),
  ),
  GATEWAY_WS_MAX_CONNECTIONS: envVar(
    {
      group: 'security',
      description: 'WebSocket connections open at once, all clients together; more get HTTP 429.',
      example: '5000',
      default: WS.maxConnections,
    },
    integer(1, 1_000_000),
  ),
  GATEWAY_WS_MAX_CONNECTIONS_PER_ADDRESS: envVar(
    {
      group: 'security',
      description:
        'WebSocket connections open at once from one client address (see GATEWAY_TRUST_PROXY); more get HTTP 429.',
      example: '10',
      default: WS.maxConnectionsPerAddress,
    },
    integer(1, 1_000_000),
  ),
  GATEWAY_WS_MAX_OPERATIONS_PER_SOCKET: envVar(
    {
      group: 'security',
      description:
        'Operations running at once on one WebSocket (subscriptions until they end); more get `RATE_LIMITED`.',
      example: '10',
      default: WS.maxOperationsPerSocket,
    },
    integer(1, 100_000),
  ),
  GATEWAY_WS_SUBSCRIBE_RATE: envVar(
    {
      group: 'security',
      description:
        '`subscribe` messages per WebSocket per window: over it `RATE_LIMITED`, over twice it the socket closes (4429).',
      example: '30',
      default: WS.subscribeRate.points,
    },
    integer(1, 1_000_000),
  ),
  GATEWAY_WS_SUBSCRIBE_RATE_WINDOW_MS: envVar(
    {
      group: 'security',
      description: 'The window of GATEWAY_WS_SUBSCRIBE_RATE in milliseconds.',
      example: '60000',
      default: WS.subscribeRate.windowMs,
    },
    integer(1000, 3_600_000),
  ),
  GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS: envVar(
    {
      group: 'security',
      description: 'A WebSocket that sends no `connection_init` within this is closed (4408).',
      example: '5000',
      default: WS.connectionInitTimeoutMs,
    },
    integer(100, 60_000),
  ),
};

export const securityEnv = {
  NODE_ENV: envVar(
    {
      group: 'security',
      description: '`production` turns production mode on, unless GATEWAY_PRODUCTION says otherwise.',
      example: 'production',
    },
    text,
  ),
  GATEWAY_PRODUCTION: envVar(
    {
      group: 'security',
      description:
        'Production mode: introspection, suggestions and GraphiQL off, no cross-origin access unless listed.',
      example: 'true',
      defaultText: '`true` when NODE_ENV=production, else `false`',
    },
    boolean,
  ),
  GATEWAY_MAX_DEPTH: envVar(
    {
      group: 'security',
      description: 'Deepest selection nesting of an operation.',
      example: '8',
      default: DEFAULTS.maxDepth,
    },
    integer(1, 1000),
  ),
  GATEWAY_MAX_ALIASES: envVar(
    {
      group: 'security',
      description: 'Most aliases in one operation.',
      example: '5',
      default: DEFAULTS.maxAliases,
    },
    integer(0, 10_000),
  ),
  GATEWAY_MAX_TOKENS: envVar(
    {
      group: 'security',
      description: 'Most tokens in one document, counted while parsing.',
      example: '500',
      default: DEFAULTS.maxTokens,
    },
    integer(10, 1_000_000),
  ),
  GATEWAY_MAX_DIRECTIVES: envVar(
    {
      group: 'security',
      description: 'Most directives in one operation.',
      example: '4',
      default: DEFAULTS.maxDirectives,
    },
    integer(0, 10_000),
  ),
  GATEWAY_MAX_COST: envVar(
    {
      group: 'security',
      description: 'Most estimated cost of one operation, roughly the number of objects it may return.',
      example: '2000',
      default: DEFAULTS.maxCost,
    },
    integer(1, 1_000_000_000),
  ),
  GATEWAY_COST_LIST_SIZE: envVar(
    {
      group: 'security',
      description: 'Assumed length of a list without `first` when estimating cost.',
      example: '25',
      default: DEFAULTS.costListSize,
    },
    integer(1, 100_000),
  ),
  GATEWAY_BATCH_LIMIT: envVar(
    {
      group: 'security',
      description: 'Most operations in one batched request; 0 refuses batches.',
      example: '10',
      default: DEFAULTS.batchLimit,
    },
    integer(0, 1000),
  ),
  GATEWAY_MAX_BODY_BYTES: envVar(
    {
      group: 'security',
      description: 'Largest request body in bytes; larger ones get HTTP 413 unread.',
      example: '65536',
      default: DEFAULTS.maxBodyBytes,
    },
    integer(1024, 100 * 1024 * 1024),
  ),
  GATEWAY_RATE_LIMIT: envVar(
    {
      group: 'security',
      description: 'Operations per caller per window, counted per process; 0 turns the limit off.',
      example: '120',
      default: DEFAULT_RATE_LIMIT.points,
    },
    integer(0, 1_000_000_000),
  ),
  GATEWAY_RATE_LIMIT_WINDOW_MS: envVar(
    {
      group: 'security',
      description: 'The rate-limit window in milliseconds.',
      example: '30000',
      default: DEFAULT_RATE_LIMIT.windowMs,
    },
    integer(1000, 86_400_000),
  ),
  GATEWAY_MAX_SUBSCRIPTIONS: envVar(
    {
      group: 'security',
      description:
        'Subscriptions one caller may run at once (SSE and WebSocket), per process; 0 turns the cap off.',
      example: '5',
      default: DEFAULTS.maxSubscriptions,
    },
    integer(0, 1_000_000),
  ),
  GATEWAY_TRUST_PROXY: envVar(
    {
      group: 'security',
      description:
        'Keys anonymous callers by the last `X-Forwarded-For` entry; only behind a proxy that sets it.',
      example: 'true',
      default: DEFAULTS.trustProxy,
    },
    boolean,
  ),
  GATEWAY_EXECUTION_TIMEOUT_MS: envVar(
    {
      group: 'security',
      description: 'Stops an operation running longer than this; 0 turns the timeout off.',
      example: '5000',
      default: DEFAULTS.executionTimeoutMs,
    },
    integer(0, 3_600_000),
  ),
  GATEWAY_PERSISTED_OPERATIONS: envVar(
    {
      group: 'security',
      description:
        'Persisted operations: `off`, `allow` (hashes and full documents) or `enforce` (only hashes of the manifest).',
      example: 'enforce',
      default: DEFAULTS.persistedOperations,
    },
    oneOf(['off', 'allow', 'enforce'], '"off", "allow" or "enforce"'),
  ),
  GATEWAY_PERSISTED_OPERATIONS_FILE: envVar(
    {
      group: 'security',
      description:
        'The manifest (`{ "<sha256>": "query …" }` or Apollo\'s), read at start; needed for `allow` and `enforce`.',
      example: 'persisted-documents.json',
    },
    text,
  ),
  GATEWAY_CSRF_PREVENTION: envVar(
    {
      group: 'security',
      description: 'Requires a CSRF header on GET and form or multipart requests.',
      example: 'false',
      default: DEFAULTS.csrfPrevention,
    },
    boolean,
  ),
  GATEWAY_CORS_ORIGINS: envVar(
    {
      group: 'security',
      description:
        'Origins whose pages may read answers cross-origin, with credentials (`https://app.example.com`), comma-separated; or `*`: any origin, without credentials, refused in production.',
      example: 'https://app.example.com, https://admin.example.com/',
      defaultText: 'none (demo mode: pages on localhost, 127.0.0.1 or [::1], without credentials)',
    },
    (value) => {
      const list = commaList(value);
      const normalized = list.map((o) => (o === '*' ? o : normaliseOrigin(o)));
      const bad = list.filter((_, i) => normalized[i] === undefined);
      if (bad.length > 0 || list.length === 0 || (list.includes('*') && list.length > 1)) {
        return invalid(
          'a comma list of origins (https://app.example.com), or "*" alone',
          bad.length > 0 ? bad.map((b) => JSON.stringify(b)).join(', ') : JSON.stringify(value),
        );
      }
      return normalized.filter((o) => o !== undefined);
    },
  ),
  ...webSocketEnv,
};

export function securityFromEnv(v: EnvValues<typeof securityEnv>, reading: EnvReading): SecurityConfig {
  const mode = v.GATEWAY_PERSISTED_OPERATIONS;
  const file = v.GATEWAY_PERSISTED_OPERATIONS_FILE;
  let persistedManifest = DEFAULTS.persistedManifest;
  if (mode !== 'off') {
    if (file === undefined) {
      reading.problem(
        'GATEWAY_PERSISTED_OPERATIONS_FILE',
        `GATEWAY_PERSISTED_OPERATIONS_FILE: expected the path of the manifest JSON (GATEWAY_PERSISTED_OPERATIONS is "${mode}"), got nothing`,
      );
    } else {
      try {
        persistedManifest = loadPersistedManifest(file);
      } catch (err) {
        reading.problem(
          'GATEWAY_PERSISTED_OPERATIONS_FILE',
          `GATEWAY_PERSISTED_OPERATIONS_FILE: expected a JSON object of sha256 → document, got ${(err as Error).message}`,
        );
      }
    }
  }
  // GATEWAY_PRODUCTION, when set, wins over NODE_ENV (a staging box may run NODE_ENV=production).
  const production = v.GATEWAY_PRODUCTION ?? v.NODE_ENV === 'production';
  if (production && v.GATEWAY_CORS_ORIGINS?.includes('*')) {
    reading.problem(
      'GATEWAY_CORS_ORIGINS',
      'GATEWAY_CORS_ORIGINS: expected the origins of your frontends in production (https://app.example.com, comma-separated), got "*" (any site could read the answers)',
    );
  }
  return {
    production,
    maxDepth: v.GATEWAY_MAX_DEPTH,
    maxAliases: v.GATEWAY_MAX_ALIASES,
    maxTokens: v.GATEWAY_MAX_TOKENS,
    maxDirectives: v.GATEWAY_MAX_DIRECTIVES,
    maxCost: v.GATEWAY_MAX_COST,
    costListSize: v.GATEWAY_COST_LIST_SIZE,
    batchLimit: v.GATEWAY_BATCH_LIMIT,
    maxBodyBytes: v.GATEWAY_MAX_BODY_BYTES,
    rateLimit:
      v.GATEWAY_RATE_LIMIT === 0
        ? false
        : { points: v.GATEWAY_RATE_LIMIT, windowMs: v.GATEWAY_RATE_LIMIT_WINDOW_MS },
    maxSubscriptions: v.GATEWAY_MAX_SUBSCRIPTIONS,
    trustProxy: v.GATEWAY_TRUST_PROXY,
    executionTimeoutMs: v.GATEWAY_EXECUTION_TIMEOUT_MS,
    persistedOperations: mode,
    persistedManifest,
    csrfPrevention: v.GATEWAY_CSRF_PREVENTION,
    corsOrigins: v.GATEWAY_CORS_ORIGINS,
    webSocket: {
      maxPayloadBytes: v.GATEWAY_WS_MAX_PAYLOAD_BYTES,
      maxConnections: v.GATEWAY_WS_MAX_CONNECTIONS,
      maxConnectionsPerAddress: v.GATEWAY_WS_MAX_CONNECTIONS_PER_ADDRESS,
      maxOperationsPerSocket: v.GATEWAY_WS_MAX_OPERATIONS_PER_SOCKET,
      subscribeRate: { points: v.GATEWAY_WS_SUBSCRIBE_RATE, windowMs: v.GATEWAY_WS_SUBSCRIBE_RATE_WINDOW_MS },
      connectionInitTimeoutMs: v.GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS,
    },
  };
}
