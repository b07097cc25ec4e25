import {
  usePersistedOperations,
  type UsePersistedOperationsOptions,
} from '@graphql-yoga/plugin-persisted-operations';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';
import type { PersistedManifest, PersistedOperationsMode } from './security-options.js';

/**
 * The hash a client sends for a persisted operation: Apollo's APQ extension
 * (`extensions.persistedQuery.sha256Hash`, also what the graphql-codegen client preset sends) or the
 * GraphQL-over-HTTP persisted documents `documentId` (`"sha256:<hex>"` or the bare hex).
 */
export function extractPersistedOperationId(params: GraphQLParams): string | null {
  const pq: unknown = (params.extensions as Record<string, unknown> | undefined)?.persistedQuery;
  if (typeof pq === 'object' && pq !== null) {
    const hash = (pq as Record<string, unknown>).sha256Hash;
    if (typeof hash === 'string') return hash;
  }
  const documentId = (params as Record<string, unknown>).documentId;
  if (typeof documentId === 'string') return documentId.replace(/^sha256:/, '');
  return null;
}

/**
 * Persisted operations from a manifest, through `@graphql-yoga/plugin-persisted-operations`.
 * `enforce` runs only the manifest's documents; `allow` also runs documents sent in full.
 * Unknown hashes answer `PERSISTED_QUERY_NOT_FOUND`: the code APQ clients (Apollo's link) react to.
 */
export function usePersistedManifest(
  mode: Exclude<PersistedOperationsMode, 'off'>,
  manifest: PersistedManifest,
): Plugin {
  const options: UsePersistedOperationsOptions<Record<never, never>> = {
    allowArbitraryOperations: mode === 'allow',
    getPersistedOperation: (hash) => manifest.get(hash) ?? null,
    extractPersistedOperationId,
    customErrors: {
      notFound: {
        message:
          mode === 'enforce'
            ? 'PersistedQueryNotFound: this gateway runs only the operations of its persisted-operations manifest, and none has this sha256.'
            : 'PersistedQueryNotFound: no persisted operation has this sha256; send the document itself.',
        extensions: requestErrorExtensions('PERSISTED_QUERY_NOT_FOUND'),
      },
      persistedQueryOnly: {
        message:
          'This gateway runs only persisted operations: send the sha256 of a document of its manifest (extensions.persistedQuery.sha256Hash or documentId) instead of a query text.',
        extensions: requestErrorExtensions('BAD_USER_INPUT'),
      },
      keyNotFound: {
        message:
          'No operation in the request: send a query, or the sha256 of a persisted one (extensions.persistedQuery.sha256Hash or documentId).',
        extensions: requestErrorExtensions('BAD_USER_INPUT'),
      },
    },
  };
  return usePersistedOperations<Record<never, never>>(options);
}
