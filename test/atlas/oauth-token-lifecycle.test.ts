import { describe, expect, it } from 'vitest';
import { AtlasStats } from '../../src/atlas/atlas-stats.js';
import { bearerAuth, noAuth } from '../../src/atlas/credentials/auth-strategy.js';
import { OAuthAuth, oauthError, type OAuthFormPost } from '../../src/atlas/credentials/oauth-auth.js';
import { createOAuthFormPost } from '../../src/atlas/credentials/oauth-form-post.js';
import { RETRY_DEFAULTS } from '../../src/atlas/retry.js';
import { AtlasAuthError, AtlasConfigError } from '../../src/atlas/errors.js';
import type { WireResponse } from '../../src/atlas/transport.js';
import { ManualClock } from '../../src/simulator/index.js';

/*
 * OAuthAuth with an injected form POST (what the token endpoint answers is decided by the test) and a
 * manual clock: every token fetch and revocation is counted, nothing waits. The end-to-end behaviour
 * against the simulator is in client.test.ts and the chaos regressions.
 */

type Posted = Parameters<OAuthFormPost>[0];

const json = (status: number, body: unknown, headers: Record<string, string> = {}): WireResponse => ({
  status,
  headers,
  body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
});

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
};

function setup(
  options: { pathPrefix?: string; refreshMarginMs?: number } = {},
  tokenBody: (n: number) => unknown = (n) => ({ access_token: `tok-${n}`, expires_in: 3600 }),
) {
  const clock = new ManualClock();
  const stats = new AtlasStats();
  const posted: Posted[] = [];
  let tokens = 0;
  const control: { tokenGate?: Promise<void>; revokeGate?: Promise<void>; revokeStatus: number } = {
    revokeStatus: 200,
  };
  const post: OAuthFormPost = async (req) => {
    posted.push(req);
    if (req.operation === 'oauthToken') {
      await control.tokenGate;
      return json(200, tokenBody(++tokens));
    }
    await control.revokeGate;
    return json(control.revokeStatus, {});
  };
  const auth = new OAuthAuth(
    {
      clientId: 'id',
      clientSecret: 'secret',
      ...(options.refreshMarginMs !== undefined ? { refreshMarginMs: options.refreshMarginMs } : {}),
    },
    { post, clock, stats, ...(options.pathPrefix !== undefined ? { pathPrefix: options.pathPrefix } : {}) },
  );
  const revoked = () => posted.filter((p) => p.operation === 'oauthRevoke').map((p) => p.form.get('token'));
  const fetches = () => posted.filter((p) => p.operation === 'oauthToken').length;
  return { auth, clock, stats, posted, control, revoked, fetches };
}

const REQ = {
  operation: 'getGroup',
  method: 'GET',
  target: '/api/atlas/v2/groups',
  body: undefined,
  signal: undefined,
};
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('OAuthAuth: the token requests it sends', () => {
  it('POSTs client credentials (Basic) to /api/oauth/token, retryable; revokes with the token type hint, not retried', async () => {
    const { auth, posted } = setup();
    expect(auth.scheme).toBe('oauth');
    expect((await auth.begin(REQ)).authorization).toBe('Bearer tok-1');
    await auth.close();
    expect(posted.map((p) => ({ ...p, form: p.form.toString() }))).toEqual([
      {
        operation: 'oauthToken',
        path: '/api/oauth/token',
        form: 'grant_type=client_credentials',
        authorization: `Basic ${Buffer.from('id:secret').toString('base64')}`,
        retryable: true,
      },
      {
        operation: 'oauthRevoke',
        path: '/api/oauth/revoke',
        form: 'token=tok-1&token_type_hint=access_token',
        authorization: `Basic ${Buffer.from('id:secret').toString('base64')}`,
        retryable: false,
      },
    ]);
  });

  it('puts the path prefix (a proxy in front of Atlas) before both paths', async () => {
    const { auth, posted } = setup({ pathPrefix: '/atlas' });
    await auth.begin(REQ);
    await auth.close();
    expect(posted.map((p) => p.path)).toEqual(['/atlas/api/oauth/token', '/atlas/api/oauth/revoke']);
  });
});

describe('OAuthAuth: token lifetime', () => {
  it('renews 10 minutes before expiry by default (at refreshAt exactly, not a millisecond before)', async () => {
    const { auth, clock, fetches, revoked } = setup();
    await auth.begin(REQ);
    clock.advance(3_000_000 - 1);
    expect((await auth.begin(REQ)).authorization).toBe('Bearer tok-1');
    clock.advance(1);
    expect((await auth.begin(REQ)).authorization).toBe('Bearer tok-2');
    expect(fetches()).toBe(2);
    // tok-1 still has two sends in flight: not revoked yet.
    expect(revoked()).toEqual([]);
  });

  it('caps the margin at half the lifetime', async () => {
    const { auth, clock, fetches } = setup({}, (n) => ({ access_token: `tok-${n}`, expires_in: 60 }));
    await auth.begin(REQ);
    clock.advance(29_999);
    await auth.begin(REQ);
    expect(fetches()).toBe(1);
    clock.advance(1);
    await auth.begin(REQ);
    expect(fetches()).toBe(2);
  });

  it.each([
    ['missing', undefined],
    ['zero', 0],
    ['negative', -5],
    ['a string', '60'],
  ])('an expires_in that is %s counts as Atlas’s one hour', async (_name, expiresIn) => {
    const { auth, clock, fetches } = setup({}, (n) => ({ access_token: `tok-${n}`, expires_in: expiresIn }));
    await auth.begin(REQ);
    clock.advance(3_000_000 - 1);
    await auth.begin(REQ);
    expect(fetches()).toBe(1);
  });

  it.each([
    ['no access_token', { expires_in: 3600 }],
    ['an empty one', { access_token: '' }],
    ['a number', { access_token: 12345 }],
    ['no JSON at all', '<html>oops</html>'],
  ])('refuses a token answer with %s', async (_name, body) => {
    const { auth } = setup({}, () => body);
    const err = await auth.begin(REQ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasAuthError);
    expect(err).toMatchObject({
      message: 'oauthToken: token response has no access_token',
      operation: 'oauthToken',
      status: 200,
    });
  });
});

describe('OAuthAuth: leases, 401s and revocation', () => {
  it('revokes a replaced token only once its last send is back, once, and counts only a 200', async () => {
    const { auth, clock, revoked, stats, control } = setup();
    const a1 = await auth.begin(REQ);
    const a2 = await auth.begin(REQ);
    clock.advance(3_000_000);
    await auth.begin(REQ);
    await a1.settle({ status: 200, headers: {} }, true);
    expect(revoked()).toEqual([]);
    control.revokeStatus = 400;
    await a2.settle({ status: 200, headers: {} }, true);
    // Settling again changes nothing.
    await a2.settle({ status: 200, headers: {} }, true);
    await settle();
    expect(revoked()).toEqual(['tok-1']);
    expect(stats.tokenRevocations).toBe(0);
  });

  it('after a 401: one new token and one resend; the rejected token is not revoked; a second settle is a no-op', async () => {
    const { auth, revoked, fetches } = setup();
    const first = await auth.begin(REQ);
    const resend = await first.settle({ status: 401, headers: {} }, true);
    expect(resend?.authorization).toBe('Bearer tok-2');
    expect(await first.settle({ status: 401, headers: {} }, true)).toBeUndefined();
    expect(fetches()).toBe(2);
    // No resend allowed, or a network error (no outcome): nothing more.
    expect(await resend!.settle({ status: 401, headers: {} }, false)).toBeUndefined();
    const next = await auth.begin(REQ);
    expect(await next.settle(undefined, true)).toBeUndefined();
    await auth.close();
    expect(revoked()).toEqual(['tok-3']);
  });

  it('close(): revokes the current token even with a send in flight, once, waits for it, then refuses new calls', async () => {
    const { auth, revoked, control, stats } = setup();
    const attempt = await auth.begin(REQ);
    const gate = deferred<void>();
    control.revokeGate = gate.promise;
    let closed = false;
    const closing = auth.close().then(() => (closed = true));
    await settle();
    expect([revoked(), closed]).toEqual([['tok-1'], false]);
    gate.resolve();
    await closing;
    expect(stats.tokenRevocations).toBe(1);
    await attempt.settle({ status: 200, headers: {} }, true);
    await settle();
    expect(revoked()).toEqual(['tok-1']);
    const err = await auth.begin(REQ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasConfigError);
    expect((err as Error).message).toContain('client is closed');
  });

  it('a token fetched while close() ran is revoked, not left alive', async () => {
    const { auth, revoked, control } = setup();
    const gate = deferred<void>();
    control.tokenGate = gate.promise;
    const begin = auth.begin(REQ);
    await settle();
    const closing = auth.close();
    gate.resolve();
    await begin;
    await closing;
    await settle();
    expect(revoked()).toEqual(['tok-1']);
  });
});

describe('OAuthAuth: the current token is left alone', () => {
  it('a send that went well revokes nothing; fetches are counted', async () => {
    const { auth, revoked, stats } = setup();
    const a = await auth.begin(REQ);
    expect(await a.settle({ status: 200, headers: {} }, true)).toBeUndefined();
    await settle();
    expect([revoked(), stats.tokenFetches]).toEqual([[], 1]);
  });

  it('a 401 for a replaced token neither revokes it (dead already) nor drops the current one', async () => {
    const { auth, clock, revoked, fetches } = setup();
    const old = await auth.begin(REQ);
    clock.advance(3_000_000);
    expect((await auth.begin(REQ)).authorization).toBe('Bearer tok-2');
    expect(await old.settle({ status: 401, headers: {} }, false)).toBeUndefined();
    await settle();
    expect(revoked()).toEqual([]);
    expect((await auth.begin(REQ)).authorization).toBe('Bearer tok-2');
    expect(fetches()).toBe(2);
  });

  it('refuses calls after close() as the oauthToken operation', async () => {
    const { auth } = setup();
    await auth.close();
    expect(await auth.begin(REQ).catch((e: unknown) => e)).toMatchObject({ operation: 'oauthToken' });
  });
});

describe('noAuth', () => {
  it('sends no Authorization and never resends', async () => {
    const attempt = await noAuth.begin(REQ);
    expect(attempt.authorization).toBeUndefined();
    expect(await attempt.settle({ status: 401, headers: {} }, true)).toBeUndefined();
  });
});

describe('oauthError', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');

  it('reads OAuth’s {error, error_description}, Retry-After and the request id', () => {
    const e = oauthError(
      json(
        401,
        { error: 'invalid_client', error_description: 'bad secret' },
        { 'retry-after': '30', 'x-request-id': 'r-1' },
      ),
      'oauthToken',
      now,
    );
    expect(e).toMatchObject({
      message: 'oauthToken: HTTP 401 invalid_client: bad secret',
      status: 401,
      authError: 'invalid_client',
      description: 'bad secret',
      retryAfterMs: 30_000,
      requestId: 'r-1',
    });
  });

  it('reads Atlas’s {errorCode, detail}, and ignores what is not a string or not JSON', () => {
    expect(
      oauthError(json(429, { errorCode: 'RATE_LIMITED', detail: 'slow down' }), 'oauthToken', now).message,
    ).toBe('oauthToken: HTTP 429 RATE_LIMITED: slow down');
    expect(oauthError(json(400, { error: 123, error_description: ['x'] }), 'oauthToken', now)).toMatchObject({
      message: 'oauthToken: HTTP 400',
      authError: undefined,
      description: undefined,
    });
    expect(oauthError(json(502, '<html>Bad gateway</html>'), 'oauthRevoke', now).message).toBe(
      'oauthRevoke: HTTP 502',
    );
  });
});

describe('bearerAuth', () => {
  it('is the bearer scheme, and its close resolves', async () => {
    const auth = bearerAuth('t');
    expect(auth.scheme).toBe('bearer');
    expect((await auth.begin(REQ)).authorization).toBe('Bearer t');
    await expect(auth.close()).resolves.toBeUndefined();
  });
});

describe('createOAuthFormPost', () => {
  function formPost(answers: WireResponse[]) {
    const sent: { method: string; target: string; headers: Record<string, string>; body: string }[] = [];
    const stats = new AtlasStats();
    const post = createOAuthFormPost({
      transport: async (req) => {
        sent.push({
          method: req.method,
          target: req.target,
          headers: req.headers as Record<string, string>,
          body: req.body?.toString() ?? '',
        });
        return answers.shift() ?? json(200, {});
      },
      userAgent: 'gateway-test/1',
      retry: RETRY_DEFAULTS,
      clock: new ManualClock(),
      sleep: async () => undefined,
      random: () => 0,
      stats,
    });
    return { post, sent, stats };
  }
  const form = {
    path: '/api/oauth/token',
    form: new URLSearchParams({ grant_type: 'client_credentials' }),
    authorization: 'Basic eA==',
  };

  it('sends a JSON-accepting form POST and answers any 2xx', async () => {
    const { post, sent } = formPost([json(204, '')]);
    expect((await post({ operation: 'oauthToken', retryable: true, ...form })).status).toBe(204);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      target: '/api/oauth/token',
      headers: {
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic eA==',
        'user-agent': 'gateway-test/1',
      },
      body: 'grant_type=client_credentials',
    });
  });

  it('a 300 or a 1xx is an error; a retryable POST is retried on 503, and each retry counted', async () => {
    for (const status of [300, 199]) {
      const { post } = formPost([json(status, {})]);
      await expect(post({ operation: 'oauthToken', retryable: false, ...form })).rejects.toMatchObject({
        message: `oauthToken: HTTP ${status}`,
      });
    }
    const { post, stats, sent } = formPost([json(503, {}), json(503, {}), json(200, { ok: true })]);
    expect((await post({ operation: 'oauthToken', retryable: true, ...form })).status).toBe(200);
    expect([sent.length, stats.retries]).toEqual([3, 2]);
  });
});
