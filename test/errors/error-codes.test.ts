import { describe, expect, it } from 'vitest';
import {
  BadUserInputError,
  GATEWAY_ERROR_CODES,
  GatewayError,
  HTTP_STATUSES,
  httpStatusOf,
  isGatewayErrorCode,
} from '../../src/errors/index.js';

describe('the error codes', () => {
  it('gives every code a status, and lists no status for a code outside the list', () => {
    expect(Object.keys(HTTP_STATUSES).sort()).toEqual([...GATEWAY_ERROR_CODES].sort());
    for (const code of GATEWAY_ERROR_CODES) expect(HTTP_STATUSES[code].length).toBeGreaterThan(0);
    expect(new Set(GATEWAY_ERROR_CODES).size).toBe(GATEWAY_ERROR_CODES.length);
  });

  it('answers each code with exactly these HTTP statuses, its own first', () => {
    expect(HTTP_STATUSES).toEqual({
      BAD_REQUEST: [400, 405, 413],
      GRAPHQL_PARSE_FAILED: [400],
      GRAPHQL_VALIDATION_FAILED: [400],
      OPERATION_RESOLUTION_FAILURE: [400],
      BAD_USER_INPUT: [400, 413],
      PERSISTED_QUERY_NOT_FOUND: [400],
      UNAUTHENTICATED: [401],
      FORBIDDEN: [403],
      NOT_FOUND: [404],
      CONFLICT: [409],
      GONE: [410],
      RATE_LIMITED: [429],
      INTERNAL_SERVER_ERROR: [500],
      UPSTREAM_UNAVAILABLE: [502, 504],
      OUTCOME_UNKNOWN: [504],
      STORE_UNAVAILABLE: [503],
      SHUTTING_DOWN: [503],
      OVERLOADED: [503],
    });
  });

  it.each([
    ['BAD_REQUEST', 400],
    ['BAD_USER_INPUT', 400],
    ['PERSISTED_QUERY_NOT_FOUND', 400],
    ['UNAUTHENTICATED', 401],
    ['FORBIDDEN', 403],
    ['NOT_FOUND', 404],
    ['CONFLICT', 409],
    ['GONE', 410],
    ['RATE_LIMITED', 429],
    ['INTERNAL_SERVER_ERROR', 500],
    ['UPSTREAM_UNAVAILABLE', 502],
    ['OUTCOME_UNKNOWN', 504],
    ['STORE_UNAVAILABLE', 503],
    ['OVERLOADED', 503],
  ] as const)('httpStatusOf(%s) is %i', (code, status) => {
    expect(httpStatusOf(code)).toBe(status);
  });

  it('takes a more precise status only where the table lists it', () => {
    expect(httpStatusOf('BAD_USER_INPUT', 413)).toBe(413);
    expect(httpStatusOf('UPSTREAM_UNAVAILABLE', 504)).toBe(504);
    // Never called: `tsc` fails if any of these compiles.
    const rejectedByTheCompiler = () => [
      // @ts-expect-error 504 is not a status of NOT_FOUND
      httpStatusOf('NOT_FOUND', 504),
      // @ts-expect-error not a code of the list
      httpStatusOf('REQUEST_ENTITY_TOO_LARGE'),
      // @ts-expect-error not a code of the list
      new GatewayError('TEAPOT', 'x'),
    ];
    expect(rejectedByTheCompiler).toBeTypeOf('function');
  });

  it('tells codes of the list from other strings', () => {
    expect(isGatewayErrorCode('GONE')).toBe(true);
    expect(isGatewayErrorCode('PERSISTED_QUERY_NOT_IN_LIST')).toBe(false);
    expect(isGatewayErrorCode(undefined)).toBe(false);
  });
});

describe('GatewayError', () => {
  it('carries its code, the status of the code, its extensions and its cause', () => {
    const cause = new Error('socket hang up');
    const e = new GatewayError('CONFLICT', 'Already running.', { extensions: { jobId: 'j' }, cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('GatewayError');
    expect(e.code).toBe('CONFLICT');
    expect(e.status).toBe(409);
    expect(e.message).toBe('Already running.');
    expect(e.extensions).toEqual({ jobId: 'j' });
    expect(e.cause).toBe(cause);
  });

  it('has no extensions and no cause unless given', () => {
    const e = new GatewayError('UNAUTHENTICATED', 'No credentials.');
    expect(e.status).toBe(401);
    expect(e.extensions).toEqual({});
    expect('cause' in e).toBe(false);
  });

  it('takes its status from the table for every code', () => {
    for (const code of GATEWAY_ERROR_CODES) {
      expect(new GatewayError(code, 'x').status).toBe(HTTP_STATUSES[code][0]);
    }
  });

  it('BadUserInputError names the argument, what was expected and what arrived', () => {
    const e = new BadUserInputError('projectId', 'a 24-character lowercase hex id', 'abc');
    expect(e).toBeInstanceOf(GatewayError);
    expect(e.code).toBe('BAD_USER_INPUT');
    expect(e.status).toBe(400);
    expect(e.message).toBe('Argument "projectId" must be a 24-character lowercase hex id; got "abc".');
    expect(e.extensions).toEqual({
      argumentName: 'projectId',
      expected: 'a 24-character lowercase hex id',
      received: 'abc',
    });
  });
});

describe('docs/api.md', () => {
  it('lists exactly the codes of the one list, each with its statuses', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` +\| ([\d, ]+?) +\|/gm)].map((m) => [
      m[1],
      m[2]!.split(',').map((n) => Number(n.trim())),
    ]);
    expect(Object.fromEntries(rows)).toEqual(HTTP_STATUSES);
  });
});
