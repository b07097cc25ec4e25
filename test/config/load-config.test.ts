import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ENV,
  envDeclarations,
  loadConfig,
  loadSimulatorConfig,
  type Env,
} from '../../src/config/index.js';
import { simulatorOptionsFromConfig } from '../../src/simulator/index.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

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

describe('loadConfig', () => {
  it('runs demo mode with no credentials', () => {
    expect(loadConfig({})).toMatchObject({
      demo: true,
      server: { port: 4000, host: '127.0.0.1', shutdownGraceMs: 10_000, replicaId: undefined },
      atlas: { baseUrl: undefined, auth: { type: 'none' }, legacyV1: false },
      callers: { gatewayAuth: 'unset' },
      redis: undefined,
      logging: { level: 'info' },
      tracing: { exporter: 'none', serviceName: 'atlas-backup-gateway' },
    });
  });

  it('prefers a service account, and takes Terraform’s API key names', () => {
    const both = {
      MONGODB_ATLAS_CLIENT_ID: 'i',
      MONGODB_ATLAS_CLIENT_SECRET: 's',
      MONGODB_ATLAS_PUBLIC_API_KEY: 'pub',
      MONGODB_ATLAS_PRIVATE_API_KEY: 'priv',
      GATEWAY_AUTH: 'none',
    };
    expect(loadConfig(both)).toMatchObject({
      demo: false,
      atlas: {
        baseUrl: 'https://cloud.mongodb.com',
        auth: { type: 'oauth', clientId: 'i', clientSecret: 's' },
      },
    });
    expect(
      loadConfig({ MONGODB_ATLAS_PUBLIC_KEY: 'pub', MONGODB_ATLAS_PRIVATE_KEY: 'priv', GATEWAY_AUTH: 'none' })
        .atlas.auth,
    ).toEqual({ type: 'digest', publicKey: 'pub', privateKey: 'priv' });
  });

  it('names every bad variable at once, without echoing secrets', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      MONGODB_ATLAS_CLIENT_SECRET: 'hunter2',
      MONGODB_ATLAS_BASE_URL: 'ftp://x',
    });
    expect(problems).toEqual([
      'PORT: expected an integer from 0 to 65535, got "eighty"',
      'MONGODB_ATLAS_BASE_URL: expected an http(s) URL, got "ftp://x"',
      'MONGODB_ATLAS_BASE_URL: set, but no Atlas credentials are (MONGODB_ATLAS_CLIENT_ID/SECRET or MONGODB_ATLAS_PUBLIC_API_KEY/PRIVATE_API_KEY); unset it for demo mode',
      'MONGODB_ATLAS_CLIENT_ID: must be set together with MONGODB_ATLAS_CLIENT_SECRET, which is set',
    ]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reports the problems of every group in one run, one line each, naming its variable', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'abc', GATEWAY_AUTH: 'bogus', GATEWAY_MAX_DEPTH: '-1' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'PORT: expected an integer from 0 to 65535, got "abc"',
      'GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got "bogus"',
      'GATEWAY_MAX_DEPTH: expected an integer from 1 to 1000, got "-1"',
    ]);
    expect((err as Error).message).toBe(
      [
        'Invalid configuration:',
        '  - PORT: expected an integer from 0 to 65535, got "abc"',
        '  - GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got "bogus"',
        '  - GATEWAY_MAX_DEPTH: expected an integer from 1 to 1000, got "-1"',
      ].join('\n'),
    );
  });

  it('reads GATEWAY_AUTH once, in any case and spacing: Passthrough alone is pass-through, not demo mode', () => {
    for (const value of ['passthrough', 'Passthrough', ' PASSTHROUGH ', 'passThrough,']) {
      const config = loadConfig({ GATEWAY_AUTH: value });
      expect(config.demo, value).toBe(false);
      expect(config.callers.gatewayAuth, value).toEqual(['passthrough']);
      expect(config.atlas, value).toEqual({
        baseUrl: 'https://cloud.mongodb.com',
        auth: { type: 'none' },
        legacyV1: false,
      });
    }
    // Next to another method, callers still need the gateway's own credentials: demo mode.
    expect(loadConfig({ GATEWAY_AUTH: 'passthrough,jwt', ...JWT }).demo).toBe(true);
  });

  it('refuses an unknown GATEWAY_AUTH, whatever else is set', () => {
    for (const value of ['ldap', 'apikey,ldap', 'none,jwt', 'pass through', ',']) {
      expect(problemsOf({ GATEWAY_AUTH: value })).toEqual([
        `GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got ${JSON.stringify(value.trim())}`,
      ]);
    }
  });

  it('refuses to start against real Atlas without GATEWAY_AUTH', () => {
    expect(problemsOf({ MONGODB_ATLAS_CLIENT_ID: 'i', MONGODB_ATLAS_CLIENT_SECRET: 's' })).toEqual([
      expect.stringMatching(
        /^GATEWAY_AUTH: not set, and the gateway is talking to real Atlas, so it refuses/,
      ),
    ]);
  });

  it('redacts the password of REDIS_URL in its message', () => {
    const problems = problemsOf({ REDIS_URL: 'http://user:hunter2@redis.internal:6379' });
    expect(problems).toEqual([
      'REDIS_URL: expected a redis:// or rediss:// URL, got "http://[redacted]@redis.internal:6379"',
    ]);
    expect(loadConfig({ REDIS_URL: 'rediss://:pw@r:6380', REDIS_PREFIX: 'eu:' }).redis).toEqual({
      url: 'rediss://:pw@r:6380',
      prefix: 'eu:',
      withoutRedis: 'refuse',
      leaseMs: 10_000,
    });
  });

  it('turns tracing on with an endpoint, and refuses an exporter it does not have', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).tracing).toEqual({
      exporter: 'otlp',
      endpoint: 'http://127.0.0.1:4318',
      serviceName: 'atlas-backup-gateway',
    });
    expect(loadConfig({ OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: 'gw' }).tracing).toMatchObject({
      exporter: 'console',
      serviceName: 'gw',
    });
    expect(problemsOf({ OTEL_TRACES_EXPORTER: 'zipkin', LOG_LEVEL: 'loud' })).toEqual([
      'OTEL_TRACES_EXPORTER: expected "otlp", "console" or "none", got "zipkin"',
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });

  it('returns plain data: no functions, nothing that cannot be cloned', () => {
    const config = loadConfig({ GATEWAY_AUTH: 'jwt', ...JWT, REDIS_URL: 'redis://127.0.0.1:6379' });
    const functions: string[] = [];
    const walk = (value: unknown, path: string) => {
      if (typeof value === 'function') functions.push(path);
      else if (value instanceof Map) for (const [k, v] of value) walk(v, `${path}.${String(k)}`);
      else if (typeof value === 'object' && value !== null)
        for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    };
    walk(config, 'config');
    expect(functions).toEqual([]);
    expect(structuredClone(config)).toEqual(config);
  });
});

const JWT = {
  GATEWAY_JWT_SECRET: 'an-hs256-secret-of-at-least-32-bytes!!',
  GATEWAY_JWT_ISSUER: 'https://idp.test/',
  GATEWAY_JWT_AUDIENCE: 'gateway',
};

describe('one trimming policy for every variable', () => {
  const declarations = envDeclarations();

  it('declares every variable once, with a group, a one-sentence description and an example', () => {
    expect(declarations.map((d) => d.name)).toEqual(Object.keys(ENV));
    for (const d of declarations) {
      expect(d.description, d.name).toMatch(/^[A-Z`'"].*[.)]$/);
      expect(d.example, d.name).not.toBe('');
    }
  });

  it('reads a value with surrounding whitespace as the value itself', () => {
    for (const { name, example } of declarations) {
      const schema = ENV[name as keyof typeof ENV];
      const plain = schema.safeParse(example);
      expect(plain.success, `${name}=${example}`).toBe(true);
      expect(schema.safeParse(` \t${example} \n`), name).toEqual(plain);
    }
  });

  it('reads an empty or blank value as unset', () => {
    const unset = loadConfig({});
    for (const { name } of declarations) {
      for (const blank of ['', '   ', '\t\n']) {
        expect(loadConfig({ [name]: blank }), `${name}=${JSON.stringify(blank)}`).toEqual(unset);
      }
    }
  });
});

describe('the simulator group', () => {
  it('holds only what the environment said; the simulator fills in the documented defaults', () => {
    expect(loadSimulatorConfig({})).toEqual({
      port: undefined,
      owner: { clientId: undefined, clientSecret: undefined, publicKey: undefined, privateKey: undefined },
      jobMs: undefined,
      tenantSunset: undefined,
      rateLimit: undefined,
      rateRefillPerSec: undefined,
      adminRoutes: undefined,
    });
    const options = simulatorOptionsFromConfig(loadSimulatorConfig({}));
    const documented = (name: string) =>
      envDeclarations()
        .find((d) => d.name === name)
        ?.default?.replace(/`/g, '');
    const [owner] = options.credentials;
    expect(owner).toMatchObject({
      clientId: documented('ATLAS_SIM_CLIENT_ID'),
      clientSecret: documented('ATLAS_SIM_CLIENT_SECRET'),
      publicKey: documented('ATLAS_SIM_PUBLIC_KEY'),
      privateKey: documented('ATLAS_SIM_PRIVATE_KEY'),
    });
    // Unset: Atlas's recorded Ratelimit-Limit per endpoint set (issue #17).
    expect(documented('ATLAS_SIM_RATE_LIMIT')).toBe('1200 on Flex routes, 10000 on cluster routes');
    expect(options.rateLimit).toEqual({
      capacity: 1000,
      refillPerSecond: Number(documented('ATLAS_SIM_RATE_REFILL_PER_SEC')),
      capacityBySet: { flex: 1200, cluster: 10_000 },
    });
  });

  it('reads ATLAS_SIM_* for the demo and for npm run simulator alike', () => {
    const env = {
      ATLAS_SIM_CLIENT_ID: 'id',
      ATLAS_SIM_CLIENT_SECRET: 'secret',
      ATLAS_SIM_JOB_MS: '0',
      ATLAS_SIM_RATE_LIMIT: '0',
      ATLAS_SIM_ADMIN: 'true',
      ATLAS_SIM_PROFILE: 'small',
    };
    expect(loadConfig(env).simulator).toEqual(loadSimulatorConfig(env));
    const options = simulatorOptionsFromConfig(loadSimulatorConfig(env));
    expect(options).toMatchObject({ jobMs: 0, rateLimit: false, adminRoutes: true, profile: 'small' });
    expect(() => loadSimulatorConfig({ ATLAS_SIM_PROFILE: 'huge' })).toThrow(
      'ATLAS_SIM_PROFILE: expected "realistic" or "small", got "huge"',
    );
    expect(options.credentials[0]).toMatchObject({ clientId: 'id', clientSecret: 'secret' });
    // The simulator's own command is not bothered by the gateway's variables.
    expect(() => loadSimulatorConfig({ PORT: 'abc', ATLAS_SIM_JOB_MS: '-5' })).toThrow(
      'ATLAS_SIM_JOB_MS: expected an integer ≥ 0, got "-5"',
    );
  });
});

describe('where the environment is read', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );

  it('reads process.env only in src/index.ts and the simulator command', () => {
    const readers = files(SRC)
      .filter((f) => /process\.env/.test(readFileSync(f, 'utf8')))
      .map((f) => f.slice(SRC.length));
    expect(readers.sort()).toEqual(['index.ts', 'simulator/cli.ts']);
  });

  it('keeps src/config/ below the gateway: no graphql/, gateway*, index or simulator/ imports', () => {
    const bad: string[] = [];
    for (const file of files(join(SRC, 'config'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)) {
        if (/^\.\.\/(graphql|simulator)\/|^\.\.\/(gateway[^/]*|index)\.js$/.test(m[1]!)) {
          bad.push(`${file.slice(SRC.length)}: ${m[1]}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });
});
