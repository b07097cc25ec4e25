import {
  getOperationAST,
  Kind,
  type DefinitionNode,
  type DocumentNode,
  type GraphQLOutputType,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';
import { stripSuggestions } from './use-hide-suggestions.js';

/**
 * Cost ≈ how many objects an operation may return. A field with a `first` argument (a connection)
 * costs `first` times its selection, so `snapshots(first: 500)` under every cluster is expensive and
 * `snapshots(first: 3)` is not; the page list inside a connection (on a type with `pageInfo`) is
 * already counted by that `first`; any other list costs `listSize` times its items; an object 1, a
 * scalar 0; introspection is free (its own limits are depth and tokens).
 */
export function connectionCostEstimator(listSize: number): ComplexityEstimator {
  return ({ type, field, args, childComplexity }) => {
    if (type.name.startsWith('__') || field.name.startsWith('__')) return 0;
    const own = isLeaf(field.type) ? 0 : 1;
    if (field.args.some((a) => a.name === 'first')) {
      const first: unknown = args.first;
      return own + (typeof first === 'number' ? Math.max(0, first) : listSize) * childComplexity;
    }
    if (!isList(field.type)) return own + childComplexity;
    const isConnectionPage = 'getFields' in type && 'pageInfo' in type.getFields();
    return (isConnectionPage ? 1 : listSize) * (own + childComplexity);
  };
}

// The schema's types are read by shape, not with graphql's `isListType` & co: those test `instanceof`,
// and under vitest this file's `graphql` (ESM) is not the copy that built the schema (CJS).
function isList(type: GraphQLOutputType): boolean {
  return type.toString().replace(/!$/, '').startsWith('[');
}
function isLeaf(type: GraphQLOutputType): boolean {
  let t: object = type;
  while ('ofType' in t && typeof t.ofType === 'object' && t.ofType !== null) t = t.ofType;
  return 'serialize' in t; // scalars and enums serialize; objects, interfaces and unions do not
}

export interface CostLimitOptions {
  maxCost: number;
  listSize: number;
  /** Remove "Did you mean …?" from the errors it reports (production). */
  hideSuggestions: boolean;
}

/**
 * Refuses an operation whose estimated cost is over `maxCost`, before it runs.
 *
 * `graphql-query-complexity` computes the cost; this plugin runs it at execution time rather than as
 * a validation rule because the cost depends on variables (`first: $n`) while yoga caches validation
 * results per document, so a rule would judge `$n = 1` and then wave `$n = 500` through from cache.
 */
export function useCostLimit({ maxCost, listSize, hideSuggestions }: CostLimitOptions): Plugin {
  const estimators = [connectionCostEstimator(listSize)];
  const reject = (message: string, extensions: Record<string, unknown>) =>
    createGraphQLError(hideSuggestions ? stripSuggestions(message) : message, {
      extensions: requestErrorExtensions('BAD_USER_INPUT', extensions),
    });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (!operation) return; // execution itself reports the unknown or ambiguous operation
      // Only the operation that runs counts, with the fragments it may use.
      const query: DocumentNode = {
        kind: Kind.DOCUMENT,
        definitions: [
          operation,
          ...args.document.definitions.filter((d: DefinitionNode) => d.kind === Kind.FRAGMENT_DEFINITION),
        ],
      };
      let cost: number;
      try {
        cost = getComplexity({
          schema: args.schema,
          query,
          variables: (args.variableValues ?? {}) as Record<string, unknown>,
          estimators,
          // Fragments spreading fragments can multiply a small document; this bounds the walk.
          maxQueryNodes: 10_000,
        });
      } catch (err) {
        // Bad variables (graphql's own message) or a document too large to walk.
        const message = err instanceof Error ? err.message : String(err);
        return setResultAndStopExecution({ errors: [reject(message, {})] });
      }
      if (cost > maxCost) {
        setResultAndStopExecution({
          errors: [
            reject(
              `Operation cost ${cost} exceeds the limit of ${maxCost}: ask for fewer items (a smaller \`first\`) or fewer nested lists.`,
              { cost, maxCost },
            ),
          ],
        });
      }
    },
  };
}
