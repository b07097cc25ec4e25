import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { GatewayContext } from './context.js';
import { maskError } from './errors.js';

// Headers a client may also send in graphql-ws `connectionParams` (browsers cannot set headers on a
// WebSocket), so every caller authentication mode works over WebSocket too.
const AUTH_PARAMS = ['authorization', 'x-api-key', 'x-atlas-access-token'];

// POST, not GET: yoga refuses mutations on GET requests (a link must not change anything), but an
// operation on an open WebSocket is no navigation; one socket carries queries, mutations and
// subscriptions alike, as the graphql-ws protocol means it to.
function requestOf(req: IncomingMessage, params: Record<string, unknown> | undefined): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v);
  }
  for (const [k, v] of Object.entries(params ?? {})) {
    if (AUTH_PARAMS.includes(k.toLowerCase()) && typeof v === 'string') headers.set(k.toLowerCase(), v);
  }
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/graphql'}`, {
    method: 'POST',
    headers,
  });
}

// RFC 6455 §7.4.1: the endpoint is going away (graphql-ws defines only its own 44xx codes).
const GOING_AWAY = 1001;

// yoga's enveloped execute/subscribe, carried to graphql-ws through rootValue as yoga's docs do.
type Run = (args: ExecutionArgs) => OperationResult;
interface RootValue {
  execute: Run;
  subscribe: Run;
}

/** What `attachGraphQLWs` returns: how the gateway ends the WebSocket side on shutdown. */
export interface GraphQLWs {
  /** Operations running on every socket (subscriptions until they complete). */
  activeOperations(): number;
  /**
   * Graceful end: waits (at most `graceMs`) until the running operations have sent their last
   * messages — the pollers end subscriptions with `SHUTTING_DOWN` first — then closes every socket
   * with 1001 (going away) and stops the server.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * graphql-ws on the gateway's own port and path, through yoga's envelop (same plugins, context,
 * auth and error masking as HTTP). A failure of one operation (syntax, validation, authentication,
 * a refused variable) is an `error` message for that operation's id: the socket and its other
 * subscriptions live on.
 */
export function attachGraphQLWs(
  server: Server,
  yoga: YogaServerInstance<Record<string, never>, GatewayContext>,
): GraphQLWs {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  // Running operations per socket context: graphql-ws also calls onError for operations refused in
  // onSubscribe, which never ran, so only ids that started are counted.
  const running = new WeakMap<object, Set<string>>();
  let active = 0;
  let idle: (() => void) | undefined;
  const settled = (ctx: object, id: string) => {
    if (!running.get(ctx)?.delete(id)) return;
    active -= 1;
    if (active === 0) idle?.();
  };
  useServer(
    {
      execute: (args) => (args.rootValue as RootValue).execute(args),
      subscribe: (args) => (args.rootValue as RootValue).subscribe(args),
      onSubscribe: async (ctx, id, payload) => {
        try {
          const request = requestOf(ctx.extra.request, ctx.connectionParams);
          const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
            ...ctx,
            req: ctx.extra.request,
            socket: ctx.extra.socket,
            params: payload,
            request,
          });
          const document = parse(payload.query);
          const errors = validate(schema, document);
          if (errors.length) return [...errors];
          const args: ExecutionArgs = {
            schema,
            operationName: payload.operationName ?? null,
            document,
            variableValues: payload.variables ?? null,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe } as RootValue,
          };
          const ids = running.get(ctx) ?? new Set<string>();
          running.set(ctx, ids);
          ids.add(id);
          active += 1;
          return args;
        } catch (err) {
          // graphql-ws closes the whole socket (4500) on a throw here; an `error` message for this
          // id is what the protocol has for a refused operation. Masked as on HTTP.
          return [toClientError(err)];
        }
      },
      onComplete: (ctx, id) => settled(ctx, id),
      onError: (ctx, id) => settled(ctx, id),
    },
    wss,
  );
  return {
    activeOperations: () => active,
    close: async ({ graceMs = 10_000 } = {}) => {
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
    },
  };
}

function toClientError(err: unknown): GraphQLError {
  const masked = maskError(err, 'Unexpected error.');
  return masked instanceof GraphQLError ? masked : new GraphQLError(masked.message);
}
