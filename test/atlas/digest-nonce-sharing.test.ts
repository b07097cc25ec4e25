import { describe, expect, it } from 'vitest';
import { AtlasStats } from '../../src/atlas/atlas-stats.js';
import type { AuthAttempt } from '../../src/atlas/credentials/auth-strategy.js';
import { DigestAuth } from '../../src/atlas/credentials/digest-auth.js';

/*
 * DigestAuth's nonce sharing driven step by step: the test plays the server's answers (401 challenges,
 * 200s, network errors) and reads what the strategy would send. Against the simulator's Digest server,
 * see client.test.ts and digest-stale-nonce.test.ts.
 */

const REQ = {
  operation: 'getGroup',
  method: 'GET',
  target: '/api/atlas/v2/groups',
  body: undefined,
  signal: undefined,
};
const challenge = (nonce: string, stale = false) => ({
  status: 401,
  headers: {
    'www-authenticate': `Digest realm="MMS Public API", domain="", nonce="${nonce}", algorithm=MD5, qop="auth", stale=${stale}`,
  },
});
const OK = { status: 200, headers: {} };
const nonceOf = (a: AuthAttempt | undefined) => /nonce="([^"]*)"/.exec(a?.authorization ?? '')?.[1];
const ncOf = (a: AuthAttempt | undefined) => /nc=([0-9a-f]{8})/.exec(a?.authorization ?? '')?.[1];

const setup = () => {
  const stats = new AtlasStats();
  return {
    stats,
    auth: new DigestAuth({ publicKey: 'pub', privateKey: 'priv', cnonce: () => 'c0ffee' }, { stats }),
  };
};

/** The strategy with the nonce `n1` installed and answered once. */
async function withNonce() {
  const s = setup();
  const first = await s.auth.begin(REQ);
  const resend = await first.settle(challenge('n1'), true);
  await resend!.settle(OK, true);
  return s;
}

const pending = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 20; i++) await Promise.resolve();
  return !done;
};

describe('DigestAuth', () => {
  it('is the digest scheme, sends the injected cnonce, and closes at once', async () => {
    const { auth } = await withNonce();
    expect(auth.scheme).toBe('digest');
    const a = await auth.begin(REQ);
    expect(a.authorization).toContain('cnonce="c0ffee"');
    expect([nonceOf(a), ncOf(a)]).toEqual(['n1', '00000002']);
    await expect(auth.close()).resolves.toBeUndefined();
  });

  it('a server that answers without a challenge is not waited for: later requests go out together', async () => {
    const { auth, stats } = setup();
    const first = await auth.begin(REQ);
    expect(first.authorization).toBeUndefined();
    expect(await first.settle(OK, true)).toBeUndefined();
    const a = auth.begin(REQ);
    const b = auth.begin(REQ);
    expect(await pending(b)).toBe(false);
    expect([(await a).authorization, (await b).authorization]).toEqual([undefined, undefined]);
    expect(stats.digestChallenges).toBe(0);
  });

  it('a challenge request with no answer (network error) or no resend allowed opens the gate and sends nothing more', async () => {
    const { auth, stats } = setup();
    const first = await auth.begin(REQ);
    const waiting = auth.begin(REQ);
    expect(await pending(waiting)).toBe(true);
    expect(await first.settle(undefined, true)).toBeUndefined();
    const second = await waiting;
    expect(await second.settle(challenge('n1'), false)).toBeUndefined();
    expect(stats.digestChallenges).toBe(0);
    // Still challenged: the next request goes out unauthenticated again, behind the gate.
    const third = await auth.begin(REQ);
    expect(third.authorization).toBeUndefined();
    expect(await pending(auth.begin(REQ))).toBe(true);
  });

  it('settles each attempt once: a second settle neither counts a challenge nor resends', async () => {
    const { auth, stats } = setup();
    const first = await auth.begin(REQ);
    expect(nonceOf(await first.settle(challenge('n1'), true))).toBe('n1');
    expect(await first.settle(challenge('n1'), true)).toBeUndefined();
    expect(stats.digestChallenges).toBe(1);
  });

  it('an authorised send that got no answer resends nothing', async () => {
    const { auth } = await withNonce();
    const a = await auth.begin(REQ);
    expect(await a.settle(undefined, true)).toBeUndefined();
  });

  it('a stale nonce seen by two requests is renewed once: the later 401 is answered on its own', async () => {
    const { auth } = await withNonce();
    const a = await auth.begin(REQ);
    const b = await auth.begin(REQ);
    const aResend = await a.settle(challenge('n2', true), true);
    expect(nonceOf(aResend)).toBe('n2');
    const bResend = await b.settle(challenge('n3', true), true);
    expect([nonceOf(bResend), ncOf(bResend)]).toEqual(['n3', '00000001']);
    await aResend!.settle(OK, true);
    await bResend!.settle(OK, true);
    // n2 is the shared nonce: the next request uses it, with the next count.
    const c = await auth.begin(REQ);
    expect([nonceOf(c), ncOf(c)]).toEqual(['n2', '00000002']);
  });

  it('a network error does not reset the refusals in a row: the 8th replaces the nonce', async () => {
    const { auth } = await withNonce();
    for (let i = 0; i < 7; i++) {
      const a = await auth.begin(REQ);
      const own = await a.settle(challenge(`own-${i}`), true);
      await own!.settle(OK, true);
    }
    const lost = await auth.begin(REQ);
    await lost.settle(undefined, true);
    const eighth = await auth.begin(REQ);
    const renewed = await eighth.settle(challenge('fresh'), true);
    await renewed!.settle(OK, true);
    expect(nonceOf(await auth.begin(REQ))).toBe('fresh');
  });

  it('a refusal of the shared nonce is answered on its own nonce; the shared one stays; challenges are counted', async () => {
    const { auth, stats } = await withNonce();
    expect(stats.digestChallenges).toBe(1);
    const a = await auth.begin(REQ);
    const own = await a.settle(challenge('own'), true);
    expect([nonceOf(own), ncOf(own)]).toEqual(['own', '00000001']);
    await own!.settle(OK, true);
    expect(stats.digestChallenges).toBe(2);
    const b = await auth.begin(REQ);
    expect([nonceOf(b), ncOf(b)]).toEqual(['n1', '00000003']);
  });

  it('a success resets the refusals in a row: 7 refusals, a success, one more refusal keep the nonce', async () => {
    const { auth } = await withNonce();
    for (let i = 0; i < 7; i++) {
      const a = await auth.begin(REQ);
      await (await a.settle(challenge(`own-${i}`), true))!.settle(OK, true);
    }
    await (await auth.begin(REQ)).settle(OK, true);
    const again = await auth.begin(REQ);
    await (await again.settle(challenge('own-8'), true))!.settle(OK, true);
    expect(nonceOf(await auth.begin(REQ))).toBe('n1');
  });

  it('a 401 of an authorised send is not resent without a resend allowed, nor without a Digest challenge', async () => {
    const { auth, stats } = await withNonce();
    const a = await auth.begin(REQ);
    expect(await a.settle(challenge('x'), false)).toBeUndefined();
    const b = await auth.begin(REQ);
    expect(await b.settle({ status: 401, headers: {} }, true)).toBeUndefined();
    expect(stats.digestChallenges).toBe(1);
  });
});
