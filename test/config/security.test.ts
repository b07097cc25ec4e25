import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';
import { securityOptions } from '../../src/gateway-from-config.js';
import { resolveSecurityOptions, securityYogaOptions, sha256Hex } from '../../src/security/index.js';

/** The security options `npm start` builds from `env` (demo mode: nothing else is needed). */
const securityFromEnv = (env: Env) => securityOptions(loadConfig(env).security);

const problemsOf = (env: Env): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
};

describe('security config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'security-config-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every default when nothing is set', () => {
    const options = securityFromEnv({});
    expect(options).toEqual({ ...resolveSecurityOptions(), csrfHeaders: undefined, corsLoopback: undefined });
    expect(resolveSecurityOptions(options)).toMatchObject({
      maxDepth: 10,
      maxAliases: 15,
      maxTokens: 1000,
      maxDirectives: 20,
      maxCost: 10_000,
      batchLimit: 0,
      maxBodyBytes: 102_400,
      rateLimit: { points: 300, windowMs: 60_000 },
      maxSubscriptions: 20,
      executionTimeoutMs: 15_000,
      persistedOperations: 'off',
      csrfPrevention: true,
      webSocket: {
        maxPayloadBytes: 65_536,
        maxConnections: 1000,
        maxConnectionsPerAddress: 50,
        maxOperationsPerSocket: 25,
        subscribeRate: { points: 100, windowMs: 10_000 },
        connectionInitTimeoutMs: 3000,
      },
    });
    const { corsPolicy, ...yoga } = securityYogaOptions(options);
    expect(yoga).toEqual({ batching: false, graphiql: true, maxBodyBytes: 102_400 });
    expect(corsPolicy.allowed('https://app.example.com')).toBe(false);
    expect(corsPolicy.allowed('http://localhost:5173')).toBe(false);
  });

  it('reads every variable', () => {
    const query = '{ __typename }';
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ [sha256Hex(query)]: query }));
    const options = securityFromEnv({
      GATEWAY_PRODUCTION: 'true',
      GATEWAY_MAX_DEPTH: '8',
      GATEWAY_MAX_ALIASES: '5',
      GATEWAY_MAX_TOKENS: '500',
      GATEWAY_MAX_DIRECTIVES: '4',
      GATEWAY_MAX_COST: '2000',
      GATEWAY_COST_LIST_SIZE: '25',
      GATEWAY_BATCH_LIMIT: '10',
      GATEWAY_MAX_BODY_BYTES: '65536',
      GATEWAY_RATE_LIMIT: '120',
      GATEWAY_RATE_LIMIT_WINDOW_MS: '30000',
      GATEWAY_MAX_SUBSCRIPTIONS: '5',
      GATEWAY_TRUST_PROXY: 'true',
      GATEWAY_EXECUTION_TIMEOUT_MS: '5000',
      GATEWAY_PERSISTED_OPERATIONS: 'enforce',
      GATEWAY_PERSISTED_OPERATIONS_FILE: manifest,
      GATEWAY_CSRF_PREVENTION: 'false',
      GATEWAY_CORS_ORIGINS: 'https://app.example.com, https://admin.example.com/',
      GATEWAY_WS_MAX_PAYLOAD_BYTES: '32768',
      GATEWAY_WS_MAX_CONNECTIONS: '5000',
      GATEWAY_WS_MAX_CONNECTIONS_PER_ADDRESS: '10',
      GATEWAY_WS_MAX_OPERATIONS_PER_SOCKET: '7',
      GATEWAY_WS_SUBSCRIBE_RATE: '30',
      GATEWAY_WS_SUBSCRIBE_RATE_WINDOW_MS: '60000',
      GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS: '5000',
    });
    expect(options).toEqual({
      production: true,
      maxDepth: 8,
      maxAliases: 5,
      maxTokens: 500,
      maxDirectives: 4,
      maxCost: 2000,
      costListSize: 25,
      batchLimit: 10,
      maxBodyBytes: 65536,
      rateLimit: { points: 120, windowMs: 30_000 },
      maxSubscriptions: 5,
      trustProxy: true,
      executionTimeoutMs: 5000,
      persistedOperations: 'enforce',
      persistedManifest: new Map([[sha256Hex(query), query]]),
      csrfPrevention: false,
      corsOrigins: ['https://app.example.com', 'https://admin.example.com'],
      webSocket: {
        maxPayloadBytes: 32768,
        maxConnections: 5000,
        maxConnectionsPerAddress: 10,
        maxOperationsPerSocket: 7,
        subscribeRate: { points: 30, windowMs: 60_000 },
        connectionInitTimeoutMs: 5000,
      },
    });
    const { corsPolicy, ...yoga } = securityYogaOptions(options);
    expect(yoga).toEqual({ batching: { limit: 10 }, graphiql: false, maxBodyBytes: 65536 });
    expect(corsPolicy.allowed('https://admin.example.com')).toBe(true);
    expect(corsPolicy.allowed('https://evil.example')).toBe(false);
  });

  it('takes production from NODE_ENV unless GATEWAY_PRODUCTION says otherwise', () => {
    expect(securityFromEnv({ NODE_ENV: 'production' }).production).toBe(true);
    expect(securityFromEnv({ NODE_ENV: 'production', GATEWAY_PRODUCTION: 'false' }).production).toBe(false);
    expect(securityFromEnv({ NODE_ENV: 'development' }).production).toBe(false);
    expect(
      securityYogaOptions(securityFromEnv({ NODE_ENV: 'production' })).corsPolicy.allowed(
        'https://x.example',
      ),
    ).toBe(false);
  });

  it('turns the rate limit off with 0 and keeps the other default when only one is set', () => {
    expect(securityFromEnv({ GATEWAY_RATE_LIMIT: '0' }).rateLimit).toBe(false);
    expect(securityFromEnv({ GATEWAY_RATE_LIMIT_WINDOW_MS: '1000' }).rateLimit).toEqual({
      points: 300,
      windowMs: 1000,
    });
  });

  it('reports every bad variable at once: name, what was expected, what arrived', () => {
    expect(
      problemsOf({
        GATEWAY_PRODUCTION: 'yes',
        GATEWAY_MAX_DEPTH: '0',
        GATEWAY_MAX_TOKENS: 'lots',
        GATEWAY_MAX_BODY_BYTES: '-1',
        GATEWAY_RATE_LIMIT: '1.5',
        GATEWAY_EXECUTION_TIMEOUT_MS: '99999999',
        GATEWAY_PERSISTED_OPERATIONS: 'strict',
        GATEWAY_CORS_ORIGINS: 'https://ok.example, app.example.com, https://x.example/path',
      }),
    ).toEqual([
      'GATEWAY_PRODUCTION: expected "true" or "false", got "yes"',
      'GATEWAY_MAX_DEPTH: expected an integer from 1 to 1000, got "0"',
      'GATEWAY_MAX_TOKENS: expected an integer from 10 to 1000000, got "lots"',
      'GATEWAY_MAX_BODY_BYTES: expected an integer from 1024 to 104857600, got "-1"',
      'GATEWAY_RATE_LIMIT: expected an integer from 0 to 1000000000, got "1.5"',
      'GATEWAY_EXECUTION_TIMEOUT_MS: expected an integer from 0 to 3600000, got "99999999"',
      'GATEWAY_PERSISTED_OPERATIONS: expected "off", "allow" or "enforce", got "strict"',
      'GATEWAY_CORS_ORIGINS: expected a comma list of origins (https://app.example.com), or "*" alone, got "app.example.com", "https://x.example/path"',
    ]);
  });

  it('needs a readable, valid manifest for allow and enforce', () => {
    expect(problemsOf({ GATEWAY_PERSISTED_OPERATIONS: 'allow' })).toEqual([
      'GATEWAY_PERSISTED_OPERATIONS_FILE: expected the path of the manifest JSON (GATEWAY_PERSISTED_OPERATIONS is "allow"), got nothing',
    ]);
    const missing = join(dir, 'nope.json');
    expect(
      problemsOf({ GATEWAY_PERSISTED_OPERATIONS: 'enforce', GATEWAY_PERSISTED_OPERATIONS_FILE: missing }),
    ).toEqual([
      expect.stringMatching(/^GATEWAY_PERSISTED_OPERATIONS_FILE: expected .*, got cannot read .*nope\.json/),
    ]);
    const wrongHash = join(dir, 'sha1.json');
    writeFileSync(wrongHash, JSON.stringify({ ['a'.repeat(64)]: '{ __typename }' }));
    expect(
      problemsOf({ GATEWAY_PERSISTED_OPERATIONS: 'enforce', GATEWAY_PERSISTED_OPERATIONS_FILE: wrongHash }),
    ).toEqual([expect.stringMatching(/the sha256 of its document is [0-9a-f]{64}/)]);
  });
});
