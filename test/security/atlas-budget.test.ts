import { describe, expect, it } from 'vitest';
import type { AtlasExchange } from '../../src/atlas/index.js';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors/index.js';
import { AtlasBudget, POLLERS_SPENDER } from '../../src/replicas/atlas-budget.js';
import { connectRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import { randomUUID } from 'node:crypto';
import { track } from '../support/disposer.js';
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

// Finding 3 (issue #15), second half: one caller could spend the project's Atlas budget for everyone.
// Its subscribes made Atlas answer 429, and the shared per-project backoff then refused another
// caller's ordinary query. The gateway now budgets its Atlas requests per project, below Atlas's own
// limit, and one caller may spend only its share: the noisy caller is refused, the others are not.

const P = SEED.projects.payments.id;
const A = SEED.projects.analytics.id;
const F = SEED.flex;
const READ_JOB = 'getGroupFlexClusterBackupRestoreJob';
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id status } } }`;
const projectQuery = (id: string) => ({ query: `{ project(id: "${id}") { name } }` });

const KEYS = { mallory: generateApiKey(), bob: generateApiKey(), alice: generateApiKey() };
type Who = keyof typeof KEYS;
const as = (who: Who) => ({ 'x-api-key': KEYS[who] });

/** API-key callers, a budget of 10 Atlas requests per project per minute, 5 per caller; `env` on top. */
function budgetEnv(env: Record<string, string> = {}): Record<string, string> {
  const entries = Object.entries(KEYS).map(([id, key]) => ({
    id,
    hash: hashApiKey(key),
    projects: '*',
    rights: ['read', 'download', 'restore'],
  }));
  return {
    GATEWAY_AUTH: 'apikey',
    GATEWAY_API_KEYS: JSON.stringify(entries),
    GATEWAY_ATLAS_BUDGET: '10',
    GATEWAY_ATLAS_BUDGET_WINDOW_MS: '60000',
    GATEWAY_ATLAS_BUDGET_CALLER_PERCENT: '50',
    ...env,
  };
}

/**
 * Atlas as finding 3 met it: a bucket of 10 requests per project. The simulator refills on its
 * manual clock, which these tests never move, so the bucket does not refill.
 */
const ATLAS_LIMIT = { rateLimit: { capacity: 10, refillPerSecond: 1 } };

const operations = (calls: { operationId: string }[]) => calls.map((c) => c.operationId);
const firstError = (f: Followed) => f.payloads.flatMap((p) => p.errors ?? [])[0];
const atlas429s = (stack: Stack) => stack.sim.stats().requests.filter((r) => r.status === 429).length;

/** A query's answer and the Atlas calls it made. */
async function queried(stack: Stack, who: Who, projectId = P) {
  let answer: Awaited<ReturnType<typeof post>> | undefined;
  const calls = await stack.upstreamCalls(async () => {
    answer = await post(stack, projectQuery(projectId), as(who));
  });
  return { ...answer!, calls: operations(calls) };
}

describe('finding 3: a fair share of the Atlas budget', () => {
  it('finding 3: a noisy caller cannot make another caller RATE_LIMITED, over HTTP, SSE and graphql-ws', async () => {
    const stack = await startStack({ env: budgetEnv(), sim: ATLAS_LIMIT });
    const url = await stack.gateway.listen(0);

    // Mallory spends her share of the project: 5 requests.
    for (let i = 0; i < 5; i++) {
      const ok = await queried(stack, 'mallory');
      expect(ok.json).toEqual({ data: { project: { name: 'Payments' } } });
      expect(ok.calls).toEqual(['getGroup']);
    }
    // Then each further call of hers in the project is refused unsent, on every transport.
    const refused = await queried(stack, 'mallory');
    expect(refused.calls).toEqual([]);
    expect(refused.status).toBe(200);
    expect(refused.json).toEqual({
      data: { project: null },
      errors: [
        {
          message: expect.stringMatching(
            new RegExp(
              `^This caller's share of the Atlas budget for project ${P} is spent \\(5 Atlas requests per 60 s\\); retry in \\d+ s\\.$`,
            ),
          ),
          locations: [{ line: 1, column: 3 }],
          path: ['project'],
          extensions: {
            code: 'RATE_LIMITED',
            retryable: true,
            retryAfterMs: expect.any(Number),
            budget: 'spender',
          },
        },
      ],
    });
    const retryAfterMs = refused.json!.errors![0]!.extensions!.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);

    const madeUp = { p: P, c: F.clusterName, j: SEED.unknownId };
    const ws = wsClient(url, as('mallory'));
    let sse: Followed | undefined;
    let overWs: Followed | undefined;
    const subscribeCalls = await stack.upstreamCalls(async () => {
      sse = await overSse(url, WATCH, madeUp, as('mallory'));
      overWs = await ws.follow(WATCH, madeUp);
    });
    expect(subscribeCalls).toEqual([]);
    expect(sse!.status).toBe(200);
    for (const answer of [sse!, overWs!]) {
      expect(firstError(answer)?.extensions).toMatchObject({ code: 'RATE_LIMITED', budget: 'spender' });
    }

    // Her share is per project: another project still answers her.
    expect((await queried(stack, 'mallory', A)).calls).toEqual(['getGroup']);

    // Bob, in the same project, is untouched: a query, an SSE and a WebSocket subscription.
    const bob = await queried(stack, 'bob');
    expect(bob.json).toEqual({ data: { project: { name: 'Payments' } } });
    expect(bob.calls).toEqual(['getGroup']);
    const finished = { p: P, c: F.clusterName, j: F.downloadJobId };
    const bobWs = wsClient(url, as('bob'));
    for (const follow of [
      () => overSse(url, WATCH, finished, as('bob')),
      () => bobWs.follow(WATCH, finished),
    ]) {
      let answer: Followed | undefined;
      const calls = await stack.upstreamCalls(async () => {
        answer = await follow();
      });
      expect(outcome(answer!)).toBe('data');
      expect(operations(calls)).toEqual([READ_JOB]);
    }
    // Atlas never had to say 429, so its project backoff never held anyone back.
    expect(atlas429s(stack)).toBe(0);
  });

  it('without the budget, the noisy caller makes Atlas answer 429 and the other caller is refused (what finding 3 saw)', async () => {
    const stack = await startStack({ env: budgetEnv({ GATEWAY_ATLAS_BUDGET: '0' }), sim: ATLAS_LIMIT });
    for (let i = 0; i < 10; i++) expect((await queried(stack, 'mallory')).calls).toEqual(['getGroup']);
    expect((await queried(stack, 'mallory')).json?.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      atlas: { status: 429 },
    });
    expect(atlas429s(stack)).toBe(1);
    const bob = await queried(stack, 'bob');
    expect(bob.calls).toEqual([]);
    expect(bob.json?.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('finding 3: job polling spends the pollers’ share: polls past it wait, the subscriber’s own share is untouched', async () => {
    const spenders: (string | undefined)[] = [];
    // API calls only: the gateway's OAuth token request is nobody's.
    const timers = new ManualTimers();
    const stack = await startStack({
      env: budgetEnv(),
      sim: { jobMs: 600_000 },
      gateway: {
        timers,
        atlas: {
          onExchange: (e: AtlasExchange) =>
            void (e.target.includes('/api/atlas/') && spenders.push(e.spender)),
        },
      },
    });
    const url = await stack.gateway.listen(0);
    const made = await post(
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
      as('bob'),
    );
    const jobId = (made.json?.data as { requestDownload: { job: { id: string } } }).requestDownload.job.id;
    // The mutation's reads and POST were bob's.
    expect(spenders).toEqual(['apikey:bob', 'apikey:bob', 'apikey:bob']);

    const watch = await sseSubscription(url, WATCH, { p: P, c: F.clusterName, j: jobId }, as('alice'));
    expect(await watch.pull()).toBe(true);
    expect(outcome({ payloads: watch.payloads })).toBe('data');
    // The read that started the poller is alice's own.
    expect(spenders.slice(3)).toEqual(['apikey:alice']);

    const pollers = stack.gateway.pollers;
    const tick = async () => {
      const before = pollers.stats().polls;
      const calls = await stack.upstreamCalls(async () => {
        expect(timers.fire()).toBe(1);
        await expect.poll(() => pollers.stats().polls).toBe(before + 1);
        await expect.poll(() => timers.pending).toBe(1);
      });
      return operations(calls);
    };
    // Every later poll is the pollers': 5 of them, their share, then a poll waits unsent.
    for (let i = 0; i < 5; i++) expect(await tick()).toEqual([READ_JOB]);
    expect(spenders.slice(4)).toEqual(Array<string>(5).fill(POLLERS_SPENDER));
    expect(await tick()).toEqual([]);
    // It waits as long as the budget asks, not just the poller's own backoff (2 intervals).
    const wait = timers.delays.at(-1)!;
    expect(wait).toBeGreaterThan(2 * 4000);
    expect(wait).toBeLessThanOrEqual(60_000);
    // The subscription lives on, and alice still has her own share (1 of 5 spent).
    expect(pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });
    expect((await queried(stack, 'alice')).calls).toEqual(['getGroup']);
    await watch.close();
  });
});

describe('finding 3: replicas share one Atlas budget', () => {
  it('finding 3: two replicas on one Redis spend one budget: the share spent on one is spent on both', async () => {
    // The machine's Redis (.ci/run starts it), under a key prefix of this test's own.
    const redis = connectRedis({ url: 'redis://127.0.0.1:6379', prefix: `test-budget-${randomUUID()}:` });
    track({ close: () => redis.close() }, 'redis');
    await expect.poll(() => redis.ready()).toBe(true);
    const [one, two] = [
      await startStack({ env: budgetEnv(), gateway: { redis } }),
      await startStack({ env: budgetEnv(), gateway: { redis } }),
    ];
    for (const replica of [one!, one!, one!, two!, two!]) {
      expect((await queried(replica, 'mallory')).calls).toEqual(['getGroup']);
    }
    for (const replica of [one!, two!]) {
      const refused = await queried(replica, 'mallory');
      expect(refused.calls).toEqual([]);
      expect(refused.json?.errors?.[0]?.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        budget: 'spender',
      });
    }
    expect((await queried(two!, 'bob')).calls).toEqual(['getGroup']);
  });
});

describe('AtlasBudget', () => {
  const target = (projectId?: string) =>
    projectId ? `/api/atlas/v2/groups/${projectId}/flexClusters` : '/api/atlas/v2/groups';
  const refusal = async (p: Promise<void>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof GatewayError)) return err;
    return { code: err.code, ...err.extensions, retryAfterMs: typeof err.extensions.retryAfterMs };
  };

  it('counts each project and each spender in it apart, and refuses with RATE_LIMITED', async () => {
    const budget = new AtlasBudget({ points: 4, windowMs: 60_000, callerShare: 0.5 });
    expect(budget.spenderPoints).toBe(2);
    const send = (spender: string | undefined, projectId?: string) =>
      budget.beforeSend({ operation: 'op', target: target(projectId), spender });
    await send('a', P);
    await send('a', P);
    expect(await refusal(send('a', P))).toEqual({
      code: 'RATE_LIMITED',
      retryable: true,
      retryAfterMs: 'number',
      budget: 'spender',
    });
    // The same spender elsewhere, and calls outside any project (one `org` bucket), have their own.
    await send('a', A);
    await send('a');
    await send('a');
    expect(await refusal(send('a'))).toMatchObject({ budget: 'spender' });
    // A call for nobody in particular (readiness) counts against the project only.
    await send(undefined, P);
    await send('b', P);
    expect(await refusal(send('b', P))).toMatchObject({ code: 'RATE_LIMITED', budget: 'project' });
  });

  it('leaves the OAuth token endpoint alone', async () => {
    const budget = new AtlasBudget({ points: 1, windowMs: 60_000, callerShare: 1 });
    for (let i = 0; i < 3; i++) {
      await budget.beforeSend({ operation: 'oauth.token', target: '/api/oauth/token', spender: 'a' });
    }
  });

  it('refuses a share outside (0, 1]', () => {
    expect(() => new AtlasBudget({ callerShare: 0 })).toThrow('callerShare must be in (0, 1]; got 0');
  });
});

describe('Atlas budget configuration', () => {
  it('defaults to 50 requests per project per 10 s, half of it per caller; 0 turns it off', () => {
    expect(loadConfig({}).upstream.atlasBudget).toEqual({ points: 50, windowMs: 10_000, callerShare: 0.5 });
    expect(loadConfig({ GATEWAY_ATLAS_BUDGET: '0' }).upstream.atlasBudget).toBe(false);
    expect(
      loadConfig({
        GATEWAY_ATLAS_BUDGET: '60',
        GATEWAY_ATLAS_BUDGET_WINDOW_MS: '60000',
        GATEWAY_ATLAS_BUDGET_CALLER_PERCENT: '25',
      }).upstream.atlasBudget,
    ).toEqual({ points: 60, windowMs: 60_000, callerShare: 0.25 });
  });

  it('names each bad variable, what was expected and what arrived', () => {
    let problems: readonly string[] = [];
    try {
      loadConfig({
        GATEWAY_ATLAS_BUDGET: '-1',
        GATEWAY_ATLAS_BUDGET_WINDOW_MS: '1500',
        GATEWAY_ATLAS_BUDGET_CALLER_PERCENT: '0',
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([
      'GATEWAY_ATLAS_BUDGET: expected an integer from 0 to 1000000, got "-1"',
      'GATEWAY_ATLAS_BUDGET_WINDOW_MS: expected a whole number of seconds in milliseconds, from 1000 to 3600000, got "1500"',
      'GATEWAY_ATLAS_BUDGET_CALLER_PERCENT: expected an integer from 1 to 100, got "0"',
    ]);
  });
});
