import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import type { Env } from '../../src/config/index.js';
import { sha256Hex } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { openedWs, openWs, RawWs, type WsRefusal } from '../support/graphql-ws.js';
import { ManualTimers } from '../support/manual-timers.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';
import { operationOver, TRANSPORTS, type Transport } from '../support/transports.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;
const KEY = generateApiKey();
const AUTH = { 'x-api-key': KEY };
const API_KEYS = JSON.stringify([
  { id: 'svc', hash: hashApiKey(KEY), projects: [P], rights: ['read', 'download'] },
]);
/**
 * A gateway with real caller authentication (one API key, Payments only) and `env` on top; not demo
 * mode: it has Atlas credentials of its own (startStack points them at the simulator), as a deployment
 * with callers configured has.
 */
const withKeys = (env: Env = {}): Env => ({
  MONGODB_ATLAS_BASE_URL: 'http://127.0.0.1:9',
  MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
  MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
  GATEWAY_AUTH: 'apikey',
  GATEWAY_API_KEYS: API_KEYS,
  ...env,
});

const KNOWN = `query ProjectName($id: ID!) { project(id: $id) { name } }`;
const INTROSPECTION = `query Schema { __schema { types { name } } }`;
const apq = (query: string) => ({
  extensions: { persistedQuery: { version: 1, sha256Hash: sha256Hex(query) } },
});
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`;

let dir: string;
let manifestFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ws-hardening-'));
  manifestFile = join(dir, 'manifest.json');
  writeFileSync(
    manifestFile,
    JSON.stringify({ [sha256Hex(KNOWN)]: KNOWN, [sha256Hex(INTROSPECTION)]: INTROSPECTION }),
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function listening(env: Env, gateway: Parameters<typeof startStack>[0] = {}) {
  const stack = await startStack({ ...gateway, env });
  return { stack, url: await stack.gateway.listen(0) };
}

/** What `fn` answered and the Atlas calls it made. */
async function measured<T>(stack: Stack, fn: () => Promise<T>): Promise<{ answer: T; calls: string[] }> {
  let answer: T | undefined;
  const calls = await stack.upstreamCalls(async () => {
    answer = await fn();
  });
  return { answer: answer as T, calls: calls.map((c) => c.operationId) };
}

describe('finding 4: one policy for every transport (production, persisted operations enforced)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    ({ stack, url } = await listening(
      withKeys({
        NODE_ENV: 'production',
        GATEWAY_PERSISTED_OPERATIONS: 'enforce',
        GATEWAY_PERSISTED_OPERATIONS_FILE: manifestFile,
      }),
    ));
  });
  afterAll(async () => {
    await stack.close();
  });

  /** How each transport answers a request refused before execution. */
  const REFUSED: Record<Transport, string> = { HTTP: 'HTTP 400', SSE: 'SSE 400', 'graphql-ws': 'ws error' };

  it.each(TRANSPORTS)(
    'finding 4: an arbitrary document and a full introspection query are refused over %s, before any upstream call',
    async (transport) => {
      for (const query of ['{ projects { id name } }', getIntrospectionQuery()]) {
        const { answer, calls } = await measured(stack, () => operationOver(transport, url, { query }, AUTH));
        expect(answer.how).toBe(REFUSED[transport]);
        expect(answer.errors).toEqual([
          {
            message: expect.stringMatching(/^This gateway runs only persisted operations: send the sha256/),
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ]);
        expect(calls).toEqual([]);
      }
    },
  );

  it.each(TRANSPORTS)(
    'finding 4: introspection is banned over %s even as a persisted operation, before any upstream call',
    async (transport) => {
      const { answer, calls } = await measured(stack, () =>
        operationOver(transport, url, apq(INTROSPECTION), AUTH),
      );
      // SSE answers validation errors in a 200 stream (yoga's), HTTP with 400, graphql-ws an `error`.
      expect(answer.how).toBe({ ...REFUSED, SSE: 'SSE 200' }[transport]);
      expect(answer.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([
        [
          'GRAPHQL_VALIDATION_FAILED',
          'GraphQL introspection has been disabled, but the requested query contained the field "__schema".',
        ],
        [
          'GRAPHQL_VALIDATION_FAILED',
          'GraphQL introspection has been disabled, but the requested query contained the field "types".',
        ],
      ]);
      expect(calls).toEqual([]);
    },
  );

  it.each(TRANSPORTS)(
    'runs a manifest operation over %s, as the caller its credential names',
    async (transport) => {
      const byHash = await measured(stack, () =>
        operationOver(transport, url, { ...apq(KNOWN), variables: { id: P } }, AUTH),
      );
      expect(byHash.answer).toEqual({
        how: { HTTP: 'HTTP 200', SSE: 'SSE 200', 'graphql-ws': 'ws next' }[transport],
        data: { project: { name: 'Payments' } },
      });
      expect(byHash.calls).toEqual(['getGroup']);
      // A project outside the key's list is null with no upstream call, over the socket too: the caller
      // of the socket's operations is the key's.
      const foreign = await measured(stack, () =>
        operationOver(transport, url, { ...apq(KNOWN), variables: { id: SEED.projects.analytics.id } }, AUTH),
      );
      expect(foreign.answer.data).toEqual({ project: null });
      expect(foreign.calls).toEqual([]);
    },
  );

  it("finding 4: graphql-ws operations count against the caller's rate limit, one budget with HTTP and SSE", async () => {
    const limited = await listening(
      withKeys({
        NODE_ENV: 'production',
        GATEWAY_PERSISTED_OPERATIONS: 'enforce',
        GATEWAY_PERSISTED_OPERATIONS_FILE: manifestFile,
        GATEWAY_RATE_LIMIT: '3',
      }),
    );
    const run = (transport: Transport) =>
      measured(limited.stack, async () => {
        const a = await operationOver(transport, limited.url, { ...apq(KNOWN), variables: { id: P } }, AUTH);
        return `${a.how} ${String(a.errors?.[0]?.extensions?.code ?? 'ok')}`;
      });
    const answers = [];
    for (const transport of [...TRANSPORTS, 'graphql-ws', 'HTTP'] as const)
      answers.push(await run(transport));
    expect(answers).toEqual([
      { answer: 'HTTP 200 ok', calls: ['getGroup'] },
      { answer: 'SSE 200 ok', calls: ['getGroup'] },
      { answer: 'ws next ok', calls: ['getGroup'] },
      { answer: 'ws error RATE_LIMITED', calls: [] },
      { answer: 'HTTP 429 RATE_LIMITED', calls: [] },
    ]);
  });
});

describe('finding 5: unauthenticated WebSocket exhaustion', () => {
  it('finding 5: connection_init without an accepted credential is closed with 4403 before any operation, at no upstream cost', async () => {
    const { stack, url } = await listening(withKeys());
    const { answer, calls } = await measured(stack, async () => {
      const closes = [];
      for (const params of [undefined, { 'x-api-key': 'not-a-key' }, { authorization: 'Bearer nope' }]) {
        const ws = await openedWs(url);
        closes.push(await ws.init(params));
      }
      // A subscribe before connection_init never runs: graphql-ws closes with 4401.
      const early = await openedWs(url);
      early.send({ type: 'subscribe', id: '1', payload: { query: '{ projects { id } }' } });
      closes.push(await early.next());
      return closes;
    });
    expect(answer).toEqual([
      {
        type: 'close',
        code: 4403,
        reason: 'Authentication required: send an API key (x-api-key, or Authorization: Bearer).',
      },
      { type: 'close', code: 4403, reason: 'Unknown API key (x-api-key).' },
      { type: 'close', code: 4403, reason: 'Not authenticated: the bearer token is not a known API key.' },
      { type: 'close', code: 4401, reason: 'Unauthorized' },
    ]);
    expect(calls).toEqual([]);
    // The same key is accepted in connectionParams and in the upgrade's headers.
    const inParams = await openedWs(url);
    expect((await inParams.init(AUTH)).type).toBe('connection_ack');
    const inHeaders = await openedWs(url, { headers: AUTH });
    expect((await inHeaders.init()).type).toBe('connection_ack');
  });

  it('finding 5: a message over GATEWAY_WS_MAX_PAYLOAD_BYTES closes the socket (1009) before it is read, unauthenticated or not', async () => {
    const { stack, url } = await listening(withKeys({ GATEWAY_WS_MAX_PAYLOAD_BYTES: '4096' }));
    const { answer, calls } = await measured(stack, async () => {
      const before = await openedWs(url);
      before.send('x'.repeat(4097));
      const after = await openedWs(url);
      await after.init(AUTH);
      after.send({
        type: 'subscribe',
        id: '1',
        payload: { query: `{ projects { id } } #${'x'.repeat(5000)}` },
      });
      return [await before.next(), await after.next()];
    });
    expect(answer).toEqual([
      { type: 'close', code: 1009, reason: '' },
      { type: 'close', code: 1009, reason: '' },
    ]);
    expect(calls).toEqual([]);
  });

  it('finding 5: a message only servers send closes its socket as the client fault it is (4400), not as an internal error', async () => {
    const { stack, url } = await listening(withKeys());
    const { answer, calls } = await measured(stack, async () => {
      const ws = await openedWs(url);
      await ws.init(AUTH);
      ws.send({ type: 'next', id: '1', payload: { data: null } });
      return ws.closed;
    });
    expect(answer).toEqual({ code: 4400, reason: 'Invalid message received' });
    expect(calls).toEqual([]);
  });

  it('finding 5: a socket that sends no connection_init is closed (4408), and its connection slot is freed', async () => {
    const { stack, url } = await listening(withKeys({ GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS: '100' }));
    const { answer, calls } = await measured(stack, async () => {
      const idle = await openedWs(url);
      return idle.closed;
    });
    expect(answer).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    expect(calls).toEqual([]);
    await expect.poll(() => stack.gateway.webSocket.openConnections()).toBe(0);
  });

  it('finding 5: an IPv6 client counts by its /64 on WebSocket upgrades, as on HTTP connections', async () => {
    const { stack, url } = await listening(
      withKeys({ GATEWAY_TRUST_PROXY: 'true', GATEWAY_WS_MAX_CONNECTIONS_PER_ADDRESS: '2' }),
    );
    const from = (address: string) => openWs(url, { headers: { 'x-forwarded-for': address } });
    const { answer, calls } = await measured(stack, async () => ({
      a: await from('2001:db8:1:2::a'),
      b: await from('2001:db8:1:2::b'),
      // Another address of the same /64: the same client, over its cap.
      c: await from('2001:db8:1:2:ffff::c'),
      other: await from('2001:db8:1:3::a'),
    }));
    for (const open of [answer.a, answer.b, answer.other]) expect(open).toBeInstanceOf(RawWs);
    expect(answer.c).toEqual({
      status: 429,
      body: {
        errors: [
          {
            message: 'At most 2 WebSocket connections per client address.',
            extensions: { code: 'RATE_LIMITED' },
          },
        ],
      },
    } satisfies WsRefusal);
    expect(calls).toEqual([]);
    for (const open of [answer.a, answer.b, answer.other]) if (open instanceof RawWs) await open.close();
  });

  it('finding 5: connections over the caps, per client address and in all, are refused at the upgrade (429)', async () => {
    const { stack, url } = await listening(
      withKeys({
        GATEWAY_TRUST_PROXY: 'true',
        GATEWAY_WS_MAX_CONNECTIONS: '3',
        GATEWAY_WS_MAX_CONNECTIONS_PER_ADDRESS: '2',
      }),
    );
    const from = (address: string) => openWs(url, { headers: { 'x-forwarded-for': address } });
    const { answer, calls } = await measured(stack, async () => {
      const a1 = await from('10.0.0.1');
      const a2 = await from('10.0.0.1');
      const a3 = await from('10.0.0.1');
      const b1 = await from('10.0.0.2');
      const c1 = await from('10.0.0.3');
      return { a1, a2, a3, b1, c1 };
    });
    const { a1, a2, a3, b1, c1 } = answer;
    for (const open of [a1, a2, b1]) expect(open).toBeInstanceOf(RawWs);
    expect(a3).toEqual({
      status: 429,
      body: {
        errors: [
          {
            message: 'At most 2 WebSocket connections per client address.',
            extensions: { code: 'RATE_LIMITED' },
          },
        ],
      },
    } satisfies WsRefusal);
    expect(c1).toEqual({
      status: 429,
      body: {
        errors: [
          {
            message: 'The gateway holds its maximum of 3 WebSocket connections; retry later.',
            extensions: { code: 'RATE_LIMITED' },
          },
        ],
      },
    } satisfies WsRefusal);
    expect(calls).toEqual([]);
    // A closed socket gives its slot back.
    await (a1 as RawWs).close();
    await expect.poll(() => stack.gateway.webSocket.openConnections()).toBe(2);
    expect(await from('10.0.0.3')).toBeInstanceOf(RawWs);
  });

  it('finding 5: operations running at once on one socket are capped; the refused one costs no upstream call', async () => {
    const { stack, url } = await listening(withKeys({ GATEWAY_WS_MAX_OPERATIONS_PER_SOCKET: '2' }), {
      sim: { jobMs: 60_000 },
      gateway: { timers: new ManualTimers() },
    });
    const jobs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const made = await operationOver(
        'HTTP',
        url,
        {
          query: DOWNLOAD,
          variables: {
            i: {
              projectId: P,
              clusterName: F.clusterName,
              snapshotId: F.completedSnapshotId,
              reuseExisting: false,
            },
          },
        },
        AUTH,
      );
      jobs.push((made.data as { requestDownload: { job: { id: string } } }).requestDownload.job.id);
    }
    const ws = await openedWs(url);
    await ws.init(AUTH);
    const watch = (id: string, j: string) =>
      ws.send({ type: 'subscribe', id, payload: { query: WATCH, variables: { p: P, c: F.clusterName, j } } });
    watch('a', jobs[0]!);
    watch('b', jobs[1]!);
    const firsts = [await ws.next(), await ws.next()];
    expect(firsts.map((m) => [m.type, (m as { id?: string }).id]).sort()).toEqual([
      ['next', 'a'],
      ['next', 'b'],
    ]);
    const third = await measured(stack, () =>
      ws.operation('c', { query: WATCH, variables: { p: P, c: F.clusterName, j: jobs[0] } }),
    );
    expect(third.answer.end).toEqual({
      type: 'error',
      errors: [
        {
          message: 'At most 2 operations run at once on one WebSocket; complete one first.',
          extensions: { code: 'RATE_LIMITED', retryable: true, maxOperations: 2 },
        },
      ],
    });
    expect(third.calls).toEqual([]);
    // Completing one frees its place.
    ws.send({ type: 'complete', id: 'a' });
    await expect.poll(() => stack.gateway.webSocket.activeOperations()).toBe(1);
    const again = await ws.operation('d', { query: '{ __typename }' });
    expect(again).toEqual({ results: [{ data: { __typename: 'Query' } }], end: { type: 'complete' } });
  });

  it('finding 5: subscribe messages over the per-socket rate get RATE_LIMITED; a socket flooding on closes with 4429', async () => {
    const { stack, url } = await listening(
      withKeys({ GATEWAY_WS_SUBSCRIBE_RATE: '5', GATEWAY_WS_SUBSCRIBE_RATE_WINDOW_MS: '60000' }),
    );
    const ws = await openedWs(url);
    await ws.init(AUTH);
    const { answer, calls } = await measured(stack, async () => {
      const ends = [];
      for (let i = 0; i < 7; i++) ends.push((await ws.operation(String(i), { query: '{ __typename }' })).end);
      // 2 × 5 messages counted: the next one closes the socket.
      for (let i = 7; i < 11; i++)
        ws.send({ type: 'subscribe', id: String(i), payload: { query: '{ __typename }' } });
      return { ends, closed: await ws.closed };
    });
    expect(answer.ends.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => ({ type: 'complete' })));
    expect(answer.ends.slice(5)).toEqual(
      Array.from({ length: 2 }, () => ({
        type: 'error',
        errors: [
          {
            message: expect.stringMatching(
              /^At most 5 subscribe messages per 60 s on one WebSocket; retry in \d+ s\.$/,
            ),
            extensions: { code: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) },
          },
        ],
      })),
    );
    expect(answer.closed).toEqual({ code: 4429, reason: 'Too many subscribe messages' });
    expect(calls).toEqual([]);
  });
});

describe('finding 7: WebSocket upgrades check Origin against the CORS policy', () => {
  const refusedOrigin = (origin: string): WsRefusal => ({
    status: 403,
    body: {
      errors: [
        {
          message: `Origin ${JSON.stringify(origin)} may not open a WebSocket here.`,
          extensions: { code: 'FORBIDDEN' },
        },
      ],
    },
  });

  it('finding 7: in production without GATEWAY_CORS_ORIGINS a cross-origin upgrade is refused (403) before any upstream call; same-origin and non-browser clients connect', async () => {
    const { stack, url } = await listening(withKeys({ NODE_ENV: 'production' }));
    const { answer, calls } = await measured(stack, async () => ({
      evil: await openWs(url, { headers: { origin: 'https://evil.example' } }),
      local: await openWs(url, { headers: { origin: 'http://localhost:3000' } }),
      same: await openWs(url, { headers: { origin: url } }),
      none: await openWs(url),
    }));
    expect(answer.evil).toEqual(refusedOrigin('https://evil.example'));
    expect(answer.local).toEqual(refusedOrigin('http://localhost:3000'));
    expect(answer.same).toBeInstanceOf(RawWs);
    expect(answer.none).toBeInstanceOf(RawWs);
    expect(calls).toEqual([]);
  });

  it('finding 7: with GATEWAY_CORS_ORIGINS only the listed origins connect', async () => {
    const { stack, url } = await listening(
      withKeys({ NODE_ENV: 'production', GATEWAY_CORS_ORIGINS: 'https://app.example.com' }),
    );
    const { answer, calls } = await measured(stack, async () => ({
      app: await openWs(url, { headers: { origin: 'https://app.example.com' } }),
      evil: await openWs(url, { headers: { origin: 'https://app.example.com.evil.example' } }),
    }));
    expect(answer.app).toBeInstanceOf(RawWs);
    expect(answer.evil).toEqual(refusedOrigin('https://app.example.com.evil.example'));
    expect(calls).toEqual([]);
  });

  it('finding 7: without a list, upgrades follow the HTTP CORS policy: loopback pages in demo mode only', async () => {
    const demo = await listening({});
    expect(await openWs(demo.url, { headers: { origin: 'http://localhost:5173' } })).toBeInstanceOf(RawWs);
    expect(await openWs(demo.url, { headers: { origin: 'https://evil.example' } })).toEqual(
      refusedOrigin('https://evil.example'),
    );
    // With callers configured the gateway may hold real Atlas credentials: no page of another origin,
    // not even one on this machine, unless it is listed (as on HTTP, test/security/csrf-cors.test.ts).
    const keyed = await listening(withKeys());
    expect(await openWs(keyed.url, { headers: { origin: 'http://localhost:5173' } })).toEqual(
      refusedOrigin('http://localhost:5173'),
    );
  });
});
