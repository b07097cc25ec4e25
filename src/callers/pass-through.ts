import { createHash } from 'node:crypto';
import { ALL_RIGHTS, type Caller } from './caller.js';
import { unauthenticated, type CredentialMethod } from './credentials.js';

/** Options of `passThroughAuth`. */
export interface PassThroughAuthOptions {
  /**
   * Also take the token from `Authorization: Bearer`. Only when pass-through is the sole method: with
   * API keys or JWTs enabled, a bearer token that is neither would otherwise be sent on to Atlas, and
   * a mistyped gateway credential must not leave for a third party.
   * @default false
   */
  acceptBearer?: boolean;
}

/** RFC 6750 b64token, bounded: the value goes into an upstream header. */
const TOKEN = /^[A-Za-z0-9\-._~+/]{1,8192}=*$/;

/**
 * `passthrough:` and the token's whole SHA-256 (64 hex): stable per token, and reveals nothing. Whole,
 * because the id keys rate limits, idempotency keys and pollers: a shortened hash (48 bits) lets
 * tokens be found, or made, that share a caller's id.
 */
export function passThroughCallerId(token: string): string {
  return `passthrough:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** The caller of a pass-through token: every project and right, since Atlas itself decides. */
export function passThroughCaller(token: string): Caller {
  return {
    id: passThroughCallerId(token),
    kind: 'passThrough',
    projects: 'all',
    rights: ALL_RIGHTS,
    atlasBearerToken: token,
  };
}

/**
 * The caller's own Atlas service-account token in `x-atlas-access-token` (or `Authorization: Bearer`
 * with `acceptBearer`). The gateway does not check it: it sends it upstream instead of its own
 * credentials, and Atlas's 401 or 403 reaches the client.
 */
export function passThroughAuth(options: PassThroughAuthOptions = {}): CredentialMethod {
  const acceptBearer = options.acceptBearer ?? false;
  return {
    mode: 'passthrough',
    accepts: acceptBearer
      ? 'an Atlas access token (x-atlas-access-token, or Authorization: Bearer)'
      : 'an Atlas access token (x-atlas-access-token)',
    async identify({ atlasToken, bearer }) {
      const token = atlasToken ?? (acceptBearer ? bearer : undefined);
      if (token === undefined) return undefined;
      if (!TOKEN.test(token)) {
        throw unauthenticated(
          `The Atlas access token (${atlasToken !== undefined ? 'x-atlas-access-token' : 'Authorization: Bearer'}) is not a bearer token (RFC 6750 characters, at most 8192).`,
        );
      }
      return passThroughCaller(token);
    },
  };
}
