import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { passThroughAuth } from '../../src/callers/pass-through.js';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import { wsClient } from '../support/subscription-clients.js';
import { OWNER, READ_ONLY, startStack, type Stack } from '../support/stack.js';
import { operationOver } from '../support/transports.js';

// Pass-through callers read the feed and follow job events with their own Atlas token: the
// gateway's own credentials (the owner's service account) never reach Atlas for them, and their
// pollers are theirs alone.

const A = SEED.projects.analytics.id;
const P = SEED.projects.payments.id;

let stack: Stack;
let url: string;
let timers: ManualTimers;
let owner: string;
let reader: string;

async function tokenOf(cred: { clientId: string; clientSecret: string }) {
  const res = await fetch(`${stack.sim.url}/api/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${cred.clientId}:${cred.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

beforeAll(async () => {
  timers = new ManualTimers();
  stack = await startStack({
    gateway: { authenticate: authenticateWith([passThroughAuth()]), pollIntervalMs: 1000, timers },
  });
  url = await stack.gateway.listen(0);
  owner = await tokenOf(OWNER);
  reader = await tokenOf(READ_ONLY);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

describe('the jobs feed and jobEvents for pass-through callers', () => {
  it('reads the feed with the caller’s own token only', async () => {
    const from = stack.sim.stats().requests.length;
    const answer = await operationOver(
      'HTTP',
      url,
      {
        query: `query($f: JobFeedFilter) { jobs(filter: $f, first: 5) { nodes { id cluster { projectId } } } }`,
        variables: { f: { projectIds: [P, A] } },
      },
      { 'x-atlas-access-token': reader },
    );
    expect(answer.errors).toBeUndefined();
    expect((answer.data as { jobs: { nodes: unknown[] } }).jobs.nodes).toHaveLength(5);
    const auths = stack.sim
      .stats()
      .requests.slice(from)
      .filter((r) => !r.operationId.startsWith('oauth.'))
      .map((r) => r.authorization);
    expect(auths.length).toBeGreaterThan(4);
    expect(new Set(auths)).toEqual(new Set([`Bearer ${reader}`]));
  });

  it('gives each pass-through caller pollers of its own, reading with its token', async () => {
    const events = `subscription($f: JobFeedFilter) { jobEvents(filter: $f) { kind job { id } } }`;
    const f = { projectIds: [A], clusterNames: [SEED.flex.other.clusterName] };
    const from = stack.sim.stats().requests.length;
    const subs = [owner, reader].map((token) =>
      wsClient(url, { 'x-atlas-access-token': token }).start(events, { f }),
    );
    // A cluster list and a cluster's jobs per caller: four pollers, not two.
    await until(
      'both callers polled',
      () => stack.gateway.pollers.stats().pollers === 4 && timers.pending === 4,
    );
    const auths = stack.sim
      .stats()
      .requests.slice(from)
      .filter((r) => !r.operationId.startsWith('oauth.'))
      .map((r) => r.authorization);
    expect(auths.sort()).toEqual(
      [
        `Bearer ${owner}`,
        `Bearer ${owner}`,
        `Bearer ${owner}`,
        `Bearer ${reader}`,
        `Bearer ${reader}`,
        `Bearer ${reader}`,
      ].sort(),
    );
    for (const s of subs) s.stop();
    await until('pollers stopped', () => stack.gateway.pollers.stats().pollers === 0);
  });
});
