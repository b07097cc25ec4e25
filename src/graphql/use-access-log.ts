import type { GraphQLError } from 'graphql';
import { maskError } from './errors.js';
import { operationName } from '../observability/operation-name.js';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';

/** What the log line reads of a GraphQL context (the gateway's context is one). */
export interface AccessLogContext {
  requestId: string;
  caller?: { id: string } | undefined;
}

/**
 * One log line per GraphQL operation (request id, operation name, caller, duration, error codes), and
 * the request id answered in `x-request-id` so a client can quote it.
 */
export function useAccessLog(logger: Logger, requestIds: WeakMap<Request, string>): Plugin<AccessLogContext> {
  return {
    onResponse({ request, response }) {
      const id = requestIds.get(request);
      if (id) response.headers.set('x-request-id', id);
    },
    onExecute({ args }) {
      const started = performance.now();
      const ctx = args.contextValue;
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? (result.errors ?? []) : [];
          logger.info(
            {
              requestId: ctx.requestId,
              operation: operationName(args.document, args.operationName),
              caller: ctx.caller?.id,
              ms: Math.round(performance.now() - started),
              // Codes as clients will see them (errors are masked after this point).
              errors: errors.map(
                (e) => (maskError(e, '') as GraphQLError).extensions?.code ?? 'INTERNAL_SERVER_ERROR',
              ),
            },
            'graphql operation',
          );
        },
      };
    },
  };
}
