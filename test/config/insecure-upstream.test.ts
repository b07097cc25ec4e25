import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';
import { isLoopbackHost } from '../../src/config/insecure-upstream-env.js';

// Finding 9h (issue #15): an `http://` MONGODB_ATLAS_BASE_URL on another host was accepted with an
// OAuth client secret, and a REDIS_URL with a password to a remote host without TLS, with no word.

const OAUTH = { MONGODB_ATLAS_CLIENT_ID: 'mdb_sa_id_x', MONGODB_ATLAS_CLIENT_SECRET: 'mdb_sa_sk_secret' };
const DIGEST = { MONGODB_ATLAS_PUBLIC_API_KEY: 'abcdefgh', MONGODB_ATLAS_PRIVATE_API_KEY: 'private-key' };
const CALLERS = { GATEWAY_AUTH: 'none' };

/** The problem lines of a `ConfigError` (fails when there is none). */
function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const ATLAS_LINE = (origin: string) =>
  `MONGODB_ATLAS_BASE_URL: expected an https URL (http only on localhost, 127.0.0.1 or [::1]), got "${origin}": the gateway would send Atlas credentials (its own, or its callers' tokens) unencrypted to another host; use https, or set GATEWAY_ALLOW_INSECURE_UPSTREAM=true in a lab`;
const REDIS_LINE = (shown: string) =>
  `REDIS_URL: expected rediss:// (TLS) for a Redis with a password on another host, got "${shown}": the password and the shared job state (download URLs included) would cross the network unencrypted; use rediss://, or set GATEWAY_ALLOW_INSECURE_UPSTREAM=true in a lab`;

describe('finding 9h: no secret to another host over an unencrypted connection', () => {
  it('finding 9h: an http:// MONGODB_ATLAS_BASE_URL off loopback is refused with a service account, an API key or pass-through alone', () => {
    const base = { MONGODB_ATLAS_BASE_URL: 'http://atlas.lab.example:8080/' };
    expect(problemsOf({ ...CALLERS, ...OAUTH, ...base })).toEqual([
      ATLAS_LINE('http://atlas.lab.example:8080'),
    ]);
    expect(problemsOf({ ...CALLERS, ...DIGEST, ...base })).toEqual([
      ATLAS_LINE('http://atlas.lab.example:8080'),
    ]);
    expect(problemsOf({ GATEWAY_AUTH: 'passthrough', ...base })).toEqual([
      ATLAS_LINE('http://atlas.lab.example:8080'),
    ]);
    // The secret is never in the message.
    expect(problemsOf({ ...CALLERS, ...OAUTH, ...base }).join('\n')).not.toContain('mdb_sa_sk_secret');
  });

  it('finding 9h: http:// on loopback (the simulator, a sidecar) and https:// anywhere are accepted', () => {
    for (const url of [
      'http://127.0.0.1:9000',
      'http://127.1.2.3:9000',
      'http://localhost:9000',
      'http://[::1]:9000',
      'https://atlas.lab.example',
    ]) {
      expect(loadConfig({ ...CALLERS, ...OAUTH, MONGODB_ATLAS_BASE_URL: url }).atlas.baseUrl).toBe(url);
    }
  });

  it('finding 9h: a REDIS_URL with a password to another host without TLS is refused, the password not shown', () => {
    const problems = problemsOf({ REDIS_URL: 'redis://:hunter2@redis.internal:6379/0' });
    expect(problems).toEqual([REDIS_LINE('redis://[redacted]@redis.internal:6379/0')]);
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problemsOf({ REDIS_URL: 'redis://app:hunter2@10.0.0.7:6379' })).toEqual([
      REDIS_LINE('redis://[redacted]@10.0.0.7:6379'),
    ]);
  });

  it('finding 9h: Redis over TLS, on loopback, or without a password is accepted', () => {
    for (const url of [
      'rediss://:hunter2@redis.internal:6380',
      'redis://:hunter2@127.0.0.1:6379',
      'redis://:hunter2@localhost:6379',
      'redis://redis.internal:6379',
      'redis://app@redis.internal:6379',
    ]) {
      expect(loadConfig({ REDIS_URL: url }).redis?.url).toBe(url);
    }
  });

  it('finding 9h: GATEWAY_ALLOW_INSECURE_UPSTREAM=true allows both, on purpose (labs)', () => {
    const config = loadConfig({
      ...CALLERS,
      ...OAUTH,
      MONGODB_ATLAS_BASE_URL: 'http://atlas.lab.example:8080',
      REDIS_URL: 'redis://:hunter2@redis.internal:6379',
      GATEWAY_ALLOW_INSECURE_UPSTREAM: 'true',
    });
    expect(config.atlas.baseUrl).toBe('http://atlas.lab.example:8080');
    expect(config.redis?.url).toBe('redis://:hunter2@redis.internal:6379');
    expect(problemsOf({ GATEWAY_ALLOW_INSECURE_UPSTREAM: 'yes' })).toEqual([
      'GATEWAY_ALLOW_INSECURE_UPSTREAM: expected "true" or "false", got "yes"',
    ]);
  });

  it('knows loopback when it sees it, and nothing else', () => {
    expect(['localhost', '127.0.0.1', '127.255.0.9', '[::1]'].map(isLoopbackHost)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['127.0.0.1.example.com', 'localhost.example', '10.0.0.1', '[::2]', '0.0.0.0'].map(isLoopbackHost),
    ).toEqual([false, false, false, false, false]);
  });
});
