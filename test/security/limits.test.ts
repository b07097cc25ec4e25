import { makeExecutableSchema } from '@graphql-tools/schema';
import { getIntrospectionQuery, parse } from 'graphql';
import { getComplexity } from 'graphql-query-complexity';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_QUERY } from '../../src/gateway.js';
import { loadTypeDefs } from '../../src/graphql/type-defs.js';
import { connectionCostEstimator } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, raw, startSecureStack } from '../support/security-gateway.js';

const P = SEED.projects.payments.id;

/** `project { clusters { project { clusters … } } }`, `levels` clusters deep. */
function nested(levels: number): string {
  let inner = 'name';
  for (let i = 0; i < levels; i++) inner = `clusters { name project { name ${inner} } }`;
  return `{ project(id: "${P}") { ${inner} } }`;
}

let stack: Stack;
beforeAll(async () => {
  stack = await startSecureStack({ batchLimit: 3, maxBodyBytes: 4096, rateLimit: false });
});
afterAll(async () => {
  await stack.close();
});

describe('the default limits let real clients through', () => {
  it('answers the GraphiQL example query', async () => {
    const res = await post(stack, { query: EXAMPLE_QUERY });
    expect(res.json?.errors).toBeUndefined();
    expect(res.status).toBe(200);
  });

  it('answers the introspection query GraphiQL sends (outside production)', async () => {
    const res = await post(stack, { query: getIntrospectionQuery() });
    expect(res.json?.errors).toBeUndefined();
    expect(res.status).toBe(200);
  });

  it('answers a batch within the limit', async () => {
    const res = await post(stack, [{ query: '{ __typename }' }, { query: '{ __typename }' }]);
    expect(res.status).toBe(200);
    expect(res.json).toHaveLength(2);
  });
});

describe('each limit refuses a hostile request before any upstream call', () => {
  it('refuses a query nested deeper than 10', async () => {
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query: nested(6) });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)).toEqual({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/^Query depth limit of 10 exceeded, found 14/),
    });
  });

  it('refuses more than 15 aliases', async () => {
    const fields = Array.from({ length: 16 }, (_, i) => `p${i}: project(id: "${P}") { name }`).join(' ');
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query: `{ ${fields} }` });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)).toEqual({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/Aliases limit of 15 exceeded, found 16/),
    });
  });

  it('refuses a document of more than 1000 tokens while parsing it', async () => {
    const query = `{ ${'a '.repeat(1001)}}`;
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)).toEqual({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/Token limit of 1000 exceeded/),
    });
  });

  it('refuses more than 20 directives', async () => {
    const fields = Array.from({ length: 21 }, () => '__typename @include(if: true)').join(' ');
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query: `{ ${fields} }` });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)).toEqual({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/Directives limit of 20 exceeded, found 21/),
    });
  });

  it('refuses a costly query: large pages under every cluster of every project', async () => {
    const query = '{ projects { clusters { snapshots(first: 500) { nodes { id } } } } }';
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(res!.json?.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^Operation cost \d+ exceeds the limit of 10000/),
      extensions: { code: 'BAD_USER_INPUT', maxCost: 10000 },
    });
  });

  it('prices `first` from variables on every request, not from a cached validation', async () => {
    const query = 'query Q($n: Int!) { projects { clusters { snapshots(first: $n) { nodes { id } } } } }';
    const cheap = await post(stack, { query, variables: { n: 1 } });
    expect(cheap.json?.errors).toBeUndefined();
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query, variables: { n: 500 } });
    });
    expect(calls).toEqual([]);
    expect(firstError(res!)?.message).toMatch(/exceeds the limit of 10000/);
  });

  it('refuses a batch over the limit', async () => {
    const batch = Array.from({ length: 4 }, () => ({ query: `{ project(id: "${P}") { name } }` }));
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, batch);
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(413);
    expect(firstError(res!)?.message).toBe('Batching is limited to 3 operations per request.');
  });

  it('refuses a body over the size by its Content-Length, without reading it', async () => {
    const body = JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(5000) } });
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await raw(stack, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        body,
      });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(413);
    expect(firstError(res!)).toEqual({
      code: 'BAD_USER_INPUT',
      message: 'The request body is larger than the 4096 bytes this gateway accepts.',
    });
  });

  it('refuses a streamed body (no Content-Length) once it passes the size', async () => {
    let pulls = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new TextEncoder().encode(pulls === 1 ? '{"query":"' : 'x'.repeat(1024)));
      },
    });
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await raw(stack, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: endless,
        duplex: 'half',
      } as RequestInit);
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(413);
    // It stopped reading right after the limit instead of draining an endless stream.
    expect(pulls).toBeLessThan(10);
  });

  it('answers a small streamed body normally', async () => {
    const text = JSON.stringify({ query: `{ project(id: "${P}") { name } }` });
    const res = await raw(stack, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
  });
});

describe('the cost estimate', () => {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs() });
  const cost = (query: string) =>
    getComplexity({ schema, query: parse(query), estimators: [connectionCostEstimator(10)] });

  it('prices connections by `first` and plain lists by the assumed list size', () => {
    expect(cost(EXAMPLE_QUERY)).toBe(1210);
    expect(cost(EXAMPLE_QUERY.replaceAll('first: 3', 'first: 20'))).toBe(6310);
    expect(cost('{ projects { clusters { snapshots(first: 500) { nodes { id } } } } }')).toBe(50_210);
    // Without `first`, a connection is priced at its default page size (20).
    expect(cost(`{ cluster(projectId: "${P}", name: "x") { snapshots { nodes { id } } } }`)).toBe(22);
  });

  it('prices introspection at nothing (depth and tokens bound it)', () => {
    expect(cost(getIntrospectionQuery())).toBe(0);
  });
});

describe('requests yoga cannot read', () => {
  it('answers GET variables that are not JSON with 400, not 500', async () => {
    const res = await raw(stack, {
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent('{ __typename }')}&variables=%7B`,
      headers: { accept: 'application/json', 'x-graphql-csrf': '1' },
    });
    expect(res.status).toBe(400);
    expect(firstError(res)).toEqual({
      code: 'BAD_REQUEST',
      message: expect.stringMatching(/^The request could not be read: .*JSON/),
    });
  });
});

describe('the body limit over a real socket', () => {
  let url: string;
  beforeAll(async () => {
    url = await stack.gateway.listen(0, '127.0.0.1');
  });

  it('refuses a chunked body over the size with 413', async () => {
    async function* chunks() {
      yield '{"query":"{ __typename }","variables":{"pad":"';
      for (let i = 0; i < 8; i++) yield 'x'.repeat(1024);
      yield '"}}';
    }
    const res = await request(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Readable.from(chunks()),
    });
    const body = (await res.body.json()) as { errors: { message: string }[] };
    expect(res.statusCode).toBe(413);
    expect(body.errors[0]?.message).toMatch(/larger than the 4096 bytes/);
  });

  it('answers a chunked body within the size', async () => {
    async function* chunks() {
      yield '{"query":"{ project(id: \\"';
      yield `${P}\\") { name } }"}`;
    }
    const res = await request(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Readable.from(chunks()),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ data: { project: { name: 'Payments' } } });
  });
});
