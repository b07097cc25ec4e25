import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { Pool } from 'undici';

// The rungs under the gateway in `bench/latency-floor.ts`, each in its own process like the gateway:
// FLOOR_MODE=proxy is node:http + one undici GET (no GraphQL at all: what any Node proxy pays for a
// hop on this machine); FLOOR_MODE=yoga is graphql-yoga with no plugin and one resolver making the
// same GET (what the gateway's stack pays before any of our plugins, loaders or mappers).
const mode = process.env.FLOOR_MODE;
const upstream = new Pool(process.env.FLOOR_SIM_URL!, { connections: 8 });
const get = {
  path: process.env.FLOOR_PATH!,
  method: 'GET',
  headers: {
    authorization: `Bearer ${process.env.FLOOR_TOKEN}`,
    accept: 'application/vnd.atlas.2024-11-13+json',
  },
} as const;
const read = async (): Promise<Record<string, unknown>> => {
  const res = await upstream.request(get);
  return (await res.body.json()) as Record<string, unknown>;
};

let handler: (req: IncomingMessage, res: ServerResponse) => void;
if (mode === 'proxy') {
  handler = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      read().then(
        (s) => {
          const body = JSON.stringify({ data: { snapshot: s } });
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          });
          res.end(body);
        },
        () => {
          res.writeHead(502).end();
        },
      );
    });
  };
} else if (mode === 'yoga') {
  handler = createYoga({
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Snapshot {
          id: ID!
          status: String
          mongoDBVersion: String
          finishTime: String
          expiration: String
        }
        type Query {
          snapshot(projectId: ID!, clusterName: String!, id: ID!): Snapshot
        }
      `,
      resolvers: { Query: { snapshot: () => read() } },
    }),
    logging: false,
    graphiql: false,
    landingPage: false,
  });
} else {
  throw new Error(`FLOOR_MODE must be proxy or yoga, not ${mode}`);
}
const server = createServer(handler);
const close = () => {
  server.closeAllConnections();
  server.close(() => void upstream.close().finally(() => process.exit(0)));
};
process.on('disconnect', close);
process.on('SIGTERM', close);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}` });
});
