import { Writable } from 'node:stream';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AtlasApiError } from '../../src/atlas/errors.js';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { GatewayError } from '../../src/errors/index.js';
import { expectedErrorLine } from '../../src/graphql/errors.js';
import { createLogger, yogaLogger } from '../../src/observability/logger.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { subscribeSse } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

// Findings 9e and 9f (issue #15): refusals are answers the gateway means to give. Every 401 and every
// refused subscription was logged at `error` with a stack (yoga logs whatever its masking replaced),
// and a subscription refused over SSE was answered HTTP 500 (yoga's status for errors without data).

const A = SEED.projects.analytics.id;
const P = SEED.projects.payments.id;
const F = SEED.flex;
const KEY = generateApiKey();
/** Sees Analytics only, and may not read: every refusal kind in one caller. */
const NO_READ = generateApiKey();

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  err?: { stack?: string };
}
let lines: LogLine[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
    done();
  },
});

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({
    gateway: {
      logger: createLogger({ level: 'debug', destination: sink }),
      authenticate: authenticateWith([
        apiKeyAuth({
          keys: [
            { id: 'reader', hash: hashApiKey(KEY), projects: [A], rights: ['read'] },
            { id: 'no-read', hash: hashApiKey(NO_READ), projects: [A], rights: ['download'] },
          ],
        }),
      ]),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => {
  lines = [];
});

const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const watchOf = (p: string, j: string = F.freshDownloadJobId) => ({ p, c: F.other.clusterName, j });

/** The status and only event of a refused SSE subscription, and the upstream calls it cost. */
async function refusedSse(vars: Record<string, unknown>, headers: Record<string, string>) {
  let status = 0;
  let event: unknown;
  const calls = await stack.upstreamCalls(async () => {
    const sub = track(await subscribeSse(url, WATCH, vars, headers), 'sse');
    status = sub.status;
    event = await sub.next();
    expect(await sub.next()).toEqual({ event: 'complete', data: undefined });
    await sub.close();
  });
  return { status, event, calls };
}

const refusal = (code: string, message: string, extra: Record<string, unknown> = {}) => ({
  event: 'next',
  data: {
    errors: [
      {
        message,
        ...(code === 'UNAUTHENTICATED'
          ? {}
          : { locations: [{ line: 2, column: 3 }], path: ['restoreJobStatus'] }),
        extensions: { code, ...extra },
      },
    ],
  },
});

describe('finding 9f: a subscription refused over SSE answers the status an HTTP query would', () => {
  it.each([
    [
      'no credentials',
      401,
      watchOf(A),
      {},
      refusal(
        'UNAUTHENTICATED',
        'Authentication required: send an API key (x-api-key, or Authorization: Bearer).',
      ),
    ],
    [
      'a project the caller cannot see',
      404,
      watchOf(P),
      { 'x-api-key': KEY },
      refusal('NOT_FOUND', `No project with id ${P} exists.`),
    ],
    [
      'a caller without the read right',
      403,
      watchOf(A),
      { 'x-api-key': NO_READ },
      refusal('FORBIDDEN', `This caller may not read in project ${A}.`, { right: 'read' }),
    ],
    [
      'a malformed job id',
      400,
      watchOf(A, 'nope'),
      { 'x-api-key': KEY },
      refusal('BAD_USER_INPUT', 'Argument "jobId" must be a 24-character lowercase hex id; got "nope".', {
        argumentName: 'jobId',
        expected: 'a 24-character lowercase hex id',
        received: 'nope',
      }),
    ],
  ])('finding 9f: %s: HTTP %s, no upstream call', async (_name, status, vars, headers, event) => {
    const answer = await refusedSse(vars, headers);
    expect(answer).toEqual({ status, event, calls: [] });
  });
});

describe('finding 9e: refusals are logged at info without a stack', () => {
  it('finding 9e: a 401 over HTTP and SSE, and refused subscriptions over SSE and graphql-ws, log no error and no stack', async () => {
    const http = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ projects { id } }' }),
    });
    expect(http.status).toBe(401);
    await refusedSse(watchOf(A), {});
    await refusedSse(watchOf(P), { 'x-api-key': KEY });
    await refusedSse(watchOf(A), { 'x-api-key': NO_READ });

    const client = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { 'x-api-key': KEY },
    });
    track({ close: () => client.dispose() }, 'graphql-ws client');
    const wsErrors = await new Promise<unknown>((resolve) => {
      client.subscribe(
        { query: WATCH, variables: watchOf(P) },
        { next: (r) => resolve(r.errors), error: resolve, complete: () => resolve(undefined) },
      );
    });
    expect(wsErrors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
    await client.dispose();

    const refusals = lines.filter((l) => l.code !== undefined);
    expect(refusals.map((l) => [l.level, l.code])).toEqual([
      [30, 'UNAUTHENTICATED'],
      [30, 'UNAUTHENTICATED'],
      [30, 'NOT_FOUND'],
      [30, 'FORBIDDEN'],
      [30, 'NOT_FOUND'],
    ]);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(JSON.stringify(lines)).not.toContain('"stack"');
  });

  it('finding 9e: what the gateway did not mean is still an error with its stack; Atlas 5xx a warning', () => {
    const logged: LogLine[] = [];
    const logger = yogaLogger(
      createLogger({
        level: 'debug',
        destination: new Writable({
          write(chunk: Buffer, _enc, done) {
            logged.push(JSON.parse(chunk.toString('utf8')) as LogLine);
            done();
          },
        }),
      }),
      expectedErrorLine,
    );
    logger.error(new GatewayError('UNAUTHENTICATED', 'Authentication required.'));
    logger.error(new AtlasApiError({ operation: 'getGroup', status: 503, errorCode: 'SERVICE_UNAVAILABLE' }));
    logger.error(new TypeError('boom'));
    logger.error(new GatewayError('INTERNAL_SERVER_ERROR', 'should not happen'));
    expect(logged.map((l) => [l.level, l.code ?? null, l.msg, l.err?.stack !== undefined])).toEqual([
      [30, 'UNAUTHENTICATED', 'Authentication required.', false],
      [40, 'UPSTREAM_UNAVAILABLE', 'Atlas answered HTTP 503.', false],
      [50, null, 'boom', true],
      [50, null, 'should not happen', true],
    ]);
  });
});
