import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ALL_RIGHTS, type Caller, type Right } from './caller.js';
import { unauthenticated, type CredentialMethod } from './credentials.js';

/** One service's API key as configured: only its hash is stored. */
export interface ApiKeyEntry {
  /** Names the key in logs and rate limits (the caller id is `apikey:<id>`); not a secret. */
  id: string;
  /** `sha256:<64 hex>` of the key (`hashApiKey`). */
  hash: string;
  /** 24-hex Atlas project ids the key may use, or `*` for every project the gateway sees. */
  projects: string[] | '*';
  rights: Right[];
}

const HASH = /^sha256:[0-9a-f]{64}$/;
const PROJECT_ID = /^[0-9a-f]{24}$/;
const KEY_ID = /^[A-Za-z0-9._:@-]{1,64}$/;
const FIELDS = new Set(['id', 'hash', 'projects', 'rights']);

/**
 * `sha256:<hex>` of a key. A fast unsalted hash is enough here, unlike for passwords: keys are long
 * random tokens (`generateApiKey`, 256 bits), so there is nothing to brute-force or look up in a table.
 */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** A fresh key for a service: `agw_` and 32 random bytes (base64url). Shown once, stored only hashed. */
export function generateApiKey(): string {
  return `agw_${randomBytes(32).toString('base64url')}`;
}

/** What arrived, described without echoing it (a misplaced key in the hash field must not be printed). */
function describe(v: unknown): string {
  if (typeof v === 'string') return `a string of ${v.length} characters`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return v === null ? 'null' : typeof v;
}

/**
 * Parses and validates a key list (the JSON of `GATEWAY_API_KEYS` or of the key file). Every problem is
 * pushed, one line each, named `<source>[i].<field>`: what was expected and what arrived (hashes are
 * described, not shown). Returns the valid entries.
 */
export function parseApiKeys(json: string, source: string, problems: string[]): ApiKeyEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    // The parser's message can quote the text, which may hold a key pasted by mistake.
    const at = /position \d+/.exec((err as Error).message)?.[0];
    problems.push(`${source}: expected JSON, got text that does not parse${at ? ` (at ${at})` : ''}`);
    return [];
  }
  if (!Array.isArray(raw)) {
    problems.push(`${source}: expected a JSON array of {id, hash, projects, rights}, got ${describe(raw)}`);
    return [];
  }
  if (raw.length === 0) {
    problems.push(`${source}: expected at least one key, got an empty array`);
    return [];
  }
  const entries: ApiKeyEntry[] = [];
  const ids = new Set<string>();
  const hashes = new Set<string>();
  raw.forEach((item: unknown, i) => {
    const at = `${source}[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(`${at}: expected an object {id, hash, projects, rights}, got ${describe(item)}`);
      return;
    }
    const e = item as Record<string, unknown>;
    const before = problems.length;
    for (const k of Object.keys(e)) {
      if (!FIELDS.has(k)) problems.push(`${at}.${k}: unknown field (expected id, hash, projects, rights)`);
    }
    const { id, hash, projects, rights } = e;
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      problems.push(
        `${at}.id: expected 1-64 characters of A-Z a-z 0-9 . _ : @ -, got ${typeof id === 'string' ? JSON.stringify(id) : describe(id)}`,
      );
    } else if (ids.has(id)) {
      problems.push(`${at}.id: expected a unique id, got "${id}" a second time`);
    }
    if (typeof hash !== 'string' || !HASH.test(hash)) {
      problems.push(
        `${at}.hash: expected "sha256:" and 64 lowercase hex digits (npx tsx src/callers/hash-key.ts <key>), got ${describe(hash)}`,
      );
    } else if (hashes.has(hash)) {
      problems.push(`${at}.hash: expected a unique hash, got the hash of an earlier entry`);
    }
    if (projects !== '*') {
      if (!Array.isArray(projects) || projects.length === 0) {
        problems.push(
          `${at}.projects: expected "*" or a non-empty array of 24-hex project ids, got ${describe(projects)}`,
        );
      } else {
        projects.forEach((p: unknown, j) => {
          if (typeof p !== 'string' || !PROJECT_ID.test(p)) {
            problems.push(
              `${at}.projects[${j}]: expected a 24-hex project id, got ${typeof p === 'string' ? JSON.stringify(p) : describe(p)}`,
            );
          }
        });
      }
    }
    if (!Array.isArray(rights) || rights.length === 0) {
      problems.push(
        `${at}.rights: expected a non-empty array of "read", "download", "restore", got ${describe(rights)}`,
      );
    } else {
      rights.forEach((r: unknown, j) => {
        if (typeof r !== 'string' || !ALL_RIGHTS.has(r as Right)) {
          problems.push(
            `${at}.rights[${j}]: expected "read", "download" or "restore", got ${typeof r === 'string' ? JSON.stringify(r) : describe(r)}`,
          );
        }
      });
    }
    if (problems.length > before) return;
    ids.add(id as string);
    hashes.add(hash as string);
    entries.push({
      id: id as string,
      hash: hash as string,
      projects: projects === '*' ? '*' : [...new Set(projects as string[])],
      rights: [...new Set(rights as Right[])],
    });
  });
  return entries;
}

/** Options of `apiKeyAuth`. */
export interface ApiKeyAuthOptions {
  /** The configured keys (`parseApiKeys`). */
  keys: readonly ApiKeyEntry[];
}

/**
 * API keys for services: `x-api-key: <key>` or `Authorization: Bearer <key>`. An unknown `x-api-key`
 * is refused here; an unknown bearer token is passed on, as it may be a JWT for the next method.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): CredentialMethod {
  const known = options.keys.map((k): { digest: Buffer; caller: Caller } => {
    // Entries built in code skip `parseApiKeys`; a malformed hash would make timingSafeEqual throw later.
    if (!HASH.test(k.hash)) throw new Error(`apiKeyAuth: key "${k.id}" has no valid sha256:<hex> hash`);
    return {
      digest: Buffer.from(k.hash.slice('sha256:'.length), 'hex'),
      caller: {
        id: `apikey:${k.id}`,
        kind: 'apiKey',
        projects: k.projects === '*' ? 'all' : new Set(k.projects),
        rights: new Set(k.rights),
      },
    };
  });
  const match = (key: string): Caller | undefined => {
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let found: Caller | undefined;
    // Every entry is compared, with no early exit: the time taken does not depend on which one matched.
    for (const k of known) {
      if (timingSafeEqual(digest, k.digest) && found === undefined) found = k.caller;
    }
    return found;
  };
  return {
    mode: 'apikey',
    accepts: 'an API key (x-api-key, or Authorization: Bearer)',
    async identify({ apiKey, bearer }) {
      if (apiKey !== undefined) {
        const caller = match(apiKey);
        if (!caller) throw unauthenticated('Unknown API key (x-api-key).');
        return caller;
      }
      if (bearer === undefined) return undefined;
      return match(bearer) ?? { reason: 'the bearer token is not a known API key' };
    },
  };
}
