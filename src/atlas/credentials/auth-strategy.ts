import type { IncomingHttpHeaders } from 'node:http';

/** What an auth scheme sees of one request. */
export interface AuthRequest {
  operation: string;
  method: string;
  /** The request-target exactly as sent (path + query): Digest's `uri`. */
  target: string;
  body: Buffer | undefined;
  signal: AbortSignal | undefined;
}

/** The status and headers of the response to one send. */
export interface AuthOutcome {
  status: number;
  headers: IncomingHttpHeaders;
}

/** The credentials of one send of a request. */
export interface AuthAttempt {
  /** The `Authorization` value, or undefined to send without one (Digest's challenge request). */
  readonly authorization: string | undefined;
  /**
   * Called exactly once per attempt, with the response or undefined after a network error. Returns
   * the attempt to send the request again with (a 401 the scheme can fix: new token, new nonce), or
   * undefined. The request core allows one resend per request, which `mayResend` tells.
   */
  settle(outcome: AuthOutcome | undefined, mayResend: boolean): Promise<AuthAttempt | undefined>;
}

/** An authentication scheme shared by all requests of one client. */
export interface AuthStrategy {
  readonly scheme: 'oauth' | 'digest' | 'bearer' | 'none';
  begin(req: AuthRequest): Promise<AuthAttempt>;
  /** Releases what the scheme holds upstream (OAuth revokes its token). */
  close(): Promise<void>;
}

const noResend = (): Promise<undefined> => Promise.resolve(undefined);

/** No credentials, e.g. for a simulator run without auth. */
export const noAuth: AuthStrategy = {
  scheme: 'none',
  begin: () => Promise.resolve({ authorization: undefined, settle: noResend }),
  close: () => Promise.resolve(),
};

/**
 * A caller's own bearer token, passed through as is. A 401 is the caller's to handle: we hold no
 * secret to refresh it with.
 */
export function bearerAuth(token: string): AuthStrategy {
  const attempt: AuthAttempt = { authorization: `Bearer ${token}`, settle: noResend };
  return { scheme: 'bearer', begin: () => Promise.resolve(attempt), close: () => Promise.resolve() };
}
