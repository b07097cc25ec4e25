import type { GraphQLError } from 'graphql';
import { createGraphQLError, isAsyncIterable, type Plugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { AtlasApiError } from '../atlas/errors.js';
import type { Caller } from '../callers/caller.js';
import { GatewayError, type GatewayErrorCode } from '../errors/index.js';
import { requestErrorExtensions } from '../graphql/errors.js';
import type { RateLimitOptions } from './security-options.js';

/**
 * Who a request counts against: the caller's id once authenticated, or the client's address for
 * open access (every anonymous caller shares the id `anonymous`) and for a pass-through token Atlas
 * has not accepted yet (`unverifiedToken`: its id is only the hash of whatever the client sent, so
 * each made-up token would otherwise be a fresh budget).
 */
export function rateLimitKey(context: unknown, trustProxy: boolean): string {
  const ctx = (typeof context === 'object' && context !== null ? context : {}) as {
    caller?: Partial<Caller>;
    unverifiedToken?: boolean;
    request?: Request;
    req?: { socket?: { remoteAddress?: string } };
  };
  const caller = ctx.caller;
  if (caller?.id && caller.kind !== 'open' && ctx.unverifiedToken !== true) return `caller:${caller.id}`;
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

// Refusals a caller brings on itself: asking again changes nothing, so a subscription that ends in
// one counts twice (a made-up job id, a project it cannot see, a refused token, a bad argument).
const CALLER_FAULTS: ReadonlySet<GatewayErrorCode> = new Set<GatewayErrorCode>([
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
]);

/** Whether an error (or the resolver error a GraphQL error wraps) is the caller's own doing. */
export function isCallerFault(err: unknown): boolean {
  let e = err;
  // graphql wraps a resolver's throw in a located GraphQLError (maybe of another copy of graphql).
  for (let depth = 0; depth < 5 && e instanceof Error && 'originalError' in e && e.originalError; depth++) {
    e = e.originalError;
  }
  if (e instanceof GatewayError) return CALLER_FAULTS.has(e.code);
  return e instanceof AtlasApiError && [400, 401, 403, 404].includes(e.status);
}

/**
 * The per-caller operation budget (`GATEWAY_RATE_LIMIT` per `GATEWAY_RATE_LIMIT_WINDOW_MS`), in memory
 * (one gateway process; several replicas each count their own). One instance is shared by every way in
 * that grants data: GraphQL operations on every transport (`useRateLimit`) and the `/downloads/…` route,
 * so a caller cannot spend the limit twice by switching doors.
 */
export class CallerRateLimit {
  readonly #limiter: RateLimiterMemory;
  constructor(
    readonly limit: RateLimitOptions,
    /** Whether `X-Forwarded-For` names the client (see `rateLimitKey`). @default false */
    readonly trustProxy = false,
  ) {
    this.#limiter = new RateLimiterMemory({
      keyPrefix: 'gateway',
      points: limit.points,
      duration: limit.windowMs / 1000,
    });
  }

  /** Takes one point from the caller of `context` (see `rateLimitKey`): its key, or the wait when over. */
  take(context: unknown): Promise<{ key: string } | { retryAfterMs: number }> {
    const key = rateLimitKey(context, this.trustProxy);
    return this.#limiter.consume(key).then(
      () => ({ key }),
      (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return { retryAfterMs: rejection.msBeforeNext };
      },
    );
  }

  /** One more point from `key`, never refused (a start that failed for the caller's own reason). */
  penalty(key: string): void {
    void this.#limiter.penalty(key).catch(() => undefined);
  }
}

/**
 * Counts every operation (each one of a batch) against its caller, in memory (one gateway process;
 * several replicas each count their own). Runs just before execution, once the caller is known, so a
 * refused operation makes no upstream call. Starting a subscription is an operation too, on every
 * transport (SSE and graphql-ws both run yoga's `subscribe`); one that fails for the caller's own
 * reason (`isCallerFault`: most often a made-up job id, answered 404 after the one read it needed)
 * costs a second point, so a stream of hostile subscribes runs dry twice as fast.
 */
export function useRateLimit(limit: RateLimitOptions | CallerRateLimit, trustProxy = false): Plugin {
  const rate = limit instanceof CallerRateLimit ? limit : new CallerRateLimit(limit, trustProxy);
  const consume = async (
    context: unknown,
    refuse: (result: { errors: GraphQLError[] }) => void,
  ): Promise<string | undefined> => {
    const taken = await rate.take(context);
    if ('key' in taken) return taken.key;
    refuse({ errors: [rateLimitedError(rate.limit, taken.retryAfterMs)] });
    return undefined;
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      return consume(args.contextValue, setResultAndStopExecution).then(() => undefined);
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const key = await consume(args.contextValue, setResultAndStopExecution);
      if (key === undefined) return undefined;
      const penalize = () => rate.penalty(key);
      return {
        onSubscribeResult({ result }) {
          // Refused before it streamed (a project it cannot see, a bad argument): no stream to watch.
          if (!isAsyncIterable(result) && result.errors?.some(isCallerFault)) penalize();
        },
        onSubscribeError({ error }) {
          if (isCallerFault(error)) penalize();
        },
      };
    },
  };
}
