import type { Clock } from '../../time/clock.js';
import type { Principal, SimCredential, SimRequest, SimResponse } from '../http-types.js';
import { DigestServer, parseAuthParams } from './digest.js';
import type { DigestAlgorithm } from './digest.js';
import { OAuthServer } from './oauth.js';

/**
 * Demo credentials, documented so local runs and examples work out of the box. Not secrets; the
 * simulator's entry point may replace them from the environment.
 */
export const DEFAULT_SIM_CREDENTIALS: SimCredential[] = [
  {
    role: 'owner',
    clientId: 'mdb_sa_id_demo-owner',
    clientSecret: 'mdb_sa_sk_demo-owner-secret',
    publicKey: 'demoowner',
    privateKey: '11111111-2222-3333-4444-555555555555',
  },
  {
    role: 'readOnly',
    clientId: 'mdb_sa_id_demo-readonly',
    clientSecret: 'mdb_sa_sk_demo-readonly-secret',
    publicKey: 'demoreadonly',
    privateKey: '66666666-7777-8888-9999-000000000000',
  },
];

export interface SimAuthOptions {
  credentials: SimCredential[];
  clock: Clock;
  /**
   * How long a Digest nonce may be used.
   * @default 30_000
   */
  nonceTtlMs?: number;
  /** Digest: how far out of order a nonce's `nc` may arrive (`DigestOptions.ncWindow`). @default 64 */
  digestNcWindow?: number;
  /**
   * OAuth access token lifetime in seconds.
   * @default 3600
   */
  tokenTtlSec?: number;
  /**
   * Most live OAuth tokens per service account before the token endpoint answers 403.
   * @default 100
   */
  maxTokensPerClient?: number;
  /**
   * Algorithm named in Digest challenges; responses with MD5 or SHA-256 are accepted either way.
   * @default 'MD5'
   */
  digestAlgorithm?: DigestAlgorithm;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; response: SimResponse };

export interface SimAuthStats {
  tokensIssued: number;
  tokensRevoked: number;
  digestChallenges: number;
  liveTokens(clientId: string): number;
}

const SCHEME = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:[ \t]+([\s\S]*))?$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Atlas's two authentication methods: service account Bearer tokens and API key Digest. */
export class SimAuth {
  readonly #byPublicKey: Map<string, SimCredential>;
  readonly #digest: DigestServer;
  readonly #oauth: OAuthServer;
  #digestChallenges = 0;

  constructor(opts: SimAuthOptions) {
    this.#byPublicKey = new Map();
    const clientIds = new Set<string>();
    for (const c of opts.credentials) {
      if (this.#byPublicKey.has(c.publicKey))
        throw new Error(`Duplicate simulator public key ${c.publicKey}`);
      if (clientIds.has(c.clientId)) throw new Error(`Duplicate simulator client id ${c.clientId}`);
      this.#byPublicKey.set(c.publicKey, c);
      clientIds.add(c.clientId);
    }
    this.#digest = new DigestServer({
      clock: opts.clock,
      passwordOf: (username) => this.#byPublicKey.get(username)?.privateKey,
      ...(opts.digestAlgorithm !== undefined ? { algorithm: opts.digestAlgorithm } : {}),
      ...(opts.nonceTtlMs !== undefined ? { nonceTtlMs: opts.nonceTtlMs } : {}),
      ...(opts.digestNcWindow !== undefined ? { ncWindow: opts.digestNcWindow } : {}),
    });
    this.#oauth = new OAuthServer({
      clock: opts.clock,
      clients: opts.credentials,
      ...(opts.tokenTtlSec !== undefined ? { tokenTtlSec: opts.tokenTtlSec } : {}),
      ...(opts.maxTokensPerClient !== undefined ? { maxTokensPerClient: opts.maxTokensPerClient } : {}),
    });
  }

  /** `POST /api/oauth/token` (client credentials grant, Basic client auth). */
  handleToken(req: SimRequest): SimResponse {
    return this.#oauth.handleToken(req);
  }

  /** `POST /api/oauth/revoke`. */
  handleRevoke(req: SimRequest): SimResponse {
    return this.#oauth.handleRevoke(req);
  }

  /**
   * Authenticates an API request. `allowBearer` is false on the legacy v1.0 routes, which only
   * know Digest. Every failure carries a fresh Digest challenge, so a Digest client can start from
   * any 401, Bearer failures included.
   */
  authenticate(req: SimRequest, opts: { allowBearer: boolean }): AuthResult {
    const m = SCHEME.exec(req.headers.authorization ?? '');
    const scheme = m?.[1]?.toLowerCase();
    const rest = m?.[2]?.trim() ?? '';
    if (scheme === 'bearer' && opts.allowBearer && TOKEN68.test(rest)) {
      const cred = this.#oauth.validate(rest);
      if (cred) return { ok: true, principal: { scheme: 'oauth', id: cred.clientId, role: cred.role } };
    } else if (scheme === 'digest') {
      const params = parseAuthParams(rest);
      if (params) {
        const result = this.#digest.verify(params, req.method, req.target);
        if (result.ok) {
          const cred = this.#byPublicKey.get(result.username);
          if (cred) return { ok: true, principal: { scheme: 'digest', id: cred.publicKey, role: cred.role } };
        } else {
          return { ok: false, response: this.#unauthorized(result.stale) };
        }
      }
    }
    return { ok: false, response: this.#unauthorized(false) };
  }

  stats(): SimAuthStats {
    return {
      tokensIssued: this.#oauth.tokensIssued,
      tokensRevoked: this.#oauth.tokensRevoked,
      digestChallenges: this.#digestChallenges,
      liveTokens: (clientId) => this.#oauth.liveTokens(clientId),
    };
  }

  #unauthorized(stale: boolean): SimResponse {
    this.#digestChallenges++;
    return {
      status: 401,
      headers: { 'content-type': 'application/json', 'www-authenticate': this.#digest.challenge(stale) },
      // As Atlas answers (recorded by the CLI's e2e tests): UNEXPECTED_ERROR, indented, no `parameters`.
      body: {
        error: 401,
        errorCode: 'UNEXPECTED_ERROR',
        reason: 'Unauthorized',
        detail: 'You are not authorized for this resource.',
      },
      pretty: true,
    };
  }
}
