import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { OPEN_CALLER } from '../../src/callers/caller.js';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';
import { callerAuthentication } from '../../src/gateway-from-config.js';
import { SEED } from '../../src/simulator/seed.js';
import { refusal, requestWith } from '../support/caller-requests.js';

const A = SEED.projects.payments.id;
const KEY = generateApiKey();
const KEYS_JSON = JSON.stringify([{ id: 'svc', hash: hashApiKey(KEY), projects: [A], rights: ['read'] }]);
const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const JWT_ENV = {
  GATEWAY_JWT_SECRET: SECRET,
  GATEWAY_JWT_ISSUER: 'https://idp.test/',
  GATEWAY_JWT_AUDIENCE: 'gateway',
};
const dir = mkdtempSync(join(tmpdir(), 'callers-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Atlas credentials, so the gateway talks to "real" Atlas (not demo mode). */
const ATLAS = { MONGODB_ATLAS_CLIENT_ID: 'mdb_sa_id_x', MONGODB_ATLAS_CLIENT_SECRET: 'mdb_sa_sk_x' };

/** Caller authentication as `npm start` builds it from `env` (with Atlas credentials unless `demo`). */
function authFromEnv(env: Env, { demo }: { demo: boolean }) {
  return callerAuthentication(loadConfig(demo ? env : { ...ATLAS, ...env }).callers);
}

/** The problems `loadConfig` reports, one line each (fails if it does not throw a ConfigError). */
function problemsOf(env: Env, demo = false): string[] {
  try {
    loadConfig(demo ? env : { ...ATLAS, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const hsToken = (claims: Record<string, unknown> = { atlas_projects: '*' }) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://idp.test/')
    .setAudience('gateway')
    .setSubject('web-user')
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));

describe('callers config: open or closed', () => {
  it('is open in demo mode when GATEWAY_AUTH is unset', async () => {
    const { authenticate, mode } = authFromEnv({}, { demo: true });
    expect(mode).toBe('none (demo)');
    expect(await authenticate(requestWith())).toBe(OPEN_CALLER);
  });

  it('refuses to start against real Atlas with no caller authentication, saying how to fix it', () => {
    let err: unknown;
    try {
      authFromEnv({}, { demo: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toContain('refuses to start');
    expect(message).toContain('GATEWAY_AUTH to apikey, jwt and/or passthrough');
    expect(message).toContain('GATEWAY_AUTH=none');
  });

  it('is open against real Atlas only with GATEWAY_AUTH=none said explicitly', async () => {
    const { authenticate, mode } = authFromEnv({ GATEWAY_AUTH: 'none' }, { demo: false });
    expect(mode).toBe('none');
    expect(await authenticate(requestWith())).toBe(OPEN_CALLER);
  });

  it('honours GATEWAY_AUTH in demo mode too', async () => {
    const { authenticate, mode } = authFromEnv(
      { GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: KEYS_JSON },
      { demo: true },
    );
    expect(mode).toBe('apikey');
    expect((await refusal(authenticate, {})).code).toBe('UNAUTHENTICATED');
    expect((await authenticate(requestWith({ 'x-api-key': KEY }))).id).toBe('apikey:svc');
  });
});

describe('callers config: methods', () => {
  it('reads API keys from GATEWAY_API_KEYS_FILE', async () => {
    const file = join(dir, 'keys.json');
    writeFileSync(file, KEYS_JSON);
    const { authenticate } = authFromEnv(
      { GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS_FILE: file },
      { demo: false },
    );
    expect((await authenticate(requestWith({ authorization: `Bearer ${KEY}` }))).projects).toEqual(
      new Set([A]),
    );
  });

  it('builds JWT auth from its variables', async () => {
    const { authenticate, mode } = authFromEnv({ GATEWAY_AUTH: 'jwt', ...JWT_ENV }, { demo: false });
    expect(mode).toBe('jwt');
    const caller = await authenticate(requestWith({ authorization: `Bearer ${await hsToken()}` }));
    expect(caller).toMatchObject({
      id: 'jwt:https%3A%2F%2Fidp.test%2F:web-user',
      kind: 'jwt',
      projects: 'all',
    });
  });

  it('accepts a PEM public key with literal \\n, as .env files write it', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const pem = (await exportSPKI(publicKey)).trim().replace(/\n/g, '\\n');
    const { mode } = authFromEnv(
      {
        GATEWAY_AUTH: 'jwt',
        GATEWAY_JWT_PUBLIC_KEY: pem,
        GATEWAY_JWT_ISSUER: 'i',
        GATEWAY_JWT_AUDIENCE: 'a',
      },
      { demo: false },
    );
    expect(mode).toBe('jwt');
  });

  it('tries an API key, then a JWT, then pass-through (x-atlas-access-token only)', async () => {
    const { authenticate, mode } = authFromEnv(
      { GATEWAY_AUTH: 'passthrough, JWT ,apikey', GATEWAY_API_KEYS: KEYS_JSON, ...JWT_ENV },
      { demo: false },
    );
    expect(mode).toBe('apikey,jwt,passthrough');
    expect((await authenticate(requestWith({ authorization: `Bearer ${KEY}` }))).kind).toBe('apiKey');
    expect((await authenticate(requestWith({ authorization: `Bearer ${await hsToken()}` }))).kind).toBe(
      'jwt',
    );
    expect((await authenticate(requestWith({ 'x-atlas-access-token': 'atlas-token' }))).kind).toBe(
      'passThrough',
    );
    // An API key presented with another credential wins: the first method that recognises one decides.
    expect((await authenticate(requestWith({ 'x-api-key': KEY, 'x-atlas-access-token': 'x' }))).kind).toBe(
      'apiKey',
    );
    // A bearer that is neither a known key nor a JWT is refused, never forwarded to Atlas.
    const err = await refusal(authenticate, { authorization: `Bearer ${generateApiKey()}` });
    expect(err.message).toBe(
      'Not authenticated: the bearer token is not a known API key, and the bearer token is not a JWT.',
    );
    // A bad JWT ends the search: it is not passed on to pass-through.
    const bad = await refusal(authenticate, {
      authorization: `Bearer ${await hsToken({})}`,
      'x-atlas-access-token': 'atlas-token',
    });
    expect(bad.message).toBe('The JWT has no "atlas_projects" claim (the projects the caller may use).');
    expect((await refusal(authenticate, {})).message).toBe(
      'Authentication required: send an API key (x-api-key, or Authorization: Bearer), or a JWT (Authorization: Bearer), or an Atlas access token (x-atlas-access-token).',
    );
  });

  it('takes the pass-through token from Authorization: Bearer when passthrough is the only method', async () => {
    const { authenticate } = authFromEnv({ GATEWAY_AUTH: 'passthrough' }, { demo: false });
    expect((await authenticate(requestWith({ authorization: 'Bearer tok' }))).atlasBearerToken).toBe('tok');
  });
});

describe('callers config: every bad variable, by name, without secrets', () => {
  it('reports a bad GATEWAY_AUTH', () => {
    expect(problemsOf({ GATEWAY_AUTH: 'apikey,ldap' })).toEqual([
      'GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got "apikey,ldap"',
    ]);
    expect(problemsOf({ GATEWAY_AUTH: 'none,jwt' })).toEqual([
      'GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got "none,jwt"',
    ]);
  });

  it('reports variables of a method that is not enabled (they would be silently ignored)', () => {
    expect(problemsOf({ GATEWAY_API_KEYS: KEYS_JSON }, true)).toEqual([
      'GATEWAY_API_KEYS: set, but GATEWAY_AUTH (unset) does not include apikey; add it or unset GATEWAY_API_KEYS',
    ]);
    expect(
      problemsOf({ GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: KEYS_JSON, GATEWAY_JWT_SECRET: SECRET }),
    ).toEqual([
      'GATEWAY_JWT_SECRET: set, but GATEWAY_AUTH ("apikey") does not include jwt; add it or unset GATEWAY_JWT_SECRET',
    ]);
  });

  it('reports missing or conflicting API key sources and an unreadable file', () => {
    expect(problemsOf({ GATEWAY_AUTH: 'apikey' })).toEqual([
      expect.stringMatching(/^GATEWAY_API_KEYS: not set, and neither is GATEWAY_API_KEYS_FILE/),
    ]);
    expect(
      problemsOf({ GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: KEYS_JSON, GATEWAY_API_KEYS_FILE: '/x' }),
    ).toEqual(['GATEWAY_API_KEYS_FILE: set together with GATEWAY_API_KEYS; expected only one of them']);
    const missing = join(dir, 'missing.json');
    expect(problemsOf({ GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS_FILE: missing })).toEqual([
      `GATEWAY_API_KEYS_FILE: expected a readable file, got "${missing}" (ENOENT)`,
    ]);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '[{"id":"x","hash":"sha256:00","projects":"*","rights":["read"]}]');
    expect(problemsOf({ GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS_FILE: bad })).toEqual([
      expect.stringMatching(
        new RegExp(`^GATEWAY_API_KEYS_FILE \\(${bad}\\)\\[0\\]\\.hash: expected "sha256:"`),
      ),
    ]);
  });

  it('reports every JWT problem at once, describing secrets instead of printing them', () => {
    const problems = problemsOf({
      GATEWAY_AUTH: 'jwt',
      GATEWAY_JWT_SECRET: 'too-short-secret',
      GATEWAY_JWT_PROJECTS_CLAIM: 'atlas projects',
      GATEWAY_JWT_CLOCK_TOLERANCE_SEC: '1h',
      GATEWAY_JWT_ALGORITHMS: 'HS256,RS256',
    });
    expect(problems).toEqual([
      'GATEWAY_JWT_SECRET: expected at least 32 bytes (RFC 7518 §3.2 for HS256), got 16',
      'GATEWAY_JWT_ISSUER: expected the accepted issuer(s) (iss), comma-separated, got nothing',
      'GATEWAY_JWT_AUDIENCE: expected the accepted audience(s) (aud), comma-separated, got nothing',
      'GATEWAY_JWT_PROJECTS_CLAIM: expected a claim name without spaces, got "atlas projects"',
      'GATEWAY_JWT_CLOCK_TOLERANCE_SEC: expected an integer from 0 to 300, got "1h"',
      'GATEWAY_JWT_ALGORITHMS: expected a comma list of HS256, HS384, HS512 (with GATEWAY_JWT_SECRET), got "HS256,RS256"',
    ]);
    expect(problems.join('\n')).not.toContain('too-short-secret');
  });

  it('wants exactly one key source, an https JWKS URL and a PEM that parses', () => {
    const base = { GATEWAY_AUTH: 'jwt', GATEWAY_JWT_ISSUER: 'i', GATEWAY_JWT_AUDIENCE: 'a' };
    expect(problemsOf(base)).toEqual([
      'GATEWAY_JWT_JWKS_URL: expected exactly one of GATEWAY_JWT_JWKS_URL, GATEWAY_JWT_PUBLIC_KEY, GATEWAY_JWT_SECRET (GATEWAY_AUTH includes jwt), got none',
    ]);
    expect(problemsOf({ ...base, GATEWAY_JWT_SECRET: SECRET, GATEWAY_JWT_JWKS_URL: 'https://x/' })).toEqual([
      expect.stringMatching(/got GATEWAY_JWT_JWKS_URL and GATEWAY_JWT_SECRET$/),
    ]);
    expect(problemsOf({ ...base, GATEWAY_JWT_JWKS_URL: 'http://idp.example.com/jwks' })).toEqual([
      'GATEWAY_JWT_JWKS_URL: expected an https URL (http only on 127.0.0.1, [::1] or localhost), got "http://idp.example.com/jwks"',
    ]);
    expect(
      authFromEnv({ ...base, GATEWAY_JWT_JWKS_URL: 'http://127.0.0.1:9/jwks' }, { demo: false }).mode,
    ).toBe('jwt');
    expect(
      problemsOf({ ...base, GATEWAY_JWT_PUBLIC_KEY: 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' }),
    ).toEqual([
      'GATEWAY_JWT_PUBLIC_KEY: expected a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate, got 44 characters that do not parse as one',
    ]);
  });
});

describe('finding 9g: GATEWAY_AUTH parsed once, case-insensitively; production never silently demo', () => {
  const PRODUCTION_DEMO = (said: string) =>
    `GATEWAY_AUTH: set (${JSON.stringify(said)}) in production mode, but no Atlas credentials are (MONGODB_ATLAS_CLIENT_ID/SECRET or MONGODB_ATLAS_PUBLIC_API_KEY/PRIVATE_API_KEY), so the gateway would answer from its embedded simulator (demo mode); set the credentials, GATEWAY_AUTH=passthrough alone (callers bring their Atlas tokens), or GATEWAY_PRODUCTION=false for a demo`;

  it('finding 9g: GATEWAY_AUTH=PASSTHROUGH without credentials in production is pass-through against real Atlas, not demo mode', async () => {
    const config = loadConfig({ GATEWAY_AUTH: 'PASSTHROUGH', NODE_ENV: 'production' });
    expect(config).toMatchObject({
      demo: false,
      atlas: { baseUrl: 'https://cloud.mongodb.com', auth: { type: 'none' } },
      callers: { gatewayAuth: ['passthrough'] },
      security: { production: true },
    });
    const { authenticate, mode } = callerAuthentication(config.callers);
    expect(mode).toBe('passthrough');
    expect((await refusal(authenticate, {})).code).toBe('UNAUTHENTICATED');
    expect((await authenticate(requestWith({ authorization: 'Bearer tok' }))).kind).toBe('passThrough');
  });

  it('finding 9g: a GATEWAY_AUTH value that is not one of the modes is refused, whatever its case', () => {
    for (const said of ['Pass-Through', 'pass_through', 'PASSTHRU', 'apikeys', 'open']) {
      expect(problemsOf({ GATEWAY_AUTH: said, NODE_ENV: 'production' }, true)).toEqual([
        `GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got ${JSON.stringify(said)}`,
      ]);
    }
  });

  it('finding 9g: in production mode, GATEWAY_AUTH set without Atlas credentials stops the gateway instead of starting demo mode', () => {
    expect(problemsOf({ GATEWAY_AUTH: 'NONE', NODE_ENV: 'production' }, true)).toEqual([
      PRODUCTION_DEMO('NONE'),
    ]);
    expect(
      problemsOf(
        { GATEWAY_AUTH: 'apikey,passthrough', GATEWAY_API_KEYS: KEYS_JSON, GATEWAY_PRODUCTION: 'true' },
        true,
      ),
    ).toEqual([PRODUCTION_DEMO('apikey,passthrough')]);
    // Demo mode said plainly: nothing configured at all (the container image's demo), or production off.
    expect(loadConfig({ NODE_ENV: 'production' }).demo).toBe(true);
    expect(
      loadConfig({
        GATEWAY_AUTH: 'apikey',
        GATEWAY_API_KEYS: KEYS_JSON,
        NODE_ENV: 'production',
        GATEWAY_PRODUCTION: 'false',
      }).demo,
    ).toBe(true);
    // With credentials it is a real gateway, in production or not.
    expect(loadConfig({ ...ATLAS, GATEWAY_AUTH: 'NONE', NODE_ENV: 'production' }).demo).toBe(false);
  });
});
