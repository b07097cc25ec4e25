import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PersistedManifest } from './security-options.js';

/** The hash persisted operations are keyed by: sha256 of the document text, lowercase hex. */
export function sha256Hex(document: string): string {
  return createHash('sha256').update(document, 'utf8').digest('hex');
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Checks a parsed manifest and returns it as a map. Two shapes are accepted: the graphql-codegen
 * client preset's `persisted-documents.json` (`{ "<sha256>": "query …" }`) and Apollo's
 * `persisted-query-manifest.json`
 * (`{ format: "apollo-persisted-query-manifest", operations: [{ id, body }] }`).
 * Every key must be the sha256 of its document, so a manifest built with another hash (or edited by
 * hand) fails at start-up instead of rejecting every request.
 */
export function parsePersistedManifest(json: unknown): PersistedManifest {
  const entries: [string, unknown][] = [];
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TypeError(`expected a JSON object of sha256 → document, got ${describe(json)}`);
  }
  const obj = json as Record<string, unknown>;
  if (obj.format === 'apollo-persisted-query-manifest') {
    if (!Array.isArray(obj.operations)) {
      throw new TypeError(`expected "operations" to be an array, got ${describe(obj.operations)}`);
    }
    for (const [i, op] of (obj.operations as unknown[]).entries()) {
      const o = (typeof op === 'object' && op !== null ? op : {}) as Record<string, unknown>;
      if (typeof o.id !== 'string')
        throw new TypeError(`operations[${i}].id: expected a string, got ${describe(o.id)}`);
      entries.push([o.id, o.body]);
    }
  } else {
    entries.push(...Object.entries(obj));
  }
  const manifest = new Map<string, string>();
  for (const [hash, document] of entries) {
    if (!SHA256.test(hash)) {
      throw new TypeError(`key "${short(hash)}": expected a sha256 as 64 lowercase hex digits`);
    }
    if (typeof document !== 'string' || document.trim() === '') {
      throw new TypeError(`"${hash}": expected a GraphQL document (a string), got ${describe(document)}`);
    }
    const actual = sha256Hex(document);
    if (actual !== hash) {
      throw new TypeError(`"${hash}": the sha256 of its document is ${actual} (not built with sha256?)`);
    }
    manifest.set(hash, document);
  }
  return manifest;
}

/** Reads and checks a manifest file (see `parsePersistedManifest`); throws with what is wrong. */
export function loadPersistedManifest(path: string): PersistedManifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TypeError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parsePersistedManifest(json);
  } catch (err) {
    throw new TypeError(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `"${short(v)}"` : typeof v;
}

const short = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);
