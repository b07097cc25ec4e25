import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../time/clock.js';
import type { SimCredential, SimRequest, SimResponse } from '../http-types.js';

export interface OAuthOptions {
  clock: Clock;
  clients: readonly SimCredential[];
  /**
   * Lifetime of an access token in seconds. Atlas: "reusable and valid for 1 hour".
   * @default 3600
   */
  tokenTtlSec?: number;
  /**
   * Most live (unexpired, unrevoked) tokens per service account; Atlas caps it at 100.
   * @default 100
   */
  maxTokensPerClient?: number;
}

interface TokenEntry {
  clientId: string;
  expiresAt: number;
}

const NO_STORE = {
  'content-type': 'application/json',
  // RFC 6749 §5.1: token responses must not be cached.
  'cache-control': 'no-store',
  pragma: 'no-cache',
};

function oauthError(
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {},
): SimResponse {
  return { status, headers: { ...NO_STORE, ...headers }, body: { error, error_description: description } };
}

const INVALID_CLIENT = (): SimResponse =>
  oauthError(401, 'invalid_client', 'Invalid client credentials.', {
    // RFC 6749 §5.2: a failed Authorization-header client auth answers with the scheme it used.
    'www-authenticate': 'Basic realm="MMS Public API"',
  });

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The form body, or undefined if the request is not `application/x-www-form-urlencoded`. */
function readForm(req: SimRequest): URLSearchParams | undefined {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  return new URLSearchParams(req.body.toString('utf8'));
}

/** The single value of a form parameter; RFC 6749 §3.2 forbids repeating one. */
function single(form: URLSearchParams, name: string): string | undefined {
  const all = form.getAll(name);
  return all.length === 1 ? all[0] : undefined;
}

/** OAuth 2.0 client credentials token and revocation endpoints, and Bearer validation. */
export class OAuthServer {
  readonly #clock: Clock;
  readonly #clients: Map<string, SimCredential>;
  readonly #ttlMs: number;
  readonly #ttlSec: number;
  readonly #maxPerClient: number;
  /** Keyed by SHA-256 of the token, so lookups leak nothing about the token through timing. */
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #byClient = new Map<string, Set<string>>();
  #issued = 0;
  #revoked = 0;

  constructor(opts: OAuthOptions) {
    this.#clock = opts.clock;
    this.#clients = new Map(opts.clients.map((c) => [c.clientId, c]));
    this.#ttlSec = opts.tokenTtlSec ?? 3600;
    this.#ttlMs = this.#ttlSec * 1000;
    this.#maxPerClient = opts.maxTokensPerClient ?? 100;
  }

  get tokensIssued(): number {
    return this.#issued;
  }

  get tokensRevoked(): number {
    return this.#revoked;
  }

  /** `POST /api/oauth/token`. */
  handleToken(req: SimRequest): SimResponse {
    const client = this.#authenticateClient(req);
    if (!client) return INVALID_CLIENT();
    const form = readForm(req);
    if (!form) {
      return oauthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded.');
    }
    const grantType = single(form, 'grant_type');
    if (grantType === undefined) {
      return oauthError(400, 'invalid_request', 'grant_type is required exactly once.');
    }
    if (grantType !== 'client_credentials') {
      return oauthError(400, 'unsupported_grant_type', `Grant type ${grantType} is not supported.`);
    }
    const now = this.#clock.now();
    const live = this.#liveSet(client.clientId, now);
    if (live.size >= this.#maxPerClient) {
      return oauthError(
        403,
        'access_denied',
        `Access Token limit reached. A service account may hold at most ${this.#maxPerClient} active tokens; reuse tokens until they expire or revoke unused ones.`,
      );
    }
    const token = randomBytes(32).toString('base64url');
    const key = sha256(token).toString('hex');
    this.#tokens.set(key, { clientId: client.clientId, expiresAt: now + this.#ttlMs });
    live.add(key);
    this.#issued++;
    return {
      status: 200,
      headers: { ...NO_STORE },
      body: { access_token: token, token_type: 'Bearer', expires_in: this.#ttlSec },
    };
  }

  /**
   * `POST /api/oauth/revoke`. Unknown, expired or foreign tokens answer 200 without effect
   * (RFC 7009 §2.2), so the endpoint does not reveal which tokens exist.
   */
  handleRevoke(req: SimRequest): SimResponse {
    const client = this.#authenticateClient(req);
    if (!client) return INVALID_CLIENT();
    const form = readForm(req);
    if (!form) {
      return oauthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded.');
    }
    const token = single(form, 'token');
    if (!token) return oauthError(400, 'invalid_request', 'token is required exactly once.');
    const key = sha256(token).toString('hex');
    const entry = this.#tokens.get(key);
    if (entry && entry.clientId === client.clientId) {
      if (entry.expiresAt > this.#clock.now()) this.#revoked++;
      this.#forget(key, entry);
    }
    return { status: 200, headers: { ...NO_STORE }, body: {} };
  }

  /** The credential owning a live Bearer token, or undefined if unknown, expired or revoked. */
  validate(token: string): SimCredential | undefined {
    const key = sha256(token).toString('hex');
    const entry = this.#tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#clock.now()) {
      this.#forget(key, entry);
      return undefined;
    }
    return this.#clients.get(entry.clientId);
  }

  liveTokens(clientId: string): number {
    return this.#byClient.has(clientId) ? this.#liveSet(clientId, this.#clock.now()).size : 0;
  }

  /** The client's token set with expired tokens dropped; bounded by maxTokensPerClient. */
  #liveSet(clientId: string, now: number): Set<string> {
    let set = this.#byClient.get(clientId);
    if (!set) {
      set = new Set();
      this.#byClient.set(clientId, set);
    }
    // Lazy expiry: at most maxTokensPerClient entries to scan, and only for a known client.
    for (const key of set) {
      const entry = this.#tokens.get(key);
      if (!entry || entry.expiresAt <= now) {
        set.delete(key);
        this.#tokens.delete(key);
      }
    }
    return set;
  }

  #forget(key: string, entry: TokenEntry): void {
    this.#tokens.delete(key);
    this.#byClient.get(entry.clientId)?.delete(key);
  }

  /**
   * RFC 6749 §2.3.1 says id and secret are form-encoded before Basic encoding, and Go's
   * x/oauth2 (used by the Atlas SDK) does so; most other clients send them raw. Accept either.
   */
  #authenticateClient(req: SimRequest): SimCredential | undefined {
    const m = /^Basic[ \t]+([A-Za-z0-9+/=._~-]+)[ \t]*$/i.exec(req.headers.authorization ?? '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const rawId = decoded.slice(0, colon);
    const rawSecret = decoded.slice(colon + 1);
    const candidates: [string | undefined, string | undefined][] = [
      [rawId, rawSecret],
      [formDecode(rawId), formDecode(rawSecret)],
    ];
    for (const [id, secret] of candidates) {
      if (id === undefined || secret === undefined) continue;
      const client = this.#clients.get(id);
      if (client && timingSafeEqual(sha256(secret), sha256(client.clientSecret))) return client;
    }
    return undefined;
  }
}
