import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../support/manual-timers.js';
import { SEED } from '../../src/simulator/seed.js';
import { subscribeSse } from '../support/sse.js';
import { track } from '../support/disposer.js';
import { startStack, type Stack } from '../support/stack.js';

// Through the gateway: once one request learned which family serves a cluster (first try, fallback
// on a family signal, or a listing), the next requests — queries, mutations, a subscription's poller —
// go straight to that family, until the family TTL runs out. Upstream calls are counted exactly.

const T = SEED.tenant;
const F = SEED.flex;
const FAMILY_TTL = 60_000;

const SNAPSHOT = `query($p: ID!, $c: String!, $s: ID!) { snapshot(projectId: $p, clusterName: $c, id: $s) { id cluster { family } } }`;
const JOB = `query($p: ID!, $c: String!, $j: ID!) { restoreJob(projectId: $p, clusterName: $c, id: $j) { id status } }`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;

async function setup(timers?: ManualTimers): Promise<Stack> {
  return startStack({
    sim: { jobMs: 10_000 },
    gateway: { familyTtlMs: FAMILY_TTL, pollIntervalMs: 10, ...(timers ? { timers } : {}) },
  });
}

/** The operationIds `fn` cost upstream, after checking its answer had no errors. */
async function ops(stack: Stack, query: string, variables: Record<string, unknown>): Promise<string[]> {
  let errors: unknown;
  const calls = await stack.upstreamCalls(async () => {
    errors = (await stack.query(query, variables)).errors;
  });
  expect(errors).toBeUndefined();
  return calls.map((c) => c.operationId);
}

const tenantSnapshot = { p: T.groupId, c: T.clusterName, s: T.completedSnapshotId };
const tenantJob = { p: T.groupId, c: T.clusterName, j: T.restoreJobId };

describe('a learned family is used by the next request', () => {
  it('after a fallback from Flex: the next query, and a mutation, go to tenant directly', async () => {
    const stack = await setup();
    expect(await ops(stack, SNAPSHOT, tenantSnapshot)).toEqual([
      'getGroupFlexClusterBackupSnapshot',
      'getGroupClusterBackupTenantSnapshot',
      // the snapshot's cluster, on the family just learned
      'getGroupCluster',
    ]);
    expect(await ops(stack, JOB, tenantJob)).toEqual(['getGroupClusterBackupTenantRestore']);
    expect(
      await ops(stack, DOWNLOAD, {
        i: {
          projectId: T.groupId,
          clusterName: T.clusterName,
          snapshotId: T.completedSnapshotId,
          reuseExisting: false,
        },
      }),
    ).toEqual([
      // (The snapshot is not read again: the query above read it COMPLETED.)
      'listGroupClusterBackupTenantRestores',
      'downloadGroupClusterBackupTenant',
    ]);
    expect(stack.gateway.families.get({ projectId: T.groupId, clusterName: T.clusterName })).toBe('TENANT');
  });

  it('after a first try that was right: Flex stays one call per read', async () => {
    const stack = await setup();
    const vars = { p: F.groupId, c: F.clusterName, j: F.freshDownloadJobId };
    expect(await ops(stack, JOB, vars)).toEqual(['getGroupFlexClusterBackupRestoreJob']);
    expect(stack.gateway.families.get({ projectId: F.groupId, clusterName: F.clusterName })).toBe('FLEX');
    expect(await ops(stack, JOB, vars)).toEqual(['getGroupFlexClusterBackupRestoreJob']);
  });

  it('after a listing: a tenant cluster is read on tenant from the first read', async () => {
    const stack = await setup();
    const listed = await ops(stack, `query($p: ID!) { project(id: $p) { clusters { name family } } }`, {
      p: T.groupId,
    });
    expect(listed.sort()).toEqual(['getGroup', 'listGroupClusters', 'listGroupFlexClusters']);
    expect(await ops(stack, JOB, tenantJob)).toEqual(['getGroupClusterBackupTenantRestore']);
  });

  it('after the tenant sunset (410 VERSION_GONE): learned once, then Flex directly', async () => {
    const stack = await setup();
    expect(await ops(stack, JOB, tenantJob)).toEqual([
      'getGroupFlexClusterBackupRestoreJob',
      'getGroupClusterBackupTenantRestore',
    ]);
    stack.sim.store.setTenantSunset(true);
    const migrated = { p: T.groupId, c: T.clusterName, s: T.completedSnapshotId };
    const SNAP_ONLY = `query($p: ID!, $c: String!, $s: ID!) { snapshot(projectId: $p, clusterName: $c, id: $s) { id } }`;
    expect(await ops(stack, SNAP_ONLY, migrated)).toEqual([
      'getGroupClusterBackupTenantSnapshot',
      'getGroupFlexClusterBackupSnapshot',
    ]);
    expect(await ops(stack, SNAP_ONLY, migrated)).toEqual(['getGroupFlexClusterBackupSnapshot']);
    expect(stack.gateway.families.get({ projectId: T.groupId, clusterName: T.clusterName })).toBe('FLEX');
  });

  it('a subscription’s poller reads on the family a query learned, every time', async () => {
    const timers = new ManualTimers();
    const stack = await setup(timers);
    const url = await stack.gateway.listen(0);
    expect(await ops(stack, JOB, tenantJob)).toEqual([
      'getGroupFlexClusterBackupRestoreJob',
      'getGroupClusterBackupTenantRestore',
    ]);
    const res = await stack.query<{ requestDownload: { job: { id: string } } }>(DOWNLOAD, {
      i: {
        projectId: T.groupId,
        clusterName: T.clusterName,
        snapshotId: T.completedSnapshotId,
        reuseExisting: false,
      },
    });
    const jobId = res.data!.requestDownload.job.id;
    const calls = await stack.upstreamCalls(async () => {
      const sub = track(
        await subscribeSse(
          url,
          `subscription($p: ID!, $c: String!, $j: ID!) { restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { status } }`,
          { p: T.groupId, c: T.clusterName, j: jobId },
        ),
        'sse',
      );
      expect((await sub.next())?.event).toBe('next');
      stack.clock.advance(20_000);
      expect(timers.fire()).toBe(1);
      expect((await sub.next())?.data).toEqual({ data: { restoreJobStatus: { status: 'COMPLETED' } } });
      expect((await sub.next())?.event).toBe('complete');
    });
    // The first event is the mutation's answer (primed, issue #19); the read that follows is on tenant.
    expect(calls.map((c) => c.operationId)).toEqual(['getGroupClusterBackupTenantRestore']);
  });

  it('asks Flex first again once the family TTL ran out, not a moment before', async () => {
    const stack = await setup();
    expect(await ops(stack, JOB, tenantJob)).toHaveLength(2);
    stack.clock.advance(FAMILY_TTL - 1);
    expect(await ops(stack, JOB, tenantJob)).toEqual(['getGroupClusterBackupTenantRestore']);
    // That read confirmed the family: its TTL starts over from here.
    stack.clock.advance(FAMILY_TTL - 1);
    expect(await ops(stack, JOB, tenantJob)).toEqual(['getGroupClusterBackupTenantRestore']);
    stack.clock.advance(FAMILY_TTL);
    expect(await ops(stack, JOB, tenantJob)).toEqual([
      'getGroupFlexClusterBackupRestoreJob',
      'getGroupClusterBackupTenantRestore',
    ]);
  });
});
