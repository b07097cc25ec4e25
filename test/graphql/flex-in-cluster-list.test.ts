import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { TENANT_SUNSET_DATE } from '../../src/simulator/store.js';
import { startStack, type Stack } from '../support/stack.js';

const P = SEED.projects.payments.id;
const T = SEED.tenant;
const F = SEED.flex;
const R = SEED.realistic;

/** A day in December 2025: the clusters API still lists Flex clusters (until 2026-01-22). */
const BEFORE_SUNSET = '2025-12-15T12:00:00Z';

interface Listed {
  project: { clusters: { name: string; family: string; instanceSize: string }[] };
}
const LIST = `{ project(id: "${P}") { clusters { name family instanceSize } } }`;
const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

/** The payments project as the gateway must answer it on either side of the sunset. */
const EXPECTED = [
  { name: T.clusterName, family: 'TENANT', instanceSize: 'M2' },
  { name: T.m5ClusterName, family: 'TENANT', instanceSize: 'M5' },
  { name: F.clusterName, family: 'FLEX', instanceSize: 'FLEX' },
  { name: R.busyClusterName, family: 'FLEX', instanceSize: 'FLEX' },
].sort(byName);

let stack: Stack;
beforeAll(async () => {
  // `realistic` has the payments project's M0 (free-m0) and dedicated (prod-dedicated) clusters too.
  stack = await startStack({ sim: { profile: 'realistic' } });
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

describe('Flex clusters in listGroupClusters', () => {
  it('finding: before the sunset Atlas lists Flex clusters in listGroupClusters as TENANT with effectiveInstanceSize FLEX; the gateway lists each once, as FLEX, and reads it through the Flex routes', async () => {
    const after = stack.clock.now();
    stack.clock.set(BEFORE_SUNSET);
    try {
      let res: { data?: Listed | null; errors?: unknown } = {};
      const listCalls = await stack.upstreamCalls(async () => {
        res = await stack.query<Listed>(LIST);
      });
      expect(res.errors).toBeUndefined();
      // Once each, as FLEX; M0 (free-m0) and dedicated (prod-dedicated) still left out.
      expect([...res.data!.project.clusters].sort(byName)).toEqual(EXPECTED);
      expect(listCalls.map((c) => c.operationId).sort()).toEqual([
        'getGroup',
        'listGroupClusters',
        'listGroupFlexClusters',
      ]);

      // Its backups come from the Flex routes only: no tenant call, no family fallback.
      const readCalls = await stack.upstreamCalls(async () => {
        const one = await stack.query<{
          cluster: { family: string; instanceSize: string; snapshots: { totalCount: number } };
        }>(
          `{ cluster(projectId: "${P}", name: "${F.clusterName}") { family instanceSize snapshots(first: 1) { totalCount } } }`,
        );
        expect(one.errors).toBeUndefined();
        expect(one.data!.cluster).toMatchObject({ family: 'FLEX', instanceSize: 'FLEX' });
      });
      // Newest first on Flex: one page for the count, then the newest one (see newest-first.ts).
      expect(readCalls.map((c) => c.operationId).sort()).toEqual([
        'getGroupFlexCluster',
        'listGroupFlexClusterBackupSnapshots',
        'listGroupFlexClusterBackupSnapshots',
      ]);
    } finally {
      stack.clock.set(after);
    }
  });

  it(`after the sunset (${TENANT_SUNSET_DATE}) the same clusters come from /flexClusters alone, listed as before`, async () => {
    let res: { data?: Listed | null; errors?: unknown } = {};
    const calls = await stack.upstreamCalls(async () => {
      res = await stack.query<Listed>(LIST);
    });
    expect(res.errors).toBeUndefined();
    expect([...res.data!.project.clusters].sort(byName)).toEqual(EXPECTED);
    expect(calls.map((c) => c.operationId).sort()).toEqual([
      'getGroup',
      'listGroupClusters',
      'listGroupFlexClusters',
    ]);
  });
});
