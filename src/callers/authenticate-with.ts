import type { Authenticate } from './caller.js';
import { isMiss, readCredentials, unauthenticated, type CredentialMethod } from './credentials.js';

/**
 * An `Authenticate` that tries the methods in order (API key, then JWT, then pass-through is the order
 * `callerAuthentication` in src/gateway-from-config.ts uses) and answers the first caller found. A method that recognises its credential and
 * finds it invalid ends the search with a 401; when none recognises anything, the 401 says what was
 * wrong with what was sent, or what to send.
 */
export function authenticateWith(methods: readonly CredentialMethod[]): Authenticate {
  if (methods.length === 0) throw new Error('authenticateWith: expected at least one method');
  const accepts = methods.map((m) => m.accepts).join(', or ');
  return async (request) => {
    const credentials = readCredentials(request);
    const reasons: string[] = [];
    for (const method of methods) {
      const result = await method.identify(credentials);
      if (isMiss(result)) reasons.push(result.reason);
      else if (result !== undefined) return result;
    }
    if (reasons.length > 0) throw unauthenticated(`Not authenticated: ${reasons.join(', and ')}.`);
    if (Object.keys(credentials).length > 0) {
      throw unauthenticated(
        `Not authenticated: the credentials sent are not accepted here; send ${accepts}.`,
      );
    }
    throw unauthenticated(`Authentication required: send ${accepts}.`);
  };
}
