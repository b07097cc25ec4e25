import type { Clock } from '../time/clock.js';
import { AtlasApiError, AtlasAuthError, AtlasNetworkError } from './errors.js';
import type { Sleep } from '../time/sleep.js';

/** When and how often a safe request is sent again. */
export interface RetryOptions {
  /**
   * Sends per call, the first included (1 = no retries).
   * @default 4
   */
  maxAttempts?: number;
  /**
   * Give up once a further wait would end later than this after the call started; a `Retry-After`
   * beyond it is not waited for at all (a GraphQL request should fail fast, not sit for a minute).
   * @default 30000
   */
  maxElapsedMs?: number;
  /**
   * Backoff cap of the first retry; doubles per retry (full jitter: the wait is random in [0, cap)).
   * @default 200
   */
  baseDelayMs?: number;
  /**
   * Upper bound of the exponential cap.
   * @default 10000
   */
  maxDelayMs?: number;
  /**
   * HTTP statuses worth retrying. 500 is not: Atlas uses it for `UNEXPECTED_ERROR`, which rarely heals.
   * @default [429, 502, 503, 504]
   */
  retryOnStatuses?: readonly number[];
}

export const RETRY_DEFAULTS: Readonly<Required<RetryOptions>> = {
  maxAttempts: 4,
  maxElapsedMs: 30_000,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  retryOnStatuses: [429, 502, 503, 504],
};

export interface RetryContext {
  options: Readonly<Required<RetryOptions>>;
  clock: Clock;
  sleep: Sleep;
  /** [0, 1) */
  random: () => number;
  /** GET, or a POST the caller marked idempotent. */
  retryable: boolean;
  signal: AbortSignal | undefined;
  operation: string;
  requestId: string;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/**
 * Runs `attempt` until it succeeds, fails for good, or the attempt/time budget is spent. The backoff
 * state lives in this call only: a 429 for one project never delays calls for another.
 */
export async function withRetries<T>(ctx: RetryContext, attempt: (n: number) => Promise<T>): Promise<T> {
  const start = ctx.clock.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!ctx.retryable || ctx.signal?.aborted || n >= ctx.options.maxAttempts) throw err;
      if (!isRetryableError(err, ctx.options)) throw err;
      const delayMs = retryDelayMs(n, retryAfterOf(err), ctx.options, ctx.random);
      if (ctx.clock.now() - start + delayMs > ctx.options.maxElapsedMs) throw err;
      ctx.onRetry?.({ attempt: n, delayMs, error: err });
      try {
        await ctx.sleep(delayMs, ctx.signal);
      } catch (sleepErr) {
        const deadline = isTimeoutReason(ctx.signal?.reason);
        throw new AtlasNetworkError(
          `${deadline ? 'timed out (caller deadline)' : 'aborted by the caller'} during a retry backoff`,
          {
            code: deadline ? 'ATLAS_TIMEOUT' : 'ATLAS_ABORTED',
            sent: !(err instanceof AtlasNetworkError) || err.sent,
            operation: ctx.operation,
            requestId: ctx.requestId,
            cause: sleepErr,
          },
        );
      }
    }
  }
}

/** The caller's own deadline (`AbortSignal.timeout`) rather than a cancellation. */
export function isTimeoutReason(reason: unknown): boolean {
  return reason instanceof Error && reason.name === 'TimeoutError';
}

/** Retryable statuses and network failures; never a caller's abort. */
export function isRetryableError(
  err: unknown,
  options: Pick<Required<RetryOptions>, 'retryOnStatuses'>,
): boolean {
  if (err instanceof AtlasNetworkError) return err.code !== 'ATLAS_ABORTED';
  if (err instanceof AtlasApiError || err instanceof AtlasAuthError) {
    return err.status !== undefined && options.retryOnStatuses.includes(err.status);
  }
  return false;
}

function retryAfterOf(err: unknown): number | undefined {
  return err instanceof AtlasApiError || err instanceof AtlasAuthError ? err.retryAfterMs : undefined;
}

/**
 * Full jitter (random in [0, min(maxDelay, base·2^(n-1)))), but never less than `Retry-After`: Atlas's
 * rate-limit docs ask to wait at least that long, then back off.
 */
export function retryDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  options: Pick<Required<RetryOptions>, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number,
): number {
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  const jitter = Math.floor(random() * cap);
  return Math.max(jitter, retryAfterMs ?? 0);
}

/** `Retry-After` as delay-seconds or an HTTP-date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date always names a month; Date.parse alone would take '-5' for a year.
  const at = /[a-z]{3}/i.test(v) ? Date.parse(v) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
