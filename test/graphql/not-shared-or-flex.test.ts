import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';
import { operationOver } from '../support/transports.js';

// Issue #17: a dedicated (M10+) cluster got GONE on one request and BAD_USER_INPUT on the next. The
// realistic simulator lists an M0 and a dedicated cluster in the clusters API, as Atlas does.
const R = SEED.realistic;
const P = R.groupId;

const DOWNLOAD = `mutation($input: RequestDownloadInput!) { requestDownload(input: $input) { job { id } } }`;

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({ sim: { profile: 'realistic' } });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

const answer = async (clusterName: string) => {
  const res = await stack.query(DOWNLOAD, {
    input: { projectId: P, clusterName, snapshotId: SEED.unknownId },
  });
  return { data: res.data, errors: res.errors?.map((e) => ({ message: e.message, ...e.extensions })) };
};

describe('clusters neither family serves (dedicated, M0)', () => {
  it.each([R.dedicatedClusterName, R.m0ClusterName])(
    'the dedicated-cluster answer: %s is NOT_FOUND "not a shared-tier or Flex cluster" on every request, before and after the sunset',
    async (name) => {
      const expected = {
        message: `Cluster ${name} is not a shared-tier (M2/M5) or Flex cluster: this API serves no backups for it.`,
        code: 'NOT_FOUND',
        reason: 'NOT_SHARED_TIER_OR_FLEX',
      };
      const answers = [await answer(name), await answer(name)];
      stack.sim.store.setTenantSunset(true);
      try {
        answers.push(await answer(name), await answer(name));
      } finally {
        stack.sim.store.setTenantSunset(false);
      }
      for (const a of answers) {
        expect(a.data).toBeNull();
        expect(a.errors).toEqual([expect.objectContaining(expected)]);
      }
      // Nothing was created upstream, and the answer cost two reads (one per family), never a POST.
      const calls = await stack.upstreamCalls(() => answer(name));
      expect(calls.map((c) => c.method)).toEqual(['GET', 'GET']);
    },
  );

  it('are listed by Atlas but not by the gateway, and read as null', async () => {
    const names = stack.sim.store.listClusters(P).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining([R.dedicatedClusterName, R.m0ClusterName]));
    const res = await stack.query<{
      project: { clusters: { name: string }[] };
      dedicated: unknown;
      snap: unknown;
    }>(`{
      project(id: "${P}") { clusters { name } }
      dedicated: cluster(projectId: "${P}", name: "${R.dedicatedClusterName}") { name }
      snap: snapshot(projectId: "${P}", clusterName: "${R.dedicatedClusterName}", id: "${SEED.unknownId}") { id }
    }`);
    expect(res.errors).toBeUndefined();
    const listed = res.data!.project.clusters.map((c) => c.name);
    expect(listed).not.toContain(R.dedicatedClusterName);
    expect(listed).not.toContain(R.m0ClusterName);
    expect(listed).toContain(R.busyClusterName);
    expect(res.data!.dedicated).toBeNull();
    expect(res.data!.snap).toBeNull();
  });
});

describe('bug: a subscription to a job of a dedicated or M0 cluster was retried forever and its client heard nothing', () => {
  it.each(['SSE', 'graphql-ws'] as const)(
    'over %s it ends at once with NOT_FOUND, and subscribing again costs no Atlas read',
    async (transport) => {
      const body = {
        query: `subscription($p: ID!, $c: String!, $j: ID!) { restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id } }`,
        variables: { p: P, c: R.dedicatedClusterName, j: SEED.unknownId },
      };
      const calls = await stack.upstreamCalls(async () => {
        const answer = await operationOver(transport, url, body);
        expect(answer.data ?? null).toBeNull();
        expect(answer.errors).toEqual([
          expect.objectContaining({
            extensions: expect.objectContaining({ code: 'NOT_FOUND' }) as unknown,
          }),
        ]);
      });
      // Reads only (none when the other transport's run already had the job refused); never a retry loop.
      expect(calls.every((c) => c.method === 'GET')).toBe(true);
      expect(calls.length).toBeLessThanOrEqual(2);
      const again = await stack.upstreamCalls(() => operationOver(transport, url, body));
      expect(again).toEqual([]);
    },
  );
});
