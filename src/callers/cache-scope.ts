import { createHash } from 'node:crypto';
import type { Caller } from './caller.js';

/**
 * A fingerprint of what a caller may see and do (its projects and rights), never who it is: callers
 * with the same visibility and rights share cached Atlas answers read with the gateway's credentials,
 * callers with any difference never do. A pass-through caller's token is its own scope (the Atlas
 * client hashes it), so this is only a partition within the gateway's credentials.
 */
export function cacheScopeOf(caller: Caller): string {
  let scope = SCOPES.get(caller);
  if (scope === undefined) {
    const projects = caller.projects === 'all' ? '*' : [...caller.projects].sort().join(',');
    const rights = [...caller.rights].sort().join(',');
    scope = createHash('sha256').update(`${projects}\n${rights}`).digest('base64url');
    SCOPES.set(caller, scope);
  }
  return scope;
}

// API-key and open callers are one object per key for the gateway's life, and every request asked for
// their scope again: a SHA-256 each, ~2 % of a small query's CPU (docs/benchmarks.md). Callers are not
// changed once made, so their scope is not either.
const SCOPES = new WeakMap<Caller, string>();

/**
 * Whether the GraphQL request asks for fresh data: `Cache-Control: no-cache` (or `max-age=0`, or the
 * HTTP/1.0 `Pragma: no-cache`), as a browser's hard reload sends. Its reads go upstream and refresh
 * the cache for the callers after it.
 */
export function wantsFreshData(headers: Headers): boolean {
  const cc = (headers.get('cache-control') ?? '').toLowerCase();
  const directives = cc.split(',').map((d) => d.trim());
  return (
    directives.includes('no-cache') ||
    directives.includes('no-store') ||
    directives.includes('max-age=0') ||
    (cc === '' && (headers.get('pragma') ?? '').toLowerCase().includes('no-cache'))
  );
}
