import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook, webhookKey } from '../../src/webhooks/sign-webhook.js';

// The Standard Webhooks specification's published test vector: matching it is what lets a receiver
// verify the gateway's deliveries with any of that specification's libraries.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const AT = VECTOR.timestamp * 1000;

describe('signWebhook / verifyWebhook', () => {
  it('signs like the Standard Webhooks reference', () => {
    const headers = signWebhook(webhookKey(VECTOR.secret), VECTOR.id, AT, VECTOR.body);
    expect(headers).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    });
  });

  it('accepts the reference message, with a signature among several (key rotation)', () => {
    const headers = {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': `v1,AAAA v2,whatever ${VECTOR.signature}`,
    };
    expect(verifyWebhook({ secret: VECTOR.secret, headers, body: VECTOR.body, nowMs: AT + 10_000 })).toEqual({
      ok: true,
      id: VECTOR.id,
    });
    expect(
      verifyWebhook({ secret: VECTOR.secret, headers: new Headers(headers), body: VECTOR.body, nowMs: AT }),
    ).toMatchObject({ ok: true });
  });

  it('refuses a tampered body, another secret, missing headers and a bad timestamp', () => {
    const headers = signWebhook(webhookKey(VECTOR.secret), VECTOR.id, AT, VECTOR.body);
    const verify = (o: Partial<Parameters<typeof verifyWebhook>[0]>) =>
      verifyWebhook({ secret: VECTOR.secret, headers, body: VECTOR.body, nowMs: AT, ...o });
    expect(verify({ body: '{"test": 2432232315}' })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verify({ secret: 'whsec_' + Buffer.alloc(32, 7).toString('base64') })).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verify({ headers: { ...headers, 'webhook-signature': undefined } })).toEqual({
      ok: false,
      reason: 'missing-headers',
    });
    expect(verify({ headers: { ...headers, 'webhook-timestamp': '12e9' } })).toEqual({
      ok: false,
      reason: 'bad-timestamp',
    });
    // The id is signed too: a valid signature moved to another message id fails.
    expect(verify({ headers: { ...headers, 'webhook-id': 'msg_other' } })).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('refuses a replay outside the tolerance, either way, and accepts one at its edge', () => {
    const headers = signWebhook(webhookKey(VECTOR.secret), VECTOR.id, AT, VECTOR.body);
    const at = (nowMs: number, toleranceSec?: number) =>
      verifyWebhook({
        secret: VECTOR.secret,
        headers,
        body: VECTOR.body,
        nowMs,
        ...(toleranceSec !== undefined ? { toleranceSec } : {}),
      });
    expect(at(AT + 300_000).ok).toBe(true);
    expect(at(AT + 301_000)).toEqual({ ok: false, reason: 'too-old' });
    expect(at(AT - 301_000)).toEqual({ ok: false, reason: 'too-new' });
    expect(at(AT + 61_000, 60)).toEqual({ ok: false, reason: 'too-old' });
  });

  it('takes a plain secret as its UTF-8 bytes and a whsec_ one as its base64', () => {
    expect(Buffer.from(webhookKey('plain-secret')).toString('utf8')).toBe('plain-secret');
    expect(webhookKey(VECTOR.secret)).toHaveLength(24);
  });
});
