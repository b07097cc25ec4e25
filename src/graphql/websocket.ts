import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { GatewayContext } from './context.js';

// Headers a client may also send in graphql-ws `connectionParams` (browsers cannot set headers on a
// WebSocket), so every caller authentication mode works over WebSocket too.
const AUTH_PARAMS = ['authorization', 'x-api-key', 'x-atlas-access-token'];

function requestOf(req: IncomingMessage, params: Record<string, unknown> | undefined): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v);
  }
  for (const [k, v] of Object.entries(params ?? {})) {
    if (AUTH_PARAMS.includes(k.toLowerCase()) && typeof v === 'string') headers.set(k.toLowerCase(), v);
  }
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/graphql'}`, { headers });
}

// yoga's enveloped execute/subscribe, carried to graphql-ws through rootValue as yoga's docs do.
type Run = (args: ExecutionArgs) => OperationResult;
interface RootValue {
  execute: Run;
  subscribe: Run;
}

/**
 * graphql-ws on the gateway's own port and path, through yoga's envelop (same plugins, context,
 * auth and error masking as HTTP). Returns a function that closes the socket server.
 */
export function attachGraphQLWs(
  server: Server,
  yoga: YogaServerInstance<Record<string, never>, GatewayContext>,
): () => Promise<void> {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  useServer(
    {
      execute: (args) => (args.rootValue as RootValue).execute(args),
      subscribe: (args) => (args.rootValue as RootValue).subscribe(args),
      onSubscribe: async (ctx, _id, payload) => {
        const request = requestOf(ctx.extra.request, ctx.connectionParams);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          request,
        });
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document: parse(payload.query),
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } as RootValue,
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );
  return () =>
    new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    });
}
