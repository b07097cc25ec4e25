import { describe, expect, it } from 'vitest';
import { AtlasApiError, createAtlasDispatcher, type AtlasClientConfig } from '../../src/atlas/index.js';
import { DEFAULT_SIM_CREDENTIALS, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startAtlasClient } from '../support/atlas-client.js';
import { track } from '../support/disposer.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const G = SEED.projects.payments.id;
const FLEX = { groupId: SEED.flex.groupId, name: SEED.flex.clusterName };

/** Simulator + Digest client (test/support/atlas-client.ts). */
const setup = (sim: SimulatorOptions = {}, config: Partial<AtlasClientConfig> = {}) =>
  startAtlasClient({ auth: 'digest', sim, config, sleepMovesClock: false });

/** 401 answers the simulator sent (each one is a challenge round trip). */
const sim401s = (s: Simulator) => s.stats().requests.filter((r) => r.status === 401).length;

describe('Digest (API keys) against the simulator', () => {
  it('first call: challenge + call (2 round trips); then 1 round trip per call with nc+1', async () => {
    const { sim, client } = await setup();
    await client.projects.getGroup({ groupId: G });
    expect(client.stats()).toMatchObject({ requests: 2, digestChallenges: 1, authResends: 1 });
    for (let i = 0; i < 5; i++) await client.projects.getGroup({ groupId: G });
    expect(client.stats()).toMatchObject({ requests: 7, digestChallenges: 1, authResends: 1 });
    expect(sim.auth.stats().digestChallenges).toBe(1);
    expect(sim401s(sim)).toBe(1);
  });

  it('100 concurrent first calls share one challenge (single flight): 101 round trips', async () => {
    // One socket: requests reach the simulator in nc order, which it insists on (see next test).
    const agent = track(createAtlasDispatcher({ connections: 1 }), 'dispatcher');
    const { sim, client } = await setup({}, { dispatcher: agent });
    const groups = await Promise.all(
      Array.from({ length: 100 }, () => client.projects.getGroup({ groupId: G })),
    );
    expect(groups.every((g) => g.id === G)).toBe(true);
    expect(client.stats()).toMatchObject({ requests: 101, digestChallenges: 1, authResends: 1 });
    expect(sim.auth.stats().digestChallenges).toBe(1);
  });

  it('100 concurrent calls over a 32-socket pool all succeed; out-of-order nc refusals cost one round trip each', async () => {
    const { sim, client } = await setup();
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, () => client.projects.getGroup({ groupId: G })),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const s = client.stats();
    // The simulator rejects an nc lower than one it already saw for the nonce; requests racing over
    // fresh sockets arrive out of order. Each refusal is healed by a private re-challenge, never an error.
    expect(s.digestChallenges).toBe(sim401s(sim));
    expect(s.requests).toBe(100 + s.digestChallenges);
    expect(s.digestChallenges).toBeLessThanOrEqual(32);
    // Warm sockets: the next burst goes through on the shared nonce.
    const before = client.stats().requests;
    await Promise.all(Array.from({ length: 32 }, () => client!.projects.getGroup({ groupId: G })));
    expect(client.stats().requests - before).toBeLessThanOrEqual(32 + 4);
  });

  it('an expired nonce (stale=true) costs one extra round trip, then the new nonce is reused', async () => {
    const { sim, client, clock } = await setup({ nonceTtlMs: 30_000 });
    await client.projects.getGroup({ groupId: G });
    clock.advance(31_000);
    await client.projects.getGroup({ groupId: G });
    expect(client.stats()).toMatchObject({ requests: 4, digestChallenges: 2, authResends: 2 });
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().requests).toBe(5);
    expect(sim.stats().requests.map((r) => r.status)).toEqual([401, 200, 401, 200, 200]);
  });

  it('a wrong private key fails with 401 after exactly one re-challenge, never more', async () => {
    const { sim, client } = await setup(
      {},
      { auth: { type: 'digest', publicKey: OWNER.publicKey, privateKey: 'wrong' } },
    );
    const first = await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(AtlasApiError);
    expect(first).toMatchObject({ status: 401, errorCode: 'UNEXPECTED_ERROR' });
    expect(sim.stats().total).toBe(2);
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({ status: 401 });
    expect(sim.stats().total).toBe(4);
    expect(client.stats().retries).toBe(0);
  });

  it('replays a POST body after the challenge, and hashes uri = path + query', async () => {
    const { sim, client } = await setup();
    const job = await client.flexBackup.download({ ...FLEX, snapshotId: SEED.flex.completedSnapshotId });
    expect(job).toMatchObject({ deliveryType: 'DOWNLOAD', instanceName: FLEX.name });
    expect(sim.stats().requests.map((r) => [r.operationId, r.status])).toEqual([
      ['downloadGroupFlexClusterBackup', 401],
      ['downloadGroupFlexClusterBackup', 200],
    ]);
    const page = await client.flexBackup.listSnapshots({ ...FLEX, itemsPerPage: 5, pageNum: 2 });
    expect(page.results).toHaveLength(5);
    expect(client.stats().requests).toBe(3);
  });

  it('serves the legacy v1.0 tenant routes (Digest only)', async () => {
    const { sim, client } = await setup({}, { legacyV1: true });
    const ref = { groupId: SEED.tenant.groupId, clusterName: SEED.tenant.clusterName };
    const snapshots = await client.tenantBackup.listAllSnapshots(ref);
    expect(snapshots).toHaveLength(SEED.tenant.snapshotCount);
    const snap = await client.tenantBackup.getSnapshot({
      ...ref,
      snapshotId: SEED.tenant.completedSnapshotId,
    });
    expect(snap).toMatchObject({ id: SEED.tenant.completedSnapshotId, status: 'COMPLETED' });
    const restores = await client.tenantBackup.listAllRestores(ref);
    expect(restores).toHaveLength(SEED.tenant.restoreJobCount);
    await expect(
      client.tenantBackup.getRestore({ ...ref, restoreId: SEED.tenant.restoreJobId }),
    ).resolves.toMatchObject({
      id: SEED.tenant.restoreJobId,
    });
    const job = await client.tenantBackup.download({ ...ref, snapshotId: SEED.tenant.completedSnapshotId });
    expect(job).toMatchObject({ deliveryType: 'DOWNLOAD', snapshotId: SEED.tenant.completedSnapshotId });
    expect(Object.keys(sim.stats().byOperation).sort()).toEqual([
      'v1.downloadTenantSnapshot',
      'v1.getTenantRestore',
      'v1.getTenantSnapshot',
      'v1.listTenantRestores',
      'v1.listTenantSnapshots',
    ]);
  });
});
