import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);

it('npm start reports every problem of a bad environment in one run and exits 2', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: ROOT,
    // Only what the test says: the machine's own variables must not add or hide problems.
    env: { PATH: process.env.PATH, PORT: 'abc', GATEWAY_AUTH: 'bogus', GATEWAY_MAX_DEPTH: '-1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(2);
  expect(stderr.trim().split('\n')).toEqual([
    'Invalid configuration:',
    '  - PORT: expected an integer from 0 to 65535, got "abc"',
    '  - GATEWAY_AUTH: expected "none" or a comma list of apikey, jwt, passthrough, got "bogus"',
    '  - GATEWAY_MAX_DEPTH: expected an integer from 1 to 1000, got "-1"',
  ]);
});

it('src/index.ts loads the simulator only in demo mode: no static import reaches it', () => {
  // Follows the imports that stay in the JavaScript (`import type` is erased) from src/index.ts.
  const seen = new Set<string>();
  const visit = (url: URL) => {
    if (seen.has(url.pathname)) return;
    seen.add(url.pathname);
    const source = readFileSync(url, 'utf8');
    for (const m of source.matchAll(/^(?:import|export) (?!type )[^;]*?from '(\.[^']+)\.js'/gm)) {
      visit(new URL(`${m[1]}.ts`, url));
    }
  };
  const index = new URL('src/index.ts', ROOT);
  visit(index);
  const src = new URL('src/', ROOT).pathname;
  const loaded = [...seen].map((p) => p.slice(src.length));
  expect(loaded).toContain('gateway.ts');
  expect(loaded.filter((p) => p.startsWith('simulator/'))).toEqual([]);
  expect(readFileSync(index, 'utf8')).toMatch(
    /if \(config\.demo\) \{\n(?:.*\n){0,3}.*await import\('\.\/simulator\/index\.js'\)/,
  );
});
