import { createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { passThroughAuth } from '../../src/callers/pass-through.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';
import { subscribeSse } from '../support/sse.js';
import { OWNER, READ_ONLY, startStack, type Stack } from '../support/stack.js';

// A pass-through caller's subscription reads Atlas with that caller's own token, never with the
// gateway's credentials, and shares its poller with nobody else: each token has its own poller and
// its own upstream reads, and a caller whose token Atlas refuses gets that refusal, not the state
// another caller's poller already read.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const JOB_MS = 10_000;
const READ_JOB = 'getGroupFlexClusterBackupRestoreJob';
/** RFC 6750-shaped, so the gateway sends it on; Atlas does not know it. */
const BAD_TOKEN = 'not-a-live-token';
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;

/** One answer of a subscription: a job state, errors, or the end of the stream. */
type Answer =
  { status: string } | { errors: { message: string; extensions?: Record<string, unknown> }[] } | 'end';

interface Watch {
  next(): Promise<Answer>;
}

type Transport = (url: string, token: string, vars: Record<string, unknown>) => Promise<Watch>;

const overSse: Transport = async (url, token, vars) => {
  const sub = track(await subscribeSse(url, WATCH, vars, { 'x-atlas-access-token': token }), 'sse');
  return {
    async next() {
      const e = await sub.next();
      if (!e || e.event === 'complete') return 'end';
      const body = e.data as {
        data?: { restoreJobStatus: { status: string } };
        errors?: { message: string; extensions?: Record<string, unknown> }[];
      };
      return body.errors ? { errors: body.errors } : { status: body.data!.restoreJobStatus.status };
    },
  };
};

const overWs: Transport = async (url, token, vars) => {
  const client = createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    // Browsers cannot set headers on a WebSocket: the token travels in connectionParams.
    connectionParams: { 'x-atlas-access-token': token },
  });
  track({ close: () => client.dispose() }, 'graphql-ws client');
  const queue: Answer[] = [];
  const waiters: ((a: Answer) => void)[] = [];
  const deliver = (a: Answer) => {
    const w = waiters.shift();
    if (w) w(a);
    else queue.push(a);
  };
  client.subscribe<{ restoreJobStatus: { status: string } }>(
    { query: WATCH, variables: vars },
    {
      next: (r) =>
        deliver(
          r.errors
            ? { errors: r.errors as { message: string; extensions?: Record<string, unknown> }[] }
            : { status: r.data!.restoreJobStatus.status },
        ),
      // graphql-ws ends a stream with `error` instead of `complete` when it fails.
      error: (e) => {
        deliver({
          errors: Array.isArray(e)
            ? (e as { message: string; extensions?: Record<string, unknown> }[])
            : [{ message: String(e) }],
        });
        deliver('end');
      },
      complete: () => deliver('end'),
    },
  );
  return {
    next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))),
  };
};

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

async function setup() {
  const timers = new ManualTimers();
  const stack = await startStack({
    sim: { jobMs: JOB_MS },
    // The gateway has credentials of its own (the owner's): they must never be used for these callers.
    gateway: { authenticate: authenticateWith([passThroughAuth()]), pollIntervalMs: 10, timers },
  });
  stacks.push(stack);
  const url = await stack.gateway.listen(0);
  /** A service-account token of one of the simulator's clients, as a caller would hold it. */
  const tokenOf = async (cred: { clientId: string; clientSecret: string }) => {
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
  };
  const owner = await tokenOf(OWNER);
  const reader = await tokenOf(READ_ONLY);
  expect(owner).not.toBe(reader);
  // A download job of the owner, made through the gateway with the owner's own token.
  const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      'x-atlas-access-token': owner,
    },
    body: JSON.stringify({
      query: `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id status } } }`,
      variables: {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    }),
  });
  const body = (await res.json()) as { data: { requestDownload: { job: { id: string; status: string } } } };
  expect(body.data.requestDownload.job.status).toBe('QUEUED');
  const vars = { p: P, c: F.clusterName, j: body.data.requestDownload.job.id };
  /** The Authorization of each upstream read of the job since `from` (an index into the requests). */
  const readsSince = (from: number) =>
    stack.sim
      .stats()
      .requests.slice(from)
      .filter((r) => r.operationId === READ_JOB)
      .map((r) => r.authorization);
  return { stack, url, timers, owner, reader, vars, readsSince };
}

describe.each([
  ['SSE', overSse],
  ['graphql-ws', overWs],
])('pass-through restoreJobStatus over %s', (_name, open) => {
  it("polls with each caller's own token: two tokens, two pollers, never the gateway's credentials", async () => {
    const { stack, url, timers, owner, reader, vars, readsSince } = await setup();
    const issued = stack.sim.auth.stats().tokensIssued;
    const mark = stack.sim.stats().requests.length;

    const a = await open(url, owner, vars);
    expect(await a.next()).toEqual({ status: 'QUEUED' });
    const b = await open(url, reader, vars);
    expect(await b.next()).toEqual({ status: 'QUEUED' });
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 2, subscribers: 2 });
    // The owner's poller starts from its own mutation's answer (issue #19); the reader's reads.
    expect(readsSince(mark)).toEqual([`Bearer ${reader}`]);

    stack.clock.advance(JOB_MS / 2);
    expect(timers.fire()).toBe(2);
    expect(await a.next()).toEqual({ status: 'RUNNING' });
    expect(await b.next()).toEqual({ status: 'RUNNING' });
    stack.clock.advance(JOB_MS);
    expect(timers.fire()).toBe(2);
    expect(await a.next()).toEqual({ status: 'COMPLETED' });
    expect(await b.next()).toEqual({ status: 'COMPLETED' });
    expect(await a.next()).toBe('end');
    expect(await b.next()).toBe('end');

    // The reader read three times (QUEUED, RUNNING, COMPLETED), the owner twice (its QUEUED was its
    // mutation's answer), each with its caller's own token.
    const reads = readsSince(mark);
    expect(reads.filter((h) => h === `Bearer ${owner}`)).toHaveLength(2);
    expect(reads.filter((h) => h === `Bearer ${reader}`)).toHaveLength(3);
    expect(reads).toHaveLength(5);
    // Not one upstream request of any kind carried anything else, and the gateway got no token.
    expect(
      stack.sim
        .stats()
        .requests.slice(mark)
        .filter((r) => r.authorization !== `Bearer ${owner}` && r.authorization !== `Bearer ${reader}`),
    ).toEqual([]);
    expect(stack.sim.auth.stats().tokensIssued).toBe(issued);
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
  });

  it("gives a caller whose token Atlas refuses its refusal, not the state of another caller's poller", async () => {
    const { stack, url, timers, owner, vars, readsSince } = await setup();
    const mark = stack.sim.stats().requests.length;
    const good = await open(url, owner, vars);
    expect(await good.next()).toEqual({ status: 'QUEUED' });
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });

    const bad = await open(url, BAD_TOKEN, vars);
    const refused = await bad.next();
    expect(refused).toMatchObject({
      errors: [{ message: 'Atlas did not accept the credentials.', extensions: { code: 'UNAUTHENTICATED' } }],
    });
    expect(await bad.next()).toBe('end');
    // Its own poller read once, with its own token, and stopped; the good one (started from the
    // owner's mutation's answer, issue #19) runs on untouched.
    expect(readsSince(mark)).toEqual([`Bearer ${BAD_TOKEN}`]);
    await expect.poll(() => stack.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });

    stack.clock.advance(2 * JOB_MS);
    expect(timers.fire()).toBe(1);
    expect(await good.next()).toEqual({ status: 'COMPLETED' });
    expect(await good.next()).toBe('end');
    expect(readsSince(mark)).toEqual([`Bearer ${BAD_TOKEN}`, `Bearer ${owner}`]);
  });
});
