import { describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasAuthError,
  AtlasNetworkError,
  AtlasResponseError,
} from '../../src/atlas/errors.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  coveringPageSize,
  decodeCursor,
  encodeCursor,
  pageFromList,
  pageFromUpstream,
  checkFirst,
} from '../../src/graphql/connection.js';
import { BadUserInputError, GatewayError, maskError, toGraphQLError } from '../../src/graphql/errors.js';

const api = (
  status: number,
  errorCode: string,
  extra: Partial<ConstructorParameters<typeof AtlasApiError>[0]> = {},
) => new AtlasApiError({ operation: 'getGroup', status, errorCode, reason: 'r', detail: 'd', ...extra });

describe('error mapping', () => {
  it.each([
    [400, 'VALIDATION_ERROR', 'BAD_USER_INPUT', false],
    [401, 'UNAUTHORIZED', 'UNAUTHENTICATED', false],
    [403, 'USER_UNAUTHORIZED', 'FORBIDDEN', false],
    [404, 'RESOURCE_NOT_FOUND', 'NOT_FOUND', false],
    [409, 'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE', 'CONFLICT', false],
    [410, 'VERSION_GONE', 'GONE', false],
    [429, 'RATE_LIMITED', 'RATE_LIMITED', true],
    [500, 'UNEXPECTED_ERROR', 'UPSTREAM_UNAVAILABLE', false],
    [503, 'SERVICE_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', true],
  ] as const)(
    'Atlas %i %s → %s (retryable %s) with extensions.atlas',
    (status, errorCode, code, retryable) => {
      const e = toGraphQLError(api(status, errorCode, { parameters: ['x'] }))!;
      expect(e.extensions).toMatchObject({
        code,
        retryable,
        atlas: { status, errorCode, reason: 'r', detail: 'd', parameters: ['x'] },
      });
    },
  );

  it('keeps Retry-After for clients', () => {
    expect(toGraphQLError(api(429, 'RATE_LIMITED', { retryAfterMs: 55_000 }))!.extensions.retryAfterMs).toBe(
      55_000,
    );
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

  it('masks anything else as INTERNAL_SERVER_ERROR without its message', () => {
    const masked = maskError(new Error('secret connection string mongodb://u:p@h'), 'Unexpected error.');
    expect(masked.message).toBe('Unexpected error.');
    expect(JSON.stringify(masked)).not.toContain('secret');
    expect((masked as { extensions?: { code?: string } }).extensions?.code).toBe('INTERNAL_SERVER_ERROR');
  });
});

describe('connections', () => {
  it('round-trips cursors and rejects forged ones', () => {
    expect(decodeCursor(encodeCursor(140))).toBe(140);
    expect(decodeCursor(undefined)).toBe(0);
    expect(() => decodeCursor('bm9wZQ')).toThrow(BadUserInputError);
  });

  it('bounds first', () => {
    expect(checkFirst(undefined)).toBe(20);
    expect(() => checkFirst(-1)).toThrow('Argument "first" must be an integer from 0 to 500; got -1.');
    expect(() => checkFirst(501)).toThrow(BadUserInputError);
  });

  it('finds the Atlas page size that covers a range with one call', () => {
    expect(coveringPageSize(0, 20)).toBe(20);
    expect(coveringPageSize(40, 20)).toBe(20);
    expect(coveringPageSize(10, 20)).toBe(30);
    expect(coveringPageSize(499, 2)).toBe(3);
    expect(coveringPageSize(499, 500)).toBeUndefined();
  });

  it('reads one page when one covers the range, and pages of 500 otherwise', async () => {
    const items = Array.from({ length: 1200 }, (_, i) => i);
    const calls: [number, number][] = [];
    const fetch = async (pageNum: number, size: number) => {
      calls.push([pageNum, size]);
      return { results: items.slice((pageNum - 1) * size, pageNum * size), totalCount: items.length };
    };
    const a = await pageFromUpstream(fetch, 40, 20);
    expect(a.nodes).toEqual(items.slice(40, 60));
    expect(calls).toEqual([[3, 20]]);
    expect(a.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor(60) });
    calls.length = 0;
    const b = await pageFromUpstream(fetch, 499, 500);
    expect(b.nodes).toEqual(items.slice(499, 999));
    expect(calls).toEqual([
      [1, 500],
      [2, 500],
    ]);
    const last = await pageFromUpstream(fetch, 1190, 20);
    expect(last.nodes).toHaveLength(10);
    expect(last.pageInfo.hasNextPage).toBe(false);
  });

  it('slices a whole list', () => {
    const s = pageFromList([1, 2, 3, 4, 5], 2, 2);
    expect(s).toEqual({
      nodes: [3, 4],
      totalCount: 5,
      pageInfo: { hasNextPage: true, endCursor: encodeCursor(4) },
    });
    expect(pageFromList([1, 2], 2, 2).pageInfo).toEqual({ hasNextPage: false, endCursor: null });
  });
});

describe('config', () => {
  it('runs demo mode with no credentials', () => {
    expect(loadConfig({})).toMatchObject({
      demo: true,
      port: 4000,
      host: '127.0.0.1',
      atlas: { auth: { type: 'none' } },
    });
  });

  it('prefers a service account, and takes Terraform’s API key names', () => {
    expect(
      loadConfig({ MONGODB_ATLAS_CLIENT_ID: 'i', MONGODB_ATLAS_CLIENT_SECRET: 's' }).atlas,
    ).toMatchObject({
      baseUrl: 'https://cloud.mongodb.com',
      auth: { type: 'oauth', clientId: 'i' },
    });
    expect(
      loadConfig({ MONGODB_ATLAS_PUBLIC_KEY: 'pub', MONGODB_ATLAS_PRIVATE_KEY: 'priv' }).atlas.auth,
    ).toEqual({
      type: 'digest',
      publicKey: 'pub',
      privateKey: 'priv',
    });
  });

  it('names every bad variable at once, without echoing secrets', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        MONGODB_ATLAS_CLIENT_SECRET: 'hunter2',
        MONGODB_ATLAS_BASE_URL: 'ftp://x',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        'PORT: expected an integer from 0 to 65535, got "eighty"',
        'MONGODB_ATLAS_BASE_URL: expected an http(s) URL, got "ftp://x"',
        'MONGODB_ATLAS_CLIENT_ID: must be set together with MONGODB_ATLAS_CLIENT_SECRET, which is set',
      ]),
    );
    expect((err as Error).message).not.toContain('hunter2');
  });
});
