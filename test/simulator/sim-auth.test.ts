import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/time/clock.js';
import type { SimCredential, SimRequest, SimResponse } from '../../src/simulator/http-types.js';
import { DigestServer, parseAuthParams } from '../../src/simulator/auth-server/digest.js';
import { DEFAULT_SIM_CREDENTIALS, SimAuth } from '../../src/simulator/auth-server/sim-auth.js';

const [OWNER, READONLY] = DEFAULT_SIM_CREDENTIALS as [SimCredential, SimCredential];
const TARGET = '/api/atlas/v2/groups/5e2211c17a3e5a48f5497de3/clusters/c0/backup/tenant/snapshots';

function request(method: string, target: string, headers: SimRequest['headers'] = {}, body = ''): SimRequest {
  const url = new URL(target, 'http://127.0.0.1');
  return {
    method,
    target,
    path: url.pathname,
    query: url.searchParams,
    headers,
    body: Buffer.from(body),
  };
}

function setup(opts: Partial<ConstructorParameters<typeof SimAuth>[0]> = {}) {
  const clock = new ManualClock();
  const auth = new SimAuth({ credentials: DEFAULT_SIM_CREDENTIALS, clock, ...opts });
  return { clock, auth };
}

/** Independent challenge parser for the tests (the header is server-generated, so simple is enough). */
function challengeOf(res: SimResponse): Record<string, string> {
  const header = res.headers?.['www-authenticate'];
  expect(header).toMatch(/^Digest /);
  const out: Record<string, string> = {};
  for (const m of header!.slice(7).matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)) {
    out[m[1]!] = m[2] ?? m[3]!;
  }
  return out;
}

interface DigestInput {
  username: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  nc?: string;
  cnonce?: string | null;
  algorithm?: 'MD5' | 'SHA-256';
  realm?: string;
  qop?: string | null;
}

function digestHeader(d: DigestInput): string {
  const algorithm = d.algorithm ?? 'MD5';
  const h = (s: string) =>
    createHash(algorithm === 'MD5' ? 'md5' : 'sha256')
      .update(s)
      .digest('hex');
  const realm = d.realm ?? 'MMS Public API';
  const nc = d.nc ?? '00000001';
  const cnonce = d.cnonce === undefined ? randomBytes(8).toString('hex') : d.cnonce;
  const qop = d.qop === undefined ? 'auth' : d.qop;
  const ha1 = h(`${d.username}:${realm}:${d.password}`);
  const ha2 = h(`${d.method}:${d.uri}`);
  const response = h(`${ha1}:${d.nonce}:${nc}:${cnonce ?? ''}:${qop ?? ''}:${ha2}`);
  const parts = [
    `username="${d.username}"`,
    `realm="${realm}"`,
    `nonce="${d.nonce}"`,
    `uri="${d.uri}"`,
    `algorithm=${algorithm}`,
    `response="${response}"`,
  ];
  if (qop !== null) parts.push(`qop=${qop}`, `nc=${nc}`);
  if (cnonce !== null) parts.push(`cnonce="${cnonce}"`);
  return `Digest ${parts.join(', ')}`;
}

/** Sends an unauthenticated request and returns the nonce of the 401's challenge. */
function freshNonce(auth: SimAuth, target = TARGET): string {
  const r = auth.authenticate(request('GET', target), { allowBearer: true });
  if (r.ok) throw new Error('expected 401');
  return challengeOf(r.response).nonce!;
}

function digestGet(
  auth: SimAuth,
  d: Omit<DigestInput, 'method' | 'uri'> & { uri?: string },
  target = TARGET,
) {
  const header = digestHeader({ method: 'GET', uri: target, ...d });
  return auth.authenticate(request('GET', target, { authorization: header }), { allowBearer: true });
}

function expect401(r: ReturnType<SimAuth['authenticate']>, stale = false): Record<string, string> {
  expect(r.ok).toBe(false);
  if (r.ok) throw new Error('unreachable');
  expect(r.response.status).toBe(401);
  expect(r.response.headers?.['content-type']).toBe('application/json');
  expect(r.response.body).toEqual({
    error: 401,
    errorCode: 'UNEXPECTED_ERROR',
    reason: 'Unauthorized',
    detail: 'You are not authorized for this resource.',
  });
  // Atlas's 401 comes indented, without `parameters` (recorded by the Atlas CLI's e2e tests).
  expect(r.response.pretty).toBe(true);
  const ch = challengeOf(r.response);
  expect(ch.stale).toBe(String(stale));
  return ch;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const FORM = 'application/x-www-form-urlencoded';

function tokenRequest(
  id = OWNER.clientId,
  secret = OWNER.clientSecret,
  body = 'grant_type=client_credentials',
) {
  return request(
    'POST',
    '/api/oauth/token',
    { authorization: basic(id, secret), 'content-type': FORM },
    body,
  );
}

function issueToken(auth: SimAuth, cred: SimCredential = OWNER): string {
  const res = auth.handleToken(tokenRequest(cred.clientId, cred.clientSecret));
  expect(res.status).toBe(200);
  return (res.body as { access_token: string }).access_token;
}

function revoke(auth: SimAuth, token: string, cred: SimCredential = OWNER): SimResponse {
  return auth.handleRevoke(
    request(
      'POST',
      '/api/oauth/revoke',
      { authorization: basic(cred.clientId, cred.clientSecret), 'content-type': FORM },
      new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    ),
  );
}

const bearer = (auth: SimAuth, token: string, allowBearer = true) =>
  auth.authenticate(request('GET', TARGET, { authorization: `Bearer ${token}` }), { allowBearer });

describe('parseAuthParams', () => {
  it('reads quoted strings with escapes and unquoted tokens', () => {
    const p = parseAuthParams('username="a\\"b\\\\c", nc=00000001 ,qop=auth,, URI="/x?a=1,b"');
    expect(p && Object.fromEntries(p)).toEqual({
      username: 'a"b\\c',
      nc: '00000001',
      qop: 'auth',
      uri: '/x?a=1,b',
    });
  });

  it('rejects malformed lists and repeated parameters', () => {
    expect(parseAuthParams('username="unterminated')).toBeNull();
    expect(parseAuthParams('username')).toBeNull();
    expect(parseAuthParams('a=1 b=2')).toBeNull();
    expect(parseAuthParams('a=1, A=2')).toBeNull();
    expect(parseAuthParams('=1')).toBeNull();
  });
});

describe('SimAuth Digest', () => {
  it('challenges an unauthenticated request the way Atlas does', () => {
    const { auth } = setup();
    const r = auth.authenticate(request('GET', TARGET), { allowBearer: true });
    expect401(r);
    if (r.ok) return;
    expect(r.response.headers?.['www-authenticate']).toMatch(
      /^Digest realm="MMS Public API", domain="", nonce="[A-Za-z0-9_-]+", algorithm=MD5, qop="auth", stale=false$/,
    );
    expect(auth.stats().digestChallenges).toBe(1);
  });

  it('offers SHA-256 when configured', () => {
    const { auth } = setup({ digestAlgorithm: 'SHA-256' });
    const r = auth.authenticate(request('GET', TARGET), { allowBearer: false });
    expect(expect401(r).algorithm).toBe('SHA-256');
  });

  it('accepts MD5 and SHA-256 responses over the challenged nonce', () => {
    const { auth } = setup();
    for (const algorithm of ['MD5', 'SHA-256'] as const) {
      const nonce = freshNonce(auth);
      const r = digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce, algorithm });
      expect(r).toEqual({ ok: true, principal: { scheme: 'digest', id: 'demoowner', role: 'owner' } });
    }
  });

  it('maps the public key to its role and works with a query string and POST', () => {
    const { auth } = setup();
    const target = `${TARGET}?pageNum=2&itemsPerPage=5`;
    const nonce = freshNonce(auth, target);
    const header = digestHeader({
      username: READONLY.publicKey,
      password: READONLY.privateKey,
      method: 'POST',
      uri: target,
      nonce,
    });
    const r = auth.authenticate(request('POST', target, { authorization: header }), { allowBearer: false });
    expect(r).toEqual({ ok: true, principal: { scheme: 'digest', id: 'demoreadonly', role: 'readOnly' } });
  });

  it('rejects a wrong password and an unknown user', () => {
    const { auth } = setup();
    let nonce = freshNonce(auth);
    expect401(digestGet(auth, { username: OWNER.publicKey, password: READONLY.privateKey, nonce }));
    nonce = freshNonce(auth);
    expect401(digestGet(auth, { username: 'nobody', password: OWNER.privateKey, nonce }));
  });

  it('rejects a uri that is not the request-target', () => {
    const { auth } = setup();
    const target = `${TARGET}?pageNum=2`;
    const nonce = freshNonce(auth, target);
    expect401(
      digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce, uri: TARGET }, target),
    );
  });

  it('rejects a method other than the one hashed', () => {
    const { auth } = setup();
    const nonce = freshNonce(auth);
    const header = digestHeader({
      username: OWNER.publicKey,
      password: OWNER.privateKey,
      method: 'GET',
      uri: TARGET,
      nonce,
    });
    expect401(auth.authenticate(request('DELETE', TARGET, { authorization: header }), { allowBearer: true }));
  });

  it('rejects a replayed nc; accepts a higher one, and a lower one once within the window (concurrent requests arrive out of order)', () => {
    const { auth } = setup();
    const nonce = freshNonce(auth);
    const creds = { username: OWNER.publicKey, password: OWNER.privateKey, nonce };
    expect(digestGet(auth, { ...creds, nc: '00000001', cnonce: 'abc' }).ok).toBe(true);
    // The exact same header again: a replay.
    const replay = expect401(digestGet(auth, { ...creds, nc: '00000001', cnonce: 'abc' }));
    expect(replay.nonce).not.toBe(nonce);
    expect(digestGet(auth, { ...creds, nc: '00000002' }).ok).toBe(true);
    expect(digestGet(auth, { ...creds, nc: '0000000a' }).ok).toBe(true);
    // nc 9 was sent before 10 on another connection and arrives after it: accepted, once.
    expect(digestGet(auth, { ...creds, nc: '00000009' }).ok).toBe(true);
    expect401(digestGet(auth, { ...creds, nc: '00000009' }));
    expect401(digestGet(auth, { ...creds, nc: '0000000A' }));
    expect401(digestGet(auth, { ...creds, nc: '00000002' }));
    expect(digestGet(auth, { ...creds, nc: '0000000B' }).ok).toBe(true);
    // 64 behind the highest count is out of the window, 63 behind still in.
    expect(digestGet(auth, { ...creds, nc: '00000050' }).ok).toBe(true);
    expect401(digestGet(auth, { ...creds, nc: '00000010' }));
    expect(digestGet(auth, { ...creds, nc: '00000011' }).ok).toBe(true);
  });

  it('answers stale=true for an expired nonce with a correct response, stale=false with a wrong one', () => {
    const { auth, clock } = setup();
    const nonce = freshNonce(auth);
    clock.advance(29_999);
    expect(digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce }).ok).toBe(true);
    clock.advance(1);
    const ch = expect401(
      digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce, nc: '00000002' }),
      true,
    );
    expect(ch.nonce).not.toBe(nonce);
    expect401(
      digestGet(auth, { username: OWNER.publicKey, password: 'wrong', nonce, nc: '00000003' }),
      false,
    );
    // The client re-hashes with the new nonce and succeeds.
    expect(
      digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce: ch.nonce! }).ok,
    ).toBe(true);
  });

  it('honours nonceTtlMs', () => {
    const { auth, clock } = setup({ nonceTtlMs: 1000 });
    const nonce = freshNonce(auth);
    clock.advance(1000);
    expect401(digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce }), true);
  });

  it('rejects a nonce it did not issue, even with a correct response', () => {
    const { auth } = setup();
    const other = setup().auth;
    const foreign = freshNonce(other);
    expect401(digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce: foreign }));
    expect401(digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce: 'abc' }));
  });

  it('requires cnonce, qop=auth, an 8-hex-digit nc and the realm', () => {
    const { auth } = setup();
    const nonce = freshNonce(auth);
    const creds = { username: OWNER.publicKey, password: OWNER.privateKey, nonce };
    expect401(digestGet(auth, { ...creds, cnonce: null }));
    expect401(digestGet(auth, { ...creds, qop: null }));
    expect401(digestGet(auth, { ...creds, qop: 'auth-int' }));
    expect401(digestGet(auth, { ...creds, nc: '1' }));
    expect401(digestGet(auth, { ...creds, nc: '0000000g' }));
    expect401(digestGet(auth, { ...creds, nc: '00000000' }));
    expect401(digestGet(auth, { ...creds, realm: 'Other' }));
    // None of those consumed the nonce.
    expect(digestGet(auth, creds).ok).toBe(true);
  });

  it('rejects other schemes and garbage', () => {
    const { auth } = setup();
    for (const authorization of [
      basic(OWNER.publicKey, OWNER.privateKey),
      'Digest',
      'Digest username=',
      'x',
    ]) {
      expect401(auth.authenticate(request('GET', TARGET, { authorization }), { allowBearer: true }));
    }
  });

  it('bounds the live nonces and lets an evicted one re-hash via stale=true', () => {
    const clock = new ManualClock();
    const digest = new DigestServer({ clock, passwordOf: () => 'pw', maxNonces: 2 });
    const nonces = [1, 2, 3].map(() => /nonce="([^"]+)"/.exec(digest.challenge())![1]!);
    expect(digest.liveNonces).toBe(2);
    const verify = (nonce: string) => {
      const header = digestHeader({ username: 'u', password: 'pw', method: 'GET', uri: '/a', nonce });
      return digest.verify(parseAuthParams(header.slice(7))!, 'GET', '/a');
    };
    expect(verify(nonces[0]!)).toEqual({ ok: false, stale: true });
    expect(verify(nonces[2]!)).toEqual({ ok: true, username: 'u' });
    clock.advance(30_000);
    digest.challenge();
    expect(digest.liveNonces).toBe(1);
  });
});

describe('SimAuth OAuth', () => {
  it('issues a Bearer token that authenticates as the service account', () => {
    const { auth } = setup();
    const res = auth.handleToken(tokenRequest());
    expect(res.status).toBe(200);
    expect(res.headers?.['content-type']).toBe('application/json');
    expect(res.headers?.['cache-control']).toBe('no-store');
    const body = res.body as Record<string, unknown>;
    expect(body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600 });
    expect(bearer(auth, body.access_token as string)).toEqual({
      ok: true,
      principal: { scheme: 'oauth', id: 'mdb_sa_id_demo-owner', role: 'owner' },
    });
    const ro = issueToken(auth, READONLY);
    expect(bearer(auth, ro)).toEqual({
      ok: true,
      principal: { scheme: 'oauth', id: 'mdb_sa_id_demo-readonly', role: 'readOnly' },
    });
  });

  it('refuses Bearer on Digest-only routes, with a Digest challenge', () => {
    const { auth } = setup();
    const token = issueToken(auth);
    expect401(bearer(auth, token, false));
    expect(bearer(auth, token, true).ok).toBe(true);
  });

  it('rejects unknown and expired tokens', () => {
    const { auth, clock } = setup({ tokenTtlSec: 60 });
    expect401(bearer(auth, randomBytes(32).toString('base64url')));
    const res = auth.handleToken(tokenRequest());
    expect((res.body as { expires_in: number }).expires_in).toBe(60);
    const token = (res.body as { access_token: string }).access_token;
    clock.advance(59_999);
    expect(bearer(auth, token).ok).toBe(true);
    clock.advance(1);
    expect401(bearer(auth, token));
  });

  it('revokes a token', () => {
    const { auth } = setup();
    const token = issueToken(auth);
    const res = revoke(auth, token);
    expect(res).toMatchObject({ status: 200, body: {} });
    expect401(bearer(auth, token));
    // Revoking again, or an unknown token, is still 200 (RFC 7009).
    expect(revoke(auth, token).status).toBe(200);
    expect(revoke(auth, 'nope').status).toBe(200);
    expect(auth.stats().tokensRevoked).toBe(1);
  });

  it("does not let one client revoke another's token", () => {
    const { auth } = setup();
    const token = issueToken(auth, OWNER);
    expect(revoke(auth, token, READONLY).status).toBe(200);
    expect(bearer(auth, token).ok).toBe(true);
  });

  it('rejects bad client authentication with invalid_client', () => {
    const { auth } = setup();
    const cases = [
      tokenRequest(OWNER.clientId, 'wrong'),
      tokenRequest('mdb_sa_id_unknown', OWNER.clientSecret),
      tokenRequest(OWNER.clientId, READONLY.clientSecret),
      request('POST', '/api/oauth/token', { 'content-type': FORM }, 'grant_type=client_credentials'),
      request(
        'POST',
        '/api/oauth/token',
        { authorization: 'Basic !!!', 'content-type': FORM },
        'grant_type=client_credentials',
      ),
    ];
    for (const req of cases) {
      const res = auth.handleToken(req);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: 'invalid_client', error_description: expect.any(String) });
    }
    const res = revoke(auth, 'x', { ...OWNER, clientSecret: 'wrong' });
    expect(res.status).toBe(401);
    expect(auth.stats().tokensIssued).toBe(0);
  });

  it('accepts form-encoded client credentials in Basic, as Go x/oauth2 sends them', () => {
    const cred: SimCredential = { ...OWNER, clientId: 'sa id', clientSecret: 'se/cr+et%' };
    const auth = new SimAuth({ credentials: [cred], clock: new ManualClock() });
    const encoded = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    expect(auth.handleToken(tokenRequest(encoded(cred.clientId), encoded(cred.clientSecret))).status).toBe(
      200,
    );
    expect(auth.handleToken(tokenRequest(cred.clientId, cred.clientSecret)).status).toBe(200);
  });

  it('rejects a wrong grant type and a non-form body', () => {
    const { auth } = setup();
    let res = auth.handleToken(tokenRequest(undefined, undefined, 'grant_type=password'));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'unsupported_grant_type' });
    res = auth.handleToken(tokenRequest(undefined, undefined, ''));
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    res = auth.handleToken(
      request(
        'POST',
        '/api/oauth/token',
        { authorization: basic(OWNER.clientId, OWNER.clientSecret), 'content-type': 'application/json' },
        '{"grant_type":"client_credentials"}',
      ),
    );
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    // A charset parameter on the media type is fine.
    res = auth.handleToken(
      request(
        'POST',
        '/api/oauth/token',
        {
          authorization: basic(OWNER.clientId, OWNER.clientSecret),
          'content-type': `${FORM}; charset=utf-8`,
        },
        'grant_type=client_credentials',
      ),
    );
    expect(res.status).toBe(200);
  });

  it('caps live tokens per client at 100, counting only unexpired unrevoked ones', () => {
    const { auth, clock } = setup();
    const tokens = Array.from({ length: 100 }, () => issueToken(auth));
    expect(auth.stats().liveTokens(OWNER.clientId)).toBe(100);
    const denied = auth.handleToken(tokenRequest());
    expect(denied.status).toBe(403);
    const body = denied.body as { error: string; error_description: string };
    expect(body.error).toBe('access_denied');
    expect(body.error_description.startsWith('Access Token limit reached.')).toBe(true);
    // Another service account has its own budget.
    issueToken(auth, READONLY);
    // Revoking one frees a slot.
    expect(revoke(auth, tokens[0]!).status).toBe(200);
    expect(auth.stats().liveTokens(OWNER.clientId)).toBe(99);
    issueToken(auth);
    expect(auth.handleToken(tokenRequest()).status).toBe(403);
    // Expiry frees slots too.
    clock.advance(3600 * 1000);
    expect(auth.stats().liveTokens(OWNER.clientId)).toBe(0);
    issueToken(auth);
    expect(auth.stats().liveTokens(OWNER.clientId)).toBe(1);
  });

  it('honours maxTokensPerClient', () => {
    const { auth } = setup({ maxTokensPerClient: 2 });
    issueToken(auth);
    issueToken(auth);
    expect(auth.handleToken(tokenRequest()).status).toBe(403);
  });
});

describe('SimAuth stats', () => {
  it('counts tokens issued and revoked, challenges sent and live tokens', () => {
    const { auth, clock } = setup();
    const t1 = issueToken(auth);
    issueToken(auth);
    issueToken(auth, READONLY);
    revoke(auth, t1);
    expect401(bearer(auth, t1));
    const nonce = freshNonce(auth);
    digestGet(auth, { username: OWNER.publicKey, password: OWNER.privateKey, nonce });
    const stats = auth.stats();
    expect(stats.tokensIssued).toBe(3);
    expect(stats.tokensRevoked).toBe(1);
    expect(stats.digestChallenges).toBe(2);
    expect(stats.liveTokens(OWNER.clientId)).toBe(1);
    expect(stats.liveTokens(READONLY.clientId)).toBe(1);
    expect(stats.liveTokens('unknown')).toBe(0);
    clock.advance(3600 * 1000);
    expect(auth.stats().liveTokens(OWNER.clientId)).toBe(0);
  });

  it('refuses duplicate credentials', () => {
    expect(
      () =>
        new SimAuth({
          credentials: [OWNER, { ...READONLY, publicKey: OWNER.publicKey }],
          clock: new ManualClock(),
        }),
    ).toThrow(/Duplicate/);
  });
});
