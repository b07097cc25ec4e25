import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { AtlasRest } from './atlas-rest.js';
import { naiveResolvers, type NaiveContext } from './resolvers.js';
import { NAIVE_TYPE_DEFS } from './type-defs.js';

/** Options of `startNaiveServer`. */
export interface NaiveServerOptions {
  /** The simulator's base URL. */
  baseUrl: string;
  /** A static bearer token (auth is not what this baseline is about). */
  token: string;
  /** How often each subscriber reads its job. */
  pollIntervalMs: number;
}

/**
 * The N+1 baseline: a tiny graphql-yoga server with the gateway's SDL subset and resolvers that call
 * Atlas directly per field (undici, no DataLoader, no priming, no cache), on 127.0.0.1, port 0.
 */
export async function startNaiveServer(
  options: NaiveServerOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  const rest = new AtlasRest(options.baseUrl, options.token);
  const yoga = createYoga({
    schema: createSchema<NaiveContext>({ typeDefs: NAIVE_TYPE_DEFS, resolvers: naiveResolvers }),
    context: () => ({ rest, pollIntervalMs: options.pollIntervalMs }),
    logging: false,
    graphiql: false,
    landingPage: false,
  });
  const server = createServer(yoga);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
