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
import { openedWs } from '../support/graphql-ws.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, raw, startSecureStack } from '../support/security-gateway.js';
import { operationOver, type Transport, type TransportAnswer } from '../support/transports.js';

const P = SEED.projects.payments.id;

/** `project { clusters { project { clusters … } } }`, `levels` clusters deep. */
function nested(levels: number): string {
  let inner = 'name';
  for (let i = 0; i < levels; i++) inner = `clusters { name project { name ${inner} } }`;
  return `{ project(id: "${P}") { ${inner} } }`;
}

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startSecureStack({
    batchLimit: 3,
    maxBodyBytes: 4096,
    rateLimit: false,
    webSocket: { maxPayloadBytes: 4096 },
  });
  url = await stack.gateway.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await stack.close();
});

describe('the default limits let real clients through', () => {
  // The example query and introspection: below, over every transport.
  it('answers a batch within the limit', async () => {
    const res = await post(stack, [{ query: '{ __typename }' }, { query: '{ __typename }' }]);
    expect(res.status).toBe(200);
    expect(res.json).toHaveLength(2);
  });
});

/** How a transport answers an operation refused before execution: HTTP 400, or an `error` message. */
const REFUSED: Record<Exclude<Transport, 'SSE'>, string> = { HTTP: 'HTTP 400', 'graphql-ws': 'ws error' };

/** The first error's code and message of an answer over any transport. */
const first = (a: TransportAnswer) =>
  a.errors?.[0] ? { code: a.errors[0].extensions?.code, message: a.errors[0].message } : undefined;

describe.each(['HTTP', 'graphql-ws'] as const)(
  'each GraphQL limit refuses a hostile operation over %s before any upstream call',
  (transport) => {
    /** Sends `body` over this transport on a real socket: its answer and the Atlas calls it made. */
    async function send(body: Record<string, unknown>) {
      let answer: TransportAnswer | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await operationOver(transport, url, body);
      });
      return { answer: answer!, calls };
    }

    it('answers the GraphiQL example query and the introspection query GraphiQL sends (outside production)', async () => {
      for (const query of [EXAMPLE_QUERY, getIntrospectionQuery()]) {
        const { answer } = await send({ query });
        expect(answer.errors).toBeUndefined();
        expect(answer.how).toBe(transport === 'HTTP' ? 'HTTP 200' : 'ws next');
      }
    });

    it('refuses a query nested deeper than 10', async () => {
      const { answer, calls } = await send({ query: nested(6) });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(first(answer)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/^Query depth limit of 10 exceeded, found 14/),
      });
    });

    it('refuses more than 15 aliases', async () => {
      const fields = Array.from({ length: 16 }, (_, i) => `p${i}: project(id: "${P}") { name }`).join(' ');
      const { answer, calls } = await send({ query: `{ ${fields} }` });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(first(answer)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/Aliases limit of 15 exceeded, found 16/),
      });
    });

    it('refuses a document of more than 1000 tokens while parsing it', async () => {
      const { answer, calls } = await send({ query: `{ ${'a '.repeat(1001)}}` });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(first(answer)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/Token limit of 1000 exceeded/),
      });
    });

    it('refuses more than 20 directives', async () => {
      const fields = Array.from({ length: 21 }, () => '__typename @include(if: true)').join(' ');
      const { answer, calls } = await send({ query: `{ ${fields} }` });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(first(answer)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/Directives limit of 20 exceeded, found 21/),
      });
    });

    it('refuses a costly query: large pages under every cluster of every project', async () => {
      const query = '{ projects { clusters { snapshots(first: 500) { nodes { id } } } } }';
      const { answer, calls } = await send({ query });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(answer.errors).toEqual([
        {
          message: expect.stringMatching(/^Operation cost \d+ exceeds the limit of 10000/),
          extensions: { code: 'BAD_USER_INPUT', cost: 50210, maxCost: 10000 },
        },
      ]);
    });

    it('prices `first` from variables on every request, not from a cached validation', async () => {
      const query = 'query Q($n: Int!) { projects { clusters { snapshots(first: $n) { nodes { id } } } } }';
      const cheap = await send({ query, variables: { n: 1 } });
      expect(cheap.answer.errors).toBeUndefined();
      const { answer, calls } = await send({ query, variables: { n: 500 } });
      expect(calls).toEqual([]);
      expect(answer.how).toBe(REFUSED[transport]);
      expect(first(answer)?.message).toMatch(/exceeds the limit of 10000/);
    });
  },
);

describe('each HTTP limit refuses a hostile request before any upstream call', () => {
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

describe('the message size limit over graphql-ws', () => {
  it('closes a socket whose message is over maxPayload (1009), before reading it or any upstream call', async () => {
    const ws = await openedWs(url);
    expect((await ws.init()).type).toBe('connection_ack');
    let closed;
    const calls = await stack.upstreamCalls(async () => {
      ws.send({
        type: 'subscribe',
        id: '1',
        payload: { query: '{ __typename }', variables: { pad: 'x'.repeat(5000) } },
      });
      closed = await ws.closed;
    });
    expect(closed).toEqual({ code: 1009, reason: '' });
    expect(calls).toEqual([]);
  });

  it('answers a message within the size', async () => {
    const ws = await openedWs(url);
    await ws.init();
    expect(await ws.operation('1', { query: `{ project(id: "${P}") { name } }` })).toEqual({
      results: [{ data: { project: { name: 'Payments' } } }],
      end: { type: 'complete' },
    });
  });
});
