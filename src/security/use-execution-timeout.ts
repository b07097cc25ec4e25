import type { ExecutionArgs, GraphQLError } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';
import { realTimers, type Timers } from '../time/timers.js';

const deadlines = new WeakMap<Request, AbortController>();

/**
 * A signal that aborts when an operation of this request passes the execution timeout. Give it to
 * the upstream calls of the request (the `signal` of its `read` backup service) so they stop too,
 * instead of running on after the client got its timeout error. Undefined when no timeout applies to
 * the request (no `useExecutionTimeout`, or its operation has not started): then there is nothing to
 * combine.
 */
export function deadlineSignal(request: Request): AbortSignal | undefined {
  return deadlines.get(request)?.signal;
}

/** What a client gets when its operation is stopped: retryable, HTTP 504. */
export function executionTimeoutError(timeoutMs: number): GraphQLError {
  return createGraphQLError(
    `The operation did not finish within ${timeoutMs} ms and was stopped; ask for less (fewer clusters, a smaller \`first\`) or retry later.`,
    {
      // 504, not the code's 502: the gateway itself gave up waiting.
      extensions: requestErrorExtensions(
        'UPSTREAM_UNAVAILABLE',
        { retryable: true, timeoutMs },
        { status: 504 },
      ),
    },
  );
}

/**
 * Stops an operation still running `timeoutMs` after it started. `timers` are injected so tests
 * fire the deadline themselves instead of racing it.
 *
 * Hand-written because neither yoga nor envelop has an execution deadline; yoga's executor
 * (`@graphql-tools/executor`) does honour an `AbortSignal` in its arguments: it stops resolving and
 * rejects with the signal's reason, which is the GraphQL error the client sees.
 */
export function useExecutionTimeout(timeoutMs: number, timers: Timers = realTimers): Plugin {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const request = (args.contextValue as { request?: Request }).request;
      // Before any resolver runs, so the loaders (made on first use) find it.
      if (request && !deadlines.has(request)) deadlines.set(request, new AbortController());
      setExecuteFn((execArgs: ExecutionArgs) => {
        const controller = new AbortController();
        const timer = timers.setTimeout(() => {
          const reason = executionTimeoutError(timeoutMs);
          controller.abort(reason);
          if (request) deadlines.get(request)?.abort(reason);
        }, timeoutMs);
        // A signal already there (yoga's execution cancellation: the client went away) still counts.
        const outer = (execArgs as { signal?: AbortSignal }).signal;
        const signal = outer ? AbortSignal.any([outer, controller.signal]) : controller.signal;
        return Promise.resolve(executeFn(Object.assign({}, execArgs, { signal }))).finally(() =>
          timers.clearTimeout(timer),
        );
      });
    },
  };
}
