import { abortable } from '../abortable.js';
import type { AtlasStats } from '../atlas-stats.js';
import type { Clock } from '../../time/clock.js';
import { AtlasAuthError, AtlasConfigError } from '../errors.js';
import { parseRetryAfter } from '../retry.js';
import type { WireResponse } from '../transport.js';
import type { AuthAttempt, AuthRequest, AuthStrategy } from './auth-strategy.js';

/** Service account (OAuth 2.0 client credentials) settings. */
export interface OAuthOptions {
  clientId: string;
  clientSecret: string;
  /**
   * Fetch a new token this long before the current one expires, so no call goes out with a token
   * about to die (Terraform renews with 10 min left). Capped at half the token's lifetime.
   * @default 600000
   */
  refreshMarginMs?: number;
}

/** POSTs a form to the OAuth endpoints (with retries when `retryable`). */
export type OAuthFormPost = (req: {
  operation: 'oauthToken' | 'oauthRevoke';
  path: string;
  form: URLSearchParams;
  authorization: string;
  retryable: boolean;
}) => Promise<WireResponse>;

interface Token {
  value: string;
  expiresAt: number;
  refreshAt: number;
  /** Sends in flight with this token: a replaced token is revoked only once they are back. */
  leases: number;
  retired: boolean;
  /** Atlas said 401 for it: dead already, nothing to revoke. */
  rejected: boolean;
}

const TOKEN_PATH = '/api/oauth/token';
const REVOKE_PATH = '/api/oauth/revoke';
/** "reusable and valid for 1 hour" (Atlas docs), when a response leaves out `expires_in`. */
const DEFAULT_LIFETIME_S = 3600;

/**
 * One cached token per client: fetched on first use with single flight (any number of concurrent
 * first calls → one token request), renewed ahead of expiry, fetched again once after a 401, and
 * revoked when replaced and on close, so a steady process holds one live token (Atlas allows 100 per
 * service account).
 */
export class OAuthAuth implements AuthStrategy {
  readonly scheme = 'oauth';
  readonly #opts: Required<OAuthOptions>;
  readonly #basic: string;
  readonly #post: OAuthFormPost;
  readonly #clock: Clock;
  readonly #stats: AtlasStats;
  readonly #pathPrefix: string;
  #token: Token | undefined;
  #inflight: Promise<Token> | undefined;
  readonly #revocations = new Set<Promise<void>>();
  #closed = false;

  constructor(
    opts: OAuthOptions,
    deps: { post: OAuthFormPost; clock: Clock; stats: AtlasStats; pathPrefix?: string },
  ) {
    this.#opts = { refreshMarginMs: 600_000, ...opts };
    this.#basic = `Basic ${Buffer.from(`${opts.clientId}:${opts.clientSecret}`).toString('base64')}`;
    this.#post = deps.post;
    this.#clock = deps.clock;
    this.#stats = deps.stats;
    this.#pathPrefix = deps.pathPrefix ?? '';
  }

  async begin(req: AuthRequest): Promise<AuthAttempt> {
    return this.#attempt(req, await abortable(this.#current(), req.signal));
  }

  #attempt(req: AuthRequest, token: Token): AuthAttempt {
    token.leases++;
    let settled = false;
    return {
      authorization: `Bearer ${token.value}`,
      settle: async (outcome, mayResend) => {
        if (settled) return undefined;
        settled = true;
        token.leases--;
        if (outcome?.status === 401) {
          token.rejected = true;
          if (this.#token === token) this.#token = undefined;
        }
        this.#revokeIfIdle(token);
        if (outcome?.status !== 401 || !mayResend || this.#closed) return undefined;
        // Expired or revoked upstream: one new token (shared with concurrent 401s), one resend.
        return this.#attempt(req, await abortable(this.#current(), req.signal));
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inflight?.catch(() => undefined);
    const token = this.#token;
    this.#token = undefined;
    if (token) {
      token.retired = true;
      this.#revokeIfIdle(token, true);
    }
    await Promise.all([...this.#revocations]);
  }

  #current(): Promise<Token> {
    if (this.#closed) return Promise.reject(new AtlasConfigError('client is closed', 'oauthToken'));
    const t = this.#token;
    if (t && this.#clock.now() < t.refreshAt) return Promise.resolve(t);
    // No caller's signal reaches the shared fetch: one caller giving up must not fail the others.
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetch(): Promise<Token> {
    const res = await this.#post({
      operation: 'oauthToken',
      path: this.#pathPrefix + TOKEN_PATH,
      form: new URLSearchParams({ grant_type: 'client_credentials' }),
      authorization: this.#basic,
      // A lost response leaves one unused token behind, which expires; better than failing the call.
      retryable: true,
    });
    const body = parseJson(res.body);
    const access = typeof body?.access_token === 'string' ? body.access_token : '';
    if (!access) {
      throw new AtlasAuthError('token response has no access_token', {
        operation: 'oauthToken',
        status: res.status,
      });
    }
    const lifetimeMs =
      (typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_LIFETIME_S) *
      1000;
    const now = this.#clock.now();
    const token: Token = {
      value: access,
      expiresAt: now + lifetimeMs,
      refreshAt: now + lifetimeMs - Math.min(this.#opts.refreshMarginMs, lifetimeMs / 2),
      leases: 0,
      retired: false,
      rejected: false,
    };
    this.#stats.tokenFetches++;
    const previous = this.#token;
    this.#token = token;
    if (previous) {
      previous.retired = true;
      this.#revokeIfIdle(previous);
    }
    if (this.#closed) {
      // close() raced with this fetch: do not leave the token alive.
      this.#token = undefined;
      token.retired = true;
      this.#revokeIfIdle(token);
    }
    return token;
  }

  #revokeIfIdle(token: Token, force = false): void {
    if (!token.retired || token.rejected || (token.leases > 0 && !force)) return;
    token.rejected = true; // revoke at most once
    const p = this.#revoke(token.value).finally(() => this.#revocations.delete(p));
    this.#revocations.add(p);
  }

  async #revoke(value: string): Promise<void> {
    try {
      const res = await this.#post({
        operation: 'oauthRevoke',
        path: this.#pathPrefix + REVOKE_PATH,
        form: new URLSearchParams({ token: value, token_type_hint: 'access_token' }),
        authorization: this.#basic,
        retryable: false,
      });
      if (res.status === 200) this.#stats.tokenRevocations++;
    } catch {
      // Best effort, as Terraform does: the token expires on its own within the hour. Never thrown:
      // this often runs in the background, where a rejection would be unhandled.
    }
  }
}

/** The token endpoint's error: OAuth's `{error, error_description}` or Atlas's `ApiError`. */
export function oauthError(res: WireResponse, operation: string, now: number): AtlasAuthError {
  const body = parseJson(res.body);
  const authError = str(body?.error) ?? str(body?.errorCode);
  const description = str(body?.error_description) ?? str(body?.detail);
  return new AtlasAuthError(
    `HTTP ${res.status}${authError ? ` ${authError}` : ''}${description ? `: ${description}` : ''}`,
    {
      operation,
      status: res.status,
      authError,
      description,
      retryAfterMs: parseRetryAfter(res.headers['retry-after'], now),
      requestId: str(res.headers['x-request-id']),
    },
  );
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
