import { createHash, randomBytes } from 'node:crypto';
import { request, type Agent } from 'undici';
import type { Simulator } from '../../src/simulator/index.js';
import type { SimCredential } from '../../src/simulator/http-types.js';

/** A raw HTTP answer, as the tests inspect it. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  bytes: Buffer;
  json: () => unknown;
}

export interface CallOptions {
  token?: string;
  authorization?: string;
  accept?: string;
  contentType?: string;
  body?: unknown;
  dispatcher?: Agent;
}

/** Raw calls to the simulator: tests of the simulator must not go through our own Atlas client. */
export async function call(
  sim: Simulator,
  method: string,
  target: string,
  o: CallOptions = {},
): Promise<RawAnswer> {
  const headers: Record<string, string> = {};
  if (o.accept !== undefined) headers.accept = o.accept;
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.authorization) headers.authorization = o.authorization;
  if (o.contentType) headers['content-type'] = o.contentType;
  const res = await request(`${sim.url}${target}`, {
    method: method as 'GET',
    headers,
    ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
  const text = bytes.toString('utf8');
  return { status: res.statusCode, headers: flat, text, bytes, json: () => JSON.parse(text) as unknown };
}

export async function fetchToken(sim: Simulator, cred: Pick<SimCredential, 'clientId' | 'clientSecret'>) {
  const res = await request(`${sim.url}/api/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${cred.clientId}:${cred.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: 'grant_type=client_credentials',
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** A tiny RFC 7616 client, written independently of src/atlas so it can check the simulator. */
export class TestDigest {
  nonce = '';
  nc = 0;
  algorithm = 'MD5';
  realm = '';
  constructor(
    readonly user: string,
    readonly password: string,
  ) {}

  absorb(challenge: string): { stale: boolean } {
    const get = (k: string) => new RegExp(`${k}="?([^",]*)"?`).exec(challenge)?.[1] ?? '';
    this.nonce = get('nonce');
    this.realm = get('realm');
    this.algorithm = get('algorithm') || 'MD5';
    this.nc = 0;
    return { stale: get('stale') === 'true' };
  }

  header(
    method: string,
    uri: string,
    opts: { nc?: number; algorithm?: string; password?: string } = {},
  ): string {
    const algorithm = opts.algorithm ?? this.algorithm;
    const h = (s: string) =>
      createHash(algorithm === 'SHA-256' ? 'sha256' : 'md5')
        .update(s)
        .digest('hex');
    this.nc = opts.nc ?? this.nc + 1;
    const nc = this.nc.toString(16).padStart(8, '0');
    const cnonce = randomBytes(8).toString('hex');
    const ha1 = h(`${this.user}:${this.realm}:${opts.password ?? this.password}`);
    const ha2 = h(`${method}:${uri}`);
    const response = h(`${ha1}:${this.nonce}:${nc}:${cnonce}:auth:${ha2}`);
    return `Digest username="${this.user}", realm="${this.realm}", nonce="${this.nonce}", uri="${uri}", algorithm=${algorithm}, qop=auth, nc=${nc}, cnonce="${cnonce}", response="${response}"`;
  }
}

/** Digest round trip the way a careful client does it: challenge once, then answer. */
export async function digestCall(
  sim: Simulator,
  digest: TestDigest,
  method: string,
  target: string,
  o: CallOptions = {},
): Promise<RawAnswer> {
  if (!digest.nonce) {
    const first = await call(sim, method, target, o);
    if (first.status !== 401) return first;
    digest.absorb(first.headers['www-authenticate'] ?? '');
  }
  const res = await call(sim, method, target, { ...o, authorization: digest.header(method, target) });
  if (res.status === 401 && digest.absorb(res.headers['www-authenticate'] ?? '').stale) {
    return call(sim, method, target, { ...o, authorization: digest.header(method, target) });
  }
  return res;
}
