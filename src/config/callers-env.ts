import { readFileSync } from 'node:fs';
import { parseApiKeys, type ApiKeyEntry } from '../callers/api-keys.js';
import type { AuthMode } from '../callers/credentials.js';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, parsePublicKeyPem } from '../callers/jwt.js';
import { commaList, envVar, integer, invalid, text } from './env-var.js';
import type { CallersConfig, JwtConfig } from './gateway-config.js';
import type { EnvReading, EnvValues } from './read-env.js';

/** Tried in this order whatever the order in `GATEWAY_AUTH`: a known API key is cheapest to check. */
const METHODS: readonly AuthMode[] = ['apikey', 'jwt', 'passthrough'];
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

const claimName = (value: string) => (/\s/.test(value) ? invalid('a claim name without spaces') : value);

export const callersEnv = {
  GATEWAY_AUTH: envVar(
    {
      group: 'callers',
      description:
        'How callers authenticate: `none` (open access on purpose), or a comma list of `apikey`, `jwt`, `passthrough` (any case).',
      example: 'apikey,jwt',
      defaultText: 'unset: open in demo mode; against real Atlas the gateway refuses to start',
    },
    (value): 'none' | AuthMode[] | ReturnType<typeof invalid> => {
      const items = commaList(value).map((item) => item.toLowerCase());
      const expected = '"none" or a comma list of apikey, jwt, passthrough';
      const known = items.every((item) => item === 'none' || (METHODS as string[]).includes(item));
      if (items.length === 0 || !known || (items.includes('none') && items.length > 1))
        return invalid(expected);
      return items.includes('none') ? 'none' : METHODS.filter((m) => items.includes(m));
    },
  ),
  GATEWAY_API_KEYS: envVar(
    {
      group: 'callers',
      description:
        'The API keys, as a JSON array of `{id, hash: "sha256:<hex>", projects: [ids] | "*", rights: ["read","download","restore"]}`.',
      example: '[]',
      secret: true,
    },
    text,
  ),
  GATEWAY_API_KEYS_FILE: envVar(
    {
      group: 'callers',
      description: 'A file holding the same JSON as GATEWAY_API_KEYS (set only one of the two).',
      example: '/run/secrets/gateway-keys.json',
    },
    text,
  ),
  GATEWAY_JWT_JWKS_URL: envVar(
    {
      group: 'callers',
      description: "The identity provider's JWKS, cached 10 minutes (https, or http on loopback only).",
      example: 'https://idp.example.com/.well-known/jwks.json',
    },
    (value) => {
      let url: URL | undefined;
      try {
        url = new URL(value);
      } catch {
        url = undefined;
      }
      // Keys fetched over plain http could be swapped in transit: only loopback (tests, sidecars) may.
      const ok =
        url !== undefined &&
        (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)));
      return ok ? value : invalid('an https URL (http only on 127.0.0.1, [::1] or localhost)');
    },
  ),
  GATEWAY_JWT_PUBLIC_KEY: envVar(
    {
      group: 'callers',
      description: 'The PEM public key or certificate JWTs are signed with (`\\n` may be written literally).',
      example:
        '-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAH5izrQEsIccoCn2vOXAdXda9n9h9ZCJJRPWWXlCRwOA=\\n-----END PUBLIC KEY-----',
    },
    (value) => {
      try {
        parsePublicKeyPem(value);
        return value;
      } catch {
        return invalid(
          'a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate',
          `${value.length} characters that do not parse as one`,
        );
      }
    },
  ),
  GATEWAY_JWT_SECRET: envVar(
    {
      group: 'callers',
      description: 'The HMAC (HS256) shared secret JWTs are signed with, at least 32 bytes.',
      example: 'an-hs256-secret-of-at-least-32-bytes!!',
      secret: true,
    },
    (value) => {
      const bytes = Buffer.byteLength(value, 'utf8');
      return bytes >= 32 ? value : invalid('at least 32 bytes (RFC 7518 §3.2 for HS256)', String(bytes));
    },
  ),
  GATEWAY_JWT_ISSUER: envVar(
    {
      group: 'callers',
      description: 'The accepted `iss` values, comma-separated (required with jwt).',
      example: 'https://idp.example.com/',
    },
    commaList,
  ),
  GATEWAY_JWT_AUDIENCE: envVar(
    {
      group: 'callers',
      description: 'The accepted `aud` values, comma-separated (required with jwt).',
      example: 'atlas-backup-gateway',
    },
    commaList,
  ),
  GATEWAY_JWT_PROJECTS_CLAIM: envVar(
    {
      group: 'callers',
      description: 'The JWT claim holding the caller\'s project ids (an array) or `"*"`.',
      example: 'projects',
      default: 'atlas_projects',
    },
    claimName,
  ),
  GATEWAY_JWT_RIGHTS_CLAIM: envVar(
    {
      group: 'callers',
      description: 'The JWT claim holding `read`/`download`/`restore`; without it the caller may only read.',
      example: 'rights',
      default: 'atlas_rights',
    },
    claimName,
  ),
  GATEWAY_JWT_CLOCK_TOLERANCE_SEC: envVar(
    {
      group: 'callers',
      description: 'Allowed clock skew for `exp` and `nbf`, in seconds (0–300).',
      example: '60',
      default: 30,
    },
    integer(0, 300),
  ),
  GATEWAY_JWT_ALGORITHMS: envVar(
    {
      group: 'callers',
      description: 'The accepted `alg` values, comma-separated.',
      example: 'HS256',
      defaultText: '`HS256` with a secret; RS/PS/ES/EdDSA otherwise',
    },
    commaList,
  ),
};

const METHOD_VARS: Record<AuthMode, readonly (keyof typeof callersEnv)[]> = {
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

const REFUSE =
  'GATEWAY_AUTH: not set, and the gateway is talking to real Atlas, so it refuses to start: without ' +
  'caller authentication anyone who can reach it would act with its Atlas credentials. Set ' +
  'GATEWAY_AUTH to apikey, jwt and/or passthrough (comma list, with their variables), or ' +
  'GATEWAY_AUTH=none to allow open access on purpose (e.g. behind an authenticating proxy)';

type Values = EnvValues<typeof callersEnv>;

/**
 * In production mode, demo mode (no Atlas credentials: the embedded simulator answers) starts only when
 * nothing else is configured either, as `docker run <image>` does, and the start-up line says so. With
 * `GATEWAY_AUTH` set the operator meant a real gateway, and forgotten or misspelt Atlas credentials
 * must stop it rather than have it answer made-up backups.
 */
export function checkProductionDemo(demo: boolean, production: boolean, reading: EnvReading): void {
  if (!demo || !production || !reading.isSet('GATEWAY_AUTH') || reading.refused('GATEWAY_AUTH')) return;
  reading.problem(
    'GATEWAY_AUTH',
    `GATEWAY_AUTH: set (${JSON.stringify(reading.raw('GATEWAY_AUTH'))}) in production mode, but no Atlas credentials are (MONGODB_ATLAS_CLIENT_ID/SECRET or MONGODB_ATLAS_PUBLIC_API_KEY/PRIVATE_API_KEY), so the gateway would answer from its embedded simulator (demo mode); set the credentials, GATEWAY_AUTH=passthrough alone (callers bring their Atlas tokens), or GATEWAY_PRODUCTION=false for a demo`,
  );
}

/**
 * Secure by default: open access only in demo mode with `GATEWAY_AUTH` unset, or with
 * `GATEWAY_AUTH=none` said explicitly.
 */
export function callersFromEnv(v: Values, demo: boolean, reading: EnvReading): CallersConfig {
  const modes = v.GATEWAY_AUTH;
  const authRefused = reading.refused('GATEWAY_AUTH');
  if (modes === undefined && !authRefused && !demo) reading.problem('GATEWAY_AUTH', REFUSE);

  // Variables of a method that is not enabled would be silently ignored: the operator believes
  // something is enforced that is not.
  if (!authRefused) {
    const said = modes === undefined ? 'unset' : JSON.stringify(reading.raw('GATEWAY_AUTH'));
    for (const mode of METHODS) {
      if (Array.isArray(modes) && modes.includes(mode)) continue;
      for (const name of METHOD_VARS[mode]) {
        if (reading.isSet(name)) {
          reading.problem(
            name,
            `${name}: set, but GATEWAY_AUTH (${said}) does not include ${mode}; add it or unset ${name}`,
          );
        }
      }
    }
  }

  const methods = Array.isArray(modes) ? modes : [];
  return {
    gatewayAuth: modes ?? 'unset',
    apiKeys: methods.includes('apikey') ? apiKeysFromEnv(v, reading) : undefined,
    jwt: methods.includes('jwt') ? jwtFromEnv(v, reading) : undefined,
  };
}

/** API keys inline or from a file: exactly one of the two. */
function apiKeysFromEnv(v: Values, reading: EnvReading): ApiKeyEntry[] {
  const inline = v.GATEWAY_API_KEYS;
  const file = v.GATEWAY_API_KEYS_FILE;
  if (inline !== undefined && file !== undefined) {
    reading.problem(
      'GATEWAY_API_KEYS_FILE',
      'GATEWAY_API_KEYS_FILE: set together with GATEWAY_API_KEYS; expected only one of them',
    );
    return [];
  }
  if (inline === undefined && file === undefined) {
    reading.problem(
      'GATEWAY_API_KEYS',
      'GATEWAY_API_KEYS: not set, and neither is GATEWAY_API_KEYS_FILE; GATEWAY_AUTH includes apikey, so one is expected (a JSON array of {id, hash, projects, rights})',
    );
    return [];
  }
  let json = inline ?? '';
  let source = 'GATEWAY_API_KEYS';
  if (file !== undefined) {
    source = `GATEWAY_API_KEYS_FILE (${file})`;
    try {
      json = readFileSync(file, 'utf8');
    } catch (err) {
      reading.problem(
        'GATEWAY_API_KEYS_FILE',
        `GATEWAY_API_KEYS_FILE: expected a readable file, got "${file}" (${(err as { code?: string }).code ?? 'unreadable'})`,
      );
      return [];
    }
  }
  const problems: string[] = [];
  const keys = parseApiKeys(json, source, problems);
  for (const line of problems)
    reading.problem(file !== undefined ? 'GATEWAY_API_KEYS_FILE' : 'GATEWAY_API_KEYS', line);
  return keys;
}

function jwtFromEnv(v: Values, reading: EnvReading): JwtConfig | undefined {
  const sources = (['GATEWAY_JWT_JWKS_URL', 'GATEWAY_JWT_PUBLIC_KEY', 'GATEWAY_JWT_SECRET'] as const).filter(
    (name) => reading.isSet(name),
  );
  if (sources.length !== 1) {
    reading.problem(
      'GATEWAY_JWT_JWKS_URL',
      `GATEWAY_JWT_JWKS_URL: expected exactly one of GATEWAY_JWT_JWKS_URL, GATEWAY_JWT_PUBLIC_KEY, GATEWAY_JWT_SECRET (GATEWAY_AUTH includes jwt), got ${sources.length === 0 ? 'none' : sources.join(' and ')}`,
    );
  }
  const issuer = v.GATEWAY_JWT_ISSUER ?? [];
  if (issuer.length === 0) {
    reading.problem(
      'GATEWAY_JWT_ISSUER',
      'GATEWAY_JWT_ISSUER: expected the accepted issuer(s) (iss), comma-separated, got nothing',
    );
  }
  const audience = v.GATEWAY_JWT_AUDIENCE ?? [];
  if (audience.length === 0) {
    reading.problem(
      'GATEWAY_JWT_AUDIENCE',
      'GATEWAY_JWT_AUDIENCE: expected the accepted audience(s) (aud), comma-separated, got nothing',
    );
  }
  const hmac = reading.isSet('GATEWAY_JWT_SECRET');
  const algorithms = v.GATEWAY_JWT_ALGORITHMS;
  if (algorithms !== undefined) {
    const allowed = hmac ? HMAC_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
    if (algorithms.length === 0 || algorithms.some((a) => !allowed.includes(a))) {
      reading.problem(
        'GATEWAY_JWT_ALGORITHMS',
        `GATEWAY_JWT_ALGORITHMS: expected a comma list of ${allowed.join(', ')} (${hmac ? 'with GATEWAY_JWT_SECRET' : 'with a public key or JWKS'}), got ${JSON.stringify(reading.raw('GATEWAY_JWT_ALGORITHMS'))}`,
      );
    }
  }
  const key =
    v.GATEWAY_JWT_JWKS_URL !== undefined
      ? { jwksUrl: v.GATEWAY_JWT_JWKS_URL }
      : v.GATEWAY_JWT_PUBLIC_KEY !== undefined
        ? { publicKey: v.GATEWAY_JWT_PUBLIC_KEY }
        : v.GATEWAY_JWT_SECRET !== undefined
          ? { secret: v.GATEWAY_JWT_SECRET }
          : undefined;
  if (key === undefined) return undefined;
  return {
    key,
    issuer,
    audience,
    projectsClaim: v.GATEWAY_JWT_PROJECTS_CLAIM,
    rightsClaim: v.GATEWAY_JWT_RIGHTS_CLAIM,
    clockToleranceSec: v.GATEWAY_JWT_CLOCK_TOLERANCE_SEC,
    algorithms,
  };
}
