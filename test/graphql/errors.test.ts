import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasAuthError,
  AtlasNetworkError,
  AtlasResponseError,
} from '../../src/atlas/errors.js';
import type { AtlasExchange } from '../../src/atlas/index.js';
import { BadUserInputError, GatewayError } from '../../src/errors/index.js';
import { createGateway } from '../../src/gateway.js';
import {
  GraphQLError,
  locatedError,
  parse,
  Source,
  type FieldNode,
  type OperationDefinitionNode,
} from 'graphql';
import {
  expectedErrorLine,
  maskError,
  originalOf,
  requestErrorExtensions,
  toGraphQLError,
} from '../../src/graphql/errors.js';
import { SEED } from '../../src/simulator/seed.js';
import { startTinyServer, type TinyServer } from '../support/tiny-server.js';
import { startStack, type Stack } from '../support/stack.js';
import { openAccess } from '../../src/callers/caller.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;

const DETAIL = 'No backup snapshot with ID 5f0c1d2e3a4b5c6d7e8f9a0b exists for cluster internal-name.';
const api = (
  status: number,
  errorCode: string,
  extra: Partial<ConstructorParameters<typeof AtlasApiError>[0]> = {},
) =>
  new AtlasApiError({
    operation: 'getGroup',
    status,
    errorCode,
    reason: 'r',
    detail: DETAIL,
    parameters: ['5f0c1d2e3a4b5c6d7e8f9a0b'],
    ...extra,
  });

describe('error mapping', () => {
  // Every status Atlas answers with: its own (spec) and those of proxies in front of it.
  it.each([
    [400, 'VALIDATION_ERROR', 'BAD_USER_INPUT', false, 'Atlas refused the request (VALIDATION_ERROR).'],
    [401, 'UNAUTHORIZED', 'UNAUTHENTICATED', false, 'Atlas did not accept the credentials.'],
    [
      403,
      'USER_UNAUTHORIZED',
      'FORBIDDEN',
      false,
      'Atlas refused: the credential lacks the role for this (USER_UNAUTHORIZED).',
    ],
    [404, 'RESOURCE_NOT_FOUND', 'NOT_FOUND', false, 'Atlas has no such resource (RESOURCE_NOT_FOUND).'],
    [405, 'HTTP_405', 'UPSTREAM_UNAVAILABLE', false, 'Atlas answered HTTP 405.'],
    [
      409,
      'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE',
      'CONFLICT',
      false,
      'Atlas reports a conflict (CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE).',
    ],
    [410, 'VERSION_GONE', 'GONE', false, 'Atlas no longer serves this (VERSION_GONE).'],
    [429, 'RATE_LIMITED', 'RATE_LIMITED', true, 'Atlas rate limit reached; retry later.'],
    [500, 'UNEXPECTED_ERROR', 'UPSTREAM_UNAVAILABLE', false, 'Atlas answered HTTP 500.'],
    [501, 'HTTP_501', 'UPSTREAM_UNAVAILABLE', false, 'Atlas answered HTTP 501.'],
    [502, 'HTTP_502', 'UPSTREAM_UNAVAILABLE', true, 'Atlas answered HTTP 502.'],
    [503, 'SERVICE_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', true, 'Atlas answered HTTP 503.'],
    [504, 'HTTP_504', 'UPSTREAM_UNAVAILABLE', true, 'Atlas answered HTTP 504.'],
  ] as const)(
    'Atlas %i %s → %s (retryable %s) with extensions.atlas and no upstream text',
    (status, errorCode, code, retryable, message) => {
      const e = toGraphQLError(api(status, errorCode))!;
      expect(e.message).toBe(message);
      expect(e.extensions).toEqual({
        code,
        retryable,
        atlas: { status, errorCode, reason: 'r' },
      });
    },
  );

  it('keeps Retry-After and the request id for clients', () => {
    const e = toGraphQLError(api(429, 'RATE_LIMITED', { retryAfterMs: 55_000, requestId: 'req-1' }))!;
    expect(e.extensions).toMatchObject({ retryAfterMs: 55_000, requestId: 'req-1' });
  });

  it('sends reason null when Atlas gave none (a proxy’s page)', () => {
    const e = toGraphQLError(
      new AtlasApiError({ operation: 'getGroup', status: 502, errorCode: 'HTTP_502' }),
    )!;
    expect(e.extensions.atlas).toEqual({ status: 502, errorCode: 'HTTP_502', reason: null });
  });

  it('maps network, bad-response and auth failures to UPSTREAM_UNAVAILABLE', () => {
    const net = new AtlasNetworkError('reset', {
      operation: 'getGroup',
      code: 'ATLAS_NETWORK_ERROR',
      sent: true,
    });
    const timeout = new AtlasNetworkError('slow', {
      operation: 'getGroup',
      code: 'ATLAS_TIMEOUT',
      sent: true,
    });
    const bad = new AtlasResponseError('not json', { operation: 'getGroup', status: 200 });
    const auth = new AtlasAuthError('invalid_client', { operation: 'oauthToken', status: 401 });
    expect(toGraphQLError(net)!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    expect(toGraphQLError(timeout)!.message).toBe('Atlas did not answer in time.');
    expect(toGraphQLError(bad)!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    expect(toGraphQLError(auth)!.extensions).toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      retryable: false,
    });
  });

  it('passes gateway errors with their code and details', () => {
    const e = toGraphQLError(new BadUserInputError('projectId', 'a 24-character lowercase hex id', 'abc'))!;
    expect(e.message).toBe('Argument "projectId" must be a 24-character lowercase hex id; got "abc".');
    expect(e.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      argumentName: 'projectId',
      received: 'abc',
    });
    expect(toGraphQLError(new GatewayError('CONFLICT', 'x'))!.extensions.code).toBe('CONFLICT');
  });

  it('fails the whole request with the table’s status only for UNAUTHENTICATED', () => {
    expect(toGraphQLError(new GatewayError('UNAUTHENTICATED', 'x'))!.extensions.http).toEqual({
      status: 401,
    });
    expect(toGraphQLError(new GatewayError('NOT_FOUND', 'x'))!.extensions.http).toBeUndefined();
  });

  it('masks anything else as INTERNAL_SERVER_ERROR without its message', () => {
    const masked = maskError(new Error('secret connection string mongodb://u:p@h'), 'Unexpected error.');
    expect(masked.message).toBe('Unexpected error.');
    expect(JSON.stringify(masked)).not.toContain('secret');
    expect((masked as { extensions?: { code?: string } }).extensions?.code).toBe('INTERNAL_SERVER_ERROR');
  });
});

describe('error mapping, message by message', () => {
  const net = (code: 'ATLAS_NETWORK_ERROR' | 'ATLAS_TIMEOUT', requestId?: string) =>
    new AtlasNetworkError('x', { operation: 'getGroup', code, sent: true, requestId });

  it('a Digest nonce that kept going stale is a retryable UPSTREAM_UNAVAILABLE, not a refused key', () => {
    const e = toGraphQLError(api(401, 'UNAUTHORIZED', { nonceStale: true }))!;
    expect([e.message, e.extensions.code, e.extensions.retryable]).toEqual([
      'Atlas kept answering that the Digest nonce had expired; retry.',
      'UPSTREAM_UNAVAILABLE',
      true,
    ]);
  });

  it('no retryAfterMs or requestId key at all when Atlas sent none', () => {
    expect(Object.keys(toGraphQLError(api(503, 'SERVICE_UNAVAILABLE'))!.extensions)).toEqual([
      'code',
      'retryable',
      'atlas',
    ]);
  });

  it('says which of network, timeout, unreadable answer or Atlas authentication failed, with the request id', () => {
    const auth = new AtlasAuthError('invalid_client', { operation: 'oauthToken', status: 401 });
    const bad = new AtlasResponseError('not json', { operation: 'getGroup', status: 200 });
    expect(
      [net('ATLAS_NETWORK_ERROR'), net('ATLAS_TIMEOUT'), bad, auth].map((e) => toGraphQLError(e)!.message),
    ).toEqual([
      'Atlas could not be reached.',
      'Atlas did not answer in time.',
      'Atlas sent an answer the gateway could not read.',
      'The gateway could not authenticate to Atlas.',
    ]);
    expect(toGraphQLError(net('ATLAS_NETWORK_ERROR', 'req-9'))!.extensions).toEqual({
      code: 'UPSTREAM_UNAVAILABLE',
      retryable: true,
      requestId: 'req-9',
    });
    expect(toGraphQLError(net('ATLAS_NETWORK_ERROR'))!.extensions).toEqual({
      code: 'UPSTREAM_UNAVAILABLE',
      retryable: true,
    });
  });
});

describe('maskError and originalOf', () => {
  const doc = parse(new Source('{ project { name } }', 'q.graphql'));
  const field = (doc.definitions[0] as OperationDefinitionNode).selectionSet.selections[0] as FieldNode;

  it('keeps where the error stands (nodes, source, positions, path) when it maps it', () => {
    const located = locatedError(new GatewayError('NOT_FOUND', 'No such project.'), [field], ['project']);
    const mapped = maskError(located, 'Unexpected error.') as GraphQLError;
    expect(mapped.message).toBe('No such project.');
    expect(mapped.nodes).toEqual([field]);
    expect(mapped.source).toBe(located.source);
    expect(mapped.positions).toEqual([2]);
    expect(mapped.locations).toEqual([{ line: 1, column: 3 }]);
    expect(mapped.path).toEqual(['project']);
    const masked = maskError(locatedError(new Error('boom'), [field], ['project']), 'Unexpected error.');
    expect((masked as GraphQLError).path).toEqual(['project']);
    expect((masked as GraphQLError).locations).toEqual([{ line: 1, column: 3 }]);
  });

  it('passes graphql’s own errors (no cause) as they are, and masks null and strings', () => {
    const own = new GraphQLError('Cannot query field "nope" on type "Query".');
    expect(maskError(own, 'Unexpected error.')).toBe(own);
    for (const thrown of [null, 'a string', 42]) {
      const masked = maskError(thrown, 'Unexpected error.') as GraphQLError;
      expect([masked.message, masked.extensions.code]).toEqual([
        'Unexpected error.',
        'INTERNAL_SERVER_ERROR',
      ]);
    }
    expect(originalOf(null)).toBeNull();
  });

  it('originalOf unwraps located errors down to the thrown one, and stops at an error that is its own cause', () => {
    const thrown = new GatewayError('CONFLICT', 'x');
    expect(originalOf(locatedError(locatedError(thrown, [field]), [field]))).toBe(thrown);
    const loop = new GraphQLError('loop');
    Object.defineProperty(loop, 'originalError', { value: loop });
    expect(originalOf(loop)).toBe(loop);
    // Only an error named GraphQLError is unwrapped, not anything with an originalError.
    const lookalike = { name: 'Other', originalError: thrown };
    expect(originalOf(lookalike)).toBe(lookalike);
  });
});

describe('expectedErrorLine', () => {
  const doc = parse('{ project { name } }');
  const field = (doc.definitions[0] as OperationDefinitionNode).selectionSet.selections[0] as FieldNode;

  it('info for what the client caused (with the field’s path), warn for Atlas, nothing for the unexpected', () => {
    expect(
      expectedErrorLine(locatedError(new GatewayError('FORBIDDEN', 'No right.'), [field], ['project'])),
    ).toEqual({ level: 'info', fields: { code: 'FORBIDDEN', path: ['project'] }, message: 'No right.' });
    expect(expectedErrorLine(api(503, 'SERVICE_UNAVAILABLE'))).toEqual({
      level: 'warn',
      fields: { code: 'UPSTREAM_UNAVAILABLE' },
      message: 'Atlas answered HTTP 503.',
    });
    expect(expectedErrorLine(new GatewayError('SHUTTING_DOWN', 'Bye.'))).toEqual({
      level: 'warn',
      fields: { code: 'SHUTTING_DOWN' },
      message: 'Bye.',
    });
    expect(expectedErrorLine(new Error('boom'))).toBeUndefined();
    expect(expectedErrorLine(new GatewayError('INTERNAL_SERVER_ERROR', 'x'))).toBeUndefined();
  });
});

describe('requestErrorExtensions', () => {
  it('puts the code, the extras and the code’s status from the table', () => {
    expect(
      requestErrorExtensions('RATE_LIMITED', { retryAfterMs: 2000 }, { headers: { 'retry-after': '2' } }),
    ).toEqual({
      code: 'RATE_LIMITED',
      retryAfterMs: 2000,
      http: { status: 429, headers: { 'retry-after': '2' } },
    });
    expect(requestErrorExtensions('PERSISTED_QUERY_NOT_FOUND')).toEqual({
      code: 'PERSISTED_QUERY_NOT_FOUND',
      http: { status: 400 },
    });
    expect(requestErrorExtensions('UPSTREAM_UNAVAILABLE', {}, { status: 504 }).http).toEqual({ status: 504 });
  });
});

describe('what a client sees of an Atlas error answer', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  it('gets status, errorCode and reason, never Atlas’s detail or parameters', async () => {
    const res = await stack.query(
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
      { i: { projectId: P, clusterName: F.clusterName, snapshotId: SEED.unknownId, reuseExisting: false } },
    );
    const error = res.errors![0]!;
    expect(error.message).toBe('Atlas has no such resource (RESOURCE_NOT_FOUND).');
    expect(error.extensions).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    expect(error.extensions!.atlas).toEqual({
      status: 404,
      errorCode: 'RESOURCE_NOT_FOUND',
      reason: 'Not Found',
    });
    // The simulator's detail names the snapshot and cluster; its `parameters` are [snapshotId].
    const body = JSON.stringify(res);
    expect(body).not.toContain('No backup snapshot');
    expect(body).not.toContain(SEED.unknownId);
  });
});

describe('a proxy’s HTML error page in front of Atlas', () => {
  const PAGE = '<html><body><h1>502 Bad Gateway</h1><p>edge-proxy-7.internal</p></body></html>';
  let tiny: TinyServer;
  beforeAll(async () => {
    tiny = await startTinyServer((_req, res: ServerResponse) => {
      res.writeHead(502, { 'content-type': 'text/html' }).end(PAGE);
    });
  });
  afterAll(async () => {
    await tiny.close();
  });

  it('reaches the exchange observers (the logs), not the client', async () => {
    const exchanges: AtlasExchange[] = [];
    const gateway = createGateway({
      // Open on purpose: callers are not what this exercises.
      authenticate: openAccess,
      logging: false,
      atlas: {
        baseUrl: tiny.url,
        auth: { type: 'none' },
        sleep: async () => {},
        onExchange: (e) => exchanges.push(e),
      },
    });
    try {
      const res = await gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: `{ project(id: "${P}") { name } }` }),
      });
      const text = await res.text();
      const body = JSON.parse(text) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(body.errors[0]).toMatchObject({
        message: 'Atlas answered HTTP 502.',
        extensions: {
          code: 'UPSTREAM_UNAVAILABLE',
          retryable: true,
          atlas: { status: 502, errorCode: 'HTTP_502', reason: null },
        },
      });
      expect(text).not.toContain('<html');
      expect(text).not.toContain('edge-proxy');
      expect(exchanges.length).toBeGreaterThan(0);
      for (const e of exchanges) expect(e).toMatchObject({ status: 502, detail: PAGE });
    } finally {
      await gateway.close();
    }
  });
});
