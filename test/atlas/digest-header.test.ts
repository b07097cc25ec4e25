import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  digestAuthorization,
  parseDigestChallenge,
  type DigestChallenge,
} from '../../src/atlas/credentials/digest-header.js';
import { ManualClock } from '../../src/time/clock.js';
import { DigestServer, parseAuthParams } from '../../src/simulator/auth-server/digest.js';

/** The value of one parameter of an `Authorization: Digest …` header. */
function param(header: string, name: string): string | undefined {
  return parseAuthParams(header.replace(/^Digest /, ''))?.get(name);
}

describe('parseDigestChallenge', () => {
  it("reads Atlas's challenge (docs layout, qop added)", () => {
    const c = parseDigestChallenge(
      'Digest realm="MMS Public API", domain="", nonce="abc/+=", algorithm=MD5, qop="auth", stale=false',
    );
    expect(c).toEqual({
      realm: 'MMS Public API',
      nonce: 'abc/+=',
      opaque: undefined,
      algorithm: 'MD5',
      qop: 'auth',
      stale: false,
    });
  });

  it('reads stale=true, opaque, quoted commas and escapes', () => {
    const c = parseDigestChallenge(
      'Digest realm="a, \\"b\\"", nonce=n1, opaque="o", qop="auth-int,auth", stale=TRUE',
    );
    expect(c).toMatchObject({ realm: 'a, "b"', nonce: 'n1', opaque: 'o', qop: 'auth', stale: true });
  });

  it('prefers SHA-256 when several challenges are offered, in one value or several', () => {
    const one =
      'Basic realm="x", Digest realm="r", nonce="m", algorithm=MD5, qop="auth", Digest realm="r", nonce="s", algorithm=SHA-256, qop="auth"';
    expect(parseDigestChallenge(one)).toMatchObject({ nonce: 's', algorithm: 'SHA-256' });
    expect(
      parseDigestChallenge([
        'Digest realm="r", nonce="s", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="m", qop="auth"',
      ]),
    ).toMatchObject({ nonce: 's', algorithm: 'SHA-256' });
  });

  it('treats the docs typo op="auth" as no qop (RFC 2069 style), and rejects what it cannot answer', () => {
    expect(parseDigestChallenge('Digest realm="r", nonce="n", op="auth"')).toMatchObject({ qop: undefined });
    expect(parseDigestChallenge('Digest realm="r", nonce="n", algorithm=SHA-512-256')).toBeUndefined();
    expect(parseDigestChallenge('Digest realm="r", nonce="n", qop="auth-conf"')).toBeUndefined();
    expect(parseDigestChallenge('Digest realm="r"')).toBeUndefined();
    expect(parseDigestChallenge('Bearer realm="r"')).toBeUndefined();
    expect(parseDigestChallenge(undefined)).toBeUndefined();
  });
});

describe('digestAuthorization', () => {
  const rfc7616: Omit<DigestChallenge, 'algorithm'> = {
    realm: 'http-auth@example.org',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
    qop: 'auth',
    stale: false,
  };
  const input = {
    username: 'Mufasa',
    password: 'Circle of Life',
    method: 'GET',
    uri: '/dir/index.html',
    nc: 1,
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  };

  it('matches the RFC 7616 §3.9.1 MD5 example', () => {
    const h = digestAuthorization({ ...input, challenge: { ...rfc7616, algorithm: 'MD5' } });
    expect(param(h, 'response')).toBe('8ca523f5e9506fed4657c9700eebdbec');
    expect(h).toContain('nc=00000001');
    expect(h).toContain('qop=auth');
    expect(param(h, 'opaque')).toBe(rfc7616.opaque);
  });

  it('matches the RFC 7616 §3.9.1 SHA-256 example', () => {
    const h = digestAuthorization({ ...input, challenge: { ...rfc7616, algorithm: 'SHA-256' } });
    expect(param(h, 'response')).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
    expect(h).toContain('algorithm=SHA-256');
  });

  it('matches the RFC 2617 §3.5 example', () => {
    const h = digestAuthorization({
      challenge: {
        realm: 'testrealm@host.com',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        opaque: '5ccc069c403ebaf9f0171e9517f40e41',
        algorithm: 'MD5',
        qop: 'auth',
        stale: false,
      },
      username: 'Mufasa',
      password: 'Circle Of Life',
      method: 'GET',
      uri: '/dir/index.html',
      nc: 1,
      cnonce: '0a4f113b',
    });
    expect(param(h, 'response')).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('writes nc as 8 hex digits and quotes the uri with its query', () => {
    const h = digestAuthorization({
      ...input,
      uri: '/a?b=1&c="x"',
      nc: 0x1ab,
      challenge: { ...rfc7616, algorithm: 'MD5' },
    });
    expect(h).toContain('nc=000001ab');
    expect(param(h, 'uri')).toBe('/a?b=1&c="x"');
    expect(param(h, 'cnonce')).toBe(input.cnonce);
  });

  it('draws a fresh 16-hex cnonce when none is given', () => {
    const c = { ...rfc7616, algorithm: 'MD5' as const };
    const { cnonce: _omit, ...rest } = input;
    const a = param(digestAuthorization({ ...rest, challenge: c }), 'cnonce');
    const b = param(digestAuthorization({ ...rest, challenge: c }), 'cnonce');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
  });

  it('hashes the body for auth-int, and omits qop/nc/cnonce when the server offered no qop', () => {
    const base = { ...rfc7616, algorithm: 'MD5' as const };
    const a = digestAuthorization({
      ...input,
      method: 'POST',
      challenge: { ...base, qop: 'auth-int' },
      body: Buffer.from('{"a":1}'),
    });
    const b = digestAuthorization({
      ...input,
      method: 'POST',
      challenge: { ...base, qop: 'auth-int' },
      body: Buffer.from('{"a":2}'),
    });
    expect(param(a, 'response')).not.toBe(param(b, 'response'));
    const none = digestAuthorization({ ...input, challenge: { ...base, qop: undefined } });
    expect(none).not.toMatch(/qop=|nc=|cnonce=/);
  });

  it("is accepted by the simulator's independent verifier with MD5 and SHA-256, also for a reused nonce", () => {
    for (const algorithm of ['MD5', 'SHA-256'] as const) {
      const server = new DigestServer({ clock: new ManualClock(), passwordOf: () => 'secret', algorithm });
      const challenge = parseDigestChallenge(server.challenge());
      expect(challenge?.algorithm).toBe(algorithm);
      for (let nc = 1; nc <= 3; nc++) {
        const h = digestAuthorization({
          challenge: challenge!,
          username: 'pub',
          password: 'secret',
          method: 'POST',
          uri: `/api/atlas/v2/groups?pageNum=${nc}`,
          nc,
        });
        const result = server.verify(
          parseAuthParams(h.slice('Digest '.length))!,
          'POST',
          `/api/atlas/v2/groups?pageNum=${nc}`,
        );
        expect(result).toEqual({ ok: true, username: 'pub' });
      }
    }
  });
});

describe('parseDigestChallenge: the edges of the grammar', () => {
  const parse = (h: string | string[]) => parseDigestChallenge(h);

  it('takes only Digest challenges, the first of equal strength, and needs a realm and a nonce', () => {
    expect(parse('Basic realm="x", nonce="n"')).toBeUndefined();
    expect(parse('Digest realm="r", nonce="a", Digest realm="r", nonce="b"')?.nonce).toBe('a');
    expect(parse('Digest realm="r"')).toBeUndefined();
    expect(parse('Digest nonce="n"')).toBeUndefined();
  });

  it('reads qop lists loosely (spaces, case) and takes auth-int when it is all there is', () => {
    expect(parse('Digest realm="r", nonce="n", qop="auth-int, AUTH"')?.qop).toBe('auth');
    expect(parse('Digest realm="r", nonce="n", qop="auth-int"')?.qop).toBe('auth-int');
    expect(parse('Digest realm="r", nonce="n", qop="token"')).toBeUndefined();
  });

  it('allows spaces and tabs around "=" and between parameters', () => {
    expect(parse('Digest realm = "r",\tnonce\t=\t"n" ,  stale = true')).toMatchObject({
      realm: 'r',
      nonce: 'n',
      stale: true,
    });
  });

  it('survives parameters before any scheme, stray quotes, an unterminated quote and a trailing backslash', () => {
    expect(parse('realm="x", Digest realm="r", nonce="n"')?.nonce).toBe('n');
    expect(parse('Digest realm="r", nonce="n", "stray"')?.nonce).toBe('n');
    expect(parse('Digest realm="r", nonce="n\\')?.nonce).toBe('n');
    expect(parse('Digest realm="r", nonce="open')?.nonce).toBe('open');
  });
});

describe('digestAuthorization: -sess algorithms and RFC 2069 answers', () => {
  const hex = (alg: string, s: string) => createHash(alg).update(s).digest('hex');

  it.each([
    ['MD5-sess', 'md5'],
    ['SHA-256-sess', 'sha256'],
  ] as const)('%s hashes the session key with the nonce and cnonce', (algorithm, hash) => {
    const challenge: DigestChallenge = {
      realm: 'r',
      nonce: 'n',
      opaque: undefined,
      algorithm,
      qop: 'auth',
      stale: false,
    };
    const header = digestAuthorization({
      challenge,
      username: 'u',
      password: 'p',
      method: 'GET',
      uri: '/x',
      nc: 1,
      cnonce: 'c',
    });
    const ha1 = hex(hash, `${hex(hash, 'u:r:p')}:n:c`);
    const expected = hex(hash, `${ha1}:n:00000001:c:auth:${hex(hash, 'GET:/x')}`);
    expect(param(header, 'response')).toBe(expected);
  });

  it('without qop, the response is H(HA1:nonce:HA2)', () => {
    const challenge: DigestChallenge = {
      realm: 'r',
      nonce: 'n',
      opaque: undefined,
      algorithm: 'MD5',
      qop: undefined,
      stale: false,
    };
    const header = digestAuthorization({
      challenge,
      username: 'u',
      password: 'p',
      method: 'GET',
      uri: '/x',
      nc: 1,
      cnonce: 'c',
    });
    expect(param(header, 'response')).toBe(hex('md5', `${hex('md5', 'u:r:p')}:n:${hex('md5', 'GET:/x')}`));
  });
});
