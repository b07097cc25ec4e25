import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { apiKeyAuth, parseApiKeys } from './api-keys.js';
import { authenticateWith } from './authenticate-with.js';
import { OPEN_CALLER, type Authenticate } from './caller.js';
import type { AuthMode, CredentialMethod } from './credentials.js';
import {
  HMAC_ALGORITHMS,
  ASYMMETRIC_ALGORITHMS,
  jwtAuth,
  parsePublicKeyPem,
  type JwtKeySource,
} from './jwt.js';
import { passThroughAuth } from './pass-through.js';

export { apiKeyAuth, generateApiKey, hashApiKey, parseApiKeys, type ApiKeyEntry } from './api-keys.js';
export { authenticateWith } from './authenticate-with.js';
export { jwtAuth, type JwtAuthOptions, type JwtKeySource } from './jwt.js';
export { passThroughAuth, passThroughCaller } from './pass-through.js';
export type { AuthMode, CredentialMethod, Credentials } from './credentials.js';

/** Options of `authFromEnv`. */
export interface AuthFromEnvOptions {
  /** The gateway runs on the embedded simulator (no Atlas credentials): open access is the default. */
  demo: boolean;
}

/** How callers are authenticated, and a one-word summary for the start-up line. */
export interface AuthSetup {
  authenticate: Authenticate;
  /** e.g. `apikey,jwt`, `none`, or `none (demo)`. */
  mode: string;
}

/** Tried in this order whatever the order in `GATEWAY_AUTH`: a known API key is cheapest to check. */
const ORDER: readonly AuthMode[] = ['apikey', 'jwt', 'passthrough'];
const VARS: Record<AuthMode, readonly string[]> = {
  apikey: ['GATEWAY_API_KEYS', 'GATEWAY_API_KEYS_FILE'],
  jwt: [
    'GATEWAY_JWT_JWKS_URL',
    'GATEWAY_JWT_PUBLIC_KEY',
    'GATEWAY_JWT_SECRET',
    'GATEWAY_JWT_ISSUER',
    'GATEWAY_JWT_AUDIENCE',
    'GATEWAY_JWT_PROJECTS_CLAIM',
    'GATEWAY_JWT_RIGHTS_CLAIM',
    'GATEWAY_JWT_CLOCK_TOLERANCE_SEC',
    'GATEWAY_JWT_ALGORITHMS',
  ],
  passthrough: [],
};
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

const REFUSE =
  'GATEWAY_AUTH: not set, and the gateway is talking to real Atlas, so it refuses to start: without ' +
  'caller authentication anyone who can reach it would act with its Atlas credentials. Set ' +
  'GATEWAY_AUTH to apikey, jwt and/or passthrough (comma list, with their variables), or ' +
  'GATEWAY_AUTH=none to allow open access on purpose (e.g. behind an authenticating proxy)';

/**
 * Caller authentication from the environment, secure by default: open access only in demo mode with
 * `GATEWAY_AUTH` unset, or with `GATEWAY_AUTH=none` said explicitly. Every bad variable is reported at
 * once in a `ConfigError` (name, what was expected, what arrived; secrets are described, never shown).
 */
export function authFromEnv(env: NodeJS.ProcessEnv, options: AuthFromEnvOptions): AuthSetup {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const list = (name: string) =>
    str(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');

  const raw = str('GATEWAY_AUTH');
  let modes: AuthMode[] | 'none' | undefined;
  if (raw !== undefined) {
    const items = raw.split(',').map((s) => s.trim().toLowerCase());
    const bad = items.filter((s) => s !== 'none' && !ORDER.includes(s as AuthMode));
    if (bad.length > 0 || (items.includes('none') && items.length > 1)) {
      problems.push(
        `GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got ${JSON.stringify(raw)}`,
      );
    } else {
      modes = items.includes('none') ? 'none' : ORDER.filter((m) => items.includes(m));
    }
  } else if (!options.demo) {
    problems.push(REFUSE);
  }

  // Variables of a method that is not enabled would be silently ignored: the operator believes
  // something is enforced that is not.
  for (const mode of ORDER) {
    if (Array.isArray(modes) && modes.includes(mode)) continue;
    if (raw !== undefined && modes === undefined) continue; // GATEWAY_AUTH itself is already reported
    for (const name of VARS[mode]) {
      if (str(name) !== undefined) {
        problems.push(
          `${name}: set, but GATEWAY_AUTH (${raw === undefined ? 'unset' : JSON.stringify(raw)}) does not include ${mode}; add it or unset ${name}`,
        );
      }
    }
  }

  const methods: CredentialMethod[] = [];
  if (Array.isArray(modes)) {
    for (const mode of modes) {
      const method =
        mode === 'apikey'
          ? apiKeysFromEnv(str, problems)
          : mode === 'jwt'
            ? jwtFromEnv(str, list, problems)
            : passThroughAuth({ acceptBearer: modes.length === 1 });
      if (method) methods.push(method);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (modes === 'none') return { authenticate: async () => OPEN_CALLER, mode: 'none' };
  if (modes === undefined) return { authenticate: async () => OPEN_CALLER, mode: 'none (demo)' };
  return { authenticate: authenticateWith(methods), mode: modes.join(',') };
}

type Str = (name: string) => string | undefined;

function apiKeysFromEnv(str: Str, problems: string[]): CredentialMethod | undefined {
  const inline = str('GATEWAY_API_KEYS');
  const file = str('GATEWAY_API_KEYS_FILE');
  if (inline !== undefined && file !== undefined) {
    problems.push('GATEWAY_API_KEYS_FILE: set together with GATEWAY_API_KEYS; expected only one of them');
    return undefined;
  }
  if (inline === undefined && file === undefined) {
    problems.push(
      'GATEWAY_API_KEYS: not set, and neither is GATEWAY_API_KEYS_FILE; GATEWAY_AUTH includes apikey, so one is expected (a JSON array of {id, hash, projects, rights})',
    );
    return undefined;
  }
  let json = inline;
  let source = 'GATEWAY_API_KEYS';
  if (file !== undefined) {
    source = `GATEWAY_API_KEYS_FILE (${file})`;
    try {
      json = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(
        `GATEWAY_API_KEYS_FILE: expected a readable file, got "${file}" (${(err as { code?: string }).code ?? 'unreadable'})`,
      );
      return undefined;
    }
  }
  const before = problems.length;
  const keys = parseApiKeys(json ?? '', source, problems);
  return problems.length > before ? undefined : apiKeyAuth({ keys });
}

function jwtFromEnv(
  str: Str,
  list: (name: string) => string[] | undefined,
  problems: string[],
): CredentialMethod | undefined {
  const before = problems.length;
  const jwksUrl = str('GATEWAY_JWT_JWKS_URL');
  const publicKey = str('GATEWAY_JWT_PUBLIC_KEY');
  const secret = str('GATEWAY_JWT_SECRET');
  const sources = [
    ['GATEWAY_JWT_JWKS_URL', jwksUrl],
    ['GATEWAY_JWT_PUBLIC_KEY', publicKey],
    ['GATEWAY_JWT_SECRET', secret],
  ].filter(([, v]) => v !== undefined);
  let key: JwtKeySource | undefined;
  if (sources.length !== 1) {
    problems.push(
      `GATEWAY_JWT_JWKS_URL: expected exactly one of GATEWAY_JWT_JWKS_URL, GATEWAY_JWT_PUBLIC_KEY, GATEWAY_JWT_SECRET (GATEWAY_AUTH includes jwt), got ${sources.length === 0 ? 'none' : sources.map(([n]) => n).join(' and ')}`,
    );
  } else if (jwksUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(jwksUrl);
    } catch {
      url = undefined;
    }
    // Keys fetched over plain http could be swapped in transit: only loopback (tests, sidecars) may.
    if (!url || !(url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)))) {
      problems.push(
        `GATEWAY_JWT_JWKS_URL: expected an https URL (http only on 127.0.0.1, [::1] or localhost), got ${JSON.stringify(jwksUrl)}`,
      );
    } else {
      key = { jwksUrl: url };
    }
  } else if (publicKey !== undefined) {
    try {
      parsePublicKeyPem(publicKey);
      key = { publicKey };
    } catch {
      problems.push(
        `GATEWAY_JWT_PUBLIC_KEY: expected a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate, got ${publicKey.length} characters that do not parse as one`,
      );
    }
  } else if (secret !== undefined) {
    if (Buffer.byteLength(secret, 'utf8') < 32) {
      problems.push(
        `GATEWAY_JWT_SECRET: expected at least 32 bytes (RFC 7518 §3.2 for HS256), got ${Buffer.byteLength(secret, 'utf8')}`,
      );
    } else {
      key = { secret };
    }
  }

  const issuer = list('GATEWAY_JWT_ISSUER');
  if (!issuer?.length) {
    problems.push('GATEWAY_JWT_ISSUER: expected the accepted issuer(s) (iss), comma-separated, got nothing');
  }
  const audience = list('GATEWAY_JWT_AUDIENCE');
  if (!audience?.length) {
    problems.push(
      'GATEWAY_JWT_AUDIENCE: expected the accepted audience(s) (aud), comma-separated, got nothing',
    );
  }
  const claim = (name: string, def: string) => {
    const v = str(name) ?? def;
    if (/\s/.test(v))
      problems.push(`${name}: expected a claim name without spaces, got ${JSON.stringify(v)}`);
    return v;
  };
  const projectsClaim = claim('GATEWAY_JWT_PROJECTS_CLAIM', 'atlas_projects');
  const rightsClaim = claim('GATEWAY_JWT_RIGHTS_CLAIM', 'atlas_rights');

  let clockToleranceSec = 30;
  const tol = str('GATEWAY_JWT_CLOCK_TOLERANCE_SEC');
  if (tol !== undefined) {
    if (!/^\d+$/.test(tol) || Number(tol) > 300) {
      problems.push(
        `GATEWAY_JWT_CLOCK_TOLERANCE_SEC: expected an integer from 0 to 300, got ${JSON.stringify(tol)}`,
      );
    } else {
      clockToleranceSec = Number(tol);
    }
  }

  const algorithms = list('GATEWAY_JWT_ALGORITHMS');
  if (algorithms !== undefined) {
    const allowed = secret !== undefined ? HMAC_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
    const bad = algorithms.filter((a) => !allowed.includes(a));
    if (bad.length > 0 || algorithms.length === 0) {
      problems.push(
        `GATEWAY_JWT_ALGORITHMS: expected a comma list of ${allowed.join(', ')} (${secret !== undefined ? 'with GATEWAY_JWT_SECRET' : 'with a public key or JWKS'}), got ${JSON.stringify(str('GATEWAY_JWT_ALGORITHMS'))}`,
      );
    }
  }

  if (problems.length > before || !key || !issuer || !audience) return undefined;
  return jwtAuth({
    key,
    issuer,
    audience,
    projectsClaim,
    rightsClaim,
    clockToleranceSec,
    ...(algorithms ? { algorithms } : {}),
  });
}
