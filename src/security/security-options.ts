import { resolveWebSocketLimits, type WebSocketLimits } from '../graphql/websocket-limits.js';

export type { WebSocketLimits } from '../graphql/websocket-limits.js';

/** A persisted-operations manifest: sha256 (hex) of a document → the document. */
export type PersistedManifest = ReadonlyMap<string, string>;

/**
 * `off`: any document runs. `allow`: a client may send either a document or the hash of one in the
 * manifest. `enforce`: only hashes of documents in the manifest run (frontends ship the manifest).
 */
export type PersistedOperationsMode = 'off' | 'allow' | 'enforce';

/** Per-caller rate limit: at most `points` operations per `windowMs`. */
export interface RateLimitOptions {
  /** Operations one caller may run per window (each operation of a batch counts). @default 300 */
  points: number;
  /** The window, in milliseconds. @default 60000 */
  windowMs: number;
}

/** The abuse limits of the gateway. Every field is optional; `resolveSecurityOptions` fills defaults. */
export interface SecurityOptions {
  /**
   * Production mode: introspection, field suggestions and GraphiQL off, and no cross-origin access
   * unless `corsOrigins` lists origins.
   * @default false
   */
  production?: boolean;
  /** Deepest selection nesting of an operation (fragments count their own depth). @default 10 */
  maxDepth?: number;
  /** Most aliases in one operation. @default 15 */
  maxAliases?: number;
  /**
   * Most lexical tokens in one document; counted while parsing, so a huge document is never parsed
   * whole.
   * @default 1000
   */
  maxTokens?: number;
  /** Most directives in one operation. @default 20 */
  maxDirectives?: number;
  /**
   * Most estimated cost of one operation: roughly the number of objects it may return. A connection
   * costs `first` times its selection, a plain list `costListSize` times it, an object 1, a scalar 0.
   * @default 10000
   */
  maxCost?: number;
  /** How long a list without `first` (projects, a project's clusters) is assumed to be. @default 10 */
  costListSize?: number;
  /** Most operations in one batched request; 0 refuses batches. Pass `batching` to yoga. @default 0 */
  batchLimit?: number;
  /** Largest request body, in bytes; larger ones get HTTP 413 before any parsing. @default 102400 */
  maxBodyBytes?: number;
  /**
   * Per-caller rate limit, over operations and started subscriptions alike (a subscription that
   * fails for the caller's own reason counts twice); `false` turns it off.
   * @default { points: 300, windowMs: 60000 }
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Subscriptions one caller (its id, or its address when anonymous) may run at once in this
   * process, over SSE and graphql-ws together; more are refused with `RATE_LIMITED`. 0 turns the cap
   * off.
   * @default 20
   */
  maxSubscriptions?: number;
  /**
   * Key anonymous callers by the last `X-Forwarded-For` entry (the address the proxy in front of the
   * gateway saw) instead of the socket's address. Only behind a proxy that sets it.
   * @default false
   */
  trustProxy?: boolean;
  /**
   * An operation still running after this many ms is stopped with an error; 0 turns it off.
   * @default 15000
   */
  executionTimeoutMs?: number;
  /** Persisted operations. @default 'off' */
  persistedOperations?: PersistedOperationsMode;
  /** The manifest for `allow` and `enforce` (see `loadPersistedManifest`). @default empty */
  persistedManifest?: PersistedManifest;
  /**
   * Refuse GET and "simple" POST requests (form, multipart, text/plain: the ones a browser sends
   * cross-site without a CORS preflight) unless they carry one of `csrfHeaders`.
   * @default true
   */
  csrfPrevention?: boolean;
  /**
   * Any of these headers marks a request as not forgeable by a plain HTML form or link.
   * @default CSRF_HEADERS
   */
  csrfHeaders?: readonly string[];
  /**
   * Origins allowed to call cross-origin (`https://app.example.com`), with credentials; or `['*']`:
   * any origin, never with credentials, refused in production. Unset: no cross-origin access.
   * @default undefined
   */
  corsOrigins?: readonly string[];
  /**
   * Also allow pages served from this machine (`localhost`, `127.x.x.x`, `[::1]`, any port), never
   * with credentials. `createGatewayFromConfig` turns it on in demo mode when no origin is listed.
   * @default false
   */
  corsLoopback?: boolean;
  /**
   * graphql-ws's own limits: message size, connections in all and per address, operations and
   * `subscribe` rate per socket, `connection_init` timeout (the GraphQL limits above apply as on HTTP).
   * @default DEFAULT_WEBSOCKET_LIMITS
   */
  webSocket?: Partial<WebSocketLimits>;
}

/**
 * Headers accepted as CSRF proof: ours, yoga's default and Apollo Client's (so its upload link and
 * `apollo-require-preflight` habit work unchanged). Any one of them forces a browser preflight.
 */
export const CSRF_HEADERS: readonly string[] = [
  'x-graphql-csrf',
  'x-graphql-yoga-csrf',
  'apollo-require-preflight',
];

export type ResolvedSecurityOptions = Required<Omit<SecurityOptions, 'corsOrigins' | 'webSocket'>> &
  Pick<SecurityOptions, 'corsOrigins'> & { webSocket: WebSocketLimits };

/** The options with every default filled in. */
export function resolveSecurityOptions(options: SecurityOptions = {}): ResolvedSecurityOptions {
  return {
    production: options.production ?? false,
    maxDepth: options.maxDepth ?? 10,
    maxAliases: options.maxAliases ?? 15,
    maxTokens: options.maxTokens ?? 1000,
    maxDirectives: options.maxDirectives ?? 20,
    maxCost: options.maxCost ?? 10_000,
    costListSize: options.costListSize ?? 10,
    batchLimit: options.batchLimit ?? 0,
    maxBodyBytes: options.maxBodyBytes ?? 102_400,
    rateLimit: options.rateLimit ?? { points: 300, windowMs: 60_000 },
    maxSubscriptions: options.maxSubscriptions ?? 20,
    trustProxy: options.trustProxy ?? false,
    executionTimeoutMs: options.executionTimeoutMs ?? 15_000,
    persistedOperations: options.persistedOperations ?? 'off',
    persistedManifest: options.persistedManifest ?? new Map(),
    csrfPrevention: options.csrfPrevention ?? true,
    csrfHeaders: options.csrfHeaders ?? CSRF_HEADERS,
    corsLoopback: options.corsLoopback ?? false,
    webSocket: resolveWebSocketLimits(options.webSocket),
    ...(options.corsOrigins !== undefined ? { corsOrigins: options.corsOrigins } : {}),
  };
}
