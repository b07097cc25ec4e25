import type { Caller } from './caller.js';
import { GatewayError } from '../errors/index.js';

/** The `GATEWAY_AUTH` names of the ways a caller can prove who it is. */
export type AuthMode = 'apikey' | 'jwt' | 'passthrough';

/** What one request presents, read once from its headers. Values are secrets: never log them. */
export interface Credentials {
  /** `x-api-key: <key>` */
  apiKey?: string;
  /** `Authorization: Bearer <token>` (an API key, a JWT or an Atlas access token). */
  bearer?: string;
  /** `x-atlas-access-token: <token>`: the caller's own Atlas service-account token. */
  atlasToken?: string;
}

/** Why a method passed on credentials it saw, for the message of the final 401. */
export interface Miss {
  reason: string;
}

/** One way of authenticating (API key, JWT, pass-through); `authenticateWith` tries them in order. */
export interface CredentialMethod {
  readonly mode: AuthMode;
  /** What a caller should send for this method, e.g. `an API key (x-api-key or Authorization: Bearer)`. */
  readonly accepts: string;
  /**
   * The caller, when the credentials are this method's and valid. A `Miss` or `undefined` when they are
   * not this method's to judge (the next method tries). Throws UNAUTHENTICATED when they are this
   * method's and invalid: an invalid credential must never fall through to a later method (a mistyped
   * API key would otherwise be forwarded to Atlas as a pass-through token).
   */
  identify(credentials: Credentials): Promise<Caller | Miss | undefined>;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

const header = (request: Request, name: string): string | undefined => {
  const v = request.headers.get(name)?.trim();
  return v ? v : undefined;
};

/** Reads the credential headers of a request. An empty header counts as absent. */
export function readCredentials(request: Request): Credentials {
  const bearer = BEARER.exec(request.headers.get('authorization') ?? '')?.[1];
  const apiKey = header(request, 'x-api-key');
  const atlasToken = header(request, 'x-atlas-access-token');
  return {
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(bearer !== undefined ? { bearer } : {}),
    ...(atlasToken !== undefined ? { atlasToken } : {}),
  };
}

/** A 401 for the client. Messages name the check that failed, never a credential's value. */
export function unauthenticated(message: string): GatewayError {
  return new GatewayError('UNAUTHENTICATED', message);
}

export const isMiss = (r: Caller | Miss | undefined): r is Miss => r !== undefined && 'reason' in r;
