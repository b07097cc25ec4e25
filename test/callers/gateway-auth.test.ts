import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { jwtAuth } from '../../src/callers/jwt.js';
import { passThroughAuth } from '../../src/callers/pass-through.js';
import { redactUrl } from '../../src/callers/redact.js';
import { SEED } from '../../src/simulator/seed.js';
import { READ_ONLY, startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

const A = SEED.projects.analytics.id;
/** Exists, has clusters, snapshots and jobs: the key limited to A must not see any of it. */
const B = SEED.projects.payments.id;
const KEY_A = generateApiKey();
const KEY_ALL = generateApiKey();
const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';

/** One GraphQL request through `yoga.fetch`, in-process, with these headers. */
async function gql<T = Record<string, unknown>>(
  stack: Stack,
  query: string,
  headers: Record<string, string>,
): Promise<GraphQLAnswer<T>> {
  const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<T>, 'status'>) };
}

describe('API keys and JWTs through the gateway', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      gateway: {
        authenticate: authenticateWith([
          apiKeyAuth({
            keys: [
              { id: 'only-a', hash: hashApiKey(KEY_A), projects: [A], rights: ['read'] },
              // `download`: the snapshotUrl below is answered only to callers holding it (finding 1).
              { id: 'all', hash: hashApiKey(KEY_ALL), projects: '*', rights: ['read', 'download'] },
            ],
          }),
          jwtAuth({ key: { secret: SECRET }, issuer: 'https://idp.test/', audience: 'gateway' }),
        ]),
      },
    });
  });
  afterAll(async () => {
    await stack.close();
  });

  it('answers 401 UNAUTHENTICATED without a key, and with an unknown one, before any upstream call', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const attempts: Record<string, string>[] = [
        {},
        { 'x-api-key': generateApiKey() },
        { authorization: `Bearer ${generateApiKey()}` },
      ];
      for (const headers of attempts) {
        const res = await gql(stack, '{ projects { id } }', headers);
        expect(res.status).toBe(401);
        expect(res.data ?? null).toBeNull();
        expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      }
    });
    expect(calls).toEqual([]);
  });

  it('lists only the projects of a limited key', async () => {
    const res = await gql<{ projects: { id: string }[] }>(stack, '{ projects { id } }', {
      'x-api-key': KEY_A,
    });
    expect(res.status).toBe(200);
    expect(res.data?.projects).toEqual([{ id: A }]);
    const all = await gql<{ projects: { id: string }[] }>(stack, '{ projects { id } }', {
      'x-api-key': KEY_ALL,
    });
    expect(all.data?.projects.map((p) => p.id).sort()).toEqual(
      Object.values(SEED.projects)
        .map((p) => p.id)
        .sort(),
    );
  });

  it('answers null for another project exactly as for one that does not exist, with no upstream call', async () => {
    const lookups = (projectId: string) => `{
      project(id: "${projectId}") { id name }
      cluster(projectId: "${projectId}", name: "${SEED.tenant.clusterName}") { name }
      snapshot(projectId: "${projectId}", clusterName: "${SEED.tenant.clusterName}", id: "${SEED.tenant.completedSnapshotId}") { id }
      restoreJob(projectId: "${projectId}", clusterName: "${SEED.tenant.clusterName}", id: "${SEED.tenant.restoreJobId}") { id }
    }`;
    // The same data exists for a key that may see B: the null below is the limit, not the seed.
    const visible = await gql(stack, lookups(B), { 'x-api-key': KEY_ALL });
    expect(visible.errors).toBeUndefined();
    expect(Object.values(visible.data ?? {}).every((v) => v !== null)).toBe(true);

    let hidden: GraphQLAnswer | undefined;
    const calls = await stack.upstreamCalls(async () => {
      hidden = await gql(stack, lookups(B), { 'x-api-key': KEY_A });
    });
    expect(calls).toEqual([]);
    const missing = await gql(stack, lookups(SEED.unknownId), { 'x-api-key': KEY_ALL });
    const nulls = { project: null, cluster: null, snapshot: null, restoreJob: null };
    expect(missing).toEqual({ status: 200, data: nulls });
    expect(hidden).toEqual(missing);
  });

  it('lets a JWT caller see the projects of its claims', async () => {
    const token = await new SignJWT({ atlas_projects: [B], atlas_rights: ['read'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.test/')
      .setAudience('gateway')
      .setSubject('frontend-user')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    const res = await gql<{ projects: { id: string }[]; project: { name: string } | null }>(
      stack,
      `{ projects { id } project(id: "${B}") { name } other: project(id: "${A}") { name } }`,
      { authorization: `Bearer ${token}` },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ projects: [{ id: B }], project: { name: 'Payments' }, other: null });
  });

  it('answers 401 for a JWT that fails a check, naming the check', async () => {
    const token = await new SignJWT({ atlas_projects: '*' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.test/')
      .setAudience('another-api')
      .setSubject('u')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    const res = await gql(stack, '{ projects { id } }', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.errors?.[0]).toMatchObject({
      message: 'The JWT audience (aud) is not one this gateway accepts.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('keeps the signature of a snapshotUrl out of what redactUrl gives to logs', async () => {
    const res = await gql<{ restoreJob: { snapshotUrl: string } }>(
      stack,
      `{ restoreJob(projectId: "${SEED.flex.groupId}", clusterName: "${SEED.flex.clusterName}", id: "${SEED.flex.freshDownloadJobId}") { snapshotUrl } }`,
      { 'x-api-key': KEY_ALL },
    );
    const url = res.data?.restoreJob.snapshotUrl ?? '';
    const signature = new URL(url).searchParams.get('signature') ?? '';
    expect(signature).not.toBe('');
    const redacted = redactUrl(url);
    expect(redacted).not.toContain(signature);
    expect(redacted).toMatch(/\.tgz\?expires=\d+&signature=\[redacted\]$/);
  });
});

describe('pass-through through the gateway', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gateway: { authenticate: authenticateWith([passThroughAuth()]) } });
  });
  afterAll(async () => {
    await stack.close();
  });

  const basic = `Basic ${Buffer.from(`${READ_ONLY.clientId}:${READ_ONLY.clientSecret}`).toString('base64')}`;
  /** A service-account token of the simulator's read-only client, as a caller would hold it. */
  async function callerToken(): Promise<string> {
    const res = await fetch(`${stack.sim.url}/api/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    const token = ((await res.json()) as { access_token: string }).access_token;
    return token;
  }

  it("sends the caller's token upstream instead of the gateway's own credentials", async () => {
    const issuedBefore = stack.sim.auth.stats().tokensIssued;
    const token = await callerToken();
    const res = await gql<{ projects: { id: string }[] }>(stack, '{ projects { id } }', {
      'x-atlas-access-token': token,
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?.projects).toHaveLength(3);
    // Only the caller's token was issued: the gateway never fetched one of its own.
    expect(stack.sim.auth.stats().tokensIssued).toBe(issuedBefore + 1);
    expect(stack.sim.auth.stats().liveTokens(READ_ONLY.clientId)).toBeGreaterThanOrEqual(1);

    // Once the caller's token is revoked, Atlas refuses the very same request: it was that token.
    const revoke = await fetch(`${stack.sim.url}/api/oauth/revoke`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(revoke.status).toBe(200);
    const after = await gql(stack, '{ projects { id } }', { 'x-atlas-access-token': token });
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(after.errors?.[0]?.message).toBe('Atlas did not accept the credentials.');
  });

  it("answers UNAUTHENTICATED from Atlas's 401 for an invalid token, and 401 with no token", async () => {
    const res = await gql(stack, '{ projects { id } }', { 'x-atlas-access-token': 'not-a-live-token' });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', atlas: { status: 401 } });
    const none = await gql(stack, '{ projects { id } }', {});
    expect(none.status).toBe(401);
    expect(none.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
