import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadPersistedManifest,
  parsePersistedManifest,
  sha256Hex,
  type PersistedManifest,
} from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { firstError, post, startSecureStack } from '../support/security-gateway.js';

const KNOWN = `query ProjectName($id: ID!) { project(id: $id) { name } }`;
const HASH = sha256Hex(KNOWN);
const manifest: PersistedManifest = parsePersistedManifest({ [HASH]: KNOWN });
const variables = { id: SEED.projects.payments.id };
const apq = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });

describe('persisted operations, enforce', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startSecureStack({ persistedOperations: 'enforce', persistedManifest: manifest });
  });
  afterAll(async () => {
    await stack.close();
  });

  it('runs a manifest operation sent by its APQ hash', async () => {
    const res = await post(stack, { extensions: apq(HASH), variables });
    expect(res.status).toBe(200);
    expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
  });

  it('runs a manifest operation sent by documentId', async () => {
    const res = await post(stack, { documentId: `sha256:${HASH}`, variables });
    expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
  });

  it('refuses a document sent in full, even one of the manifest, before any upstream call', async () => {
    for (const query of [KNOWN, `{ projects { name } }`]) {
      let res;
      const calls = await stack.upstreamCalls(async () => {
        res = await post(stack, { query, variables });
      });
      expect(calls).toEqual([]);
      expect(res!.status).toBe(400);
      expect(firstError(res!)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/^This gateway runs only persisted operations/),
      });
    }
  });

  it('refuses a hash that is not in the manifest', async () => {
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, { extensions: apq(sha256Hex('{ projects { name } }')) });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(400);
    expect(firstError(res!)).toEqual({
      code: 'PERSISTED_QUERY_NOT_FOUND',
      message: expect.stringMatching(/^PersistedQueryNotFound: this gateway runs only the operations of its/),
    });
  });
});

describe('persisted operations, allow', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startSecureStack({ persistedOperations: 'allow', persistedManifest: manifest });
  });
  afterAll(async () => {
    await stack.close();
  });

  it('runs both a manifest hash and a full document', async () => {
    const byHash = await post(stack, { extensions: apq(HASH), variables });
    expect(byHash.json?.data).toEqual({ project: { name: 'Payments' } });
    const byText = await post(stack, { query: `{ project(id: "${variables.id}") { name } }` });
    expect(byText.json?.data).toEqual({ project: { name: 'Payments' } });
  });

  it('answers an unknown hash with the code APQ clients retry on', async () => {
    const res = await post(stack, { extensions: apq('0'.repeat(64)) });
    expect(firstError(res)?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });
});

describe('the manifest', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gateway-manifest-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('reads the client preset map and Apollo’s manifest format', () => {
    expect([...loadPersistedManifest(file('plain.json', JSON.stringify({ [HASH]: KNOWN })))]).toEqual([
      [HASH, KNOWN],
    ]);
    const apollo = {
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: [{ id: HASH, name: 'ProjectName', type: 'query', body: KNOWN }],
    };
    expect(loadPersistedManifest(file('apollo.json', JSON.stringify(apollo))).get(HASH)).toBe(KNOWN);
  });

  it('says what is wrong with a bad manifest', () => {
    expect(() => loadPersistedManifest(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json/);
    expect(() => loadPersistedManifest(file('bad.json', '{'))).toThrow(/is not JSON/);
    expect(() => parsePersistedManifest([])).toThrow(
      /expected a JSON object of sha256 → document, got an array/,
    );
    expect(() => parsePersistedManifest({ abc: KNOWN })).toThrow(/key "abc": expected a sha256/);
    expect(() => parsePersistedManifest({ [HASH]: 42 })).toThrow(
      /expected a GraphQL document \(a string\), got number/,
    );
    expect(() => parsePersistedManifest({ [HASH]: `${KNOWN} ` })).toThrow(
      new RegExp(`"${HASH}": the sha256 of its document is ${sha256Hex(`${KNOWN} `)}`),
    );
  });
});
