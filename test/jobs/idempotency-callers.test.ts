import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import type { Authenticate } from '../../src/callers/caller.js';
import { jwtAuth } from '../../src/callers/jwt.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../src/jobs/idempotency-store.js';
import { RedisIdempotencyStore } from '../../src/jobs/redis-idempotency-store.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type GraphQLAnswer } from '../support/stack.js';

// End to end: two callers that happen to pick the same idempotencyKey get two jobs; each caller's
// repeat gets its own job back. Against both stores (Redis on 127.0.0.1:6379, a prefix of its own).

const P = SEED.projects.payments.id;
const F = SEED.flex;
const KEY_A = generateApiKey();
const KEY_B = generateApiKey();

let redis: SharedRedis;
beforeAll(async () => {
  redis = connectRedis({ url: 'redis://127.0.0.1:6379', prefix: `test-idem-callers-${randomUUID()}:` });
  if (!redis.ready()) await once(redis.client, 'ready');
});
afterAll(async () => {
  const keys = await redis.client.keys(`${redis.prefix}*`);
  if (keys.length) await redis.client.del(...keys);
  await redis.close();
});

const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
interface Payload {
  requestDownload: { reused: boolean; job: { id: string } };
}

describe.each([
  ['memory', (clock: ManualClock): IdempotencyStore => new MemoryIdempotencyStore({ clock })],
  [
    'Redis',
    (clock: ManualClock): IdempotencyStore => new RedisIdempotencyStore(redis, { clock, waitPollMs: 10 }),
  ],
])('requestDownload with one idempotencyKey from two callers (%s store)', (_name, makeStore) => {
  it('makes one job per caller, and answers each caller its own on a repeat', async () => {
    const storeClock = new ManualClock();
    const stack = await startStack({
      gateway: {
        idempotency: makeStore(storeClock),
        authenticate: authenticateWith([
          apiKeyAuth({
            keys: [
              { id: 'team-a', hash: hashApiKey(KEY_A), projects: [P], rights: ['read', 'download'] },
              { id: 'team-b', hash: hashApiKey(KEY_B), projects: [P], rights: ['read', 'download'] },
            ],
          }),
        ]),
      },
    });
    const input = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      idempotencyKey: 'nightly-export',
      reuseExisting: false,
    };
    const download = async (key: string): Promise<GraphQLAnswer<Payload>> => {
      const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          'x-api-key': key,
        },
        body: JSON.stringify({ query: DOWNLOAD, variables: { i: input } }),
      });
      return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<Payload>, 'status'>) };
    };
    const posts = async (fn: () => Promise<unknown>) =>
      (await stack.upstreamCalls(fn)).filter((c) => c.method === 'POST').length;
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);

    let a: GraphQLAnswer<Payload> | undefined;
    let b: GraphQLAnswer<Payload> | undefined;
    expect(await posts(async () => (a = await download(KEY_A)))).toBe(1);
    expect(await posts(async () => (b = await download(KEY_B)))).toBe(1);
    expect(a?.errors).toBeUndefined();
    expect(b?.errors).toBeUndefined();
    expect(a?.data?.requestDownload.reused).toBe(false);
    expect(b?.data?.requestDownload.reused).toBe(false);
    const jobA = a?.data?.requestDownload.job.id;
    const jobB = b?.data?.requestDownload.job.id;
    expect(jobB).not.toBe(jobA);
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 2);

    // Each repeat: that caller's own job, no POST.
    for (const [key, job] of [
      [KEY_A, jobA],
      [KEY_B, jobB],
    ] as const) {
      let again: GraphQLAnswer<Payload> | undefined;
      expect(await posts(async () => (again = await download(key)))).toBe(0);
      expect(again?.data?.requestDownload).toEqual({ reused: true, job: { id: job } });
    }
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 2);
  });
});

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const ISSUER_1 = 'https://idp.example.test/';
const ISSUER_2 = 'https://second-idp.example.test/';
const jwtOf = (iss: string, sub: string) =>
  new SignJWT({ atlas_projects: [P], atlas_rights: ['read', 'download'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(iss)
    .setAudience('gateway')
    .setSubject(sub)
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));

/**
 * Two callers each send requestDownload with their own idempotencyKey (the same snapshot, no reuse):
 * the jobs they get, and the POSTs each request cost.
 */
async function twoDownloads(
  store: IdempotencyStore,
  authenticate: Authenticate,
  first: { headers: Record<string, string>; idempotencyKey: string },
  second: { headers: Record<string, string>; idempotencyKey: string },
) {
  const stack = await startStack({ gateway: { idempotency: store, authenticate } });
  const download = async (c: typeof first) => {
    let answer: GraphQLAnswer<Payload> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          ...c.headers,
        },
        body: JSON.stringify({
          query: DOWNLOAD,
          variables: {
            i: {
              projectId: P,
              clusterName: F.clusterName,
              snapshotId: F.completedSnapshotId,
              idempotencyKey: c.idempotencyKey,
              reuseExisting: false,
            },
          },
        }),
      });
      answer = { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<Payload>, 'status'>) };
    });
    return { answer, posts: calls.filter((c) => c.method === 'POST').length };
  };
  const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
  const a = await download(first);
  const b = await download(second);
  return { a, b, created: stack.sim.store.jobsCreatedFor(F.completedSnapshotId) - before };
}

describe.each([
  ['memory', (clock: ManualClock): IdempotencyStore => new MemoryIdempotencyStore({ clock })],
  [
    'Redis',
    (clock: ManualClock): IdempotencyStore => new RedisIdempotencyStore(redis, { clock, waitPollMs: 10 }),
  ],
])('idempotency keys of callers whose ids look alike (%s store)', (_name, makeStore) => {
  it('finding 9c: caller "svc" with key "x:download:K" and caller "svc:download:x" with key "K" get two jobs', async () => {
    const KEY_SVC = generateApiKey();
    const KEY_LOOKALIKE = generateApiKey();
    const { a, b, created } = await twoDownloads(
      makeStore(new ManualClock()),
      authenticateWith([
        apiKeyAuth({
          keys: [
            { id: 'svc', hash: hashApiKey(KEY_SVC), projects: [P], rights: ['read', 'download'] },
            {
              id: 'svc:download:x',
              hash: hashApiKey(KEY_LOOKALIKE),
              projects: [P],
              rights: ['read', 'download'],
            },
          ],
        }),
      ]),
      { headers: { 'x-api-key': KEY_SVC }, idempotencyKey: 'x:download:K' },
      { headers: { 'x-api-key': KEY_LOOKALIKE }, idempotencyKey: 'K' },
    );
    expect(a.answer?.data?.requestDownload.reused).toBe(false);
    expect(b.answer?.data?.requestDownload.reused).toBe(false);
    expect(b.answer?.data?.requestDownload.job.id).not.toBe(a.answer?.data?.requestDownload.job.id);
    expect([a.posts, b.posts, created]).toEqual([1, 1, 2]);
  });

  it('finding 9b: alice of a second issuer does not get the first alice’s idempotent job', async () => {
    const { a, b, created } = await twoDownloads(
      makeStore(new ManualClock()),
      authenticateWith([
        jwtAuth({ key: { secret: SECRET }, issuer: [ISSUER_1, ISSUER_2], audience: 'gateway' }),
      ]),
      { headers: { authorization: `Bearer ${await jwtOf(ISSUER_1, 'alice')}` }, idempotencyKey: 'nightly' },
      { headers: { authorization: `Bearer ${await jwtOf(ISSUER_2, 'alice')}` }, idempotencyKey: 'nightly' },
    );
    expect(a.answer?.errors).toBeUndefined();
    expect(b.answer?.data?.requestDownload.reused).toBe(false);
    expect(b.answer?.data?.requestDownload.job.id).not.toBe(a.answer?.data?.requestDownload.job.id);
    expect([a.posts, b.posts, created]).toEqual([1, 1, 2]);
  });
});
