import type { Plugin } from 'graphql-yoga';

/** Options of {@link useRootPointer}. */
export interface RootPointerOptions {
  /** Where the GraphQL endpoint is. @default '/graphql' */
  graphqlPath?: string;
  /** GraphiQL is served there, so a browser is sent to it. @default true */
  graphiql?: boolean;
}

/**
 * `GET /` points to the GraphQL endpoint instead of an empty 404: someone who opens the gateway's
 * address (the one `npm start` prints, without `/graphql`) learns where to go. A browser is redirected
 * to GraphiQL when it is served; anything else gets a small JSON pointer.
 */
export function useRootPointer(options: RootPointerOptions = {}): Plugin {
  const graphqlPath = options.graphqlPath ?? '/graphql';
  const graphiql = options.graphiql ?? true;
  const pointer = JSON.stringify({
    message: `This is a GraphQL API: send queries to ${graphqlPath}${graphiql ? ' (open it in a browser for GraphiQL)' : ''}.`,
    graphql: graphqlPath,
    health: '/healthz',
    readiness: '/readyz',
    metrics: '/metrics',
  });
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== '/' || (request.method !== 'GET' && request.method !== 'HEAD')) return;
      if (graphiql && (request.headers.get('accept') ?? '').includes('text/html')) {
        endResponse(new fetchAPI.Response(null, { status: 302, headers: { location: graphqlPath } }));
        return;
      }
      endResponse(
        new fetchAPI.Response(request.method === 'HEAD' ? null : pointer, {
          status: 200,
          headers: { 'content-type': 'application/json; charset=utf-8' },
        }),
      );
    },
  };
}
