import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { requestErrorExtensions } from '../graphql/errors.js';

/**
 * yoga's CSRF prevention (a GET or a form-encoded POST must carry one of `headers`, which a
 * cross-site page cannot send without a CORS preflight), with a refusal a client can act on: the
 * code `FORBIDDEN` (yoga's has none) and a message naming the headers that would pass (yoga's names
 * none). The check itself stays yoga's.
 */
export function useCsrfPrevention(headers: readonly string[]): Plugin {
  const yogas = useCSRFPrevention({ requestHeaders: [...headers] });
  return {
    onRequestParse(payload) {
      try {
        return yogas.onRequestParse?.(payload);
      } catch {
        throw createGraphQLError(
          `Required CSRF header not present: a GET or a form-encoded POST must carry one of ${headers.join(', ')} (any value).`,
          { extensions: requestErrorExtensions('FORBIDDEN', { csrfHeaders: [...headers] }) },
        );
      }
    },
  };
}
