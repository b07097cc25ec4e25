import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';
import { corsPolicy, CSRF_HEADERS, isSameOrigin } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';
import { firstError, post, raw, startSecureStack, type RawAnswer } from '../support/security-gateway.js';

const QUERY = `{ project(id: "${SEED.projects.payments.id}") { name } }`;
const GET_PATH = `/graphql?query=${encodeURIComponent(QUERY)}`;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('CSRF prevention', () => {
  it('refuses a GET without a CSRF header (what an <img> or a link sends), before any upstream call', async () => {
    const s = (stack = await startSecureStack({}));
    let res;
    const calls = await s.upstreamCalls(async () => {
      res = await raw(s, { method: 'GET', path: GET_PATH, headers: { accept: 'application/json' } });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(403);
    expect(firstError(res!)).toEqual({
      code: 'FORBIDDEN',
      message:
        'Required CSRF header not present: a GET or a form-encoded POST must carry one of x-graphql-csrf, x-graphql-yoga-csrf, apollo-require-preflight (any value).',
    });
  });

  it('refuses a form POST without a CSRF header', async () => {
    const s = (stack = await startSecureStack({}));
    const res = await raw(s, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: QUERY }).toString(),
    });
    expect(res.status).toBe(403);
    expect(firstError(res)?.code).toBe('FORBIDDEN');
  });

  it('answers a GET with any of the CSRF headers, and a JSON POST without one', async () => {
    const s = (stack = await startSecureStack({}));
    for (const header of CSRF_HEADERS) {
      const res = await raw(s, {
        method: 'GET',
        path: GET_PATH,
        headers: { accept: 'application/json', [header]: '1' },
      });
      expect(res.status, header).toBe(200);
      expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
    }
    const post = await raw(s, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY }),
    });
    expect(post.status).toBe(200);
  });

  it('can be turned off', async () => {
    const s = (stack = await startSecureStack({ csrfPrevention: false }));
    const res = await raw(s, { method: 'GET', path: GET_PATH, headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
  });
});

const OPEN_GATEWAY: Env = {
  // Not demo mode: Atlas credentials (startStack points them at the simulator), callers open on purpose.
  MONGODB_ATLAS_BASE_URL: 'http://127.0.0.1:9',
  MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
  MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
  GATEWAY_AUTH: 'none',
};
const WATCH_DONE = `subscription { restoreJobStatus(projectId: "${SEED.projects.payments.id}", clusterName: "${SEED.flex.clusterName}", jobId: "${SEED.flex.downloadJobId}") { status } }`;

const cors = (res: RawAnswer) => ({
  origin: res.headers.get('access-control-allow-origin'),
  credentials: res.headers.get('access-control-allow-credentials'),
  vary: res.headers.get('vary'),
});
const NO_CORS = { origin: null, credentials: null, vary: null };

/** A browser's preflight, its POST (HTTP) and its SSE subscription (POST, text/event-stream), from `origin`. */
async function fromOrigin(s: Stack, origin: string) {
  let preflight: RawAnswer | undefined;
  const calls = await s.upstreamCalls(async () => {
    preflight = await raw(s, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });
  });
  const http = await post(s, { query: QUERY }, { origin });
  const sse = await raw(s, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: WATCH_DONE }),
  });
  expect(http.status).toBe(200);
  expect(sse.text).toContain('"status":"COMPLETED"');
  return { preflight: cors(preflight!), http: cors(http), sse: cors(sse), preflightCalls: calls };
}

describe('CORS', () => {
  it('finding 7: by default no origin is reflected and no credentials are allowed: a page on another site cannot read an open gateway (HTTP, SSE)', async () => {
    const s = (stack = await startStack({ env: OPEN_GATEWAY }));
    for (const origin of ['https://evil.example', 'http://localhost:5173', 'null']) {
      expect(await fromOrigin(s, origin), origin).toEqual({
        preflight: NO_CORS,
        http: NO_CORS,
        sse: NO_CORS,
        preflightCalls: [],
      });
    }
  });

  it('finding 7: GATEWAY_CORS_ORIGINS=* is refused at start in production, with a clear error', () => {
    for (const production of [{ NODE_ENV: 'production' }, { GATEWAY_PRODUCTION: 'true' }]) {
      let error: unknown;
      try {
        loadConfig({ ...production, GATEWAY_CORS_ORIGINS: '*' });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        'GATEWAY_CORS_ORIGINS: expected the origins of your frontends in production (https://app.example.com, comma-separated), got "*" (any site could read the answers)',
      ]);
    }
    expect(() => corsPolicy({ origins: ['*'], production: true })).toThrow(
      'corsOrigins: expected an explicit list of origins in production (any site could read the answers), got "*"',
    );
    expect(() => loadConfig({ GATEWAY_CORS_ORIGINS: '*, https://app.example.com' })).toThrow(
      'GATEWAY_CORS_ORIGINS: expected a comma list of origins (https://app.example.com), or "*" alone, got "*, https://app.example.com"',
    );
  });

  it('finding 7: "*" (outside production) lets any origin read, never with credentials (HTTP, SSE)', async () => {
    const s = (stack = await startStack({ env: { ...OPEN_GATEWAY, GATEWAY_CORS_ORIGINS: '*' } }));
    const seen = await fromOrigin(s, 'https://anywhere.example');
    const anyOrigin = {
      origin: 'https://anywhere.example',
      credentials: null,
      vary: expect.stringMatching(/^Origin\b/),
    };
    expect(seen).toEqual({ preflight: anyOrigin, http: anyOrigin, sse: anyOrigin, preflightCalls: [] });
  });

  it('finding 7: a listed origin may read with credentials; an unlisted one gets no CORS header at all (HTTP, SSE)', async () => {
    const s = (stack = await startStack({
      env: {
        ...OPEN_GATEWAY,
        NODE_ENV: 'production',
        GATEWAY_CORS_ORIGINS: 'https://app.example.com, https://admin.example.com',
      },
    }));
    const listed = {
      origin: 'https://admin.example.com',
      credentials: 'true',
      vary: expect.stringMatching(/^Origin\b/),
    };
    expect(await fromOrigin(s, 'https://admin.example.com')).toEqual({
      preflight: listed,
      http: listed,
      sse: listed,
      preflightCalls: [],
    });
    expect(await fromOrigin(s, 'https://evil.example')).toEqual({
      preflight: NO_CORS,
      http: NO_CORS,
      sse: NO_CORS,
      preflightCalls: [],
    });
  });

  it('one listed origin is answered as itself, and only to itself', async () => {
    const s = (stack = await startStack({
      env: { ...OPEN_GATEWAY, GATEWAY_CORS_ORIGINS: 'https://app.example.com/' },
    }));
    const listed = { origin: 'https://app.example.com', credentials: 'true', vary: null };
    expect((await fromOrigin(s, 'https://app.example.com')).http).toEqual(listed);
    expect((await fromOrigin(s, 'https://evil.example')).http).toEqual(NO_CORS);
  });

  it('demo mode (simulator data only) answers pages of this machine, without credentials, and no other', async () => {
    const s = (stack = await startSecureStack({}));
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:3000', 'http://[::1]:8080']) {
      expect((await fromOrigin(s, origin)).http, origin).toEqual({
        origin,
        credentials: null,
        vary: expect.stringMatching(/^Origin\b/),
      });
    }
    expect((await fromOrigin(s, 'https://evil.example')).http).toEqual(NO_CORS);
    expect((await fromOrigin(s, 'http://localhost.evil.example')).http).toEqual(NO_CORS);
  });

  it('exports the policy as allowed(origin), for the WebSocket upgrade check', () => {
    const listed = corsPolicy({ origins: ['https://app.example.com'] });
    expect(listed.allowed('https://app.example.com')).toBe(true);
    expect(listed.allowed('https://APP.example.com')).toBe(true);
    expect(listed.allowed('https://app.example.com:8443')).toBe(false);
    expect(listed.allowed('http://app.example.com')).toBe(false);
    expect(listed.allowed('null')).toBe(false);
    expect(corsPolicy().allowed('https://app.example.com')).toBe(false);
    expect(corsPolicy({ origins: ['*'] }).allowed('https://any.example')).toBe(true);
    const demo = corsPolicy({ loopback: true });
    expect(demo.allowed('http://localhost:5173')).toBe(true);
    expect(demo.allowed('http://127.0.0.2')).toBe(true);
    expect(demo.allowed('http://localhost.evil.example')).toBe(false);
    expect(isSameOrigin('http://127.0.0.1:4000', '127.0.0.1:4000')).toBe(true);
    expect(isSameOrigin('https://gw.example.com', 'gw.example.com')).toBe(true);
    expect(isSameOrigin('https://evil.example', 'gw.example.com')).toBe(false);
    expect(isSameOrigin('https://gw.example.com', undefined)).toBe(false);
  });
});
