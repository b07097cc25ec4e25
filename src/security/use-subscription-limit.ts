import type { GraphQLError } from 'graphql';
import { createGraphQLError, isAsyncIterable, type Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';
import { streamHolds } from '../graphql/stream-holds.js';
import { rateLimitKey } from './use-rate-limit.js';

/**
 * The answer to a caller already running `max` subscriptions: `RATE_LIMITED` (HTTP 429), retryable
 * once one of them ends; no `retryAfterMs`, since only the caller knows when that will be.
 */
export function tooManySubscriptionsError(max: number): GraphQLError {
  return createGraphQLError(
    `Too many subscriptions: at most ${max} at once per caller; end one before starting another.`,
    {
      extensions: requestErrorExtensions('RATE_LIMITED', { retryable: true, maxSubscriptions: max }),
    },
  );
}

/**
 * Caps the subscriptions one caller (`rateLimitKey`: its id, or its address) runs at once, in this
 * process, on every transport: the cap is checked in yoga's `subscribe`, which SSE and graphql-ws
 * both run. A subscription stops counting when its stream ends, fails or is closed by the client.
 * Each running subscription may hold a job poller, so the cap also bounds the polling one caller
 * causes. The slot is a stream hold (`streamHolds`): a client served from a shared execution keeps it
 * until its own stream ends.
 */
export function useSubscriptionLimit(max: number, trustProxy = false): Plugin {
  const running = new Map<string, number>();
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const key = rateLimitKey(args.contextValue, trustProxy);
      const count = running.get(key) ?? 0;
      if (count >= max) {
        setResultAndStopExecution({ errors: [tooManySubscriptionsError(max)] });
        return undefined;
      }
      running.set(key, count + 1);
      let released = false;
      const release = streamHolds(args.contextValue).hold(() => {
        if (released) return;
        released = true;
        const left = (running.get(key) ?? 1) - 1;
        if (left > 0) running.set(key, left);
        else running.delete(key);
      });
      return {
        onSubscribeResult({ result }) {
          // No stream (refused at subscribe time): nothing runs.
          if (!isAsyncIterable(result)) {
            release();
            return undefined;
          }
          // Ends on completion and on the client's return(); a failing stream ends in onSubscribeError.
          return { onEnd: release };
        },
        onSubscribeError: release,
      };
    },
  };
}
