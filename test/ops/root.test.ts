import { expect, it } from 'vitest';
import { startStack } from '../support/stack.js';

it('GET / without GraphiQL (production) answers the JSON pointer to a browser too, not a redirect', async () => {
  const stack = await startStack({ gateway: { graphiql: false } });
  const res = await stack.gateway.yoga.fetch('http://gateway.test/', { headers: { accept: 'text/html' } });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    message: 'This is a GraphQL API: send queries to /graphql.',
    graphql: '/graphql',
    health: '/healthz',
    readiness: '/readyz',
    metrics: '/metrics',
  });
  const head = await stack.gateway.yoga.fetch('http://gateway.test/', { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(await head.text()).toBe('');
  // A POST to / is no GraphQL request either: still 404.
  expect((await stack.gateway.yoga.fetch('http://gateway.test/', { method: 'POST' })).status).toBe(404);
});
