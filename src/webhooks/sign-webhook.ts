import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signing as Standard Webhooks does (https://www.standardwebhooks.com), so receivers may use any of its
 * libraries or these few lines: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 * with `webhook-id` and `webhook-timestamp` (Unix seconds) beside it. Hand-written because it is a
 * dozen lines of node:crypto, and the receiver side (`verifyWebhook`) must not pull in the gateway.
 */

/** A `whsec_<base64>` secret is its decoded bytes (Standard Webhooks); any other string its UTF-8. */
export function webhookKey(secret: string): Uint8Array {
  return secret.startsWith('whsec_')
    ? new Uint8Array(Buffer.from(secret.slice('whsec_'.length), 'base64'))
    : new Uint8Array(Buffer.from(secret, 'utf8'));
}

/** The three headers of one signed POST. */
export type WebhookSignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

function hmac(key: Uint8Array, id: string, timestamp: string, body: string): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
}

/** The headers that sign `body` as message `id`, sent at `nowMs`. */
export function signWebhook(
  key: Uint8Array,
  id: string,
  nowMs: number,
  body: string,
): WebhookSignatureHeaders {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${hmac(key, id, timestamp, body).toString('base64')}`,
  };
}

/** Why a webhook was refused. */
export type WebhookRefusal = 'missing-headers' | 'bad-timestamp' | 'too-old' | 'too-new' | 'bad-signature';

export interface VerifyWebhookOptions {
  /** The hook's secret (`whsec_…` or the plain string configured). */
  secret: string;
  /** The request's headers (any case; a `Headers` or node's `IncomingHttpHeaders`). */
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The body exactly as received (before any JSON parse). */
  body: string;
  /** How far the timestamp may be from now, either way, in seconds. @default 300 */
  toleranceSec?: number;
  /** @default Date.now() */
  nowMs?: number;
}

/**
 * Checks a received webhook: the timestamp within `toleranceSec` of now (a replayed old message is
 * refused), and one of the `v1,` signatures (space-separated, for key rotation) matching in
 * constant time. Answers `{ ok: true }` or the reason, never throws on bad input.
 */
export function verifyWebhook(
  options: VerifyWebhookOptions,
): { ok: true; id: string } | { ok: false; reason: WebhookRefusal } {
  const header = (name: string): string | undefined => {
    const h = options.headers;
    const v = h instanceof Headers ? h.get(name) : (h[name] ?? h[name.toLowerCase()]);
    return Array.isArray(v) ? v[0] : (v ?? undefined);
  };
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  const signatures = header('webhook-signature');
  if (!id || !timestamp || !signatures) return { ok: false, reason: 'missing-headers' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad-timestamp' };
  const skew = Number(timestamp) - Math.floor((options.nowMs ?? Date.now()) / 1000);
  const tolerance = options.toleranceSec ?? 300;
  if (skew < -tolerance) return { ok: false, reason: 'too-old' };
  if (skew > tolerance) return { ok: false, reason: 'too-new' };
  const expected = hmac(webhookKey(options.secret), id, timestamp, options.body);
  for (const part of signatures.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true, id };
  }
  return { ok: false, reason: 'bad-signature' };
}
