import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  apiKeyAuth,
  generateApiKey,
  hashApiKey,
  parseApiKeys,
  type ApiKeyEntry,
} from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { hashKeyCommand } from '../../src/callers/hash-key.js';
import { SEED } from '../../src/simulator/seed.js';
import { refusal, requestWith } from '../support/caller-requests.js';

const A = SEED.projects.payments.id;
const KEY_A = generateApiKey();
const KEY_ALL = generateApiKey();
const ENTRIES: ApiKeyEntry[] = [
  { id: 'svc-a', hash: hashApiKey(KEY_A), projects: [A], rights: ['read'] },
  { id: 'svc-all', hash: hashApiKey(KEY_ALL), projects: '*', rights: ['read', 'download', 'restore'] },
];

const parse = (value: unknown) => {
  const problems: string[] = [];
  const keys = parseApiKeys(
    typeof value === 'string' ? value : JSON.stringify(value),
    'GATEWAY_API_KEYS',
    problems,
  );
  return { keys, problems };
};

describe('hashApiKey and generateApiKey', () => {
  it('hashes to sha256:<hex> of the UTF-8 key', () => {
    expect(hashApiKey('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashApiKey(KEY_A)).toBe(`sha256:${createHash('sha256').update(KEY_A).digest('hex')}`);
  });

  it('makes long random keys, each different', () => {
    expect(KEY_A).toMatch(/^agw_[A-Za-z0-9_-]{43}$/);
    expect(KEY_A).not.toBe(KEY_ALL);
  });
});

describe('parseApiKeys', () => {
  it('accepts valid entries and deduplicates projects and rights', () => {
    const { keys, problems } = parse([
      { ...ENTRIES[0], projects: [A, A], rights: ['read', 'read'] },
      ENTRIES[1],
    ]);
    expect(problems).toEqual([]);
    expect(keys).toEqual([{ ...ENTRIES[0], projects: [A], rights: ['read'] }, ENTRIES[1]]);
  });

  it('names the field, what was expected and what arrived, for every bad field at once', () => {
    const { keys, problems } = parse([
      { id: 'ok', hash: 'sha256:abc', projects: ['nope'], rights: ['write'], right: [] },
      { id: '', hash: hashApiKey('x'), projects: [], rights: [] },
      'a string',
    ]);
    expect(keys).toEqual([]);
    expect(problems).toEqual([
      'GATEWAY_API_KEYS[0].right: unknown field (expected id, hash, projects, rights)',
      expect.stringMatching(
        /^GATEWAY_API_KEYS\[0\]\.hash: expected "sha256:" and 64 lowercase hex digits .*got a string of 10 characters$/,
      ),
      'GATEWAY_API_KEYS[0].projects[0]: expected a 24-hex project id, got "nope"',
      'GATEWAY_API_KEYS[0].rights[0]: expected "read", "download" or "restore", got "write"',
      expect.stringMatching(/^GATEWAY_API_KEYS\[1\]\.id: expected 1-64 characters .*got ""$/),
      'GATEWAY_API_KEYS[1].projects: expected "*" or a non-empty array of 24-hex project ids, got an array of 0',
      'GATEWAY_API_KEYS[1].rights: expected a non-empty array of "read", "download", "restore", got an array of 0',
      'GATEWAY_API_KEYS[2]: expected an object {id, hash, projects, rights}, got a string of 8 characters',
    ]);
  });

  it('never prints a hash field, in case a key was pasted there', () => {
    const { problems } = parse([{ id: 'x', hash: KEY_A, projects: '*', rights: ['read'] }]);
    expect(problems.join('\n')).not.toContain(KEY_A);
    expect(problems[0]).toContain('got a string of 47 characters');
  });

  it('refuses duplicate ids and hashes', () => {
    const { problems } = parse([ENTRIES[0], { ...ENTRIES[0] }]);
    expect(problems).toEqual([
      'GATEWAY_API_KEYS[1].id: expected a unique id, got "svc-a" a second time',
      'GATEWAY_API_KEYS[1].hash: expected a unique hash, got the hash of an earlier entry',
    ]);
  });

  it('refuses text that is not JSON without quoting it, a non-array and an empty list', () => {
    const secretish = `[{"id": "x", "hash": ${KEY_A}}]`;
    const bad = parse(secretish).problems;
    expect(bad).toEqual([
      expect.stringMatching(/^GATEWAY_API_KEYS: expected JSON, got text that does not parse/),
    ]);
    expect(bad[0]).not.toContain(KEY_A);
    expect(parse({ keys: [] }).problems).toEqual([
      'GATEWAY_API_KEYS: expected a JSON array of {id, hash, projects, rights}, got object',
    ]);
    expect(parse([]).problems).toEqual(['GATEWAY_API_KEYS: expected at least one key, got an empty array']);
  });
});

describe('parseApiKeys: what arrived, described by type, and nothing kept from a bad list', () => {
  it('says where the JSON stops parsing (the whole position), or nothing when it cannot tell', () => {
    expect(parse('[{"id": 1}]   garbage')).toEqual({
      keys: [],
      problems: ['GATEWAY_API_KEYS: expected JSON, got text that does not parse (at position 14)'],
    });
    expect(parse('')).toEqual({
      keys: [],
      problems: ['GATEWAY_API_KEYS: expected JSON, got text that does not parse'],
    });
  });

  it('returns no entry for a non-array, null or an empty list', () => {
    expect(parse({ keys: [] }).keys).toEqual([]);
    expect(parse('null')).toEqual({
      keys: [],
      problems: ['GATEWAY_API_KEYS: expected a JSON array of {id, hash, projects, rights}, got null'],
    });
    expect(parse([]).keys).toEqual([]);
  });

  it('describes a null entry and fields of the wrong type by their type, never by their value', () => {
    const { keys, problems } = parse([
      null,
      { id: 12345, hash: [hashApiKey('x')], projects: [[A], 7], rights: [8] },
    ]);
    expect(keys).toEqual([]);
    expect(problems).toEqual([
      'GATEWAY_API_KEYS[0]: expected an object {id, hash, projects, rights}, got null',
      'GATEWAY_API_KEYS[1].id: expected 1-64 characters of A-Z a-z 0-9 . _ : @ -, got number',
      'GATEWAY_API_KEYS[1].hash: expected "sha256:" and 64 lowercase hex digits (npx tsx src/callers/hash-key.ts <key>), got an array of 1',
      'GATEWAY_API_KEYS[1].projects[0]: expected a 24-hex project id, got an array of 1',
      'GATEWAY_API_KEYS[1].projects[1]: expected a 24-hex project id, got number',
      'GATEWAY_API_KEYS[1].rights[0]: expected "read", "download" or "restore", got number',
    ]);
  });
});

describe('apiKeyAuth built in code', () => {
  it('refuses an entry whose hash is not sha256:<hex>, naming the key', () => {
    expect(() =>
      apiKeyAuth({ keys: [{ id: 'bad', hash: 'sha256:zz', projects: '*', rights: ['read'] }] }),
    ).toThrow(new Error('apiKeyAuth: key "bad" has no valid sha256:<hex> hash'));
  });

  it('is the `apikey` method; "*" means every project; the first of two entries with one hash wins', async () => {
    const method = apiKeyAuth({
      keys: [
        { id: 'first', hash: hashApiKey(KEY_ALL), projects: '*', rights: ['read'] },
        { id: 'second', hash: hashApiKey(KEY_ALL), projects: [A], rights: ['restore'] },
      ],
    });
    expect(method.mode).toBe('apikey');
    expect(await method.identify({ apiKey: KEY_ALL })).toEqual({
      id: 'apikey:first',
      kind: 'apiKey',
      projects: 'all',
      rights: new Set(['read']),
    });
  });
});

describe('apiKeyAuth, built inside the test', () => {
  // The describe-level `authenticate` above is built before any test runs: these pin the same facts
  // with the method built in the test itself.
  it('keeps a key to its projects, and says what it accepts', async () => {
    const method = apiKeyAuth({ keys: ENTRIES.slice(0, 1) });
    expect(method.accepts).toBe('an API key (x-api-key, or Authorization: Bearer)');
    expect(await method.identify({ apiKey: KEY_A })).toMatchObject({ projects: new Set([A]) });
  });
});

describe('authenticateWith', () => {
  it('refuses an empty list of methods', () => {
    expect(() => authenticateWith([])).toThrow(new Error('authenticateWith: expected at least one method'));
  });
});

describe('apiKeyAuth', () => {
  const authenticate = authenticateWith([apiKeyAuth({ keys: ENTRIES })]);

  it('finds the caller by x-api-key or Authorization: Bearer', async () => {
    const byHeader = await authenticate(requestWith({ 'x-api-key': KEY_A }));
    expect(byHeader).toEqual({
      id: 'apikey:svc-a',
      kind: 'apiKey',
      projects: new Set([A]),
      rights: new Set(['read']),
    });
    const byBearer = await authenticate(requestWith({ authorization: `Bearer ${KEY_ALL}` }));
    expect(byBearer).toMatchObject({ id: 'apikey:svc-all', kind: 'apiKey', projects: 'all' });
    expect(byBearer.rights).toEqual(new Set(['read', 'download', 'restore']));
    expect(byBearer.atlasBearerToken).toBeUndefined();
  });

  it('refuses no key, an unknown key, and a near miss, without echoing the key', async () => {
    expect((await refusal(authenticate, {})).message).toBe(
      'Authentication required: send an API key (x-api-key, or Authorization: Bearer).',
    );
    const unknown = await refusal(authenticate, { 'x-api-key': generateApiKey() });
    expect(unknown.code).toBe('UNAUTHENTICATED');
    expect(unknown.message).toBe('Unknown API key (x-api-key).');
    const nearMiss = `${KEY_A.slice(0, -1)}x`;
    const bearer = await refusal(authenticate, { authorization: `Bearer ${nearMiss}` });
    expect(bearer.message).toBe('Not authenticated: the bearer token is not a known API key.');
    expect(bearer.message).not.toContain(nearMiss);
    // A scheme other than Bearer is not a credential here.
    expect((await refusal(authenticate, { authorization: `Basic ${KEY_A}` })).message).toMatch(
      /^Authentication required/,
    );
  });

  it('compares every entry whatever matched (timing-safe), and still finds the last one', async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({
      id: `k${i}`,
      hash: hashApiKey(`key-${i}-${'x'.repeat(40)}`),
      projects: '*' as const,
      rights: ['read' as const],
    }));
    const auth = authenticateWith([apiKeyAuth({ keys: many })]);
    expect((await auth(requestWith({ 'x-api-key': `key-49-${'x'.repeat(40)}` }))).id).toBe('apikey:k49');
    expect((await auth(requestWith({ 'x-api-key': `key-0-${'x'.repeat(40)}` }))).id).toBe('apikey:k0');
  });
});

describe('hash-key CLI', () => {
  it('prints the hash of a given key, and warns on stderr about a short one', () => {
    expect(hashKeyCommand([KEY_A])).toEqual({ stdout: `${hashApiKey(KEY_A)}\n`, stderr: '' });
    expect(hashKeyCommand(['short']).stderr).toMatch(/^warning: a short key/);
  });

  it('without a key prints a fresh one, its hash and an entry that parses', () => {
    const { stdout } = hashKeyCommand([]);
    const key = /^key: +(\S+)$/m.exec(stdout)?.[1] ?? '';
    const hash = /^hash: +(\S+)$/m.exec(stdout)?.[1];
    const entry = /^entry: (.+)$/m.exec(stdout)?.[1] ?? '';
    expect(key).toMatch(/^agw_/);
    expect(hash).toBe(hashApiKey(key));
    const problems: string[] = [];
    expect(parseApiKeys(`[${entry}]`, 'entry', problems)).toHaveLength(1);
    expect(problems).toEqual([]);
  });

  it('warns below 32 characters only, with the exact advice, and never on stdout', () => {
    const warning =
      'warning: a short key; the fast hash is only safe for long random keys. Prefer one made by this command without arguments.\n';
    expect(hashKeyCommand(['k'.repeat(31)])).toEqual({
      stdout: `${hashApiKey('k'.repeat(31))}\n`,
      stderr: warning,
    });
    expect(hashKeyCommand(['k'.repeat(32)])).toEqual({
      stdout: `${hashApiKey('k'.repeat(32))}\n`,
      stderr: '',
    });
  });

  it('treats an empty argument as none: prints a fresh key, line by line, and nothing on stderr', () => {
    const { stdout, stderr } = hashKeyCommand(['']);
    expect(stderr).toBe('');
    const key = /^key: {3}(agw_\S+)$/m.exec(stdout)?.[1] ?? '';
    const hash = hashApiKey(key);
    expect(stdout).toBe(
      [
        `key:   ${key}`,
        `hash:  ${hash}`,
        `entry: ${JSON.stringify({ id: 'my-service', hash, projects: '*', rights: ['read'] })}`,
        '# give the key to the service (x-api-key or Authorization: Bearer); configure only the hash.',
        '',
      ].join('\n'),
    );
    expect(hashKeyCommand([]).stderr).toBe('');
  });

  it('runs as `tsx src/callers/hash-key.ts <key>`', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'src/callers/hash-key.ts',
      KEY_A,
    ]);
    expect(stdout).toBe(`${hashApiKey(KEY_A)}\n`);
  });
});
