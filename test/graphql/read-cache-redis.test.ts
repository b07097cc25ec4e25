import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { Gateway } from '../../src/gateway.js';
import { createGatewayFromConfig } from '../../src/gateway-from-config.js';
import type { SharedRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { privateRedis, sharedRedisOf, until } from '../support/private-redis.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';

// Two replicas on one Redis (a private redis-server, a private key prefix) share what either read,
// and a mutation on one clears the other's view; with Redis gone both keep answering, from their own
// memory, and count it.

const F = SEED.flex;
const ENV = { GATEWAY_CACHE: 'on' };
const JOBS = /* GraphQL */ `
  query Jobs($p: ID!, $c: String!) {
    cluster(projectId: $p, name: $c) {
      restoreJobs(first: 50) {
        nodes {
          id
        }
      }
    }
  }
`;

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

/** Replica A (with the simulator) and replica B, both on `redis` clients of one prefix. */
async function twoReplicas(
  a: SharedRedis,
  b: SharedRedis,
): Promise<{ stack: Stack; a: Gateway; b: Gateway }> {
  const stack = await startStack({ env: ENV, gateway: { redis: a } });
  stacks.push(stack);
  const built = createGatewayFromConfig(loadConfig(ENV), {
    clock: stack.clock,
    logging: false,
    redis: b,
    atlas: {
      baseUrl: stack.sim.url,
      auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
      clock: stack.clock,
      sleep: async () => {},
    },
  });
  track({ close: () => built.close() }, 'replica B');
  return { stack, a: stack.gateway, b: built.gateway };
}

async function post(gateway: Gateway, query: string, variables: Record<string, unknown>) {
  const res = await gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
  expect(body.errors).toBeUndefined();
  return body.data!;
}

async function read(stack: Stack, gateway: Gateway) {
  let ids: string[] = [];
  const calls = await stack.upstreamCalls(async () => {
    const data = (await post(gateway, JOBS, { p: F.groupId, c: F.clusterName })) as {
      cluster: { restoreJobs: { nodes: { id: string }[] } };
    };
    ids = data.cluster.restoreJobs.nodes.map((n) => n.id);
  });
  return { calls: calls.length, ids };
}

describe('the read cache across replicas (Redis)', () => {
  it('lets one replica answer from what the other read, and a mutation on one clears it for both', async () => {
    const server = await privateRedis('none');
    const prefix = `rc-${randomUUID()}:`;
    const { stack, a, b } = await twoReplicas(
      await sharedRedisOf(server, prefix),
      await sharedRedisOf(server, prefix),
    );
    const first = await read(stack, a);
    expect(first.calls).toBeGreaterThan(0);
    expect(await read(stack, b)).toEqual({ calls: 0, ids: first.ids });
    expect(b.readCache!.stats.hits).toBe(first.calls);

    // Only hashes and tags under the private prefix: no token, no caller id.
    const redis = await sharedRedisOf(server, prefix);
    const keys = (await redis.client.keys('*')).filter((k) => k.includes('read:'));
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).toMatch(new RegExp(`^${prefix}read:(e:[\\w-]{43}|[tg]:jobs:[0-9a-f]{24}/${F.clusterName})$`));
    }
    expect(keys.filter((k) => k.startsWith(`${prefix}read:e:`)).length).toBe(first.calls);

    const made = (await post(
      b,
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
      {
        i: {
          projectId: F.groupId,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    )) as { requestDownload: { job: { id: string } } };
    const after = await read(stack, a);
    expect(after.ids).toContain(made.requestDownload.job.id);
    expect(after.calls).toBeGreaterThan(0);
    expect(after.calls).toBeLessThan(first.calls);
  });

  it('keeps answering with Redis down, caching in each replica meanwhile, and counts the fallbacks', async () => {
    const server = await privateRedis('none');
    const prefix = `rc-${randomUUID()}:`;
    const ra = await sharedRedisOf(server, prefix);
    const rb = await sharedRedisOf(server, prefix);
    const { stack, a, b } = await twoReplicas(ra, rb);
    await server.stop();
    await until(() => !ra.ready() && !rb.ready(), 'Redis seen down');

    const first = await read(stack, a);
    expect(first.calls).toBeGreaterThan(0);
    expect(first.ids.length).toBeGreaterThan(0);
    // A's own memory answers A; B, sharing nothing now, reads Atlas itself.
    expect(await read(stack, a)).toEqual({ calls: 0, ids: first.ids });
    expect(await read(stack, b)).toEqual({ calls: first.calls, ids: first.ids });
    expect(a.readCache!.stats.sharedFallbacks).toBeGreaterThan(0);
    expect(b.readCache!.stats.sharedFallbacks).toBeGreaterThan(0);
  });
});
