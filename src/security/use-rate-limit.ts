import type { GraphQLError } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Caller } from '../callers/caller.js';
import { requestErrorExtensions } from '../graphql/errors.js';
import type { RateLimitOptions } from './security-options.js';

/**
 * Who a request counts against: the caller's id once authenticated, or, for open access (every
 * anonymous caller shares the id `anonymous`), the client's address.
 */
export function rateLimitKey(context: unknown, trustProxy: boolean): string {
  const ctx = (typeof context === 'object' && context !== null ? context : {}) as {
    caller?: Partial<Caller>;
    request?: Request;
    req?: { socket?: { remoteAddress?: string } };
  };
  const caller = ctx.caller;
  if (caller?.id && caller.kind !== 'open') return `caller:${caller.id}`;
  if (trustProxy) {
    const forwarded = ctx.request?.headers.get('x-forwarded-for');
    const last = forwarded?.split(',').pop()?.trim();
    if (last) return `address:${last}`;
  }
  return `address:${ctx.req?.socket?.remoteAddress ?? 'unknown'}`;
}

/**
 * The answer to a caller over its limit: `RATE_LIMITED`, HTTP 429 and `Retry-After`. Made with yoga's
 * `createGraphQLError` (as are this folder's other errors) so it is of yoga's copy of graphql: yoga
 * strips `extensions.http` only from errors it recognizes, and under vitest this folder's `graphql`
 * import is a different copy (ESM) from yoga's (CJS).
 */
export function rateLimitedError(limit: RateLimitOptions, retryAfterMs: number): GraphQLError {
  const ms = Math.max(0, Math.ceil(retryAfterMs));
  return createGraphQLError(
    `Rate limit reached: at most ${limit.points} operations per ${limit.windowMs / 1000} s per caller; retry in ${Math.ceil(ms / 1000)} s.`,
    {
      extensions: requestErrorExtensions(
        'RATE_LIMITED',
        { retryable: true, retryAfterMs: ms },
        { headers: { 'retry-after': String(Math.ceil(ms / 1000)) } },
      ),
    },
  );
}

/**
 * Counts every operation (each one of a batch) against its caller, in memory (one gateway process;
 * several replicas each count their own). Runs just before execution, once the caller is known, so a
 * refused operation makes no upstream call.
 */
export function useRateLimit(limit: RateLimitOptions, trustProxy = false): Plugin {
  const limiter = new RateLimiterMemory({
    keyPrefix: 'gateway',
    points: limit.points,
    duration: limit.windowMs / 1000,
  });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      return limiter.consume(rateLimitKey(args.contextValue, trustProxy)).then(
        () => undefined,
        (rejection: unknown) => {
          if (!(rejection instanceof RateLimiterRes)) throw rejection;
          setResultAndStopExecution({ errors: [rateLimitedError(limit, rejection.msBeforeNext)] });
        },
      );
    },
  };
}
