import type { DocumentNode, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Documents (and parse errors) kept per query text, as yoga's own cache keeps. @default 1024 */
export const DOCUMENT_CACHE_SIZE = 1024;

/**
 * yoga's parser and validation cache (`useParserAndValidationCache`, which the gateway turns off)
 * without its one-hour TTL. With a TTL, lru-cache reads the time through a value it forgets 1 ms
 * later with a `setTimeout`: every request armed two timers and woke the idle event loop 1 ms after
 * it (docs/benchmarks.md, "The latency floor"). Documents are immutable and keyed by their text, so a
 * size bound is all the cache needs; validation results live as long as their document (WeakMap).
 * Same hooks and keys as yoga's, so the limits that wrap parsing and validation see the same thing.
 */
export function useDocumentCache(max = DOCUMENT_CACHE_SIZE): Plugin {
  const documents = lru<DocumentNode>(max);
  const parseErrors = lru<GraphQLError>(max);
  const byRules = new Map<string, WeakMap<object, WeakMap<DocumentNode, readonly Error[]>>>();
  return {
    onParse({ params, setParsedDocument }) {
      const text = params.source.toString();
      const document = documents.get(text);
      if (document) {
        setParsedDocument(document);
        return;
      }
      const error = parseErrors.get(text);
      if (error) throw error;
      return ({ result }) => {
        if (result == null) return;
        if (result instanceof Error) parseErrors.set(text, result as GraphQLError);
        else documents.set(text, result);
      };
    },
    onValidate({ params: { schema, documentAST, rules }, setResult }) {
      if (schema == null) return;
      // The rule set differs per request only through plugins that add rules; few distinct sets.
      const rulesKey =
        (rules as readonly { name: string }[] | undefined)?.map((rule) => rule.name).join(',') ?? '';
      let bySchema = byRules.get(rulesKey);
      if (!bySchema) byRules.set(rulesKey, (bySchema = new WeakMap()));
      let byDocument = bySchema.get(schema);
      if (!byDocument) bySchema.set(schema, (byDocument = new WeakMap()));
      const cached = byDocument.get(documentAST);
      if (cached) {
        setResult(cached);
        return;
      }
      return ({ result }) => {
        if (result != null) byDocument.set(documentAST, result);
      };
    },
  };
}

/**
 * A least-recently-used map by insertion order. Hand-written: yoga's `createLRUCache` is deprecated
 * and its replacement internal, and lru-cache is not a dependency of the gateway; without TTLs a Map
 * does the whole job.
 */
function lru<V>(max: number): { get(key: string): V | undefined; set(key: string, value: V): void } {
  const map = new Map<string, V>();
  return {
    get(key) {
      const value = map.get(key);
      if (value !== undefined) {
        map.delete(key);
        map.set(key, value);
      }
      return value;
    },
    set(key, value) {
      map.delete(key);
      map.set(key, value);
      if (map.size > max) map.delete(map.keys().next().value as string);
    },
  };
}
