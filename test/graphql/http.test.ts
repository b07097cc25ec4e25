import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({ gateway: { readinessIntervalMs: 0 } });
  url = await stack.gateway.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await stack.close();
});

const post = async (body: unknown) => {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as { data?: unknown; errors?: unknown[] } };
};

describe('the gateway over a real socket', () => {
  it('answers a query', async () => {
    const res = await post({
      query: `{ project(id: "${SEED.projects.payments.id}") { name clusters { name family } } }`,
    });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toMatchObject({ project: { name: 'Payments' } });
  });

  it('serves GraphiQL to a browser, self-contained (no CDN) with the example query', async () => {
    const res = await request(`${url}/graphql`, { headers: { accept: 'text/html' } });
    const html = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(html).toContain('Atlas Backup GraphQL Gateway');
    expect(html).toContain('query Dashboard');
    expect(html).not.toMatch(/unpkg\.com|cdn\.jsdelivr|esm\.sh/);
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    expect((await request(`${url}/healthz`)).statusCode).toBe(200);
    const ready = await request(`${url}/readyz`);
    await ready.body.dump();
    expect(ready.statusCode).toBe(200);
    const metrics = await request(`${url}/metrics`);
    const text = await metrics.body.text();
    expect(metrics.statusCode).toBe(200);
    expect(text).toContain('graphql_envelop_request_duration');
  });

  it('points GET / to /graphql: a browser is redirected to GraphiQL, curl gets a JSON pointer', async () => {
    const browser = await request(`${url}/`, { headers: { accept: 'text/html,application/xhtml+xml' } });
    await browser.body.dump();
    expect(browser.statusCode).toBe(302);
    expect(browser.headers.location).toBe('/graphql');
    const curl = await request(`${url}/`, { headers: { accept: '*/*' } });
    expect(curl.statusCode).toBe(200);
    expect(curl.headers['content-type']).toMatch(/^application\/json/);
    expect(await curl.body.json()).toMatchObject({ graphql: '/graphql', readiness: '/readyz' });
    // Only the root: other unknown paths stay 404.
    const other = await request(`${url}/nope`);
    await other.body.dump();
    expect(other.statusCode).toBe(404);
  });

  it('reports not ready while Atlas refuses the gateway', async () => {
    stack.sim.faults.add({ operationId: 'listGroups', status: 503, times: 10 });
    try {
      const res = await request(`${url}/readyz`);
      await res.body.dump();
      expect(res.statusCode).toBe(503);
    } finally {
      stack.sim.faults.clear();
    }
    const again = await request(`${url}/readyz`);
    await again.body.dump();
    expect(again.statusCode).toBe(200);
  });

  it('answers a GraphQL syntax error with HTTP 400 and one GraphQL error', async () => {
    const res = await post({ query: '{ projects { ' });
    expect(res.status).toBe(400);
    expect(res.body.errors).toHaveLength(1);
  });
});
