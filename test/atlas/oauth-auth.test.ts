import { describe, expect, it, vi } from 'vitest';
import { AtlasAuthError, type AtlasClientConfig } from '../../src/atlas/index.js';
import { DEFAULT_SIM_CREDENTIALS, ManualClock, type SimulatorOptions } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startAtlasClient } from '../support/atlas-client.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const READ_ONLY = DEFAULT_SIM_CREDENTIALS[1]!;
const G = SEED.projects.payments.id;

/** Simulator + OAuth client (test/support/atlas-client.ts). */
const setup = (sim: SimulatorOptions = {}, config: Partial<AtlasClientConfig> = {}) =>
  startAtlasClient({ auth: 'oauth', sim, config, sleepMovesClock: false });

describe('OAuth client credentials against the simulator', () => {
  it('first call: token + call (2 round trips); then 1 round trip per call', async () => {
    const { sim, client } = await setup();
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().requestsByOperation).toEqual({ oauthToken: 1, getGroup: 1 });
    await client.projects.getGroup({ groupId: G });
    await client.projects.listGroups();
    expect(client.stats()).toMatchObject({
      requestsByOperation: { oauthToken: 1, getGroup: 2, listGroups: 1 },
      requests: 4,
      tokenFetches: 1,
      authResends: 0,
    });
    expect(sim.stats().byOperation).toEqual({ 'oauth.token': 1, getGroup: 2, listGroups: 1 });
  });

  it('100 concurrent first calls make exactly one token request', async () => {
    const { sim, client } = await setup();
    const groups = await Promise.all(
      Array.from({ length: 100 }, () => client.projects.getGroup({ groupId: G })),
    );
    expect(groups.every((g) => g.id === G)).toBe(true);
    expect(client.stats()).toMatchObject({ tokenFetches: 1, requests: 101, authResends: 0 });
    expect(sim.stats().byOperation['oauth.token']).toBe(1);
    expect(sim.auth.stats().liveTokens(OWNER.clientId)).toBe(1);
  });

  it('renews before expiry, revokes the replaced token (one live token) and revokes on close', async () => {
    const { sim, client, clock } = await setup(
      { tokenTtlSec: 600 },
      {
        auth: {
          type: 'oauth',
          clientId: OWNER.clientId,
          clientSecret: OWNER.clientSecret,
          refreshMarginMs: 60_000,
        },
      },
    );
    await client.projects.getGroup({ groupId: G });
    clock.advance(539_000); // 61 s left: outside the margin, still the first token
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().tokenFetches).toBe(1);
    clock.advance(2_000); // 59 s left: inside the margin
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().tokenFetches).toBe(2);
    await vi.waitFor(() => expect(sim.auth.stats().tokensRevoked).toBe(1));
    expect(sim.auth.stats().liveTokens(OWNER.clientId)).toBe(1);
    expect(client.stats().authResends).toBe(0);

    await client.close();
    expect(sim.auth.stats()).toMatchObject({ tokensIssued: 2, tokensRevoked: 2 });
    expect(sim.auth.stats().liveTokens(OWNER.clientId)).toBe(0);
    expect(client.stats()).toMatchObject({ tokenRevocations: 2, requestsByOperation: { oauthRevoke: 2 } });
  });

  it('caps the refresh margin at half the token lifetime', async () => {
    const { client, clock } = await setup({ tokenTtlSec: 60 }); // default margin 10 min > 60 s
    await client.projects.getGroup({ groupId: G });
    clock.advance(29_000);
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().tokenFetches).toBe(1);
    clock.advance(2_000);
    await client.projects.getGroup({ groupId: G });
    expect(client.stats().tokenFetches).toBe(2);
  });

  it('a 401 on an API call fetches one new token, shared by concurrent calls, and resends once', async () => {
    // The simulator's clock runs ahead of the client's, so it expires the token the client still trusts.
    const { sim, client } = await setup({ tokenTtlSec: 3600 }, { clock: new ManualClock() });
    await client.projects.getGroup({ groupId: G });
    (sim.clock as ManualClock).advance(3_600_000);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => client.projects.getGroup({ groupId: G })),
    );
    expect(results).toHaveLength(20);
    expect(client.stats()).toMatchObject({ tokenFetches: 2, authResends: 20 });
    expect(sim.stats().byOperation).toMatchObject({ 'oauth.token': 2, getGroup: 41 });
  });

  it('fails with AtlasAuthError on bad client credentials, without retrying', async () => {
    const { sim, client } = await setup(
      {},
      { auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: 'wrong' } },
    );
    const err = await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasAuthError);
    expect(err).toMatchObject({
      code: 'ATLAS_AUTH_FAILED',
      status: 401,
      authError: 'invalid_client',
      operation: 'oauthToken',
    });
    expect(sim.stats().byOperation).toEqual({ 'oauth.token': 1 });
  });

  it('passes Atlas 403 through for a read-only account starting a restore', async () => {
    const { client } = await setup(
      {},
      { auth: { type: 'oauth', clientId: READ_ONLY.clientId, clientSecret: READ_ONLY.clientSecret } },
    );
    await expect(
      client.flexBackup.download({
        groupId: SEED.flex.groupId,
        name: SEED.flex.clusterName,
        snapshotId: SEED.flex.completedSnapshotId,
      }),
    ).rejects.toMatchObject({ code: 'ATLAS_API_ERROR', status: 403, errorCode: 'USER_UNAUTHORIZED' });
  });

  it('close() is idempotent and later calls fail instead of minting tokens', async () => {
    const { sim, client } = await setup();
    await client.projects.getGroup({ groupId: G });
    await Promise.all([client.close(), client.close()]);
    expect(sim.auth.stats().tokensRevoked).toBe(1);
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({
      code: 'ATLAS_CONFIG_ERROR',
    });
    await expect(client.projects.getGroup({ groupId: G }, { bearerToken: 't' })).rejects.toMatchObject({
      code: 'ATLAS_CONFIG_ERROR',
    });
    expect(sim.stats().byOperation['oauth.token']).toBe(1);
  });
});
