import type { GraphQLError } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** The message without graphql's "Did you mean …?" hints. */
export function stripSuggestions(message: string): string {
  return message.replace(SUGGESTION, '').trim();
}

// By name, not `instanceof`: graphql's CJS and ESM builds may both be loaded (the dual-package hazard).
function strip<E extends Error>(err: E): E | GraphQLError {
  if (err.name !== 'GraphQLError') return err;
  const error = err as unknown as GraphQLError;
  const message = stripSuggestions(error.message);
  if (message === error.message) return err;
  return createGraphQLError(message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    originalError: error.originalError ?? null,
    extensions: error.extensions,
  });
}

/**
 * Production: no schema hints in error messages. graphql-armor's block-field-suggestions masks only
 * the `Did you mean "x"?` form in validation errors; graphql also suggests enum values
 * (`Did you mean the enum value "QUEUED"?`), in validation and, for variables, during execution. This
 * removes every form: from validation results, and from execution through the executor's own
 * `hideSuggestions` switch plus a pass over the result's errors.
 */
export function useHideSuggestions(): Plugin {
  return {
    onValidate() {
      return ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map(strip));
      };
    },
    onExecute({ args }) {
      // @graphql-tools/executor (yoga's executor) reads this; graphql's ExecutionArgs type lacks it.
      Object.assign(args, { hideSuggestions: true });
      return {
        onExecuteDone({ result, setResult }) {
          if (!('errors' in result) || !result.errors?.length) return;
          setResult({ ...result, errors: result.errors.map(strip) });
        },
      };
    },
  };
}
