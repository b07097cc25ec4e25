import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';

/**
 * A request yoga cannot read is the client's fault: answers HTTP 400 instead of 500.
 *
 * Hand-written: yoga's GET and form parsers `JSON.parse` the `variables` and `extensions` parameters
 * and let a `SyntaxError` escape, and a malformed multipart body makes `formData()` throw; the
 * gateway's error masking then turns those into `INTERNAL_SERVER_ERROR` (HTTP 500). This wraps the
 * request parser yoga chose so any such failure becomes a `BAD_REQUEST` GraphQL error.
 */
export function useUnreadableRequestAs400(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (err) {
          // yoga's own parse errors are GraphQL errors with their status already.
          if (err instanceof Error && err.name === 'GraphQLError') throw err;
          throw createGraphQLError(
            `The request could not be read: ${err instanceof Error ? err.message : String(err)}`,
            { extensions: requestErrorExtensions('BAD_REQUEST') },
          );
        }
      });
    },
  };
}
