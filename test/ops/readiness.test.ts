import { describe, expect, it } from 'vitest';
import { createReadinessCheck, type Readiness } from '../../src/gateway-readiness.js';
import { startAtlasClient } from '../support/atlas-client.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';

/** `/readyz` in-process (yoga.fetch): status and the JSON body. */
async function readyz(stack: Stack): Promise<{ status: number; type: string | null; body: Readiness }> {
  const res = await stack.gateway.yoga.fetch('http://gateway.test/readyz');
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Readiness };
}

describe('/readyz names each check and why it failed', () => {
  it('200 and every check ok on the simulator (no redis check without Redis)', async () => {
    const stack = await startStack({ gateway: { readinessIntervalMs: 0 } });
    const res = await readyz(stack);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/json/);
    expect(res.body).toEqual({ status: 'ready', checks: { atlas: { ok: true }, credentials: { ok: true } } });
  });

  // Atlas answers a refused key with errorCode UNEXPECTED_ERROR (recorded, issue #17).
  it('503 when Atlas refuses the API key (Digest): Atlas is up, the credentials are not', async () => {
    const stack = await startStack({
      auth: { type: 'digest', publicKey: OWNER.publicKey, privateKey: 'not-the-private-key' },
      gateway: { readinessIntervalMs: 0 },
    });
    const res = await readyz(stack);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      status: 'not ready',
      checks: {
        atlas: { ok: true },
        credentials: { ok: false, reason: 'Atlas answered 401 UNEXPECTED_ERROR' },
      },
    });
  });

  it('503 when the token endpoint refuses the service account', async () => {
    const stack = await startStack({
      auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: 'not-the-secret' },
      gateway: { readinessIntervalMs: 0 },
    });
    const res = await readyz(stack);
    expect(res.status).toBe(503);
    expect(res.body.checks.atlas).toEqual({ ok: true });
    expect(res.body.checks.credentials).toEqual({
      ok: false,
      reason: "Atlas's token endpoint answered 401 invalid_client",
    });
  });

  it('503 with Atlas unreachable once the simulator is gone', async () => {
    const stack = await startStack({ gateway: { readinessIntervalMs: 0 } });
    expect((await readyz(stack)).status).toBe(200);
    await stack.sim.close();
    const res = await readyz(stack);
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('not ready');
    expect(res.body.checks.atlas).toEqual({
      ok: false,
      reason: expect.stringMatching(/^Atlas unreachable \(ATLAS_NETWORK_ERROR: /) as unknown,
    });
    expect(res.body.checks.credentials).toEqual({ ok: false, reason: 'not checked: Atlas did not answer' });
  });

  it('503 with the upstream status while Atlas fails', async () => {
    const stack = await startStack({ gateway: { readinessIntervalMs: 0 } });
    stack.sim.faults.add({ operationId: 'listGroups', status: 503, times: 10 });
    const res = await readyz(stack);
    expect(res.status).toBe(503);
    expect(res.body.checks.atlas).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^Atlas answered 503 /),
    });
  });
});

describe('the readiness check', () => {
  it('adds a redis check when Redis is configured, failing while it is away', async () => {
    const { client, clock } = await startAtlasClient();
    let up = false;
    const check = createReadinessCheck({ atlas: client, clock, redis: { ready: () => up } });
    expect(await check()).toEqual({
      status: 'not ready',
      checks: {
        atlas: { ok: true },
        credentials: { ok: true },
        redis: { ok: false, reason: 'Redis is not connected' },
      },
    });
    up = true;
    expect(await check()).toMatchObject({ status: 'ready', checks: { redis: { ok: true } } });
  });

  it('a pass-through gateway has no credentials to check: Atlas refusing an anonymous call is ready', async () => {
    const { client, clock } = await startAtlasClient({ config: { auth: { type: 'none' } } });
    const check = createReadinessCheck({ atlas: client, clock, passThroughOnly: true });
    expect(await check()).toEqual({ status: 'ready', checks: { atlas: { ok: true } } });
  });

  it('one upstream call for a burst of probes, then the cached answer within the interval', async () => {
    const { client, clock, sim } = await startAtlasClient();
    const check = createReadinessCheck({ atlas: client, clock, intervalMs: 5000 });
    const calls = () => sim.stats().requests.filter((r) => r.operationId === 'listGroups').length;
    await Promise.all([check(), check(), check()]);
    expect(calls()).toBe(1);
    clock.advance(4999);
    await check();
    expect(calls()).toBe(1);
    clock.advance(1);
    await check();
    expect(calls()).toBe(2);
  });
});
