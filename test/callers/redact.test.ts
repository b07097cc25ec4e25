import { describe, expect, it } from 'vitest';
import { REDACTED, redactHeaders, redactUrl } from '../../src/callers/redact.js';

describe('redactUrl', () => {
  it("replaces the simulator's signature and keeps scheme, host, path and expires", () => {
    expect(
      redactUrl(
        'http://127.0.0.1:40123/backup/download/abc/def.tgz?expires=1795000000&signature=9f86d081884c7d65',
      ),
    ).toBe('http://127.0.0.1:40123/backup/download/abc/def.tgz?expires=1795000000&signature=[redacted]');
  });

  it('replaces S3 pre-signed credentials, whatever their case, and keeps the rest as written', () => {
    const url =
      'https://bucket.s3.amazonaws.com/snap.tgz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261123&X-Amz-Date=20261123T120000Z&X-Amz-Expires=14400&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoG&X-Amz-Signature=abcdef';
    expect(redactUrl(url)).toBe(
      'https://bucket.s3.amazonaws.com/snap.tgz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Date=20261123T120000Z&X-Amz-Expires=14400&X-Amz-SignedHeaders=host&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]',
    );
    expect(redactUrl('https://h/p?Signature=s&Expires=1&token=t&sig=z&x=1')).toBe(
      'https://h/p?Signature=[redacted]&Expires=1&token=[redacted]&sig=[redacted]&x=1',
    );
  });

  it('removes user info and the fragment, and leaves a URL without secrets as it is', () => {
    expect(redactUrl('https://user:pass@host.test/a#access_token=x')).toBe(
      'https://[redacted]@host.test/a#[redacted]',
    );
    expect(redactUrl('https://cloud.mongodb.com/api/atlas/v2/groups?pageNum=2')).toBe(
      'https://cloud.mongodb.com/api/atlas/v2/groups?pageNum=2',
    );
  });

  it('removes user info when only a user name or only a password is there', () => {
    expect(redactUrl('https://user@host.test/a')).toBe('https://[redacted]@host.test/a');
    expect(redactUrl('https://:secret@host.test/a')).toBe('https://[redacted]@host.test/a');
  });

  it('drops empty parameters, and redacts a sensitive name that has no value', () => {
    expect(redactUrl('https://h/p?&a=1&&signature=x&')).toBe('https://h/p?a=1&signature=[redacted]');
    expect(redactUrl('https://h/p?signature&a')).toBe('https://h/p?signature=[redacted]&a');
    // A one-letter name: `=` at index 1 still splits the name from the value.
    expect(redactUrl('https://h/p?a=signature')).toBe('https://h/p?a=signature');
  });

  it('decodes parameter names (a `+` is a space) and keeps a name that does not decode', () => {
    expect(redactUrl('https://h/p?%53ignature=x')).toBe('https://h/p?%53ignature=[redacted]');
    // `api key`, not `apikey`: form encoding makes `+` a space.
    expect(redactUrl('https://h/p?api+key=1')).toBe('https://h/p?api+key=1');
    expect(redactUrl('https://h/p?%E0%A4%A=1&sig=2')).toBe('https://h/p?%E0%A4%A=1&sig=[redacted]');
  });

  it('redacts whole what does not parse as a URL', () => {
    expect(redactUrl('not a url ?signature=abc')).toBe(REDACTED);
  });
});

describe('redactHeaders', () => {
  it('replaces credential headers, keeps the others, lowercases names', () => {
    expect(
      redactHeaders({
        Authorization: 'Bearer abc',
        'X-Api-Key': 'agw_x',
        'x-atlas-access-token': 'tok',
        cookie: 'a=b',
        'set-cookie': ['a=b', 'c=d'],
        accept: 'application/json',
        'content-length': 12,
        'x-absent': undefined,
      }),
    ).toEqual({
      authorization: REDACTED,
      'x-api-key': REDACTED,
      'x-atlas-access-token': REDACTED,
      cookie: REDACTED,
      'set-cookie': REDACTED,
      accept: 'application/json',
      'content-length': '12',
    });
  });

  it('joins a multi-valued header that is not a credential', () => {
    expect(redactHeaders({ 'X-Forwarded-For': ['10.0.0.1', '10.0.0.2'] })).toEqual({
      'x-forwarded-for': '10.0.0.1, 10.0.0.2',
    });
  });

  it('takes fetch Headers', () => {
    const h = new Headers({
      authorization: 'Digest username="x"',
      'proxy-authorization': 'Basic y',
      'user-agent': 'ua',
    });
    expect(redactHeaders(h)).toEqual({
      authorization: REDACTED,
      'proxy-authorization': REDACTED,
      'user-agent': 'ua',
    });
  });
});
