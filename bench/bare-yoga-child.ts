import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';

// graphql-yoga with no plugins and a one-field schema, in its own process: the floor under the
// gateway's own `{ __typename }`, to tell yoga's cost from the gateway's plugins in the overhead.
const yoga = createYoga({
  schema: createSchema({ typeDefs: 'type Query { ok: Boolean }' }),
  logging: false,
  graphiql: false,
  landingPage: false,
});
const server = createServer(yoga);
const close = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('disconnect', close);
process.on('SIGTERM', close);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}` });
});
