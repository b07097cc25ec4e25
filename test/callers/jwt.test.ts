import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { jwtAuth, jwtCallerId, type JwtAuthOptions } from '../../src/callers/jwt.js';
import { SEED } from '../../src/simulator/seed.js';
import { refusal } from '../support/caller-requests.js';

const A = SEED.projects.payments.id;
const B = SEED.projects.analytics.id;
const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'atlas-backup-gateway';
const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
/** The caller id of `sub: user-1` from ISSUER: the issuer (URI-encoded) and the subject. */
const USER_1 = 'jwt:https%3A%2F%2Fidp.example.test%2F:user-1';

let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let other: { privateKey: CryptoKey; publicKey: CryptoKey };
let publicPem: string;
beforeAll(async () => {
  rsa = await generateKeyPair('RS256');
  other = await generateKeyPair('RS256');
  publicPem = await exportSPKI(rsa.publicKey);
});

const CLAIMS = { atlas_projects: [A], atlas_rights: ['read', 'download'] };

/** A token as the identity provider would sign it; `edit` changes the defaults. */
function sign(
  claims: JWTPayload = CLAIMS,
  opts: {
    key?: CryptoKey | Uint8Array;
    alg?: string;
    kid?: string;
    iss?: string;
    aud?: string;
    exp?: string | number | null;
    sub?: string | null;
  } = {},
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setIssuedAt();
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? 'user-1');
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '5m');
  return jwt.sign(opts.key ?? rsa.privateKey);
}

const withPem = (extra: Partial<JwtAuthOptions> = {}) =>
  authenticateWith([
    jwtAuth({ key: { publicKey: publicPem }, issuer: ISSUER, audience: AUDIENCE, ...extra }),
  ]);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('jwtAuth with a PEM public key', () => {
  it('accepts a good token: projects and rights from the claims, id from sub', async () => {
    const caller = await withPem()(new Request('http://g.test/', { headers: bearer(await sign()) }));
    expect(caller).toEqual({
      id: USER_1,
      kind: 'jwt',
      projects: new Set([A]),
      rights: new Set(['read', 'download']),
    });
  });

  it('reads "*" as every project, defaults rights to read, and honours configured claim names', async () => {
    const auth = withPem({ projectsClaim: 'https://example.test/projects', rightsClaim: 'perms' });
    const token = await sign({ 'https://example.test/projects': '*' });
    const caller = await auth(new Request('http://g.test/', { headers: bearer(token) }));
    expect(caller.projects).toBe('all');
    expect(caller.rights).toEqual(new Set(['read']));
    const both = await sign({ 'https://example.test/projects': [A, B], perms: ['restore'] });
    const c2 = await auth(new Request('http://g.test/', { headers: bearer(both) }));
    expect(c2.projects).toEqual(new Set([A, B]));
    expect(c2.rights).toEqual(new Set(['restore']));
  });

  it.each([
    ['wrong signature', () => sign(CLAIMS, { key: other.privateKey }), 'The JWT signature does not verify.'],
    [
      'wrong issuer',
      () => sign(CLAIMS, { iss: 'https://evil.test/' }),
      'The JWT issuer (iss) is not one this gateway accepts.',
    ],
    [
      'wrong audience',
      () => sign(CLAIMS, { aud: 'another-api' }),
      'The JWT audience (aud) is not one this gateway accepts.',
    ],
    [
      'expired beyond the tolerance',
      () => sign(CLAIMS, { exp: Math.floor(Date.now() / 1000) - 31 }),
      'The JWT has expired (exp).',
    ],
    ['no expiry', () => sign(CLAIMS, { exp: null }), 'The JWT has no expiry (exp).'],
    ['no subject', () => sign(CLAIMS, { sub: null }), 'The JWT has no subject (sub).'],
    [
      'no projects claim',
      () => sign({ atlas_rights: ['read'] }),
      'The JWT has no "atlas_projects" claim (the projects the caller may use).',
    ],
    [
      'bad projects claim',
      () => sign({ atlas_projects: ['Payments'] }),
      'The JWT claim "atlas_projects" must be "*" or an array of 24-hex project ids.',
    ],
    [
      'bad rights claim',
      () => sign({ atlas_projects: '*', atlas_rights: ['admin'] }),
      'The JWT claim "atlas_rights" must be an array of "read", "download", "restore".',
    ],
    [
      'an HS256 token (algorithm not pinned)',
      () => sign(CLAIMS, { alg: 'HS256', key: new TextEncoder().encode(SECRET) }),
      'The JWT algorithm (alg) is not one this gateway accepts.',
    ],
    [
      'a JWT whose header is not JSON',
      async () => 'bm90IGpzb24.e30.c2ln',
      'The bearer token is not a well-formed JWT.',
    ],
  ])('refuses %s, saying which check failed and never echoing the token', async (_name, make, message) => {
    const token = await make();
    const err = await refusal(withPem(), bearer(token));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.status).toBe(401);
    expect(err.message).toBe(message);
    expect(err.message).not.toContain(token);
  });

  it('tolerates a little clock skew on exp (30 s by default, configurable)', async () => {
    const justExpired = await sign(CLAIMS, { exp: Math.floor(Date.now() / 1000) - 10 });
    expect((await withPem()(new Request('http://g.test/', { headers: bearer(justExpired) }))).id).toBe(
      USER_1,
    );
    const strict = await refusal(withPem({ clockToleranceSec: 0 }), bearer(justExpired));
    expect(strict.message).toBe('The JWT has expired (exp).');
  });

  it('checks expiry against the injected clock', async () => {
    const token = await sign(CLAIMS, { exp: '1h' });
    const later = { now: () => Date.now() + 2 * 3600_000 };
    expect((await refusal(withPem({ clock: later }), bearer(token))).message).toBe(
      'The JWT has expired (exp).',
    );
  });

  it('passes on a bearer token that is not a JWT, and asks for one when nothing is sent', async () => {
    expect((await refusal(withPem(), bearer('agw_not-a-jwt'))).message).toBe(
      'Not authenticated: the bearer token is not a JWT.',
    );
    expect((await refusal(withPem(), {})).message).toBe(
      'Authentication required: send a JWT (Authorization: Bearer).',
    );
  });
});

describe('jwtAuth: every claim check names itself exactly', () => {
  const projectsOf = async (claims: JWTPayload) =>
    (await withPem()(new Request('http://g.test/', { headers: bearer(await sign(claims)) }))).projects;

  it('reads ["*"] as every project, but "*" among project ids is refused', async () => {
    expect(await projectsOf({ atlas_projects: ['*'] })).toBe('all');
    for (const atlas_projects of [['*', A], [A, 'nope'], [[A]]]) {
      expect((await refusal(withPem(), bearer(await sign({ atlas_projects })))).message).toBe(
        'The JWT claim "atlas_projects" must be "*" or an array of 24-hex project ids.',
      );
    }
  });

  it('refuses rights of which only some are known', async () => {
    const token = await sign({ atlas_projects: [A], atlas_rights: ['read', 'admin'] });
    expect((await refusal(withPem(), bearer(token))).message).toBe(
      'The JWT claim "atlas_rights" must be an array of "read", "download", "restore".',
    );
  });

  it('refuses an empty subject, a token not valid yet, and an expiry that is not a number', async () => {
    expect((await refusal(withPem(), bearer(await sign(CLAIMS, { sub: '' })))).message).toBe(
      'The JWT has no subject (sub).',
    );
    const early = await new SignJWT(CLAIMS)
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('user-1')
      .setNotBefore('10m')
      .setExpirationTime('1h')
      .sign(rsa.privateKey);
    expect((await refusal(withPem(), bearer(early))).message).toBe('The JWT is not valid yet (nbf).');
    const badExp = await sign({ ...CLAIMS, exp: 'soon' } as unknown as JWTPayload, { exp: null });
    const err = await refusal(withPem(), bearer(badExp));
    expect([err.code, err.message]).toEqual(['UNAUTHENTICATED', 'The JWT expiry (exp) is invalid.']);
  });

  it('takes a PEM whose newlines are written as \\n (as in a .env file)', async () => {
    const oneLine = publicPem.trim().replace(/\n/g, '\\n');
    expect(oneLine).not.toContain('\n');
    const auth = authenticateWith([
      jwtAuth({ key: { publicKey: oneLine }, issuer: ISSUER, audience: AUDIENCE }),
    ]);
    expect((await auth(new Request('http://g.test/', { headers: bearer(await sign()) }))).id).toBe(USER_1);
  });

  it('with a shared secret, built in the test: the jwt method, what it accepts, HS256 accepted', async () => {
    const method = jwtAuth({ key: { secret: SECRET }, issuer: ISSUER, audience: AUDIENCE });
    expect([method.mode, method.accepts]).toEqual(['jwt', 'a JWT (Authorization: Bearer)']);
    const token = await sign(CLAIMS, { alg: 'HS256', key: new TextEncoder().encode(SECRET) });
    expect(await method.identify({ bearer: token })).toMatchObject({ id: USER_1, kind: 'jwt' });
  });
});

describe('finding 9b: the JWT caller id includes the issuer', () => {
  it('finding 9b: alice of one issuer and alice of another are two callers', async () => {
    const SECOND = 'https://second-idp.example.test/';
    const auth = withPem({ issuer: [ISSUER, SECOND] });
    const id = async (iss: string, sub: string) =>
      (await auth(new Request('http://g.test/', { headers: bearer(await sign(CLAIMS, { iss, sub })) }))).id;
    expect(await id(ISSUER, 'alice')).toBe('jwt:https%3A%2F%2Fidp.example.test%2F:alice');
    expect(await id(SECOND, 'alice')).toBe('jwt:https%3A%2F%2Fsecond-idp.example.test%2F:alice');
    // The issuer cannot be confused with the subject: it holds no `:` once encoded.
    expect(jwtCallerId('a:b', 'c')).not.toBe(jwtCallerId('a', 'b:c'));
    expect(jwtCallerId('a:b', 'c')).toBe('jwt:a%3Ab:c');
  });
});

describe('jwtAuth with a shared secret (HS256)', () => {
  const auth = authenticateWith([
    jwtAuth({ key: { secret: SECRET }, issuer: ISSUER, audience: [AUDIENCE, 'other'] }),
  ]);
  const hs = (secret: string) => sign(CLAIMS, { alg: 'HS256', key: new TextEncoder().encode(secret) });

  it('accepts a token signed with the secret, any of several audiences', async () => {
    expect((await auth(new Request('http://g.test/', { headers: bearer(await hs(SECRET)) }))).id).toBe(
      USER_1,
    );
  });

  it('refuses another secret and an RS256 token', async () => {
    expect((await refusal(auth, bearer(await hs(`${SECRET}x`)))).message).toBe(
      'The JWT signature does not verify.',
    );
    expect((await refusal(auth, bearer(await sign()))).message).toBe(
      'The JWT algorithm (alg) is not one this gateway accepts.',
    );
  });
});

describe('jwtAuth with a JWKS over a real socket', () => {
  let server: Server;
  let jwksUrl: URL;
  let fetches = 0;
  let serveKeys: () => Promise<object> = async () => ({ keys: [] });
  beforeAll(async () => {
    server = createServer((req, res) => {
      fetches++;
      void serveKeys().then((body) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verifies against the fetched keys, caches them, and refetches once for a new kid', async () => {
    serveKeys = async () => ({
      keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }],
    });
    const auth = authenticateWith([
      jwtAuth({ key: { jwksUrl, cooldownMs: 0 }, issuer: ISSUER, audience: AUDIENCE }),
    ]);
    fetches = 0;
    for (let i = 0; i < 3; i++) {
      const caller = await auth(
        new Request('http://g.test/', { headers: bearer(await sign(CLAIMS, { kid: 'k1' })) }),
      );
      expect(caller.projects).toEqual(new Set([A]));
    }
    expect(fetches).toBe(1);

    // Key rotation: the provider adds k2; a token with k2 triggers one refetch.
    serveKeys = async () => ({
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256' },
        { ...(await exportJWK(other.publicKey)), kid: 'k2', alg: 'RS256' },
      ],
    });
    const rotated = await sign(CLAIMS, { kid: 'k2', key: other.privateKey });
    expect((await auth(new Request('http://g.test/', { headers: bearer(rotated) }))).id).toBe(USER_1);
    expect(fetches).toBe(2);
  });

  it('refuses a token whose kid the JWKS does not have, and one signed by another key', async () => {
    serveKeys = async () => ({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256' }] });
    const auth = authenticateWith([jwtAuth({ key: { jwksUrl }, issuer: ISSUER, audience: AUDIENCE })]);
    expect((await refusal(auth, bearer(await sign(CLAIMS, { kid: 'nope' })))).message).toBe(
      'No single key of the JWKS matches the JWT (kid, alg).',
    );
    const forged = await sign(CLAIMS, { kid: 'k1', key: other.privateKey });
    expect((await refusal(auth, bearer(forged))).message).toBe('The JWT signature does not verify.');
  });

  it('answers UPSTREAM_UNAVAILABLE, not 401, when the JWKS cannot be read', async () => {
    serveKeys = async () => ({ not: 'a jwks' });
    const auth = authenticateWith([jwtAuth({ key: { jwksUrl }, issuer: ISSUER, audience: AUDIENCE })]);
    const err = await refusal(auth, bearer(await sign(CLAIMS, { kid: 'k1' })));
    expect(err.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.extensions).toEqual({ retryable: true });
    expect(err.message).toBe('The JWT signing keys (JWKS) could not be fetched.');
  });
});
