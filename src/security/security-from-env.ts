import { ConfigError } from '../config.js';
import { loadPersistedManifest } from './load-persisted-manifest.js';
import type { PersistedOperationsMode, SecurityOptions } from './security-options.js';

/** Every `GATEWAY_*` variable this module reads, for docs and for `--help`-like listings. */
export const SECURITY_ENV = [
  'GATEWAY_PRODUCTION',
  'GATEWAY_MAX_DEPTH',
  'GATEWAY_MAX_ALIASES',
  'GATEWAY_MAX_TOKENS',
  'GATEWAY_MAX_DIRECTIVES',
  'GATEWAY_MAX_COST',
  'GATEWAY_COST_LIST_SIZE',
  'GATEWAY_BATCH_LIMIT',
  'GATEWAY_MAX_BODY_BYTES',
  'GATEWAY_RATE_LIMIT',
  'GATEWAY_RATE_LIMIT_WINDOW_MS',
  'GATEWAY_TRUST_PROXY',
  'GATEWAY_EXECUTION_TIMEOUT_MS',
  'GATEWAY_PERSISTED_OPERATIONS',
  'GATEWAY_PERSISTED_OPERATIONS_FILE',
  'GATEWAY_CSRF_PREVENTION',
  'GATEWAY_CORS_ORIGINS',
] as const;

/**
 * Reads the security options from the environment. Unset (or empty) variables keep the defaults of
 * `SecurityOptions`. Every bad variable is reported at once, one line each (name, what was expected,
 * what arrived), in a `ConfigError`, which `src/index.ts` already turns into exit code 2.
 */
export function securityFromEnv(env: NodeJS.ProcessEnv): SecurityOptions {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, min: number, max: number): number | undefined => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return undefined;
    }
    return Number(raw);
  };
  const bool = (name: string): boolean | undefined => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    if (raw !== 'true' && raw !== 'false') {
      problems.push(`${name}: expected "true" or "false", got "${raw}"`);
      return undefined;
    }
    return raw === 'true';
  };

  const options: SecurityOptions = {};
  const set = <K extends keyof SecurityOptions>(key: K, value: SecurityOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };

  // GATEWAY_PRODUCTION, when set, wins over NODE_ENV (a staging box may run NODE_ENV=production).
  options.production = bool('GATEWAY_PRODUCTION') ?? str('NODE_ENV') === 'production';
  set('maxDepth', int('GATEWAY_MAX_DEPTH', 1, 1000));
  set('maxAliases', int('GATEWAY_MAX_ALIASES', 0, 10_000));
  set('maxTokens', int('GATEWAY_MAX_TOKENS', 10, 1_000_000));
  set('maxDirectives', int('GATEWAY_MAX_DIRECTIVES', 0, 10_000));
  set('maxCost', int('GATEWAY_MAX_COST', 1, 1_000_000_000));
  set('costListSize', int('GATEWAY_COST_LIST_SIZE', 1, 100_000));
  set('batchLimit', int('GATEWAY_BATCH_LIMIT', 0, 1000));
  set('maxBodyBytes', int('GATEWAY_MAX_BODY_BYTES', 1024, 100 * 1024 * 1024));
  const points = int('GATEWAY_RATE_LIMIT', 0, 1_000_000_000);
  const windowMs = int('GATEWAY_RATE_LIMIT_WINDOW_MS', 1000, 86_400_000);
  if (points === 0) options.rateLimit = false;
  else if (points !== undefined || windowMs !== undefined) {
    options.rateLimit = { points: points ?? 300, windowMs: windowMs ?? 60_000 };
  }
  set('trustProxy', bool('GATEWAY_TRUST_PROXY'));
  set('executionTimeoutMs', int('GATEWAY_EXECUTION_TIMEOUT_MS', 0, 3_600_000));
  set('csrfPrevention', bool('GATEWAY_CSRF_PREVENTION'));

  const mode = str('GATEWAY_PERSISTED_OPERATIONS');
  const file = str('GATEWAY_PERSISTED_OPERATIONS_FILE');
  if (mode !== undefined && !['off', 'allow', 'enforce'].includes(mode)) {
    problems.push(`GATEWAY_PERSISTED_OPERATIONS: expected "off", "allow" or "enforce", got "${mode}"`);
  } else if (mode === 'allow' || mode === 'enforce') {
    options.persistedOperations = mode as PersistedOperationsMode;
    if (file === undefined) {
      problems.push(
        `GATEWAY_PERSISTED_OPERATIONS_FILE: expected the path of the manifest JSON (GATEWAY_PERSISTED_OPERATIONS is "${mode}"), got nothing`,
      );
    } else {
      try {
        options.persistedManifest = loadPersistedManifest(file);
      } catch (err) {
        problems.push(
          `GATEWAY_PERSISTED_OPERATIONS_FILE: expected a JSON object of sha256 → document, got ${(err as Error).message}`,
        );
      }
    }
  }

  const origins = str('GATEWAY_CORS_ORIGINS');
  if (origins !== undefined) {
    const list = origins
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o !== '');
    const normalized = list.map((o) => (o === '*' ? o : toOrigin(o)));
    const bad = list.filter((_, i) => normalized[i] === undefined);
    if (bad.length > 0 || list.length === 0) {
      problems.push(
        `GATEWAY_CORS_ORIGINS: expected a comma list of origins (https://app.example.com) or "*", got ${bad.length > 0 ? bad.map((b) => `"${b}"`).join(', ') : `"${origins}"`}`,
      );
    } else options.corsOrigins = normalized.filter((o) => o !== undefined);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return options;
}

/** `scheme://host[:port]` as a browser sends it in `Origin` (a trailing slash is forgiven), or undefined. */
function toOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    const ok = ['http:', 'https:'].includes(url.protocol) && url.origin === value.replace(/\/$/, '');
    return ok ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
