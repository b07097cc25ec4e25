import { describe, expect, it } from 'vitest';
import { AtlasApiError, AtlasNetworkError, AtlasResponseError } from '../../src/atlas/errors.js';
import {
  RETRY_DEFAULTS,
  parseRetryAfter,
  retryDelayMs,
  withRetries,
  type RetryContext,
} from '../../src/atlas/retry.js';
import { ManualClock } from '../../src/time/clock.js';

const api = (status: number, retryAfterMs?: number) =>
  new AtlasApiError({ operation: 'op', status, errorCode: `HTTP_${status}`, retryAfterMs });
const net = (code: 'ATLAS_NETWORK_ERROR' | 'ATLAS_TIMEOUT' | 'ATLAS_ABORTED', sent = true) =>
  new AtlasNetworkError('x', { operation: 'op', code, sent });

/** A retry context whose sleep records the delays and moves the manual clock instead of waiting. */
function context(over: Partial<RetryContext> = {}) {
  const clock = new ManualClock();
  const delays: number[] = [];
  const ctx: RetryContext = {
    options: RETRY_DEFAULTS,
    clock,
    sleep: (ms) => {
      delays.push(ms);
      clock.advance(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
    retryable: true,
    signal: undefined,
    operation: 'op',
    requestId: 'rid',
    ...over,
  };
  return { ctx, delays, clock };
}

/** An attempt function failing with `errors` in turn, then answering 'ok'. */
function script(...errors: unknown[]) {
  let calls = 0;
  const fn = (): Promise<string> => {
    const e = errors[calls++];
    return e === undefined ? Promise.resolve('ok') : Promise.reject(e);
  };
  return { fn, calls: () => calls };
}

describe('retryDelayMs', () => {
  const o = { baseDelayMs: 100, maxDelayMs: 1000 };
  it('is full jitter under a doubling cap', () => {
    expect(retryDelayMs(1, undefined, o, () => 0.999)).toBe(99);
    expect(retryDelayMs(3, undefined, o, () => 0.999)).toBe(399);
    expect(retryDelayMs(10, undefined, o, () => 0.999)).toBe(999);
    expect(retryDelayMs(10, undefined, o, () => 0)).toBe(0);
  });
  it('never waits less than Retry-After', () => {
    expect(retryDelayMs(1, 5000, o, () => 0.5)).toBe(5000);
    expect(retryDelayMs(5, 10, o, () => 0.5)).toBe(500);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('55', now)).toBe(55_000);
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 12:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('withRetries', () => {
  it('retries 429/502/503/504 and network errors, then succeeds', async () => {
    const { ctx, delays } = context();
    const s = script(api(503), net('ATLAS_NETWORK_ERROR'), api(429));
    await expect(withRetries(ctx, s.fn)).resolves.toBe('ok');
    expect(s.calls()).toBe(4);
    expect(delays).toEqual([100, 200, 400]); // random 0.5 × 200·2^(n-1)
  });

  it('stops after maxAttempts with the last error', async () => {
    const { ctx, delays } = context();
    const s = script(api(502), api(502), api(502), api(504), api(504));
    await expect(withRetries(ctx, s.fn)).rejects.toMatchObject({ status: 504 });
    expect(s.calls()).toBe(RETRY_DEFAULTS.maxAttempts);
    expect(delays).toHaveLength(RETRY_DEFAULTS.maxAttempts - 1);
  });

  it('honours Retry-After, and gives up at once when it exceeds the time budget', async () => {
    const { ctx, delays } = context();
    await expect(withRetries(ctx, script(api(429, 2000)).fn)).resolves.toBe('ok');
    expect(delays).toEqual([2000]);

    const tight = context({ options: { ...RETRY_DEFAULTS, maxElapsedMs: 10_000 } });
    const s = script(api(429, 55_000));
    await expect(withRetries(tight.ctx, s.fn)).rejects.toMatchObject({ retryAfterMs: 55_000 });
    expect(s.calls()).toBe(1);
    expect(tight.delays).toEqual([]);
  });

  it('counts time already spent against the budget', async () => {
    const { ctx, delays } = context({ options: { ...RETRY_DEFAULTS, maxElapsedMs: 5000, maxAttempts: 10 } });
    const s = script(api(503, 2000), api(503, 2000), api(503, 2000));
    await expect(withRetries(ctx, s.fn)).rejects.toMatchObject({ status: 503 });
    expect(delays).toEqual([2000, 2000]);
    expect(s.calls()).toBe(3);
  });

  it('never retries a non-retryable request (an unmarked POST)', async () => {
    const { ctx, delays } = context({ retryable: false });
    const s = script(api(503), net('ATLAS_NETWORK_ERROR', false));
    await expect(withRetries(ctx, s.fn)).rejects.toMatchObject({ status: 503 });
    expect(s.calls()).toBe(1);
    expect(delays).toEqual([]);
  });

  it('does not retry 4xx, 500, bad responses or aborts', async () => {
    for (const err of [
      api(400),
      api(404),
      api(500),
      net('ATLAS_ABORTED'),
      new AtlasResponseError('bad', { operation: 'op' }),
    ]) {
      const { ctx } = context();
      const s = script(err);
      await expect(withRetries(ctx, s.fn)).rejects.toBe(err);
      expect(s.calls()).toBe(1);
    }
  });

  it('ends a backoff wait on abort with ATLAS_ABORTED', async () => {
    const ac = new AbortController();
    const { ctx } = context({
      signal: ac.signal,
      sleep: (_ms, signal) =>
        new Promise((_, reject) => {
          signal?.addEventListener('abort', () => reject(signal.reason as Error));
          ac.abort();
        }),
    });
    const err = await withRetries(ctx, script(api(503)).fn).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasNetworkError);
    expect(err).toMatchObject({ code: 'ATLAS_ABORTED', sent: true, operation: 'op', requestId: 'rid' });
  });
});
