import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { SEED } from '../../src/simulator/seed.js';
import { ManualTimers } from '../support/manual-timers.js';
import { post } from '../support/security-gateway.js';
import { startStack, type Stack } from '../support/stack.js';
import {
  outcome,
  overSse,
  sseSubscription,
  wsClient,
  type Followed,
} from '../support/subscription-clients.js';

// Finding 3 (issue #15), first half: subscriptions were not metered. With a limit of 20 a minute, 140
// subscriptions after the caller was limited all read Atlas, and 2,000 subscribes for made-up job
// ids on one WebSocket made 3,301 Atlas requests. Starting a subscription now counts against the
// caller's rate limit on every transport (one that fails for the caller's own reason counts twice),
// each caller runs a bounded number at once, and a job Atlas refused is answered from memory.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const READ_JOB = 'getGroupFlexClusterBackupRestoreJob';
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id status } } }`;
const PROJECT = { query: `{ project(id: "${P}") { name } }` };

const KEYS = { alice: generateApiKey(), bob: generateApiKey() };
type Who = keyof typeof KEYS;
const as = (who: Who) => ({ 'x-api-key': KEYS[who] });

/** API-key callers alice and bob, every right, and `env` on top. */
function callersEnv(env: Record<string, string> = {}): Record<string, string> {
  const entries = Object.entries(KEYS).map(([id, key]) => ({
    id,
    hash: hashApiKey(key),
    projects: '*',
    rights: ['read', 'download', 'restore'],
  }));
  return { GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: JSON.stringify(entries), ...env };
}

/** A made-up (well-formed) job id; `i` makes each one different. */
const madeUp = (i: number) => i.toString(16).padStart(24, '0');
const watchVars = (jobId: string) => ({ p: P, c: F.clusterName, j: jobId });
const operations = (calls: { operationId: string }[]) => calls.map((c) => c.operationId);

async function newDownload(stack: Stack, who: Who): Promise<string> {
  const res = await post(
    stack,
    {
      query: DOWNLOAD,
      variables: {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    },
    as(who),
  );
  const data = res.json?.data as { requestDownload: { job: { id: string } } };
  return data.requestDownload.job.id;
}

/** The first error of a followed subscription. */
const firstError = (f: Followed) => f.payloads.flatMap((p) => p.errors ?? [])[0];

describe('finding 3: subscriptions are metered', () => {
  it("finding 3: subscriptions count against the caller's rate limit, over SSE and graphql-ws", async () => {
    const stack = await startStack({ env: callersEnv({ GATEWAY_RATE_LIMIT: '4' }) });
    const url = await stack.gateway.listen(0);
    const ws = wsClient(url, as('alice'));
    const completed = watchVars(F.downloadJobId);

    // Four subscriptions to a finished job: each starts a poller that reads it once, then ends.
    for (const transport of ['sse', 'ws', 'sse', 'ws'] as const) {
      let answer: Followed | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer =
          transport === 'sse'
            ? await overSse(url, WATCH, completed, as('alice'))
            : await ws.follow(WATCH, completed);
      });
      expect(operations(calls)).toEqual([READ_JOB]);
      expect(answer!.payloads).toEqual([
        { data: { restoreJobStatus: { id: F.downloadJobId, status: 'COMPLETED' } } },
      ]);
    }

    // The fifth is over the limit on either transport, and reads nothing.
    let sse: Followed | undefined;
    let overWs: Followed | undefined;
    const refusedCalls = await stack.upstreamCalls(async () => {
      sse = await overSse(url, WATCH, completed, as('alice'));
      overWs = await ws.follow(WATCH, completed);
    });
    expect(refusedCalls).toEqual([]);
    expect(sse!.status).toBe(429);
    for (const refused of [sse!, overWs!]) {
      expect(refused.payloads).toHaveLength(1);
      expect(firstError(refused)).toMatchObject({
        message: expect.stringMatching(/^Rate limit reached: at most 4 operations per 60 s per caller/),
        extensions: { code: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) },
      });
    }
    // A refused operation is an answer on the socket, not a reason to close it.
    expect(ws.closes).toEqual([]);

    // Queries and subscriptions share the one budget; bob has his own.
    expect((await post(stack, PROJECT, as('alice'))).status).toBe(429);
    const bob = await stack.upstreamCalls(async () => {
      expect(outcome(await overSse(url, WATCH, completed, as('bob')))).toBe('data');
    });
    expect(operations(bob)).toEqual([READ_JOB]);
  });

  it('finding 3: a caller runs at most GATEWAY_MAX_SUBSCRIPTIONS subscriptions at once, over SSE and graphql-ws', async () => {
    const stack = await startStack({
      env: callersEnv({ GATEWAY_MAX_SUBSCRIPTIONS: '2' }),
      sim: { jobMs: 60_000 },
      // The pollers wait for the test: no read happens unless a subscription starts one.
      gateway: { timers: new ManualTimers() },
    });
    const url = await stack.gateway.listen(0);
    const jobId = await newDownload(stack, 'alice');
    const ws = wsClient(url, as('alice'));
    const running = watchVars(jobId);
    const queued = { data: { restoreJobStatus: { id: jobId, status: 'QUEUED' } } };

    let first: Awaited<ReturnType<typeof sseSubscription>> | undefined;
    let second: ReturnType<typeof ws.start> | undefined;
    const startCalls = await stack.upstreamCalls(async () => {
      first = await sseSubscription(url, WATCH, running, as('alice'));
      expect(await first.pull()).toBe(true);
      second = ws.start(WATCH, running);
      await expect.poll(() => second!.payloads.length).toBe(1);
    });
    // One poller for the job: the first subscription started from the mutation's answer (the same
    // caller asked for the job just before: issue #19), the second joined; no read at all.
    expect(operations(startCalls)).toEqual([]);
    expect(first!.payloads).toEqual([queued]);
    expect(second!.payloads).toEqual([queued]);

    let sse: Followed | undefined;
    let overWs: Followed | undefined;
    const refusedCalls = await stack.upstreamCalls(async () => {
      sse = await overSse(url, WATCH, running, as('alice'));
      overWs = await ws.follow(WATCH, running);
    });
    expect(refusedCalls).toEqual([]);
    expect(sse!.status).toBe(429);
    for (const refused of [sse!, overWs!]) {
      expect(refused.payloads).toEqual([
        {
          errors: [
            {
              message:
                'Too many subscriptions: at most 2 at once per caller; end one before starting another.',
              extensions: expect.objectContaining({
                code: 'RATE_LIMITED',
                retryable: true,
                maxSubscriptions: 2,
              }),
            },
          ],
        },
      ]);
    }
    expect(ws.closes).toEqual([]);

    // Another caller is not counted with alice.
    const bob = await sseSubscription(url, WATCH, running, as('bob'));
    expect(await bob.pull()).toBe(true);
    expect(bob.payloads).toEqual([queued]);

    // Once alice ends one, she may start another.
    await first!.close();
    await expect.poll(() => stack.gateway.pollers.stats().subscribers).toBe(2);
    const third = ws.start(WATCH, running);
    await expect.poll(() => third.payloads.length).toBe(1);
    expect(third.payloads).toEqual([queued]);
    second!.stop();
    third.stop();
    await bob.close();
  });

  it.each([
    ['the joining client leaves', 1],
    ['the first client leaves (the execution goes on for the other)', 0],
  ])(
    'finding 3: identical SSE streams sharing one execution each hold a slot until their own stream ends: %s',
    async (_name, leaving) => {
      // Identical SSE subscriptions of one caller share one execution and the joiner's own execution
      // is closed at once (useLeanSse): had its slot been freed with it, a caller could hold any number
      // of streams under GATEWAY_MAX_SUBSCRIPTIONS=2.
      const stack = await startStack({
        env: callersEnv({ GATEWAY_MAX_SUBSCRIPTIONS: '2' }),
        sim: { jobMs: 60_000 },
        gateway: { timers: new ManualTimers() },
      });
      const url = await stack.gateway.listen(0);
      const running = watchVars(await newDownload(stack, 'alice'));
      const first = await sseSubscription(url, WATCH, running, as('alice'));
      const joined = await sseSubscription(url, WATCH, running, as('alice'));
      for (const s of [first, joined]) expect(await s.pull()).toBe(true);
      expect(stack.gateway.leanSse).toMatchObject({ open: 2, joined: 1, executions: 1 });

      const ws = wsClient(url, as('alice'));
      for (const refused of [
        await overSse(url, WATCH, running, as('alice')),
        await ws.follow(WATCH, running),
      ]) {
        expect(outcome(refused)).toBe('RATE_LIMITED');
      }
      // One leaves: its slot is free again, while the other still streams from the same execution.
      await [first, joined][leaving]!.close();
      await expect.poll(() => stack.gateway.leanSse.open).toBe(1);
      expect(stack.gateway.leanSse.executions).toBe(1);
      const again = ws.start(WATCH, running);
      await expect.poll(() => again.payloads.length).toBe(1);
      expect(outcome({ payloads: again.payloads })).toBe('data');
      again.stop();
      await [first, joined][1 - leaving]!.close();
    },
  );

  it('finding 3: 2,000 hostile subscribes on one WebSocket cost 10 upstream calls', async () => {
    // The rate limit is 20 and a subscription to a job that does not exist counts twice: 10 reads.
    // The per-socket subscribe rate is raised so that this test sees the caller's metering alone: at
    // its default (100 per 10 s) the socket would be closed with 4429 after 200 subscribes, which
    // test/security/websocket-hardening.test.ts pins.
    const stack = await startStack({
      env: callersEnv({
        GATEWAY_RATE_LIMIT: '20',
        GATEWAY_ATLAS_BUDGET: '50',
        GATEWAY_WS_SUBSCRIBE_RATE: '100000',
      }),
    });
    const url = await stack.gateway.listen(0);
    const ws = wsClient(url, as('alice'));
    const outcomes = new Map<string, number>();
    const calls = await stack.upstreamCalls(async () => {
      for (let i = 0; i < 2000; i++) {
        const code = outcome(await ws.follow(WATCH, watchVars(madeUp(i))));
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      }
    });
    expect(calls).toHaveLength(10);
    expect(new Set(operations(calls))).toEqual(new Set([READ_JOB]));
    expect(Object.fromEntries(outcomes)).toEqual({ NOT_FOUND: 10, RATE_LIMITED: 1990 });
    expect(ws.closes).toEqual([]);
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });

    // Atlas never answered 429, so nobody else is held back: bob's query reads Atlas once.
    expect(stack.sim.stats().requests.filter((r) => r.status === 429)).toEqual([]);
    let answer: Awaited<ReturnType<typeof post>> | undefined;
    const bobCalls = await stack.upstreamCalls(async () => {
      answer = await post(stack, PROJECT, as('bob'));
    });
    expect(answer!.status).toBe(200);
    expect(answer!.json).toEqual({ data: { project: { name: 'Payments' } } });
    expect(operations(bobCalls)).toEqual(['getGroup']);
  });

  it('finding 3: 200 hostile subscribes over SSE cost 10 upstream calls', async () => {
    const stack = await startStack({ env: callersEnv({ GATEWAY_RATE_LIMIT: '20' }) });
    const url = await stack.gateway.listen(0);
    const statuses = new Map<string, number>();
    const calls = await stack.upstreamCalls(async () => {
      for (let i = 0; i < 200; i++) {
        const answer = await overSse(url, WATCH, watchVars(madeUp(i)), as('alice'));
        const key = `${answer.status} ${outcome(answer)}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    });
    expect(calls).toHaveLength(10);
    expect(Object.fromEntries(statuses)).toEqual({ '200 NOT_FOUND': 10, '429 RATE_LIMITED': 190 });
  });

  it('finding 3: a subscription to a job Atlas does not have costs one read; asking again within 30 s costs none', async () => {
    const stack = await startStack({ env: callersEnv() });
    const url = await stack.gateway.listen(0);
    const ws = wsClient(url, as('alice'));
    const missing = watchVars(SEED.unknownId);
    const notFound = {
      code: 'NOT_FOUND',
      retryable: false,
      atlas: { status: 404, errorCode: 'RESOURCE_NOT_FOUND', reason: null },
    };

    const first = await stack.upstreamCalls(async () => {
      const answer = await overSse(url, WATCH, missing, as('alice'));
      expect(firstError(answer)?.extensions).toMatchObject(notFound);
    });
    expect(operations(first)).toEqual([READ_JOB]);

    // Any caller, any transport: the same job is answered from memory, with the same error.
    const again = await stack.upstreamCalls(async () => {
      for (const answer of [
        await overSse(url, WATCH, missing, as('bob')),
        await ws.follow(WATCH, missing),
        await overSse(url, WATCH, missing, as('alice')),
      ]) {
        expect(answer.payloads).toHaveLength(1);
        expect(firstError(answer)?.extensions).toMatchObject(notFound);
      }
    });
    expect(again).toEqual([]);
    expect(stack.gateway.pollers.refusedFromMemory).toBe(3);

    // After 30 s Atlas is asked again: the job might exist by now.
    stack.clock.advance(30_000);
    const later = await stack.upstreamCalls(async () => {
      expect(outcome(await ws.follow(WATCH, missing))).toBe('NOT_FOUND');
    });
    expect(operations(later)).toEqual([READ_JOB]);
  });
});
