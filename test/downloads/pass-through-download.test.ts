import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { passThroughAuth } from '../../src/callers/pass-through.js';
import { SEED } from '../../src/simulator/seed.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';

// A pass-through caller downloads with its own Atlas token: the job is read with it, never with the
// gateway's credentials, and a token Atlas refuses the job to gets no archive.

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const FRESH = SEED.flex.freshDownloadJobId;
const READ_JOB = 'getGroupFlexClusterBackupRestoreJob';

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({ gateway: { authenticate: authenticateWith([passThroughAuth()]) } });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

async function tokenOf(cred: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await request(`${stack.sim.url}/api/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${cred.clientId}:${cred.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  return ((await res.body.json()) as { access_token: string }).access_token;
}

it('reads the job with the caller’s own token and streams the archive', async () => {
  const owner = await tokenOf(OWNER);
  const mark = stack.sim.stats().requests.length;
  const res = await request(`${url}/downloads/${P}/${F}/${FRESH}`, {
    headers: { 'x-atlas-access-token': owner },
  });
  expect(res.statusCode).toBe(200);
  const body = Buffer.from(await res.body.arrayBuffer());
  expect(body.length).toBe(Number(res.headers['content-length']));
  const reads = stack.sim
    .stats()
    .requests.slice(mark)
    .filter((r) => r.operationId === READ_JOB);
  expect(reads.map((r) => r.authorization)).toEqual([`Bearer ${owner}`]);
});

it('gives a token Atlas refuses what Atlas said, and no archive', async () => {
  const before = stack.sim.downloads().started;
  const res = await request(`${url}/downloads/${P}/${F}/${FRESH}`, {
    headers: { 'x-atlas-access-token': 'eyJhbGciOiJSUzI1NiJ9.bm90LWxpdmU.c2ln' },
  });
  expect(res.statusCode).toBe(401);
  expect(
    ((await res.body.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code,
  ).toBe('UNAUTHENTICATED');
  expect(stack.sim.downloads().started).toBe(before);
});
