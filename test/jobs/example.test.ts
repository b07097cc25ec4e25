import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { downloadSnapshot } from '../../examples/download-snapshot.js';
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
