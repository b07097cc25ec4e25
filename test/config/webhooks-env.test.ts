import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'webhooks-config-'));
const P = 'a'.repeat(24);
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
let n = 0;

function file(content: unknown): string {
  const path = join(dir, `${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('GATEWAY_WEBHOOKS_FILE', () => {
  it('is off when unset, with the delivery defaults', () => {
    expect(loadConfig({}).webhooks).toEqual({
      hooks: [],
      policy: { maxAttempts: 8, backoffMs: 1000, maxBackoffMs: 3_600_000, timeoutMs: 10_000, concurrency: 2 },
      claimIdleMs: 60_000,
      memoryOutboxMax: 1000,
    });
  });

  it('reads hooks with their secret inline, from a variable or from a file', () => {
    const secretFile = file(`${SECRET}\n`);
    const hooks = [
      { id: 'inline', url: 'https://ops.example.com/hook', secret: SECRET, scope: { projectIds: [P] } },
      {
        id: 'from-env',
        url: 'http://127.0.0.1:9/x',
        secretEnv: 'OPS_HOOK_SECRET',
        scope: { projectIds: [P], clusterNames: ['c0'], families: ['FLEX'], deliveryTypes: ['DOWNLOAD'] },
        events: ['job.failed'],
        includeSnapshotUrl: true,
      },
      { id: 'from-file', url: 'https://x.example/', secretFile, scope: { projectIds: [P] } },
    ];
    const config = loadConfig({
      GATEWAY_WEBHOOKS_FILE: file(hooks),
      OPS_HOOK_SECRET: 'a plain secret of more than 24 bytes',
      GATEWAY_WEBHOOK_MAX_ATTEMPTS: '3',
    });
    const [inline, fromEnv, fromFile] = config.webhooks.hooks;
    expect(inline).toMatchObject({
      id: 'inline',
      events: ['job.completed', 'job.failed'],
      includeSnapshotUrl: false,
    });
    expect(Buffer.from(inline!.key)).toEqual(Buffer.from(SECRET.slice(6), 'base64'));
    expect(fromEnv).toMatchObject({
      scope: { projectIds: [P], clusterNames: ['c0'], families: ['FLEX'], deliveryTypes: ['DOWNLOAD'] },
      events: ['job.failed'],
      includeSnapshotUrl: true,
    });
    expect(Buffer.from(fromEnv!.key).toString()).toBe('a plain secret of more than 24 bytes');
    expect(Buffer.from(fromFile!.key)).toEqual(Buffer.from(inline!.key));
    expect(config.webhooks.policy.maxAttempts).toBe(3);
  });

  it('reports every bad hook at once, naming the field, never echoing a secret', () => {
    const shortSecret = 'tiny-secret-value';
    const problems = problemsOf({
      GATEWAY_WEBHOOKS_FILE: file([
        { id: 'ok', url: 'https://a.example/', secret: SECRET, scope: { projectIds: [P] } },
        { id: 'ok', url: 'https://a.example/', secret: SECRET, scope: { projectIds: [P] } },
        { id: 'short', url: 'https://a.example/', secret: shortSecret, scope: { projectIds: [P] } },
        { id: 'two', url: 'https://a.example/', secret: SECRET, secretEnv: 'X', scope: { projectIds: [P] } },
        { id: 'env', url: 'https://a.example/', secretEnv: 'UNSET_SECRET', scope: { projectIds: [P] } },
        {
          id: 'bad url',
          url: 'ftp://a.example/',
          secret: SECRET,
          scope: { projectIds: ['nope'] },
          extra: SECRET,
        },
      ]),
    });
    expect(problems).toEqual([
      'GATEWAY_WEBHOOKS_FILE: hooks[1].id: expected a unique id, got "ok" twice',
      'GATEWAY_WEBHOOKS_FILE: hooks[2]: expected a secret of at least 24 bytes, got 17',
      'GATEWAY_WEBHOOKS_FILE: hooks[3]: expected exactly one of secret, secretEnv, secretFile, got secret and secretEnv',
      'GATEWAY_WEBHOOKS_FILE: hooks[4].secretEnv: expected UNSET_SECRET to be set, got nothing',
      expect.stringMatching(/^GATEWAY_WEBHOOKS_FILE: hooks\[5\]\.id: /),
      expect.stringMatching(/^GATEWAY_WEBHOOKS_FILE: hooks\[5\]\.url: an http or https URL/),
      expect.stringMatching(/^GATEWAY_WEBHOOKS_FILE: hooks\[5\]\.scope\.projectIds\.0: a 24-hex project id/),
      expect.stringMatching(/^GATEWAY_WEBHOOKS_FILE: hooks\[5\]: .*"extra"/),
    ]);
    const all = problems.join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(shortSecret);
  });

  it('refuses an unreadable or non-JSON file, and a claim time not above the timeout with Redis', () => {
    expect(problemsOf({ GATEWAY_WEBHOOKS_FILE: join(dir, 'missing.json') })).toEqual([
      expect.stringMatching(
        /^GATEWAY_WEBHOOKS_FILE: expected a readable file, got ".*missing\.json" \(ENOENT\)$/,
      ),
    ]);
    expect(problemsOf({ GATEWAY_WEBHOOKS_FILE: file('{not json') })).toEqual([
      expect.stringMatching(/^GATEWAY_WEBHOOKS_FILE: expected JSON in /),
    ]);
    expect(
      problemsOf({
        REDIS_URL: 'redis://127.0.0.1:6379',
        GATEWAY_WEBHOOK_TIMEOUT_MS: '60000',
        GATEWAY_WEBHOOK_CLAIM_IDLE_MS: '60000',
      }),
    ).toEqual([
      expect.stringMatching(/^GATEWAY_WEBHOOK_CLAIM_IDLE_MS: expected more than GATEWAY_WEBHOOK_TIMEOUT_MS/),
    ]);
  });
});
