import { createHash, randomBytes } from 'node:crypto';

/*
 * HTTP Digest (RFC 7616) by hand. The npm helpers either wrap axios/node-fetch/fetch and own the
 * request (digest-fetch, axios-digest-auth, urllib), so they cannot ride on our undici dispatcher,
 * or only build an MD5 header with a fixed nc=00000001 (digest-header), i.e. one challenge per
 * request. What we need is a pure header function (this file) plus nonce reuse with a counter and a
 * single-flight challenge (digest-auth.ts); the hashing is node:crypto.
 */

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';
export type DigestQop = 'auth' | 'auth-int';

/** The chosen `WWW-Authenticate: Digest …` challenge. */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  algorithm: DigestAlgorithm;
  /** undefined = the server offered no qop (RFC 2069 style). */
  qop: DigestQop | undefined;
  stale: boolean;
}

interface RawChallenge {
  scheme: string;
  params: Map<string, string>;
}

const ALGORITHMS: Record<string, DigestAlgorithm> = {
  md5: 'MD5',
  'md5-sess': 'MD5-sess',
  'sha-256': 'SHA-256',
  'sha-256-sess': 'SHA-256-sess',
};

/** Higher wins when a server offers several Digest challenges. */
const STRENGTH: Record<DigestAlgorithm, number> = { 'SHA-256': 4, 'SHA-256-sess': 3, MD5: 2, 'MD5-sess': 1 };

/**
 * Picks the strongest supported Digest challenge out of one or more `WWW-Authenticate` values (a
 * value may hold several comma-separated challenges). undefined when there is none we can answer.
 */
export function parseDigestChallenge(header: string | string[] | undefined): DigestChallenge | undefined {
  if (header === undefined) return undefined;
  const values = Array.isArray(header) ? header : [header];
  let best: DigestChallenge | undefined;
  for (const raw of values.flatMap(parseChallenges)) {
    if (raw.scheme.toLowerCase() !== 'digest') continue;
    const c = toDigestChallenge(raw.params);
    if (c && (!best || STRENGTH[c.algorithm] > STRENGTH[best.algorithm])) best = c;
  }
  return best;
}

function toDigestChallenge(p: Map<string, string>): DigestChallenge | undefined {
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  if (realm === undefined || !nonce) return undefined;
  const algorithm = ALGORITHMS[(p.get('algorithm') ?? 'MD5').toLowerCase()];
  if (!algorithm) return undefined;
  let qop: DigestQop | undefined;
  const offered = p.get('qop');
  if (offered !== undefined) {
    const list = offered.split(',').map((q) => q.trim().toLowerCase());
    if (list.includes('auth')) qop = 'auth';
    else if (list.includes('auth-int')) qop = 'auth-int';
    else return undefined;
  }
  return {
    realm,
    nonce,
    opaque: p.get('opaque'),
    algorithm,
    qop,
    stale: (p.get('stale') ?? '').toLowerCase() === 'true',
  };
}

/** Splits `Scheme a=1, b="x, y", Other c=2` into challenges with lower-cased parameter names. */
function parseChallenges(value: string): RawChallenge[] {
  const out: RawChallenge[] = [];
  let current: RawChallenge | undefined;
  let i = 0;
  const skipWs = (): void => {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < value.length && !/[\s,="]/.test(value[i] ?? '')) i++;
    return value.slice(start, i);
  };
  const readQuoted = (): string => {
    let s = '';
    i++; // opening quote
    while (i < value.length && value[i] !== '"') {
      if (value[i] === '\\') i++;
      s += value[i] ?? '';
      i++;
    }
    i++; // closing quote
    return s;
  };
  while (i < value.length) {
    skipWs();
    if (value[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (!token) {
      i++;
      continue;
    }
    skipWs();
    if (value[i] === '=') {
      i++;
      skipWs();
      const v = value[i] === '"' ? readQuoted() : readToken();
      current?.params.set(token.toLowerCase(), v);
    } else {
      current = { scheme: token, params: new Map() };
      out.push(current);
    }
  }
  return out;
}

export interface DigestAuthorizationInput {
  challenge: DigestChallenge;
  username: string;
  password: string;
  method: string;
  /** The request-target exactly as sent: path + query. */
  uri: string;
  /** Nonce count, 1 for the first use of a nonce. */
  nc: number;
  /** @default 16 random hex characters */
  cnonce?: string;
  /** Only hashed for qop=auth-int. */
  body?: Uint8Array | undefined;
}

/** The `Authorization: Digest …` value for one request. */
export function digestAuthorization(input: DigestAuthorizationInput): string {
  const { challenge: c, username, password, method, uri } = input;
  const hashName = c.algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const h = (s: string | Uint8Array): string => createHash(hashName).update(s).digest('hex');
  const cnonce = input.cnonce ?? randomBytes(8).toString('hex');
  const nc = input.nc.toString(16).padStart(8, '0');

  let ha1 = h(`${username}:${c.realm}:${password}`);
  if (c.algorithm.endsWith('-sess')) ha1 = h(`${ha1}:${c.nonce}:${cnonce}`);
  const ha2 =
    c.qop === 'auth-int' ? h(`${method}:${uri}:${h(input.body ?? new Uint8Array())}`) : h(`${method}:${uri}`);
  const response = c.qop
    ? h(`${ha1}:${c.nonce}:${nc}:${cnonce}:${c.qop}:${ha2}`)
    : h(`${ha1}:${c.nonce}:${ha2}`);

  const parts = [
    `username=${quote(username)}`,
    `realm=${quote(c.realm)}`,
    `nonce=${quote(c.nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${c.algorithm}`,
    `response=${quote(response)}`,
  ];
  if (c.opaque !== undefined) parts.push(`opaque=${quote(c.opaque)}`);
  if (c.qop) parts.push(`qop=${c.qop}`, `nc=${nc}`, `cnonce=${quote(cnonce)}`);
  return `Digest ${parts.join(', ')}`;
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}
