import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { loadSpec } from '../../src/simulator/openapi.js';
import { startContractSimulator } from '../support/contract.js';
import { call, digestCall, fetchToken, TestDigest, type RawAnswer } from '../support/sim-http.js';

const [OWNER, READ_ONLY] = DEFAULT_SIM_CREDENTIALS as [
  (typeof DEFAULT_SIM_CREDENTIALS)[0],
  (typeof DEFAULT_SIM_CREDENTIALS)[0],
];
const V2 = '/api/atlas/v2';
const TENANT = 'application/vnd.atlas.2023-01-01+json';
const FLEX = 'application/vnd.atlas.2024-11-13+json';
const CLUSTERS = 'application/vnd.atlas.2024-08-05+json';
const MISSING_ID = 'ffffffffffffffffffffffff';

type Sim = Awaited<ReturnType<typeof startContractSimulator>>;
interface Listed<T> {
  results: T[];
  totalCount?: number;
  links: { rel: string; href: string }[];
}
interface Job {
  id: string;
  status: string;
  snapshotUrl?: string;
  expirationDate?: string;
  deliveryType?: string;
}

/** The world as the seed made it, discovered through the API itself. */
interface World {
  groupId: string;
  tenantCluster: string;
  flexCluster: string;
  tenantSnapshot: string;
  flexSnapshot: string;
  flexPendingSnapshot: string | undefined;
  tenantRestore: string;
  flexRestore: string;
}

let clock: ManualClock;
let sim: Sim;
/**
 * The simulator's fault waits (latency, slow body): each asked-for delay is recorded; while `hold`
 * is on, a wait ends only when the test releases it. Faults are then counted, not timed.
 */
const waits = {
  asked: [] as number[],
  held: [] as (() => void)[],
  hold: false,
  sleep(ms: number): Promise<void> {
    waits.asked.push(ms);
    return waits.hold ? new Promise<void>((resolve) => waits.held.push(resolve)) : Promise.resolve();
  },
};
let owner: string;
let world: World;

const get = (target: string, accept: string, token = owner) => call(sim, 'GET', target, { accept, token });
const post = (target: string, accept: string, body: unknown, token = owner) =>
  call(sim, 'POST', target, { accept, token, contentType: accept, body });
const ok = <T>(res: RawAnswer): T => {
  expect(res.status, res.text).toBe(200);
  return res.json() as T;
};
const apiError = (res: RawAnswer, status: number, errorCode: string) => {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: number; errorCode: string; detail: string };
  expect(body).toMatchObject({ error: status, errorCode });
  return body;
};

async function discover(): Promise<World> {
  const groups = ok<Listed<{ id: string }>>(await get(`${V2}/groups`, TENANT));
  for (const g of groups.results) {
    const clusters = ok<Listed<{ name: string }>>(await get(`${V2}/groups/${g.id}/clusters`, CLUSTERS));
    const flex = ok<Listed<{ name: string }>>(await get(`${V2}/groups/${g.id}/flexClusters`, FLEX));
    const tenantCluster = clusters.results[0]?.name;
    const flexCluster = flex.results[0]?.name;
    if (!tenantCluster || !flexCluster) continue;
    const tBase = `${V2}/groups/${g.id}/clusters/${tenantCluster}/backup/tenant`;
    const fBase = `${V2}/groups/${g.id}/flexClusters/${flexCluster}/backup`;
    const ts = ok<Listed<{ id: string; status: string }>>(await get(`${tBase}/snapshots`, TENANT));
    const fs = ok<Listed<{ id: string; status: string }>>(await get(`${fBase}/snapshots`, FLEX));
    const tr = ok<Listed<Job>>(await get(`${tBase}/restores`, TENANT));
    const fr = ok<Listed<Job>>(await get(`${fBase}/restoreJobs`, FLEX));
    const tenantSnapshot = ts.results.find((s) => s.status === 'COMPLETED')?.id;
    const flexSnapshot = fs.results.find((s) => s.status === 'COMPLETED')?.id;
    if (!tenantSnapshot || !flexSnapshot || !tr.results[0] || !fr.results[0]) continue;
    return {
      groupId: g.id,
      tenantCluster,
      flexCluster,
      tenantSnapshot,
      flexSnapshot,
      flexPendingSnapshot: fs.results.find((s) => s.status !== 'COMPLETED')?.id,
      tenantRestore: tr.results[0].id,
      flexRestore: fr.results[0].id,
    };
  }
  throw new Error(
    'seed has no project with both a tenant and a flex cluster with snapshots and restore jobs',
  );
}

beforeAll(async () => {
  clock = new ManualClock();
  sim = await startContractSimulator({ clock, jobMs: 10_000, adminRoutes: true, sleep: waits.sleep });
  const t = await fetchToken(sim, OWNER);
  owner = t.body.access_token as string;
  world = await discover();
});
afterAll(async () => {
  expect(sim.violations).toEqual([]);
  expect(sim.checked()).toBeGreaterThan(50);
  await sim.close();
});
beforeEach(async () => {
  // Tests move the shared clock by hours; a fresh token keeps each one independent of the others.
  owner = (await fetchToken(sim, OWNER)).body.access_token as string;
});
afterEach(() => {
  sim.faults.clear();
  sim.store.setTenantSunset(false);
});

const tenantBase = () => `${V2}/groups/${world.groupId}/clusters/${world.tenantCluster}/backup/tenant`;
const flexBase = () => `${V2}/groups/${world.groupId}/flexClusters/${world.flexCluster}/backup`;

describe('the 18 operations of the spec', () => {
  it('serves every operation with its versioned media type and a body that matches the spec', async () => {
    const g = world.groupId;
    const seen = new Set<string>();
    const calls: [string, string, string, unknown?][] = [
      ['GET', `${V2}/groups`, TENANT],
      ['GET', `${V2}/groups/${g}`, TENANT],
      ['GET', `${V2}/groups/${g}/clusters`, CLUSTERS],
      ['GET', `${V2}/groups/${g}/clusters/${world.tenantCluster}`, CLUSTERS],
      ['GET', `${V2}/groups/${g}/flexClusters`, FLEX],
      ['GET', `${V2}/groups/${g}/flexClusters/${world.flexCluster}`, FLEX],
      ['GET', `${tenantBase()}/snapshots`, TENANT],
      ['GET', `${tenantBase()}/snapshots/${world.tenantSnapshot}`, TENANT],
      ['GET', `${tenantBase()}/restores`, TENANT],
      ['GET', `${tenantBase()}/restores/${world.tenantRestore}`, TENANT],
      [
        'POST',
        `${tenantBase()}/download`,
        TENANT,
        { snapshotId: world.tenantSnapshot, targetDeploymentItemName: world.tenantCluster },
      ],
      [
        'POST',
        `${tenantBase()}/restore`,
        TENANT,
        {
          snapshotId: world.tenantSnapshot,
          targetDeploymentItemName: world.tenantCluster,
          targetProjectId: g,
        },
      ],
      ['GET', `${flexBase()}/snapshots`, FLEX],
      ['GET', `${flexBase()}/snapshots/${world.flexSnapshot}`, FLEX],
      ['GET', `${flexBase()}/restoreJobs`, FLEX],
      ['GET', `${flexBase()}/restoreJobs/${world.flexRestore}`, FLEX],
      ['POST', `${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot }],
      [
        'POST',
        `${flexBase()}/restoreJobs`,
        FLEX,
        { snapshotId: world.flexSnapshot, targetDeploymentItemName: world.flexCluster, targetProjectId: g },
      ],
    ];
    sim.resetStats();
    for (const [method, target, accept, body] of calls) {
      const res = method === 'GET' ? await get(target, accept) : await post(target, accept, body);
      expect(res.status, `${method} ${target}: ${res.text}`).toBe(200);
      expect(res.headers['content-type']).toBe(`${accept};charset=utf-8`);
    }
    for (const r of sim.stats().requests) seen.add(r.operationId);
    expect([...seen].sort()).toEqual(
      loadSpec()
        .operations.map((o) => o.operationId)
        .sort(),
    );
  });

  it('serves every version of the cluster resources in its own shape', async () => {
    const target = `${V2}/groups/${world.groupId}/clusters/${world.tenantCluster}`;
    const legacy = ok<{ providerSettings: { providerName: string; instanceSizeName: string } }>(
      await get(target, 'application/vnd.atlas.2023-01-01+json'),
    );
    expect(legacy.providerSettings.providerName).toBe('TENANT');
    expect(legacy.providerSettings.instanceSizeName).toMatch(/^M[25]$/);
    for (const v of ['2023-02-01', '2024-08-05']) {
      const c = ok<{
        replicationSpecs: { regionConfigs: { providerName: string; backingProviderName: string }[] }[];
      }>(await get(target, `application/vnd.atlas.${v}+json`));
      expect(c.replicationSpecs[0]?.regionConfigs[0]).toMatchObject({ providerName: 'TENANT' });
    }
  });
});

describe('versioning', () => {
  it('answers 406 with an ApiError to a plain application/json Accept', async () => {
    const body = apiError(await get(`${flexBase()}/snapshots`, 'application/json'), 406, 'NOT_ACCEPTABLE');
    expect(body.detail).toContain(FLEX);
  });

  it('answers 406 to a version the resource does not have', async () => {
    apiError(await get(`${flexBase()}/snapshots`, TENANT), 406, 'NOT_ACCEPTABLE');
  });

  it('picks the first acceptable type of a list, and the first declared type for */*', async () => {
    const res = await get(`${flexBase()}/snapshots`, `application/json, ${FLEX}`);
    expect(res.headers['content-type']).toBe(`${FLEX};charset=utf-8`);
    const any = await get(`${V2}/groups/${world.groupId}/clusters/${world.tenantCluster}`, '*/*');
    expect(any.headers['content-type']).toBe('application/vnd.atlas.2023-01-01+json;charset=utf-8');
  });

  it('refuses a body whose Content-Type is not the versioned type (415)', async () => {
    const res = await call(sim, 'POST', `${flexBase()}/download`, {
      accept: FLEX,
      token: owner,
      contentType: 'application/json',
      body: { snapshotId: world.flexSnapshot },
    });
    apiError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('wraps bodies with envelope=true and pretty-prints with pretty=true', async () => {
    const one = ok<{ status: number; content: { id: string } }>(
      await get(`${flexBase()}/snapshots/${world.flexSnapshot}?envelope=true`, FLEX),
    );
    expect(one).toMatchObject({ status: 200, content: { id: world.flexSnapshot } });
    const list = ok<{ status: number; results: unknown[] }>(
      await get(`${flexBase()}/snapshots?envelope=true`, FLEX),
    );
    expect(list.status).toBe(200);
    expect(Array.isArray(list.results)).toBe(true);
    const missing = await get(`${flexBase()}/snapshots/${MISSING_ID}?envelope=true`, FLEX);
    expect(missing.status).toBe(200);
    expect(missing.json()).toMatchObject({ status: 404, content: { errorCode: 'RESOURCE_NOT_FOUND' } });
    const pretty = await get(`${flexBase()}/snapshots/${world.flexSnapshot}?pretty=true`, FLEX);
    expect(pretty.text).toContain('\n  "');
  });
});

describe('validation and errors as Atlas answers them', () => {
  it('400 for a malformed group id, naming the parameter', async () => {
    const body = apiError(await get(`${V2}/groups/not-an-id`, TENANT), 400, 'VALIDATION_ERROR');
    expect(body).toMatchObject({ badRequestDetail: { fields: [{ field: 'groupId' }] } });
  });

  it('400 for a cluster name outside the pattern', async () => {
    const body = apiError(
      await get(`${V2}/groups/${world.groupId}/flexClusters/-bad_name`, FLEX),
      400,
      'VALIDATION_ERROR',
    );
    expect(body.detail).toContain('name');
  });

  it('400 for itemsPerPage above 500', async () => {
    const body = apiError(
      await get(`${flexBase()}/snapshots?itemsPerPage=501`, FLEX),
      400,
      'VALIDATION_ERROR',
    );
    expect(body.detail).toContain('itemsPerPage');
  });

  it('400 with badRequestDetail for a body that breaks the schema', async () => {
    const body = apiError(
      await post(`${tenantBase()}/download`, TENANT, { snapshotId: world.tenantSnapshot }),
      400,
      'VALIDATION_ERROR',
    );
    expect(body).toMatchObject({ badRequestDetail: { fields: [{ field: 'targetDeploymentItemName' }] } });
  });

  it('400 for malformed JSON', async () => {
    const res = await call(sim, 'POST', `${flexBase()}/download`, {
      accept: FLEX,
      contentType: FLEX,
      token: owner,
      body: '{"snapshotId":',
    });
    apiError(res, 400, 'VALIDATION_ERROR');
  });

  it('404 GROUP_NOT_FOUND, CLUSTER_NOT_FOUND and RESOURCE_NOT_FOUND', async () => {
    apiError(await get(`${V2}/groups/${MISSING_ID}`, TENANT), 404, 'GROUP_NOT_FOUND');
    apiError(await get(`${V2}/groups/${world.groupId}/flexClusters/nope`, FLEX), 404, 'CLUSTER_NOT_FOUND');
    apiError(await get(`${flexBase()}/snapshots/${MISSING_ID}`, FLEX), 404, 'RESOURCE_NOT_FOUND');
    apiError(await get(`${tenantBase()}/restores/${MISSING_ID}`, TENANT), 404, 'RESOURCE_NOT_FOUND');
  });

  it('400 CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API and CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API', async () => {
    const g = world.groupId;
    apiError(
      await get(`${V2}/groups/${g}/flexClusters/${world.tenantCluster}/backup/snapshots`, FLEX),
      400,
      'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API',
    );
    apiError(
      await get(`${V2}/groups/${g}/clusters/${world.flexCluster}/backup/tenant/snapshots`, TENANT),
      400,
      'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API',
    );
    apiError(
      await get(`${V2}/groups/${g}/clusters/${world.flexCluster}`, CLUSTERS),
      400,
      'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API',
    );
  });

  it('403 for a read-only credential on download and restore, while it can read', async () => {
    const ro = (await fetchToken(sim, READ_ONLY)).body.access_token as string;
    ok(await get(`${flexBase()}/snapshots`, FLEX, ro));
    apiError(
      await post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot }, ro),
      403,
      'USER_UNAUTHORIZED',
    );
    apiError(
      await post(
        `${tenantBase()}/restore`,
        TENANT,
        { snapshotId: world.tenantSnapshot, targetDeploymentItemName: world.tenantCluster },
        ro,
      ),
      403,
      'USER_UNAUTHORIZED',
    );
  });

  it('409 for a restore into a cluster that a running restore is already writing', async () => {
    const body = {
      snapshotId: world.flexSnapshot,
      targetDeploymentItemName: world.flexCluster,
      targetProjectId: world.groupId,
    };
    clock.advance(60_000);
    ok(await post(`${flexBase()}/restoreJobs`, FLEX, body));
    apiError(
      await post(`${flexBase()}/restoreJobs`, FLEX, body),
      409,
      'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE',
    );
    clock.advance(10_001);
    ok(await post(`${flexBase()}/restoreJobs`, FLEX, body));
    clock.advance(10_001);
  });

  it('404 RESOURCE_NOT_FOUND for a path Atlas does not have', async () => {
    apiError(await get(`${V2}/nothing-here`, TENANT), 404, 'RESOURCE_NOT_FOUND');
  });
});

describe('pagination', () => {
  it('walks pages with itemsPerPage/pageNum and reports totalCount and links', async () => {
    const all = ok<Listed<{ id: string }>>(await get(`${flexBase()}/snapshots?itemsPerPage=500`, FLEX));
    const total = all.totalCount ?? 0;
    expect(total).toBe(all.results.length);
    const p1 = ok<Listed<{ id: string }>>(
      await get(`${flexBase()}/snapshots?itemsPerPage=2&pageNum=1`, FLEX),
    );
    const p2 = ok<Listed<{ id: string }>>(
      await get(`${flexBase()}/snapshots?itemsPerPage=2&pageNum=2`, FLEX),
    );
    expect(p1.results.map((s) => s.id)).toEqual(all.results.slice(0, 2).map((s) => s.id));
    expect(p2.results.map((s) => s.id)).toEqual(all.results.slice(2, 4).map((s) => s.id));
    expect(p1.links.map((l) => l.rel)).toEqual(['self', 'next']);
    expect(p2.links.map((l) => l.rel)).toContain('previous');
    const next = p1.links.find((l) => l.rel === 'next')!;
    expect(new URL(next.href).searchParams.get('pageNum')).toBe('2');
    const beyond = ok<Listed<{ id: string }>>(
      await get(`${flexBase()}/snapshots?itemsPerPage=2&pageNum=9999`, FLEX),
    );
    expect(beyond.results).toEqual([]);
    const noCount = ok<Listed<unknown>>(await get(`${flexBase()}/snapshots?includeCount=false`, FLEX));
    expect(noCount.totalCount).toBeUndefined();
  });

  it('defaults to 100 items a page', async () => {
    const groups = ok<Listed<{ id: string }>>(await get(`${V2}/groups`, TENANT));
    for (const g of groups.results) {
      const flex = ok<Listed<{ name: string }>>(await get(`${V2}/groups/${g.id}/flexClusters`, FLEX));
      for (const c of flex.results) {
        const page = ok<Listed<unknown>>(
          await get(`${V2}/groups/${g.id}/flexClusters/${c.name}/backup/snapshots`, FLEX),
        );
        if ((page.totalCount ?? 0) > 100) {
          expect(page.results).toHaveLength(100);
          return;
        }
      }
    }
    throw new Error('the seed should hold a flex cluster with more than 100 snapshots');
  });
});

describe('the job lifecycle', () => {
  it('moves a flex download QUEUED → RUNNING → COMPLETED and serves a real .tgz for 4 hours', async () => {
    const job = ok<Job>(await post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot }));
    expect(job).toMatchObject({ status: 'QUEUED', deliveryType: 'DOWNLOAD' });
    expect(job.snapshotUrl).toBeUndefined();
    const read = async () => ok<Job>(await get(`${flexBase()}/restoreJobs/${job.id}`, FLEX));
    clock.advance(5_000);
    expect((await read()).status).toBe('RUNNING');
    clock.advance(5_001);
    const done = await read();
    expect(done.status).toBe('COMPLETED');
    expect(done.snapshotUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/backup\/download\//);
    // Whole seconds, as Atlas sends dates.
    expect(new Date(done.expirationDate!).getTime()).toBe(
      Math.floor((clock.now() - 1 + 4 * 3600_000) / 1000) * 1000,
    );

    const file = await call(sim, 'GET', done.snapshotUrl!.slice(sim.url.length));
    expect(file.status).toBe(200);
    expect(file.headers['content-type']).toBe('application/gzip');
    const tar = gunzipSync(file.bytes);
    expect(tar.subarray(257, 262).toString()).toBe('ustar');

    clock.advance(4 * 3600_000);
    const expired = await call(sim, 'GET', done.snapshotUrl!.slice(sim.url.length));
    expect(expired.status).toBe(403);
    expect(expired.text).toContain('expired');
  });

  it('refuses a download URL with a forged signature', async () => {
    const job = ok<Job>(await post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot }));
    clock.advance(10_001);
    const done = ok<Job>(await get(`${flexBase()}/restoreJobs/${job.id}`, FLEX));
    const forged = done.snapshotUrl!.slice(sim.url.length).replace(/signature=[0-9a-f]/, 'signature=Z');
    const refused = await call(sim, 'GET', forged);
    expect(refused.status).toBe(403);
    expect(refused.text).toBe(
      'The request signature we calculated does not match the signature you provided.',
    );
  });

  it('fails a download of a snapshot that is not COMPLETED', async () => {
    if (!world.flexPendingSnapshot)
      throw new Error('the seed should hold a flex snapshot that is not COMPLETED');
    const job = ok<Job>(
      await post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexPendingSnapshot }),
    );
    clock.advance(10_001);
    expect(ok<Job>(await get(`${flexBase()}/restoreJobs/${job.id}`, FLEX)).status).toBe('FAILED');
  });

  it('runs a tenant download through the tenant routes', async () => {
    const job = ok<Job>(
      await post(`${tenantBase()}/download`, TENANT, {
        snapshotId: world.tenantSnapshot,
        targetDeploymentItemName: world.tenantCluster,
      }),
    );
    clock.advance(10_001);
    const done = ok<Job>(await get(`${tenantBase()}/restores/${job.id}`, TENANT));
    expect(done).toMatchObject({ status: 'COMPLETED', deliveryType: 'DOWNLOAD' });
    expect(done.snapshotUrl).toBeDefined();
  });
});

describe('the tenant sunset', () => {
  it('answers 410 VERSION_GONE on tenant routes and serves those clusters on the flex routes', async () => {
    sim.store.setTenantSunset(true);
    const body = apiError(await get(`${tenantBase()}/snapshots`, TENANT), 410, 'VERSION_GONE');
    expect(body.detail).toMatch(
      /^Version 2023-01-01 of api\/atlas\/v2\/groups\/.* is no longer available\.$/,
    );
    const migrated = `${V2}/groups/${world.groupId}/flexClusters/${world.tenantCluster}`;
    const cluster = ok<{ providerSettings: { providerName: string } }>(await get(migrated, FLEX));
    expect(cluster.providerSettings.providerName).toBe('FLEX');
    const snaps = ok<Listed<{ id: string }>>(await get(`${migrated}/backup/snapshots`, FLEX));
    expect(snaps.results.map((s) => s.id)).toContain(world.tenantSnapshot);
  });

  it('can be switched through the admin route', async () => {
    const res = await call(sim, 'POST', '/__admin/sunset', {
      contentType: 'application/json',
      body: { enabled: true },
    });
    expect(res.status).toBe(200);
    expect(sim.store.tenantSunset).toBe(true);
  });
});

describe('auth', () => {
  it('rejects a missing or unknown bearer token with 401 and a Digest challenge', async () => {
    const res = await get(`${V2}/groups`, TENANT, 'not-a-token');
    apiError(res, 401, 'UNEXPECTED_ERROR');
    expect(res.headers['www-authenticate']).toMatch(/^Digest realm="MMS Public API", .*qop="auth"/);
  });

  it('rejects a wrong client secret at the token endpoint', async () => {
    const t = await fetchToken(sim, { clientId: OWNER.clientId, clientSecret: 'wrong' });
    expect(t.status).toBe(401);
    expect(t.body.error).toBe('invalid_client');
  });

  it('serves the v2 routes over Digest, reusing one nonce with an increasing nc', async () => {
    const d = new TestDigest(OWNER.publicKey, OWNER.privateKey);
    const before = sim.auth.stats().digestChallenges;
    ok(await digestCall(sim, d, 'GET', `${V2}/groups`, { accept: TENANT }));
    ok(await digestCall(sim, d, 'GET', `${V2}/groups/${world.groupId}`, { accept: TENANT }));
    ok(
      await digestCall(sim, d, 'POST', `${flexBase()}/download`, {
        accept: FLEX,
        contentType: FLEX,
        body: { snapshotId: world.flexSnapshot },
      }),
    );
    expect(sim.auth.stats().digestChallenges - before).toBe(1);
  });

  it('rejects a wrong private key and a replayed nc', async () => {
    const d = new TestDigest(OWNER.publicKey, 'wrong');
    apiError(await digestCall(sim, d, 'GET', `${V2}/groups`, { accept: TENANT }), 401, 'UNEXPECTED_ERROR');
    const good = new TestDigest(OWNER.publicKey, OWNER.privateKey);
    ok(await digestCall(sim, good, 'GET', `${V2}/groups`, { accept: TENANT }));
    const replay = good.header('GET', `${V2}/groups`, { nc: good.nc });
    apiError(
      await call(sim, 'GET', `${V2}/groups`, { accept: TENANT, authorization: replay }),
      401,
      'UNEXPECTED_ERROR',
    );
  });

  it('marks an expired nonce stale=true, and accepts SHA-256', async () => {
    const d = new TestDigest(OWNER.publicKey, OWNER.privateKey);
    ok(await digestCall(sim, d, 'GET', `${V2}/groups`, { accept: TENANT }));
    clock.advance(60_000);
    const res = await call(sim, 'GET', `${V2}/groups`, {
      accept: TENANT,
      authorization: d.header('GET', `${V2}/groups`),
    });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('stale=true');
    d.absorb(res.headers['www-authenticate']!);
    ok(
      await call(sim, 'GET', `${V2}/groups`, {
        accept: TENANT,
        authorization: d.header('GET', `${V2}/groups`, { algorithm: 'SHA-256' }),
      }),
    );
  });

  it('caps live tokens at 100 per service account (403 access_denied)', async () => {
    const capped = await startContractSimulator({ clock: new ManualClock() });
    try {
      const live = capped.auth.stats().liveTokens(READ_ONLY.clientId);
      for (let i = live; i < 100; i++) expect((await fetchToken(capped, READ_ONLY)).status).toBe(200);
      const over = await fetchToken(capped, READ_ONLY);
      expect(over.status).toBe(403);
      expect(over.body.error).toBe('access_denied');
      expect(String(over.body.error_description)).toMatch(/^Access Token limit reached/);
    } finally {
      await capped.close();
    }
  });

  it('expires tokens after expires_in seconds', async () => {
    const t = await fetchToken(sim, OWNER);
    expect(t.body.expires_in).toBe(3600);
    ok(await get(`${V2}/groups`, TENANT, t.body.access_token as string));
    clock.advance(3600_001);
    apiError(await get(`${V2}/groups`, TENANT, t.body.access_token as string), 401, 'UNEXPECTED_ERROR');
    owner = (await fetchToken(sim, OWNER)).body.access_token as string;
  });
});

describe('the legacy v1.0 tenant routes', () => {
  const v1 = () => `/api/atlas/v1.0/groups/${world.groupId}/clusters/${world.tenantCluster}/backup/tenant`;

  it('serves snapshots, restores and download over Digest with application/json', async () => {
    const d = new TestDigest(OWNER.publicKey, OWNER.privateKey);
    const o = { accept: 'application/json' };
    const list = ok<Listed<{ id: string }>>(await digestCall(sim, d, 'GET', `${v1()}/snapshots`, o));
    expect(list.results.length).toBeGreaterThan(0);
    ok(await digestCall(sim, d, 'GET', `${v1()}/snapshots/${world.tenantSnapshot}`, o));
    ok(await digestCall(sim, d, 'GET', `${v1()}/restores`, o));
    ok(await digestCall(sim, d, 'GET', `${v1()}/restores/${world.tenantRestore}`, o));
    const job = ok<Job>(
      await digestCall(sim, d, 'POST', `${v1()}/download`, {
        ...o,
        contentType: 'application/json',
        body: { snapshotId: world.tenantSnapshot, targetDeploymentItemName: world.tenantCluster },
      }),
    );
    expect(job.deliveryType).toBe('DOWNLOAD');
  });

  it('is Digest only: a bearer token gets 401', async () => {
    apiError(
      await call(sim, 'GET', `${v1()}/snapshots`, { accept: 'application/json', token: owner }),
      401,
      'UNEXPECTED_ERROR',
    );
  });

  it('answers 410 after the sunset', async () => {
    sim.store.setTenantSunset(true);
    const d = new TestDigest(OWNER.publicKey, OWNER.privateKey);
    apiError(
      await digestCall(sim, d, 'GET', `${v1()}/snapshots`, { accept: 'application/json' }),
      410,
      'VERSION_GONE',
    );
  });
});

describe('rate limits', () => {
  it('answers 429 RATE_LIMITED with Retry-After once a project bucket is empty, per project', async () => {
    const rclock = new ManualClock();
    const limited = await startContractSimulator({
      clock: rclock,
      rateLimit: { capacity: 3, refillPerSecond: 1 },
    });
    try {
      const token = (await fetchToken(limited, OWNER)).body.access_token as string;
      const target = `${V2}/groups/${world.groupId}`;
      const first = await call(limited, 'GET', target, { accept: TENANT, token });
      expect(first.headers['ratelimit-limit']).toBe('3');
      expect(first.headers['ratelimit-remaining']).toBe('2');
      await call(limited, 'GET', target, { accept: TENANT, token });
      await call(limited, 'GET', target, { accept: TENANT, token });
      const res = await call(limited, 'GET', target, { accept: TENANT, token });
      const body = apiError(res, 429, 'RATE_LIMITED');
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers['ratelimit-remaining']).toBe('0');
      expect(body.detail).toContain('Please retry after 1 seconds');
      const other = ok<Listed<{ id: string }>>(
        await call(limited, 'GET', `${V2}/groups`, { accept: TENANT, token }),
      );
      expect(other.results.length).toBeGreaterThan(0);
      rclock.advance(1000);
      ok(await call(limited, 'GET', target, { accept: TENANT, token }));
      expect(limited.violations).toEqual([]);
    } finally {
      await limited.close();
    }
  });
});

describe('fault injection', () => {
  const target = () => `${flexBase()}/snapshots/${world.flexSnapshot}`;
  const opId = 'getGroupFlexClusterBackupSnapshot';

  it('adds latency', async () => {
    sim.faults.add({ operationId: opId, latencyMs: 150, times: 1 });
    waits.asked.length = 0;
    waits.hold = true;
    let answered = false;
    const res = get(target(), FLEX).then((r) => ((answered = true), r));
    try {
      // The simulator waits 150 ms before answering, and nothing is answered until that wait ends.
      await expect.poll(() => waits.asked, { timeout: 15_000 }).toEqual([150]);
      await new Promise((r) => setImmediate(r));
      expect(answered).toBe(false);
    } finally {
      waits.hold = false;
      for (const release of waits.held.splice(0)) release();
    }
    ok(await res);
    expect(waits.asked).toEqual([150]);
  });

  it.each([500, 502, 503, 504] as const)('answers %i with an ApiError', async (status) => {
    sim.faults.add({ operationId: opId, status, times: 1, retryAfterSec: 2 });
    const res = await get(target(), FLEX);
    apiError(res, status, 'UNEXPECTED_ERROR');
    expect(res.headers['retry-after']).toBe('2');
    ok(await get(target(), FLEX));
  });

  it('resets the connection before handling: no job is created', async () => {
    sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'before', times: 1 });
    const jobs = () =>
      get(`${flexBase()}/restoreJobs?itemsPerPage=500`, FLEX).then((r) => ok<Listed<Job>>(r).totalCount);
    const before = await jobs();
    await expect(post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot })).rejects.toThrow();
    expect(await jobs()).toBe(before);
  });

  it('resets the connection after handling: the job exists though the client got no answer', async () => {
    sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'after', times: 1 });
    const jobs = () =>
      get(`${flexBase()}/restoreJobs?itemsPerPage=500`, FLEX).then((r) => ok<Listed<Job>>(r).totalCount);
    const before = (await jobs()) ?? 0;
    await expect(post(`${flexBase()}/download`, FLEX, { snapshotId: world.flexSnapshot })).rejects.toThrow();
    expect(await jobs()).toBe(before + 1);
  });

  it('truncates a body', async () => {
    sim.faults.add({ operationId: opId, body: 'truncated', times: 1 });
    sim.expectViolations({ operationId: opId, status: 200, problem: 'truncated' });
    await expect(get(target(), FLEX)).rejects.toThrow();
  });

  it('sends a malformed body', async () => {
    sim.faults.add({ operationId: opId, body: 'malformed', times: 1 });
    sim.expectViolations({ operationId: opId, status: 200, problem: 'not JSON' });
    const res = await get(target(), FLEX);
    expect(res.status).toBe(200);
    expect(() => res.json()).toThrow(SyntaxError);
  });

  it('sends a slow body in pieces', async () => {
    sim.faults.add({ operationId: opId, slowBodyMs: 100, times: 1 });
    waits.asked.length = 0;
    const res = ok<{ id: string }>(await get(target(), FLEX));
    expect(res.id).toBe(world.flexSnapshot);
    // Ten pieces of the body, with a tenth of the 100 ms after each.
    expect(waits.asked).toEqual(Array.from({ length: 10 }, () => 10));
  });

  it('applies a rule for `times` requests only, and to one operation only', async () => {
    sim.faults.add({ operationId: opId, status: 503, times: 2 });
    ok(await get(`${flexBase()}/snapshots`, FLEX));
    expect((await get(target(), FLEX)).status).toBe(503);
    expect((await get(target(), FLEX)).status).toBe(503);
    ok(await get(target(), FLEX));
  });

  it('is driven through the admin route, which checks what it is given', async () => {
    const bad = await call(sim, 'POST', '/__admin/faults', {
      contentType: 'application/json',
      body: { status: 418 },
    });
    expect(bad.status).toBe(400);
    expect((bad.json() as { detail: string }).detail).toContain(
      '"status" must be one of 500, 502, 503, 504, got 418',
    );
    const added = await call(sim, 'POST', '/__admin/faults', {
      contentType: 'application/json',
      body: { operationId: opId, status: 502 },
    });
    expect(added.status).toBe(200);
    expect((await get(target(), FLEX)).status).toBe(502);
    expect((await call(sim, 'GET', '/__admin/faults')).json()).toHaveLength(1);
    await call(sim, 'DELETE', '/__admin/faults');
    ok(await get(target(), FLEX));
  });

  it('keeps the admin route off unless enabled', async () => {
    const closed = await startContractSimulator();
    try {
      expect((await call(closed, 'GET', '/__admin/faults')).status).toBe(404);
    } finally {
      await closed.close();
    }
  });
});
