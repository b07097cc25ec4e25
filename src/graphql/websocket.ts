import type { IncomingMessage, Server } from 'node:http';
import {
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode, handleProtocols, makeServer, type Context, type OperationResult } from 'graphql-ws';
import type { Extra } from 'graphql-ws/use/ws';
import { createGraphQLError, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { WebSocketServer } from 'ws';
import type { Authenticate, Caller } from '../callers/caller.js';
import { GatewayError, type GatewayErrorCode } from '../errors/index.js';
import type { GatewayContext } from './context.js';
import { maskError } from './errors.js';
import { ConnectionSlots, resolveWebSocketLimits, type WebSocketLimits } from './websocket-limits.js';
import { serveSockets } from './websocket-sockets.js';
import { upgradeGate } from './websocket-upgrade.js';

// Headers a client may also send in graphql-ws `connectionParams` (browsers cannot set headers on a
// WebSocket), so every caller authentication mode works over WebSocket too.
const AUTH_PARAMS = ['authorization', 'x-api-key', 'x-atlas-access-token'];

// RFC 6455 §7.4.1: the endpoint is going away (graphql-ws defines only its own 44xx codes).
const GOING_AWAY = 1001;
// graphql-ws's "too many requests" code (its own use is a second connection_init), which its client
// treats as final instead of reconnecting into the same refusal.
const TOO_MANY = CloseCode.TooManyInitialisationRequests;

/** Options of `attachGraphQLWs`. */
export interface GraphQLWsOptions {
  /** Who calls: the same function as HTTP, run once per socket at `connection_init`. */
  authenticate: Authenticate;
  /**
   * Filled with each operation's request → the caller found when its socket connected: the gateway's
   * context reads the caller there instead of authenticating every operation again.
   */
  socketCallers: WeakMap<Request, Caller>;
  /** @default DEFAULT_WEBSOCKET_LIMITS */
  limits?: Partial<WebSocketLimits>;
  /**
   * Whether an upgrade with this `Origin` (a browser page) to this `Host` may open a socket.
   * @default only the gateway's own origin, and requests without an Origin (not browsers)
   */
  allowOrigin?: (origin: string, host: string | undefined) => boolean;
  /** Count connections per the last `X-Forwarded-For` entry instead of the socket address. @default false */
  trustProxy?: boolean;
  /** Refused connections are logged here at `info`. @default none */
  logger?: Logger;
}

/** The WebSocket transport's settings a gateway is built with (`createGateway({ webSocket })`). */
export type WebSocketOptions = Pick<GraphQLWsOptions, 'limits' | 'allowOrigin' | 'trustProxy'>;

/** What `attachGraphQLWs` returns: how the gateway ends the WebSocket side on shutdown. */
export interface GraphQLWs {
  /** Operations running on every socket (subscriptions until they complete). */
  activeOperations(): number;
  /** Open WebSocket connections (and upgrades being completed). */
  openConnections(): number;
  /**
   * Graceful end: refuses new upgrades (503), waits (at most `graceMs`) until the running operations
   * have sent their last messages — the pollers end subscriptions with `SHUTTING_DOWN` first — then
   * closes every socket with 1001 (going away) and stops the server.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

type WsContext = Context<Record<string, unknown> | undefined, Extra>;

/** One authenticated socket: its caller, its running operation ids, its key in the subscribe limiter. */
interface SocketState {
  caller: Caller;
  key: string;
  running: Set<string>;
}

/** The result yoga's pipeline produced for one operation, handed to graphql-ws's execute/subscribe. */
interface Ran {
  result: OperationResult;
}

/**
 * graphql-ws on the gateway's own port and path, hardened like HTTP:
 *
 * - at the upgrade: the `Origin` against the CORS policy (403), caps on open connections in all and
 *   per client address (429), and ws's `maxPayload` (a larger message closes the socket, 1009);
 * - at `connection_init` (within `connectionInitTimeoutMs`, else 4408): the caller is authenticated
 *   with the HTTP `authenticate`, from the upgrade's headers or `connectionParams`; without an
 *   accepted credential the socket is closed with 4403 before any operation. That caller is the
 *   caller of every operation on the socket;
 * - per `subscribe`: a rate and a cap on running operations per socket, then the operation runs
 *   through yoga's whole pipeline as an HTTP POST would (request-parse and params hooks: CSRF,
 *   persisted operations, the introspection ban; then parse, validate, the caller's rate limit, the
 *   cost, execution and error masking), so every transport has one policy.
 *
 * A refusal before execution (syntax, validation, a limit, persisted operations) is an `error`
 * message for that operation's id, the HTTP answer's errors without their `http` extension: the
 * socket and its other subscriptions live on. Sockets are served by `serveSockets` (errors to the
 * gateway's logger, not the console).
 */
export function attachGraphQLWs(
  server: Server,
  yoga: YogaServerInstance<Record<string, never>, GatewayContext>,
  options: GraphQLWsOptions,
): GraphQLWs {
  const limits = resolveWebSocketLimits(options.limits);
  const { authenticate, socketCallers, logger, trustProxy = false } = options;
  const allowOrigin = options.allowOrigin ?? (() => false);
  const wss = new WebSocketServer({
    noServer: true,
    path: yoga.graphqlEndpoint,
    maxPayload: limits.maxPayloadBytes,
    handleProtocols,
  });
  const slots = new ConnectionSlots(limits.maxConnections, limits.maxConnectionsPerAddress);
  const subscribes = new RateLimiterMemory({
    keyPrefix: 'ws-subscribe',
    points: limits.subscribeRate.points,
    duration: limits.subscribeRate.windowMs / 1000,
  });
  const sockets = new WeakMap<object, SocketState>();
  let serial = 0;
  let closing = false;
  let active = 0;
  let idle: (() => void) | undefined;
  const settled = (ctx: object, id: string) => {
    if (!sockets.get(ctx)?.running.delete(id)) return;
    active -= 1;
    if (active === 0) idle?.();
  };
  let schema: GraphQLSchema | undefined;

  // Before the handshake: nothing of the client is read but its headers.
  const onUpgrade = upgradeGate({
    wss,
    slots,
    limits,
    allowOrigin,
    trustProxy,
    closing: () => closing,
    logger,
  });
  server.on('upgrade', onUpgrade);

  const protocol = makeServer<Record<string, unknown> | undefined, Extra>({
    connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
    execute: (args) => (args.rootValue as Ran).result,
    subscribe: (args) => (args.rootValue as Ran).result,
    onConnect: async (ctx) => {
      try {
        const caller = await authenticate(requestOf(ctx.extra.request, ctx.connectionParams));
        sockets.set(ctx, { caller, key: String((serial += 1)), running: new Set() });
        return true;
      } catch (err) {
        refuseConnection(ctx, err);
        return false;
      }
    },
    onSubscribe: async (ctx, id, payload) => {
      const state = sockets.get(ctx);
      // graphql-ws closes a socket that subscribes before its connection_ack (4401): not reached.
      if (!state) return [refusal('UNAUTHENTICATED', 'Not authenticated.')];
      const refused = await admit(ctx, state, id);
      if (refused) return [refused];
      try {
        const request = requestOf(ctx.extra.request, ctx.connectionParams, payload);
        socketCallers.set(request, state.caller);
        // What node's HTTP adapter gives yoga as server context (the rate limit reads the address).
        const serverContext = { req: ctx.extra.request, socket: ctx.extra.socket } as unknown as Parameters<
          typeof yoga.parseRequest
        >[1];
        const parsed = await yoga.parseRequest(request, serverContext);
        if (parsed.response || Array.isArray(parsed.requestParserResult)) {
          return refusedHere(ctx, id, [refusal('BAD_REQUEST', 'The operation could not be read.')]);
        }
        const result = await yoga.getResultForParams(
          { params: parsed.requestParserResult, request },
          serverContext,
        );
        if (result === undefined) {
          return refusedHere(ctx, id, [refusal('BAD_REQUEST', 'The operation could not be read.')]);
        }
        if (!isAsyncIterable(result) && result.data === undefined) {
          // No data: refused before execution (GraphQL over HTTP answers these with a 4xx).
          return refusedHere(ctx, id, graphQLErrors(result.errors));
        }
        schema ??= yoga.getEnveloped(serverContext).schema as GraphQLSchema;
        return {
          schema,
          document: isAsyncIterable(result) ? SUBSCRIPTION : QUERY,
          rootValue: { result } satisfies Ran,
        };
      } catch (err) {
        // graphql-ws closes the whole socket (4500) on a throw here; an `error` message for this
        // id is what the protocol has for a refused operation. Masked as on HTTP.
        return refusedHere(ctx, id, [toClientError(err)]);
      }
    },
    onNext: (_ctx, _id, _payload, _args, result) =>
      result.errors
        ? ({ ...result, errors: result.errors.map(formatted) } as FormattedExecutionResult)
        : undefined,
    onError: (ctx, id, _payload, errors) => {
      settled(ctx, id);
      return errors.map(formatted);
    },
    onComplete: (ctx, id) => settled(ctx, id),
    onClose: (ctx) => {
      const state = sockets.get(ctx);
      if (!state) return;
      // Operations still counted when the socket goes (a refusal the client had cancelled).
      for (const id of [...state.running]) settled(ctx, id);
      void subscribes.delete(state.key);
    },
  });
  serveSockets(wss, protocol, { logger });

  // Closed here rather than by graphql-ws (which would close "4403 Forbidden" with no word): the
  // reason says what to send, and names no secret.
  function refuseConnection(ctx: WsContext, err: unknown): void {
    const address = ctx.extra.request.socket.remoteAddress;
    if (err instanceof GatewayError && err.code === 'UNAUTHENTICATED') {
      logger?.info({ code: err.code, address }, 'WebSocket connection refused');
      ctx.extra.socket.close(CloseCode.Forbidden, closeReason(err.message));
    } else {
      logger?.error({ err, address }, 'WebSocket authentication failed');
      ctx.extra.socket.close(CloseCode.InternalServerError, 'Internal server error');
    }
  }

  /** The per-socket rate and operation cap: counts the operation as running, or answers the refusal. */
  async function admit(ctx: WsContext, state: SocketState, id: string): Promise<GraphQLError | undefined> {
    const { points, windowMs } = limits.subscribeRate;
    try {
      await subscribes.consume(state.key);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      if (rejection.consumedPoints > 2 * points) {
        ctx.extra.socket.close(TOO_MANY, 'Too many subscribe messages');
      }
      return refusal(
        'RATE_LIMITED',
        `At most ${points} subscribe messages per ${windowMs / 1000} s on one WebSocket; retry in ${Math.ceil(rejection.msBeforeNext / 1000)} s.`,
        { retryable: true, retryAfterMs: Math.ceil(rejection.msBeforeNext) },
      );
    }
    if (state.running.size >= limits.maxOperationsPerSocket) {
      return refusal(
        'RATE_LIMITED',
        `At most ${limits.maxOperationsPerSocket} operations run at once on one WebSocket; complete one first.`,
        { retryable: true, maxOperations: limits.maxOperationsPerSocket },
      );
    }
    // Counted in the same turn as the check, so operations arriving together cannot all pass it.
    state.running.add(id);
    active += 1;
    return undefined;
  }

  // graphql-ws reports a refusal to onError only while the client still waits for that id.
  function refusedHere(ctx: WsContext, id: string, errors: GraphQLError[]): GraphQLError[] {
    if (!(id in ctx.subscriptions)) settled(ctx, id);
    return errors;
  }

  return {
    activeOperations: () => active,
    openConnections: () => slots.open(),
    close: async ({ graceMs = 10_000 } = {}) => {
      closing = true;
      if (active > 0) {
        await new Promise<void>((resolve) => {
          const cut = setTimeout(resolve, graceMs);
          cut.unref();
          idle = () => {
            clearTimeout(cut);
            resolve();
          };
        });
      }
      // graphql-ws calls onComplete just before it sends `complete`: one turn later, that message is
      // queued on the socket ahead of the close frame.
      await new Promise((resolve) => setImmediate(resolve));
      for (const client of wss.clients) client.close(GOING_AWAY, 'the gateway is shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.off('upgrade', onUpgrade);
    },
  };
}

// POST, not GET: yoga refuses mutations on GET requests (a link must not change anything), but an
// operation on an open WebSocket is no navigation; one socket carries queries, mutations and
// subscriptions alike, as the graphql-ws protocol means it to. The body is the subscribe payload as
// sent (documentId and extensions included), so yoga reads it exactly as an HTTP POST.
function requestOf(
  req: IncomingMessage,
  params: Record<string, unknown> | undefined,
  payload?: unknown,
): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v);
  }
  for (const [k, v] of Object.entries(params ?? {})) {
    if (AUTH_PARAMS.includes(k.toLowerCase()) && typeof v === 'string') headers.set(k.toLowerCase(), v);
  }
  const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/graphql'}`;
  if (payload === undefined) return new Request(url, { method: 'POST', headers });
  headers.set('content-type', 'application/json');
  headers.set('accept', 'application/graphql-response+json');
  return new Request(url, { method: 'POST', headers, body: JSON.stringify(payload) });
}

// graphql-ws reads the document only to choose between `execute` and `subscribe`, and both hand over
// the result yoga's pipeline already produced: a one-definition stub of the right kind says which.
const stub = (operation: OperationTypeNode): DocumentNode => ({
  kind: Kind.DOCUMENT,
  definitions: [
    {
      kind: Kind.OPERATION_DEFINITION,
      operation,
      selectionSet: { kind: Kind.SELECTION_SET, selections: [] },
    },
  ],
});
const QUERY = stub(OperationTypeNode.QUERY);
const SUBSCRIPTION = stub(OperationTypeNode.SUBSCRIPTION);

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

function refusal(code: GatewayErrorCode, message: string, extra: Record<string, unknown> = {}): GraphQLError {
  return createGraphQLError(message, { extensions: { code, ...extra } });
}

function graphQLErrors(errors: ExecutionResult['errors']): GraphQLError[] {
  const list = (errors ?? []).map((e) => (e instanceof GraphQLError ? e : toClientError(e)));
  return list.length > 0 ? list : [refusal('INTERNAL_SERVER_ERROR', 'Unexpected error.')];
}

function toClientError(err: unknown): GraphQLError {
  const masked = maskError(err, 'Unexpected error.');
  return masked instanceof GraphQLError ? masked : new GraphQLError(masked.message);
}

// `extensions.http` tells yoga the HTTP status and headers of a refusal; yoga removes it from HTTP
// bodies, and a WebSocket message has no status: removed here too (on a copy, since yoga caches
// validation errors and HTTP still needs theirs).
function formatted(error: GraphQLError): GraphQLFormattedError {
  const json = error.toJSON();
  if (!json.extensions || !('http' in json.extensions)) return json;
  const { http: _http, ...extensions } = json.extensions;
  return { ...json, extensions };
}

/** A close reason fits in 123 bytes (RFC 6455 §5.5: a control frame's payload is at most 125). */
function closeReason(message: string): string {
  let reason = message;
  while (Buffer.byteLength(reason) > 123) reason = `${reason.slice(0, -2)}…`;
  return reason;
}
