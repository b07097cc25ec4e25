import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const STAMP = join(ROOT, 'build/.built');
/** What the gateway child runs: compiled by `npm run build`, as the Docker image runs it. */
export const BUILT_GATEWAY_CHILD = join(ROOT, 'build/bench/gateway-child.js');

/**
 * Node flags and environment of the image's `CMD ["node", "src/index.js"]` (Dockerfile runtime stage):
 * plain node on compiled JavaScript, NODE_ENV=production (graphql-js skips its development-only checks
 * then). `--expose-gc` is the bench's own, for the memory rows.
 */
export const IMAGE_NODE_ENV = { NODE_ENV: 'production' } as const;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'results') continue;
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/**
 * Runs `npm run build` when build/ is missing or older than a source it compiles for the gateway child
 * (src/, bench/, tsconfig.json, package.json): the bench never measures stale JavaScript.
 */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(STAMP).mtimeMs;
  } catch {
    // No build yet.
  }
  const sources = Math.max(
    newestMtime(join(ROOT, 'src')),
    newestMtime(join(ROOT, 'bench')),
    statSync(join(ROOT, 'tsconfig.json')).mtimeMs,
    statSync(join(ROOT, 'package.json')).mtimeMs,
  );
  if (built > sources) return;
  console.log('  build/ is missing or stale: npm run build…');
  const run = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`npm run build failed (exit ${run.status ?? run.signal})`);
}
