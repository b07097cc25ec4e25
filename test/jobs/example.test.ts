import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_DOWNLOAD_DIR, downloadSnapshot } from '../../examples/download-snapshot.js';
import { track } from '../support/disposer.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let url: string;
let dir: string;
beforeAll(async () => {
  stack = await startStack({ sim: { jobMs: 10_000 }, gateway: { pollIntervalMs: 10 } });
  url = await stack.gateway.listen(0);
  dir = await mkdtemp(join(tmpdir(), 'atlas-example-'));
});
afterAll(async () => {
  await stack.close();
  await rm(dir, { recursive: true, force: true });
});

it('examples/download-snapshot.ts requests, follows and saves a real .tgz', async () => {
  const statuses: string[] = [];
  const path = await downloadSnapshot({
    gatewayUrl: url,
    outDir: dir,
    onStatus: (s) => {
      statuses.push(s);
      // The simulator's jobs run on the test's clock: move it along as the job reports.
      stack.clock.advance(6_000);
    },
  });
  expect(statuses.at(-1)).toBe('COMPLETED');
  expect(path).toMatch(/[a-f0-9]{24}\.tgz$/);
  const tar = gunzipSync(await readFile(path));
  expect(tar.subarray(257, 262).toString()).toBe('ustar');
});

it('run as a script: GATEWAY_URL names the gateway, DOWNLOAD_DIR the folder, and it prints where it saved', async () => {
  // Its own stack: the script cannot move a test clock, so the simulator's jobs complete at once.
  const quick = await startStack({ sim: { jobMs: 0 }, gateway: { pollIntervalMs: 10 } });
  const gateway = await quick.gateway.listen(0);
  const out = join(dir, 'named by DOWNLOAD_DIR');
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/download-snapshot.ts'], {
    cwd: new URL('../../', import.meta.url),
    env: { PATH: process.env.PATH ?? '', GATEWAY_URL: gateway, DOWNLOAD_DIR: out },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track({ close: () => void child.kill('SIGKILL') }, 'example script');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code, stderr).toBe(0);
  const saved = /^saved (.+\.tgz)$/m.exec(stdout)?.[1];
  expect(saved, stdout).toBeDefined();
  expect(dirname(saved!)).toBe(out);
  expect(
    gunzipSync(await readFile(saved!))
      .subarray(257, 262)
      .toString(),
  ).toBe('ustar');
});

it('saves into the OS temp dir when no folder is named, never into the working copy', () => {
  expect(DEFAULT_DOWNLOAD_DIR.startsWith(tmpdir())).toBe(true);
});
