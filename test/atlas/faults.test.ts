import { describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasNetworkError,
  AtlasResponseError,
  createAtlasClient,
  type AtlasClientConfig,
  type Sleep,
} from '../../src/atlas/index.js';
import { ManualClock, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { ownerAuth, startAtlasClient } from '../support/atlas-client.js';
import { startContractSimulator } from '../support/contract.js';
import { track } from '../support/disposer.js';

const G = SEED.projects.payments.id;
const FLEX = { groupId: SEED.flex.groupId, name: SEED.flex.clusterName };

/** Simulator + OAuth client (test/support/atlas-client.ts); backoff jitter pinned at its middle. */
const setup = (sim: SimulatorOptions = {}, config: Partial<AtlasClientConfig> = {}) =>
  startAtlasClient({ sim, config: { random: () => 0.5, ...config } });

/**
 * The simulator's fault waits (latency, slow body), recorded and never ending: the held answer can
 * only end by the client giving up, so timeouts and aborts are decided by events, not by a race.
 */
const holding = () => {
  const held: number[] = [];
  const sleep = (ms: number) => {
    held.push(ms);
    return new Promise<void>(() => {});
  };
  return { held, sleep };
};

const count = (s: Simulator, op: string) => s.stats().byOperation[op] ?? 0;
const fail = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );

describe('retries (simulator faults)', () => {
  it('retries a GET on 503 honouring Retry-After, then succeeds', async () => {
    const { sim, client, delays } = await setup();
    sim.faults.add({ operationId: 'getGroup', status: 503, retryAfterSec: 2, times: 2 });
    await expect(client.projects.getGroup({ groupId: G })).resolves.toMatchObject({ id: G });
    expect(delays).toEqual([2000, 2000]);
    expect(count(sim, 'getGroup')).toBe(3);
    expect(client.stats().retries).toBe(2);
  });

  it('stops after maxAttempts with the last AtlasApiError', async () => {
    const { sim, client, delays } = await setup();
    sim.faults.add({ operationId: 'getGroup', status: 502 });
    const err = await fail(client.projects.getGroup({ groupId: G }));
    expect(err).toBeInstanceOf(AtlasApiError);
    expect(err).toMatchObject({ status: 502, errorCode: 'UNEXPECTED_ERROR', operation: 'getGroup' });
    expect(count(sim, 'getGroup')).toBe(4);
    expect(delays).toEqual([100, 200, 400]); // full jitter with random 0.5, base 200 ms
  });

  it('stops when the total time budget is spent', async () => {
    const { sim, client, delays } = await setup({}, { retry: { maxElapsedMs: 5_000, maxAttempts: 10 } });
    sim.faults.add({ operationId: 'getGroup', status: 503, retryAfterSec: 2 });
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({ status: 503 });
    expect(delays).toEqual([2000, 2000]);
    expect(count(sim, 'getGroup')).toBe(3);
  });

  it('does not retry a 500', async () => {
    const { sim, client } = await setup();
    sim.faults.add({ operationId: 'getGroup', status: 500, times: 1 });
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({ status: 500 });
    expect(count(sim, 'getGroup')).toBe(1);
  });

  it('never retries an unmarked POST, not even after a 503', async () => {
    const { sim, client, delays } = await setup();
    sim.faults.add({
      operationId: 'downloadGroupFlexClusterBackup',
      status: 503,
      retryAfterSec: 1,
      times: 1,
    });
    await expect(
      client.flexBackup.download({ ...FLEX, snapshotId: SEED.flex.completedSnapshotId }),
    ).rejects.toMatchObject({ status: 503, retryAfterMs: 1000 });
    expect(count(sim, 'downloadGroupFlexClusterBackup')).toBe(1);
    expect(delays).toEqual([]);
  });

  it('an unmarked POST whose answer is lost fails with sent: true and is not resent (the job exists)', async () => {
    const { sim, client } = await setup();
    const before = (await client.flexBackup.listAllRestoreJobs(FLEX)).length;
    sim.faults.add({ operationId: 'createGroupFlexClusterBackupRestoreJob', reset: 'after', times: 1 });
    const err = await fail(
      client.flexBackup.createRestoreJob({
        ...FLEX,
        snapshotId: SEED.flex.completedSnapshotId,
        targetDeploymentItemName: SEED.flex.other.clusterName,
        targetProjectId: SEED.flex.other.groupId,
      }),
    );
    expect(err).toBeInstanceOf(AtlasNetworkError);
    expect(err).toMatchObject({ code: 'ATLAS_NETWORK_ERROR', sent: true });
    expect(count(sim, 'createGroupFlexClusterBackupRestoreJob')).toBe(1);
    expect((await client.flexBackup.listAllRestoreJobs(FLEX)).length).toBe(before + 1);
  });

  it('retries a POST the caller marks idempotent', async () => {
    const { sim, client } = await setup();
    sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', status: 503, times: 1 });
    await expect(
      client.flexBackup.download(
        { ...FLEX, snapshotId: SEED.flex.completedSnapshotId },
        { idempotent: true },
      ),
    ).resolves.toMatchObject({ deliveryType: 'DOWNLOAD' });
    expect(count(sim, 'downloadGroupFlexClusterBackup')).toBe(2);
  });

  it('retries a GET after a reset connection or a truncated body', async () => {
    const { sim, client } = await setup();
    sim.faults.add({ operationId: 'getGroup', reset: 'before', times: 1 });
    sim.faults.add({ operationId: 'listGroups', body: 'truncated', times: 1 });
    sim.expectViolations({ operationId: 'listGroups', status: 200, problem: 'truncated' });
    await expect(client.projects.getGroup({ groupId: G })).resolves.toMatchObject({ id: G });
    await expect(client.projects.listGroups()).resolves.toMatchObject({ totalCount: 3 });
    expect(client.stats().retries).toBe(2);
  });

  it('a 429 for one project does not hold up calls for another', async () => {
    const clock = new ManualClock();
    const sim = await startContractSimulator({ clock, rateLimit: { capacity: 2, refillPerSecond: 1 } });
    const delays: number[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const sleep: Sleep = async (ms) => {
      delays.push(ms);
      await released;
      clock.advance(ms);
    };
    const client = track(createAtlasClient({ baseUrl: sim.url, auth: ownerAuth('oauth'), clock, sleep }));
    const payments = SEED.projects.payments.id;
    const analytics = SEED.projects.analytics.id;
    await client.projects.getGroup({ groupId: payments });
    await client.projects.getGroup({ groupId: payments });
    const limited = client.projects.getGroup({ groupId: payments }); // bucket empty: 429, then waits
    await expect.poll(() => delays.length).toBe(1);
    expect(delays).toEqual([1000]); // Retry-After 1 s (one token a second) outweighs the jitter (< 200 ms)
    // Meanwhile another project goes straight through.
    await expect(client.projects.getGroup({ groupId: analytics })).resolves.toMatchObject({ id: analytics });
    await expect(client.projects.getGroup({ groupId: analytics })).resolves.toMatchObject({ id: analytics });
    release();
    await expect(limited).resolves.toMatchObject({ id: payments });
    expect(
      sim
        .stats()
        .requests.filter((r) => r.status === 429)
        .map((r) => r.groupId),
    ).toEqual([payments]);
  });
});

describe('errors (simulator faults and answers)', () => {
  it('malformed JSON → AtlasResponseError, not retried', async () => {
    const { sim, client } = await setup();
    sim.faults.add({ operationId: 'getGroup', body: 'malformed' });
    sim.expectViolations({ operationId: 'getGroup', status: 200, problem: 'not JSON' });
    const err = await fail(client.projects.getGroup({ groupId: G }));
    expect(err).toBeInstanceOf(AtlasResponseError);
    expect(err).toMatchObject({ code: 'ATLAS_BAD_RESPONSE', status: 200, operation: 'getGroup' });
    expect(count(sim, 'getGroup')).toBe(1);
  });

  it('slow headers → ATLAS_TIMEOUT', async () => {
    const { held, sleep } = holding();
    const { sim, client } = await setup(
      { sleep },
      { timeouts: { headersMs: 300 }, retry: { maxAttempts: 1 } },
    );
    await client.projects.listGroups(); // token fetched outside the fault
    sim.faults.add({ operationId: 'getGroup', latencyMs: 2_500 });
    const err = await fail(client.projects.getGroup({ groupId: G }));
    expect(err).toBeInstanceOf(AtlasNetworkError);
    expect(err).toMatchObject({ code: 'ATLAS_TIMEOUT', sent: true });
    expect(held).toEqual([2_500]); // the simulator still holds the answer
  });

  it('a stalled body → ATLAS_TIMEOUT', async () => {
    const { held, sleep } = holding();
    const { sim, client } = await setup({ sleep }, { timeouts: { bodyMs: 300 }, retry: { maxAttempts: 1 } });
    await client.projects.listGroups();
    sim.faults.add({ operationId: 'getGroup', slowBodyMs: 20_000, times: 1 });
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({
      code: 'ATLAS_TIMEOUT',
      sent: true,
    });
    expect(held).toEqual([2_000]); // the first tenth of the body went out; the rest never does
  });

  it("the caller's AbortSignal reaches the socket: ATLAS_ABORTED, or ATLAS_TIMEOUT for a deadline", async () => {
    const { held, sleep } = holding();
    const { sim, client } = await setup({ sleep });
    await client.projects.listGroups();
    sim.faults.add({ operationId: 'getGroup', latencyMs: 5_000 });
    const ac = new AbortController();
    const pending = fail(client.projects.getGroup({ groupId: G }, { signal: ac.signal }));
    // Counted, not timed: the abort comes while the simulator holds the request, which never answers,
    // so the call can only have ended by the abort reaching the socket.
    await expect.poll(() => held, { timeout: 15_000 }).toEqual([5_000]);
    ac.abort();
    const aborted = await pending;
    expect(aborted).toBeInstanceOf(AtlasNetworkError);
    expect(aborted).toMatchObject({ code: 'ATLAS_ABORTED', sent: true });
    await expect(
      client.projects.getGroup({ groupId: G }, { signal: AbortSignal.timeout(50) }),
    ).rejects.toMatchObject({ code: 'ATLAS_TIMEOUT' });
    const early = new AbortController();
    early.abort();
    await expect(client.projects.getGroup({ groupId: G }, { signal: early.signal })).rejects.toMatchObject({
      code: 'ATLAS_ABORTED',
      sent: false,
    });
    expect(client.stats().retries).toBe(0);
    expect(held).toEqual([5_000, 5_000]); // the early abort sent nothing
  });

  it('an abort while waiting for the shared token leaves the fetch to the others', async () => {
    const { sim, client } = await setup();
    sim.faults.add({ operationId: 'oauth.token', latencyMs: 300, times: 1 });
    const ac = new AbortController();
    const a = client.projects.getGroup({ groupId: G }, { signal: ac.signal });
    const b = client.projects.getGroup({ groupId: G });
    ac.abort();
    await expect(a).rejects.toMatchObject({ code: 'ATLAS_ABORTED', sent: false });
    await expect(b).resolves.toMatchObject({ id: G });
    expect(client.stats().tokenFetches).toBe(1);
  });

  it('maps Atlas error answers: 404, 400 with badRequestDetail, 410 VERSION_GONE', async () => {
    const { client } = await setup({ tenantSunset: true });
    await expect(client.projects.getGroup({ groupId: SEED.unknownId })).rejects.toMatchObject({
      status: 404,
      errorCode: expect.stringMatching(/NOT_FOUND/) as unknown,
    });
    const bad = await fail(client.projects.getGroup({ groupId: 'not-hex' }));
    expect(bad).toMatchObject({
      status: 400,
      errorCode: 'VALIDATION_ERROR',
      badRequestDetail: { fields: [{ field: 'groupId', description: expect.any(String) as unknown }] },
    });
    const gone = await fail(
      client.tenantBackup.listSnapshots({
        groupId: SEED.tenant.groupId,
        clusterName: SEED.tenant.clusterName,
      }),
    );
    expect(gone).toMatchObject({
      status: 410,
      errorCode: 'VERSION_GONE',
      reason: 'Gone',
      operation: 'listGroupClusterBackupTenantSnapshots',
    });
    expect((gone as AtlasApiError).parameters[0]).toBe('2023-01-01');
  });
});
