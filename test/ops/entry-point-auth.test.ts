import { SignJWT } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startContractSimulator } from '../support/contract.js';
import { startEntryPoint } from '../support/entry-point.js';
import { fetchToken } from '../support/sim-http.js';

// The process `npm start` runs, in each GATEWAY_AUTH mode, against a simulator playing real Atlas
// (not demo mode): dropping the caller check where src/index.ts wires the gateway must fail here.
const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const P = SEED.projects.payments.id;
const KEY = generateApiKey();
const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const QUERY = JSON.stringify({ query: '{ projects { id } }' });

async function post(url: string, headers: Record<string, string> = {}) {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: QUERY,
  });
  const body = (await res.body.json()) as {
    data?: { projects: { id: string }[] } | null;
    errors?: { extensions?: { code?: string } }[];
  };
  return { status: res.statusCode, code: body.errors?.[0]?.extensions?.code, data: body.data };
}

async function realAtlas() {
  const sim = await startContractSimulator();
  return {
    sim,
    env: {
      MONGODB_ATLAS_BASE_URL: sim.url,
      MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
      MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
    },
  };
}

describe('src/index.ts refuses requests without credentials in every caller mode', () => {
  it('apikey: 401 without a key, the key’s projects with it', async () => {
    const { env } = await realAtlas();
    const gw = await startEntryPoint({
      ...env,
      GATEWAY_AUTH: 'apikey',
      GATEWAY_API_KEYS: JSON.stringify([
        { id: 'svc', hash: hashApiKey(KEY), projects: [P], rights: ['read'] },
      ]),
    });
    expect(gw.stderr()).toBe('');
    expect(await post(gw.url!)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await post(gw.url!, { 'x-api-key': generateApiKey() })).toMatchObject({ status: 401 });
    expect(await post(gw.url!, { 'x-api-key': KEY })).toEqual({
      status: 200,
      code: undefined,
      data: { projects: [{ id: P }] },
    });
  });

  it('jwt: 401 without a token, the token’s projects with a signed one', async () => {
    const { env } = await realAtlas();
    const gw = await startEntryPoint({
      ...env,
      GATEWAY_AUTH: 'jwt',
      GATEWAY_JWT_SECRET: SECRET,
      GATEWAY_JWT_ISSUER: 'https://issuer.test',
      GATEWAY_JWT_AUDIENCE: 'atlas-gateway',
    });
    const token = await new SignJWT({ atlas_projects: [P], atlas_rights: ['read'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('https://issuer.test')
      .setAudience('atlas-gateway')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    expect(await post(gw.url!)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await post(gw.url!, { authorization: `Bearer ${token}x` })).toMatchObject({ status: 401 });
    expect(await post(gw.url!, { authorization: `Bearer ${token}` })).toEqual({
      status: 200,
      code: undefined,
      data: { projects: [{ id: P }] },
    });
  });

  it('passthrough: 401 without an Atlas token, Atlas’s answer with one (the gateway holds no credentials)', async () => {
    const { sim } = await realAtlas();
    const gw = await startEntryPoint({ MONGODB_ATLAS_BASE_URL: sim.url, GATEWAY_AUTH: 'passthrough' });
    expect(await post(gw.url!)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    const { body } = await fetchToken(sim, OWNER);
    const answer = await post(gw.url!, { authorization: `Bearer ${String(body.access_token)}` });
    expect(answer.status).toBe(200);
    expect(answer.data?.projects.map((p) => p.id)).toEqual(Object.values(SEED.projects).map((p) => p.id));
  });

  it('unset against real Atlas: refuses to start (exit 2) rather than admit everyone', async () => {
    const { env } = await realAtlas();
    const gw = await startEntryPoint(env);
    expect(gw.exitCode).toBe(2);
    expect(gw.url).toBeUndefined();
    expect(gw.stderr()).toMatch(/GATEWAY_AUTH: not set, and the gateway is talking to real Atlas/);
  });

  it('none, said on purpose: open access, and the limits from the environment still hold', async () => {
    const { env } = await realAtlas();
    const gw = await startEntryPoint({ ...env, GATEWAY_AUTH: 'none', GATEWAY_MAX_DEPTH: '3' });
    expect(gw.stdout()).toMatch(/callers: none\n/);
    expect((await post(gw.url!)).status).toBe(200);
    const deep = await request(`${gw.url!}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ projects { clusters { snapshots { nodes { id } } } } }' }),
    });
    const body = (await deep.body.json()) as { errors: { extensions: { code: string } }[] };
    expect([deep.statusCode, body.errors[0]?.extensions.code]).toEqual([400, 'BAD_USER_INPUT']);
  });

  it('demo mode (no Atlas credentials, GATEWAY_AUTH unset): open on the embedded simulator only', async () => {
    const gw = await startEntryPoint({});
    expect(gw.stdout()).toMatch(/demo mode: no Atlas credentials set/);
    expect(gw.stdout()).toMatch(/callers: none \(demo\)\n/);
    expect((await post(gw.url!)).status).toBe(200);
  });
});
