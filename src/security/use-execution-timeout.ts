import { getOperationAST, type ExecutionArgs, type GraphQLError } from 'graphql';
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
 * How long after its deadline a mutation's execution is cut anyway, should a resolver not answer by
 * the deadline itself (the job mutations do: `requestDownload`, `requestRestore`).
 */
export const MUTATION_CUT_AFTER_MS = 1000;

/**
 * Stops an operation still running `timeoutMs` after it started. `timers` are injected so tests
 * fire the deadline themselves instead of racing it.
 *
 * Hand-written because neither yoga nor envelop has an execution deadline; yoga's executor
 * (`@graphql-tools/executor`) does honour an `AbortSignal` in its arguments: it stops resolving and
 * rejects with the signal's reason, which is the GraphQL error the client sees.
 *
 * A mutation is different: the executor runs mutation fields one after the other without racing the
 * signal, and once aborted it answers the signal's reason (a retryable timeout) whatever the resolver
 * said, which would be a lie for a POST that went out. So at the deadline only the request's
 * `deadlineSignal` aborts: the job mutations answer then with the truth (`OUTCOME_UNKNOWN` and a key
 * to retry with, or the retryable timeout when nothing was sent); the executor itself is cut
 * `MUTATION_CUT_AFTER_MS` later, for a resolver that does not listen.
 */
export function useExecutionTimeout(timeoutMs: number, timers: Timers = realTimers): Plugin {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const request = (args.contextValue as { request?: Request }).request;
      // Before any resolver runs, so the loaders (made on first use) find it.
      if (request && !deadlines.has(request)) deadlines.set(request, new AbortController());
      setExecuteFn((execArgs: ExecutionArgs) => {
        const controller = new AbortController();
        const mutation = getOperationAST(execArgs.document, execArgs.operationName)?.operation === 'mutation';
        let timer = timers.setTimeout(() => {
          const reason = executionTimeoutError(timeoutMs);
          if (mutation) {
            if (request) deadlines.get(request)?.abort(reason);
            timer = timers.setTimeout(() => controller.abort(reason), MUTATION_CUT_AFTER_MS);
            return;
          }
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
