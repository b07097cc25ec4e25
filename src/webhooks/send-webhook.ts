import { request, type Dispatcher } from 'undici';

/** What one POST to a receiver came to. */
export type SendResult =
  | { ok: true; statusCode: number }
  | { ok: false; statusCode: number | null; error: string; retryAfterMs: number | undefined };

export interface SendWebhookOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  /** Longest wait for the answer's headers, and between two chunks of its body. */
  timeoutMs: number;
  /** Aborts the POST (shutdown). */
  signal: AbortSignal;
  /** For an HTTP-date `Retry-After`. */
  nowMs: number;
}

/**
 * One POST. A 2xx is delivered; anything else (another status, a timeout, a refused connection) is a
 * failure the worker retries, with the receiver's `Retry-After` when it sent one. The answer's body is
 * read and dropped: only its status matters, and an unread body would hold the connection.
 */
export async function sendWebhook(o: SendWebhookOptions): Promise<SendResult> {
  try {
    const res = await request(o.url, {
      method: 'POST',
      body: o.body,
      headers: o.headers,
      dispatcher: o.dispatcher,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      signal: o.signal,
    });
    await res.body.dump({ limit: 65_536 }).catch(() => undefined);
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, statusCode: res.statusCode };
    return {
      ok: false,
      statusCode: res.statusCode,
      error: `HTTP ${res.statusCode}`,
      retryAfterMs: retryAfterMs(res.headers['retry-after'], o.nowMs),
    };
  } catch (err) {
    const e = err as { code?: unknown; name?: unknown };
    const code = typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'ERROR';
    const error = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : code;
    return { ok: false, statusCode: null, error, retryAfterMs: undefined };
  }
}

/** `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
