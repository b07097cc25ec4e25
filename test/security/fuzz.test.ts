import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePersistedManifest, sha256Hex } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { openedWs, type RawWs, type WsOperation } from '../support/graphql-ws.js';
import type { Stack } from '../support/stack.js';
import { post, startSecureStack } from '../support/security-gateway.js';

/**
 * Hostile and broken requests of every kind: every answer must be a 4xx or a GraphQL answer (never a
 * 5xx, never a hang), and the gateway must still answer a normal query afterwards. The seed is printed;
 * `SECURITY_FUZZ_SEED=<n> npx vitest run test/security/fuzz.test.ts` replays a run.
 */
const SEED_VALUE = Number(process.env.SECURITY_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ITERATIONS = 300;
/** Guards against a hang only (it fails the case with its description), never asserts a duration. */
const HANG_GUARD_MS = 10_000;

/** mulberry32: small, seedable, good enough to pick test cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const P = SEED.projects.payments.id;
const C = SEED.flex;
const KNOWN = '{ projects { name } }';
const VALID_QUERIES = [
  `{ projects { id name } }`,
  `{ project(id: "${P}") { name clusters { name family } } }`,
  `query C($p: ID!, $n: String!, $first: Int, $s: [JobStatus!]) { cluster(projectId: $p, name: $n) { name snapshots(first: $first, status: $s) { totalCount nodes { id status } } } }`,
  `query J($p: ID!, $n: String!, $d: DeliveryType) { cluster(projectId: $p, name: $n) { restoreJobs(deliveryType: $d) { nodes { id } } } }`,
  `query S($p: ID!, $n: String!, $id: ID!) { snapshot(projectId: $p, clusterName: $n, id: $id) { id status } }`,
];
const VOCABULARY = [
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ':',
  '!',
  '$x',
  '...',
  '@include(if: true)',
  '@skip(if: $x)',
  'query',
  'mutation',
  'subscription',
  'fragment F on Project',
  'on',
  'projects',
  'project',
  'clusters',
  'cluster',
  'snapshots',
  'nodes',
  'id',
  'name',
  '__typename',
  '__schema',
  'first: 500',
  'first: -1',
  '"str"',
  '"""block"""',
  '0',
  '1e309',
  'null',
  'true',
  'a:',
  '#',
  ',',
  '\u0000',
  '\uffff',
  '"\\u0000"',
  '=',
  '|',
  '&',
];
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/graphql+json',
  'application/graphql',
  'application/graphql-response+json',
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'application/x-www-form-urlencoded',
  'image/png',
  '',
  ';;;',
];
const ACCEPTS = [
  'application/graphql-response+json',
  'application/json',
  'text/event-stream',
  'multipart/mixed',
  'text/html',
  'image/png',
  '*/*',
  '',
];

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(0, depth > 4 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return r.next() < 0.5;
    case 2:
      return r.pick([0, -1, 1.5, 2 ** 31, 2 ** 53 + 1, -1e308, 500, 501]);
    case 3:
      return r.pick([
        '',
        'QUEUED',
        'QUEUD',
        'DOWNLOAD',
        P,
        C.clusterName,
        '../../etc',
        '\u0000',
        'x'.repeat(r.int(0, 5000)),
      ]);
    case 4:
      return r.pick([P, 'ffffffffffffffffffffffff', 'not-hex']);
    case 5:
      return String.fromCharCode(...Array.from({ length: r.int(0, 30) }, () => r.int(0, 0xffff)));
    case 6:
      return Array.from({ length: r.int(0, 5) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: r.int(0, 4) }, () => [
          r.pick(['p', 'n', 'first', 's', 'd', 'id', '__proto__', 'constructor']),
          randomValue(r, depth + 1),
        ]),
      );
  }
}

function randomBytes(r: Rng, max: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(r.int(0, max)));
  for (let i = 0; i < bytes.length; i++) bytes[i] = r.int(0, 255);
  return bytes;
}

function nestedQuery(r: Rng): string {
  const depth = r.int(1, 400);
  const open = Array.from({ length: depth }, () =>
    r.pick(['project { clusters {', 'a {', '{', '... on Query {']),
  ).join(' ');
  return `{ ${open} name ${'}'.repeat(r.int(0, depth * 2))}`;
}

interface Case {
  what: string;
  init: RequestInit & { path?: string };
}

/** One hostile request, described for the failure message. */
function randomCase(r: Rng): Case {
  const json = (what: string, body: unknown, extraHeaders: Record<string, string> = {}): Case => ({
    what,
    init: {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: r.pick(ACCEPTS), ...extraHeaders },
      body: JSON.stringify(body),
    },
  });
  switch (r.int(0, 11)) {
    case 0: {
      const text = JSON.stringify({ query: r.pick(VALID_QUERIES), variables: randomValue(r) });
      const cut = text.slice(0, r.int(0, text.length - 1)) + r.pick(['', '}', ']', ',', '"', '\\']);
      return {
        what: `malformed JSON ${JSON.stringify(cut.slice(0, 80))}`,
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: cut },
      };
    }
    case 1: {
      const contentType = r.pick(CONTENT_TYPES);
      const body = r.pick([
        JSON.stringify({ query: r.pick(VALID_QUERIES) }),
        r.pick(VALID_QUERIES),
        'query=%7B__typename%7D',
        '--xyz\r\n\r\n--xyz--',
      ]);
      return {
        what: `content type ${JSON.stringify(contentType)}`,
        init: { method: 'POST', headers: { 'content-type': contentType, accept: r.pick(ACCEPTS) }, body },
      };
    }
    case 2: {
      const size = r.pick([10_000, 90_000, 99_000, 101_000, 300_000, 2_000_000]);
      return r.next() < 0.5
        ? json(`huge query string (${size})`, { query: `{ __typename }#${'x'.repeat(size)}` })
        : json(`huge variable (${size})`, {
            query: VALID_QUERIES[2],
            variables: { p: P, n: 'x'.repeat(size) },
          });
    }
    case 3: {
      const query = nestedQuery(r);
      return json(`deeply nested query (${query.length} chars)`, { query });
    }
    case 4: {
      const variables = randomValue(r);
      return json(`variables ${JSON.stringify(variables)?.slice(0, 120)}`, {
        query: r.pick(VALID_QUERIES),
        variables,
      });
    }
    case 5: {
      const bytes = randomBytes(r, 4096);
      const contentType = r.pick(CONTENT_TYPES);
      return {
        what: `${bytes.length} random bytes as ${JSON.stringify(contentType)}`,
        init: { method: 'POST', headers: { 'content-type': contentType }, body: bytes },
      };
    }
    case 6: {
      const query = Array.from({ length: r.int(1, 60) }, () => r.pick(VOCABULARY)).join(' ');
      return json(`token soup ${JSON.stringify(query.slice(0, 120))}`, {
        query,
        operationName: r.pick([undefined, 'X', '', 'C']),
      });
    }
    case 7: {
      const q = r.pick([...VALID_QUERIES, nestedQuery(r), '{', '%%%', '']);
      const withCsrf = r.next() < 0.5;
      return {
        what: `GET ${JSON.stringify(q.slice(0, 80))}${withCsrf ? ' with CSRF header' : ''}`,
        init: {
          method: 'GET',
          path: `/graphql?query=${encodeURIComponent(q)}&variables=${encodeURIComponent(String(r.pick(['{', '[]', '{"p":1}', 'null'])))}`,
          headers: { accept: r.pick(ACCEPTS), ...(withCsrf ? { 'x-graphql-csrf': '1' } : {}) },
        },
      };
    }
    case 8: {
      const method = r.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
      return {
        what: `method ${method}`,
        init: {
          method,
          path: r.pick(['/graphql', '/nope', '/healthz', '/metrics']),
          headers: { 'content-type': 'application/json' },
          ...(method === 'HEAD' || method === 'OPTIONS' ? {} : { body: '{}' }),
        },
      };
    }
    case 9: {
      const batch = Array.from({ length: r.int(0, 8) }, () =>
        r.pick<unknown>([{ query: r.pick(VALID_QUERIES), variables: randomValue(r) }, null, 1, [], 'x', {}]),
      );
      return json(`batch of ${batch.length}`, batch);
    }
    case 10: {
      const hash = r.pick([sha256Hex(KNOWN), '0'.repeat(64), 'zz', '']);
      return json(
        `persisted ${hash.slice(0, 12)}`,
        r.pick<unknown>([
          { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
          { documentId: hash },
          { extensions: { persistedQuery: randomValue(r) } },
          { extensions: randomValue(r), query: '{ __typename }' },
        ]),
      );
    }
    default: {
      const body = r.pick<unknown>([
        null,
        1,
        'string',
        true,
        [],
        { query: 1 },
        { query: null },
        { query: ['x'] },
        { variables: '{' },
        { query: '{ __typename }', operationName: 7 },
      ]);
      return json(`odd body ${JSON.stringify(body)}`, body);
    }
  }
}

/** The largest message the fuzzed gateways accept over graphql-ws (their default). */
const MAX_WS_PAYLOAD = 65_536;

/** A random graphql-ws `subscribe` payload: the same hostile operations as over HTTP. */
function randomPayload(r: Rng): { what: string; payload: unknown } {
  switch (r.int(0, 6)) {
    case 0: {
      // Mostly an object (graphql-ws itself closes with 4400 on variables that are not one).
      const variables =
        r.next() < 0.8
          ? { p: randomValue(r), n: randomValue(r), first: randomValue(r), s: randomValue(r) }
          : randomValue(r);
      return {
        what: `variables ${JSON.stringify(variables)?.slice(0, 120)}`,
        payload: { query: r.pick(VALID_QUERIES), variables },
      };
    }
    case 1: {
      const query = nestedQuery(r);
      return { what: `deeply nested query (${query.length} chars)`, payload: { query } };
    }
    case 2: {
      const query = Array.from({ length: r.int(1, 60) }, () => r.pick(VOCABULARY)).join(' ');
      return {
        what: `token soup ${JSON.stringify(query.slice(0, 120))}`,
        payload: { query, operationName: r.pick([undefined, 'X', '', 'C', null]) },
      };
    }
    case 3: {
      const size = r.pick([10_000, 60_000, MAX_WS_PAYLOAD - 100, MAX_WS_PAYLOAD + 100, 300_000]);
      return {
        what: `huge query string (${size})`,
        payload: { query: `{ __typename }#${'x'.repeat(size)}` },
      };
    }
    case 4: {
      const hash = r.pick([sha256Hex(KNOWN), '0'.repeat(64), 'zz', '']);
      return {
        what: `persisted ${hash.slice(0, 12)}`,
        payload: r.pick<unknown>([
          { query: '', extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
          { query: '', documentId: hash },
          { query: '', extensions: { persistedQuery: randomValue(r) } },
          { query: '{ __typename }', extensions: randomValue(r) },
        ]),
      };
    }
    case 5: {
      const payload = r.pick<unknown>([
        null,
        1,
        'x',
        [],
        {},
        { query: 1 },
        { query: null },
        { query: ['x'] },
      ]);
      return { what: `odd payload ${JSON.stringify(payload)}`, payload };
    }
    default: {
      const query = r.pick([...VALID_QUERIES, '{', '%%%', '', 'subscription { restoreJobStatus }']);
      return { what: `query ${JSON.stringify(query.slice(0, 80))}`, payload: { query } };
    }
  }
}

/** A message that is no well-formed `subscribe`: what the socket must survive or close cleanly on. */
function randomRawMessage(r: Rng): { what: string; message: string | Buffer } {
  switch (r.int(0, 3)) {
    case 0: {
      const text = JSON.stringify({ type: 'subscribe', id: 'x', payload: { query: r.pick(VALID_QUERIES) } });
      const cut = text.slice(0, r.int(0, text.length - 1));
      return { what: `malformed JSON ${JSON.stringify(cut.slice(0, 80))}`, message: cut };
    }
    case 1: {
      const bytes = Buffer.from(randomBytes(r, 4096));
      return { what: `${bytes.length} random bytes (binary frame)`, message: bytes };
    }
    case 2: {
      const message = {
        type: r.pick<unknown>([
          'nope',
          'next',
          'error',
          'connection_ack',
          'connection_init',
          'complete',
          7,
          null,
        ]),
        id: r.pick<unknown>(['1', '', 7, null, undefined]),
        payload: randomValue(r),
      };
      return { what: `message ${JSON.stringify(message).slice(0, 120)}`, message: JSON.stringify(message) };
    }
    default:
      return { what: 'ping', message: JSON.stringify({ type: 'ping', payload: randomValue(r) }) };
  }
}

// Close codes that say the client broke the protocol: bad message (4400), too big (1009), second
// connection_init (4429), duplicate id (4409), invalid frame or UTF-8 (1002, 1007). Never 4500 or 1011.
const CLIENT_FAULT_CLOSES = [4400, 1009, 4429, 4409, 1002, 1007];

// The same limits outside and in production (no introspection, no suggestions, no GraphiQL).
let stacks: Stack[] = [];
let urls: string[] = [];
beforeAll(async () => {
  const options = {
    batchLimit: 5,
    rateLimit: { points: 1_000_000, windowMs: 60_000 },
    persistedOperations: 'allow' as const,
    persistedManifest: parsePersistedManifest({ [sha256Hex(KNOWN)]: KNOWN }),
    // The fuzz sends hundreds of operations on one socket: its rate is not what is tested here.
    webSocket: { subscribeRate: { points: 1_000_000, windowMs: 60_000 }, maxPayloadBytes: MAX_WS_PAYLOAD },
  };
  stacks = await Promise.all([
    startSecureStack({ ...options, production: false }),
    startSecureStack({ ...options, production: true }),
  ]);
  urls = await Promise.all(stacks.map((s) => s.gateway.listen(0)));
});
afterAll(async () => {
  await Promise.all(stacks.map((s) => s.close()));
});

describe('fuzz', () => {
  it(
    `answers ${ITERATIONS} hostile requests with a 4xx or a GraphQL answer (seed ${SEED_VALUE})`,
    { timeout: 120_000 },
    async () => {
      console.log(
        `security fuzz seed: ${SEED_VALUE} (replay: SECURITY_FUZZ_SEED=${SEED_VALUE} npx vitest run test/security/fuzz.test.ts)`,
      );
      const r = prng(SEED_VALUE);
      for (let i = 0; i < ITERATIONS; i++) {
        const production = r.next() < 0.5;
        const stack = stacks[production ? 1 : 0] as Stack;
        const c = randomCase(r);
        const label = `seed ${SEED_VALUE}, case ${i}${production ? ' (production)' : ''}: ${c.what}`;
        const { path = '/graphql', ...init } = c.init;
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${HANG_GUARD_MS} ms: ${label}`)),
            HANG_GUARD_MS,
          );
        });
        try {
          const res = await Promise.race([
            stack.gateway.yoga.fetch(`http://gateway.test${path}`, init),
            hang,
          ]);
          const text = await Promise.race([res.text(), hang]);
          expect(res.status, `${label} → ${text.slice(0, 300)}`).toBeLessThan(500);
          if (
            res.status < 400 &&
            init.method !== 'HEAD' &&
            init.method !== 'OPTIONS' &&
            path === '/graphql'
          ) {
            // A 2xx/3xx JSON answer from /graphql is a GraphQL answer: data or errors, or a batch of them.
            // (Streamed answers, SSE or multipart, and GraphiQL's page are not read here.)
            if (/json/.test(res.headers.get('content-type') ?? '')) {
              let body: unknown;
              expect(() => (body = JSON.parse(text)), `${label} → ${text.slice(0, 300)}`).not.toThrow();
              for (const a of Array.isArray(body) ? body : [body]) {
                expect(a, label).toSatisfy(
                  (x: unknown) => typeof x === 'object' && x !== null && ('data' in x || 'errors' in x),
                );
              }
            }
          }
        } finally {
          clearTimeout(timer);
        }
      }
      for (const stack of stacks) {
        const normal = await post(stack, { query: `{ project(id: "${P}") { name } }` });
        expect(normal.status).toBe(200);
        expect(normal.json?.data).toEqual({ project: { name: 'Payments' } });
      }
    },
  );
});

describe('fuzz over graphql-ws', () => {
  it(
    `answers ${ITERATIONS} hostile graphql-ws messages with an error or a result, or a client-fault close (seed ${SEED_VALUE})`,
    { timeout: 120_000 },
    async () => {
      const r = prng(SEED_VALUE ^ 0x5eed);
      const sockets: (RawWs | undefined)[] = [undefined, undefined];
      /** The open, acknowledged socket to a stack, reopened after a close. */
      const socketTo = async (i: number): Promise<RawWs> => {
        const open = sockets[i];
        if (open && open.socket.readyState === open.socket.OPEN) return open;
        const ws = await openedWs(urls[i]!);
        expect((await ws.init()).type).toBe('connection_ack');
        sockets[i] = ws;
        return ws;
      };
      const closes: Record<number, number> = {};
      for (let i = 0; i < ITERATIONS; i++) {
        const production = r.next() < 0.5;
        const ws = await socketTo(production ? 1 : 0);
        const id = `op-${i}`;
        let what: string;
        let operation: Promise<WsOperation>;
        if (r.next() < 0.75) {
          const c = randomPayload(r);
          what = c.what;
          ws.send({ type: 'subscribe', id, payload: c.payload });
          operation = ws.outcome(id);
        } else {
          const c = randomRawMessage(r);
          what = c.what;
          if (typeof c.message === 'string') ws.send(c.message);
          else ws.socket.send(c.message);
          // Whatever the raw message did, a well-formed operation after it must be answered or the
          // socket must have closed for a client fault.
          operation = ws.operation(id, { query: '{ __typename }' });
        }
        const label = `seed ${SEED_VALUE}, ws case ${i}${production ? ' (production)' : ''}: ${what}`;
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${HANG_GUARD_MS} ms: ${label}`)),
            HANG_GUARD_MS,
          );
        });
        try {
          const { results, end } = await Promise.race([operation, hang]);
          if (end.type === 'close') {
            expect(CLIENT_FAULT_CLOSES, `${label} → close ${end.code} ${end.reason}`).toContain(end.code);
            closes[end.code] = (closes[end.code] ?? 0) + 1;
          } else if (end.type === 'error') {
            // The WebSocket twin of a 4xx: GraphQL errors, none of them an internal one (a 5xx).
            expect(end.errors.length, label).toBeGreaterThan(0);
            for (const e of end.errors) {
              expect(typeof e.message, label).toBe('string');
              expect(e.extensions?.code, `${label} → ${e.message}`).not.toBe('INTERNAL_SERVER_ERROR');
            }
          } else {
            for (const result of results) {
              expect(result, label).toSatisfy((x: object) => 'data' in x || 'errors' in x);
            }
          }
        } finally {
          clearTimeout(timer);
        }
      }
      console.log(`graphql-ws fuzz closes by code: ${JSON.stringify(closes)}`);
      for (const i of [0, 1]) {
        const ws = await socketTo(i);
        expect(await ws.operation('last', { query: `{ project(id: "${P}") { name } }` })).toEqual({
          results: [{ data: { project: { name: 'Payments' } } }],
          end: { type: 'complete' },
        });
      }
    },
  );
});
