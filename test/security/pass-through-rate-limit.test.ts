import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { OWNER, READ_ONLY, startStack, type Stack } from '../support/stack.js';
import { outcome, overSse, wsClient, type Followed } from '../support/subscription-clients.js';

// Finding 6 (issue #15): in pass-through mode the rate limit was keyed on the caller id, which is
// only the hash of whatever token the client sent: 50 made-up tokens made 50 Atlas requests and never
// met RATE_LIMITED. Until Atlas has accepted a token once, its caller is now counted by client
// address, so made-up tokens from one client share one budget; a token Atlas accepted has its own.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const PROJECT = `{ project(id: "${P}") { name } }`;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const FINISHED = { p: P, c: F.clusterName, j: F.downloadJobId };

/** RFC 6750-shaped, so the gateway sends it on; Atlas does not know it. */
const madeUpToken = () => randomBytes(24).toString('base64url');

/** Pass-through callers only, and a rate limit of 5 operations a minute. */
async function passThroughStack(): Promise<{ stack: Stack; url: string }> {
  const stack = await startStack({ env: { GATEWAY_AUTH: 'passthrough', GATEWAY_RATE_LIMIT: '5' } });
  // A real socket: the address the limit falls back to is the client's.
  return { stack, url: await stack.gateway.listen(0) };
}

/** A query over HTTP with `token`: status and first error code (or `data`). */
async function queryWith(url: string, token: string): Promise<string> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-atlas-access-token': token },
    body: JSON.stringify({ query: PROJECT }),
  });
  const body = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
  return `${res.status} ${body.errors?.[0]?.extensions?.code ?? 'data'}`;
}

/** A service-account token Atlas (the simulator) issued, as a caller would hold it. */
async function tokenOf(stack: Stack, cred: { clientId: string; clientSecret: string }): Promise<string> {
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

const tally = (answers: string[]) =>
  answers.reduce<Record<string, number>>((t, a) => ({ ...t, [a]: (t[a] ?? 0) + 1 }), {});

describe('finding 6: the pass-through rate limit is not keyed on an unverified token', () => {
  it('finding 6: 50 made-up tokens over HTTP from one client make 5 Atlas requests, then RATE_LIMITED', async () => {
    const { stack, url } = await passThroughStack();
    const answers: string[] = [];
    const calls = await stack.upstreamCalls(async () => {
      for (let i = 0; i < 50; i++) answers.push(await queryWith(url, madeUpToken()));
    });
    // Each of the 5 reached Atlas once (GET project), which refused the token.
    expect(calls.map((c) => c.operationId)).toEqual(Array<string>(5).fill('getGroup'));
    expect(tally(answers)).toEqual({ '200 UNAUTHENTICATED': 5, '429 RATE_LIMITED': 45 });
  });

  it('finding 6: 50 made-up tokens over SSE and over graphql-ws make 3 Atlas requests each, then RATE_LIMITED', async () => {
    // A refused subscription counts twice (finding 3): 5 points cover 3 of them.
    for (const transport of ['sse', 'ws'] as const) {
      const { stack, url } = await passThroughStack();
      const answers: string[] = [];
      const calls = await stack.upstreamCalls(async () => {
        for (let i = 0; i < 50; i++) {
          const token = madeUpToken();
          // Over graphql-ws the token travels in connectionParams: one socket per token.
          const answer: Followed =
            transport === 'sse'
              ? await overSse(url, WATCH, FINISHED, { 'x-atlas-access-token': token })
              : await wsClient(url, { 'x-atlas-access-token': token }).follow(WATCH, FINISHED);
          answers.push(`${answer.status ?? 'ws'} ${outcome(answer)}`);
        }
      });
      expect(calls.map((c) => c.operationId)).toEqual(
        Array<string>(3).fill('getGroupFlexClusterBackupRestoreJob'),
      );
      const ok = transport === 'sse' ? '200' : 'ws';
      const limited = transport === 'sse' ? '429' : 'ws';
      expect(tally(answers)).toEqual({ [`${ok} UNAUTHENTICATED`]: 3, [`${limited} RATE_LIMITED`]: 47 });
    }
  });

  it('finding 6: a token Atlas accepted once is counted on its own, one it never accepted by address', async () => {
    const { stack, url } = await passThroughStack();
    const owner = await tokenOf(stack, OWNER);
    const reader = await tokenOf(stack, READ_ONLY);

    // Its first use counts against the address; Atlas's 200 makes it a caller of its own.
    expect(await queryWith(url, owner)).toBe('200 data');
    const made: string[] = [];
    for (let i = 0; i < 10; i++) made.push(await queryWith(url, madeUpToken()));
    expect(tally(made)).toEqual({ '200 UNAUTHENTICATED': 4, '429 RATE_LIMITED': 6 });

    const calls = await stack.upstreamCalls(async () => {
      // The accepted token is not held back by the address it shares with the made-up ones...
      expect(await queryWith(url, owner)).toBe('200 data');
      // ...and a genuine token Atlas has not seen from this gateway yet is, until it is accepted.
      expect(await queryWith(url, reader)).toBe('429 RATE_LIMITED');
    });
    expect(calls.map((c) => c.operationId)).toEqual(['getGroup']);
  });
});
