import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../time/clock.js';

/** `DigestOptions.ncWindow`'s default. */
const NC_WINDOW = 64;

export type DigestAlgorithm = 'MD5' | 'SHA-256';

/** Atlas's Digest realm, as its 401 challenges show it. */
export const DIGEST_REALM = 'MMS Public API';

export interface DigestOptions {
  clock: Clock;
  /** The password (private key) of a username (public key), or undefined for an unknown user. */
  passwordOf: (username: string) => string | undefined;
  /**
   * Algorithm named in challenges. A response computed with the other one over the same nonce is
   * accepted too, since Atlas's clients support both.
   * @default 'MD5'
   */
  algorithm?: DigestAlgorithm;
  /**
   * How long a nonce may be used. Atlas: "you can't cache a nonce and use it forever".
   * @default 30_000
   */
  nonceTtlMs?: number;
  /**
   * Most live nonces tracked at once; the oldest is dropped first. Every unauthenticated request
   * (Go clients send one per call) mints a nonce, so this bounds memory.
   * @default 10_000
   */
  maxNonces?: number;
  /**
   * How far behind the highest `nc` of a nonce a count not seen yet is still accepted (requests of one
   * nonce sent concurrently arrive out of order); 0: counts must strictly increase, as a strict server
   * would insist (tests of the client's refusal handling use it).
   * @default 64
   */
  ncWindow?: number;
}

export type DigestResult = { ok: true; username: string } | { ok: false; stale: boolean };

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const OWS = new Set([' ', '\t']);

/**
 * Parses the auth-param list after `Digest ` (RFC 7235 §2.1, RFC 7616 §3.4): `name=token` or
 * `name="quoted \"string\""`, comma-separated, empty list elements allowed. Names are lower-cased.
 * Returns null on a syntax error or a repeated parameter.
 *
 * Hand-written because node has no well-kept server-side Digest library (the npm packages are
 * clients or unmaintained Express middleware) and the grammar is small. Unquoted values are read
 * leniently up to whitespace or a comma, so a client that leaves `uri` unquoted still parses.
 */
export function parseAuthParams(input: string): Map<string, string> | null {
  const params = new Map<string, string>();
  const n = input.length;
  let i = 0;
  const skipOws = (): void => {
    while (i < n && OWS.has(input[i]!)) i++;
  };
  for (;;) {
    skipOws();
    while (i < n && input[i] === ',') {
      i++;
      skipOws();
    }
    if (i >= n) return params;
    const nameStart = i;
    while (i < n && TCHAR.test(input[i]!)) i++;
    if (i === nameStart) return null;
    const name = input.slice(nameStart, i).toLowerCase();
    skipOws();
    if (input[i] !== '=') return null;
    i++;
    skipOws();
    let value = '';
    if (input[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null;
        const c = input[i]!;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          if (i + 1 >= n) return null;
          value += input[i + 1];
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      const start = i;
      while (i < n && !OWS.has(input[i]!) && input[i] !== ',' && input[i] !== '"') i++;
      if (i === start) return null;
      value = input.slice(start, i);
    }
    if (params.has(name)) return null;
    params.set(name, value);
    skipOws();
    if (i < n && input[i] !== ',') return null;
  }
}

function hasher(algorithm: DigestAlgorithm): (s: string) => string {
  const name = algorithm === 'MD5' ? 'md5' : 'sha256';
  return (s) => createHash(name).update(s, 'utf8').digest('hex');
}

function parseAlgorithm(value: string): DigestAlgorithm | undefined {
  // `-sess` variants are refused: Atlas's Go client (mongodb-forks/digest) never sends them.
  const upper = value.toUpperCase();
  return upper === 'MD5' || upper === 'SHA-256' ? upper : undefined;
}

const NONCE_BODY = 24; // 8 bytes issued-at (float64 ms) + 16 random bytes
const NONCE_MAC = 16;

/**
 * Digest (RFC 7616) server side, qop `auth` only. Nonces carry their issue time under an HMAC, so a
 * nonce that expired (or was evicted by the cap) is still recognised as ours and gets `stale=true`,
 * which tells the client to re-hash with the new nonce instead of asking the user for a password.
 */
export class DigestServer {
  readonly #clock: Clock;
  readonly #passwordOf: (username: string) => string | undefined;
  readonly #algorithm: DigestAlgorithm;
  readonly #ttlMs: number;
  readonly #maxNonces: number;
  readonly #ncWindow: number;
  readonly #secret = randomBytes(32);
  /** Live nonces in issue order, with the highest nc accepted so far and the counts seen below it. */
  readonly #live = new Map<string, { expiresAt: number; lastNc: number; seen: Set<number> }>();

  constructor(opts: DigestOptions) {
    this.#clock = opts.clock;
    this.#passwordOf = opts.passwordOf;
    this.#algorithm = opts.algorithm ?? 'MD5';
    this.#ttlMs = opts.nonceTtlMs ?? 30_000;
    this.#maxNonces = Math.max(1, opts.maxNonces ?? 10_000);
    this.#ncWindow = Math.max(0, opts.ncWindow ?? NC_WINDOW);
  }

  /** Mints a nonce and returns the `WWW-Authenticate` value, laid out as Atlas's. */
  challenge(stale = false): string {
    const now = this.#clock.now();
    this.#prune(now);
    while (this.#live.size >= this.#maxNonces) {
      const oldest = this.#live.keys().next();
      if (oldest.done) break;
      this.#live.delete(oldest.value);
    }
    const nonce = this.#mint(now);
    this.#live.set(nonce, { expiresAt: now + this.#ttlMs, lastNc: 0, seen: new Set() });
    return `Digest realm="${DIGEST_REALM}", domain="", nonce="${nonce}", algorithm=${this.#algorithm}, qop="auth", stale=${stale}`;
  }

  /** Number of nonces currently tracked (expired ones are dropped lazily). */
  get liveNonces(): number {
    return this.#live.size;
  }

  /**
   * Checks parsed Digest credentials against the request line. `stale` is true only when the
   * response was right but the nonce is no longer usable (RFC 7616 §3.3).
   */
  verify(params: ReadonlyMap<string, string>, method: string, target: string): DigestResult {
    const fail = { ok: false, stale: false } as const;
    const username = params.get('username');
    const nonce = params.get('nonce');
    const uri = params.get('uri');
    const response = params.get('response');
    const qop = params.get('qop');
    const nc = params.get('nc');
    const cnonce = params.get('cnonce');
    const algorithm = parseAlgorithm(params.get('algorithm') ?? 'MD5');
    if (!username || !nonce || uri === undefined || !response || !algorithm) return fail;
    if (params.get('realm') !== DIGEST_REALM) return fail;
    // The challenge always offers qop="auth", so RFC 7616 clients must echo it; without qop there is
    // no nc and no replay protection.
    if (qop !== 'auth' || !cnonce || !nc || !/^[0-9a-fA-F]{8}$/.test(nc)) return fail;
    if (params.has('userhash') && params.get('userhash') !== 'false') return fail;
    if (uri !== target) return fail;
    const password = this.#passwordOf(username);
    if (password === undefined) return fail;

    const h = hasher(algorithm);
    const ha1 = h(`${username}:${DIGEST_REALM}:${password}`);
    const ha2 = h(`${method}:${uri}`);
    const expected = Buffer.from(h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`));
    const got = Buffer.from(response.toLowerCase());
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return fail;

    const issuedAt = this.#issuedAt(nonce);
    if (issuedAt === undefined) return fail;
    const now = this.#clock.now();
    if (now >= issuedAt + this.#ttlMs) {
      this.#live.delete(nonce);
      return { ok: false, stale: true };
    }
    const state = this.#live.get(nonce);
    // Ours and unexpired but evicted by the cap: let the client re-hash with a new nonce.
    if (!state) return { ok: false, stale: true };
    // A replay is a count already used with this nonce. Counts may arrive out of order: a client that
    // shares one nonce across concurrent requests (RFC 7616 §3.4: nc counts the requests made with it)
    // numbers them when it sends them, and two connections deliver them in either order. So a lower
    // count is accepted once, within a window behind the highest, as servers that track a window of
    // counts do (a strictly increasing check refused such requests under load; issue #21's chaos run).
    const count = Number.parseInt(nc, 16);
    if (count <= state.lastNc - this.#ncWindow || count === state.lastNc || state.seen.has(count))
      return fail;
    if (count > state.lastNc) {
      if (state.lastNc > 0) state.seen.add(state.lastNc);
      state.lastNc = count;
    } else {
      state.seen.add(count);
    }
    for (const old of state.seen) if (old <= state.lastNc - this.#ncWindow) state.seen.delete(old);
    return { ok: true, username };
  }

  #prune(now: number): void {
    for (const [nonce, state] of this.#live) {
      if (state.expiresAt > now) break;
      this.#live.delete(nonce);
    }
  }

  #mac(body: Buffer): Buffer {
    return createHmac('sha256', this.#secret).update(body).digest().subarray(0, NONCE_MAC);
  }

  #mint(now: number): string {
    const body = Buffer.alloc(NONCE_BODY);
    body.writeDoubleBE(now, 0);
    randomBytes(NONCE_BODY - 8).copy(body, 8);
    return Buffer.concat([body, this.#mac(body)]).toString('base64url');
  }

  #issuedAt(nonce: string): number | undefined {
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BODY + NONCE_MAC || raw.toString('base64url') !== nonce) return undefined;
    const body = raw.subarray(0, NONCE_BODY);
    if (!timingSafeEqual(raw.subarray(NONCE_BODY), this.#mac(body))) return undefined;
    return body.readDoubleBE(0);
  }
}
