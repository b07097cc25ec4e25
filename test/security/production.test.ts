import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { securityYogaOptions } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, raw, startSecureStack } from '../support/security-gateway.js';

const C = SEED.flex;
const TYPO_FIELD = `{ projectz { name } }`;
const TYPO_ENUM = `{ cluster(projectId: "${C.groupId}", name: "${C.clusterName}") { snapshots(status: [QUEUD]) { totalCount } } }`;
const TYPO_ENUM_VARIABLE = {
  query: `query S($s: [JobStatus!]) { cluster(projectId: "${C.groupId}", name: "${C.clusterName}") { snapshots(status: $s) { totalCount } } }`,
  variables: { s: ['QUEUD'] },
};

describe('production mode', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startSecureStack({ production: true });
  });
  afterAll(async () => {
    await stack.close();
  });

  it('refuses introspection before any upstream call', async () => {
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { query: '{ __schema { types { name } } }' });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)?.message).toMatch(/introspection has been disabled/);
    const type = await post(stack, { query: '{ __type(name: "Cluster") { fields { name } } }' });
    expect(firstError(type)?.message).toMatch(/introspection has been disabled/);
  });

  it('still answers __typename', async () => {
    const res = await post(stack, { query: '{ __typename }' });
    expect(res.json).toEqual({ data: { __typename: 'Query' } });
  });

  it('gives no field, argument or enum suggestions', async () => {
    for (const body of [{ query: TYPO_FIELD }, { query: TYPO_ENUM }, TYPO_ENUM_VARIABLE]) {
      let res;
      const calls = await stack.upstreamCalls(async () => {
        res = await post(stack, body);
      });
      expect(calls).toEqual([]);
      const message = firstError(res!)?.message ?? '';
      expect(message).not.toBe('');
      expect(message).not.toMatch(/Did you mean|projects|QUEUED/);
    }
  });

  it('serves no GraphiQL', async () => {
    expect(securityYogaOptions({ production: true }).graphiql).toBe(false);
    const res = await raw(stack, { method: 'GET', headers: { accept: 'text/html' } });
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
  });
});

describe('outside production', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startSecureStack({ production: false });
  });
  afterAll(async () => {
    await stack.close();
  });

  it('answers introspection and suggests fields and enum values', async () => {
    const intro = await post(stack, { query: '{ __schema { queryType { name } } }' });
    expect(intro.json).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    expect(firstError(await post(stack, { query: TYPO_FIELD }))?.message).toMatch(
      /Did you mean .*"projects"/,
    );
    expect(firstError(await post(stack, { query: TYPO_ENUM }))?.message).toMatch(
      /Did you mean the enum value "QUEUED"/,
    );
  });

  it('serves GraphiQL', async () => {
    const res = await raw(stack, { method: 'GET', headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
  });
});
