import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/time/clock.js';
import { SimHttpError } from '../../src/simulator/http-types.js';
import { createHandlers, type Handler, type HandlerContext } from '../../src/simulator/handlers.js';
import { buildSeed, SEED, SEED_EPOCH } from '../../src/simulator/seed.js';
import { DOWNLOAD_URL_TTL_MS, SimStore } from '../../src/simulator/store.js';
import { openApiAjv } from '../support/openapi-ajv.js';

type Json = Record<string, unknown>;

const BASE = 'http://127.0.0.1:4711';
const JOB_MS = 3000;
const P = SEED.projects.payments.id;
const TENANT = SEED.tenant.clusterName;
const FLEX = SEED.flex.clusterName;
const VERSION = {
  tenant: '2023-01-01',
  flex: '2024-11-13',
} as const;

function setup(opts: { tenantSunset?: boolean; jobMs?: number } = {}) {
  const clock = new ManualClock();
  const store = new SimStore({
    clock,
    jobMs: opts.jobMs ?? JOB_MS,
    tenantSunset: opts.tenantSunset ?? false,
    downloadSecret: 'test',
    profile: 'small',
    firstJobStatus: 'QUEUED',
  });
  const handlers = createHandlers(store);
  const call = (
    op: string,
    params: Record<string, string>,
    opts2: { apiVersion?: string; body?: unknown; query?: Record<string, string>; path?: string } = {},
  ): Json => {
    const handler: Handler | undefined = handlers[op];
    if (!handler) throw new Error(`no handler ${op}`);
    const query = new URLSearchParams(opts2.query ?? {});
    const path = opts2.path ?? `/api/atlas/v2/${op}`;
    const ctx: HandlerContext = {
      req: {
        method: opts2.body ? 'POST' : 'GET',
        target: `${path}?${query}`,
        path,
        query,
        headers: {},
        body: Buffer.alloc(0),
      },
      params,
      body: opts2.body,
      principal: { scheme: 'digest', id: 'owner', role: 'owner' },
      baseUrl: BASE,
      page: {
        pageNum: Number(query.get('pageNum') ?? 1),
        itemsPerPage: Number(query.get('itemsPerPage') ?? 100),
        includeCount: query.get('includeCount') !== 'false',
      },
      apiVersion: opts2.apiVersion ?? (op.includes('Flex') ? VERSION.flex : VERSION.tenant),
    };
    const res = handler(ctx);
    expect(res.status).toBe(200);
    return res.body as Json;
  };
  return { clock, store, handlers, call };
}

function expectError(fn: () => unknown, status: number, errorCode: string): SimHttpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimHttpError);
    const e = err as SimHttpError;
    expect({ status: e.status, errorCode: e.errorCode }).toEqual({ status, errorCode });
    return e;
  }
  throw new Error(`expected ${status} ${errorCode}, got no error`);
}

function expectValid(operationId: string, body: unknown, mediaType?: string): void {
  expect(openApiAjv().validateResponse(operationId, body, mediaType)).toEqual([]);
}

const results = (body: Json) => body.results as Json[];

async function tarFiles(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.end(gunzipSync(archive));
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
}

function parseUrl(snapshotUrl: string) {
  const u = new URL(snapshotUrl);
  const m = /^\/backup\/download\/([a-f0-9]{24})\/([a-f0-9]{24})\.tgz$/.exec(u.pathname);
  if (!m) throw new Error(`unexpected snapshotUrl ${snapshotUrl}`);
  return {
    origin: u.origin,
    jobId: m[1]!,
    snapshotId: m[2]!,
    expires: Number(u.searchParams.get('expires')),
    signature: u.searchParams.get('signature') ?? '',
  };
}

describe('seed', () => {
  it('is deterministic: two stores on the same clock answer the same', () => {
    expect(buildSeed({ profile: 'small' })).toEqual(buildSeed({ now: SEED_EPOCH, profile: 'small' }));
    const a = setup();
    const b = setup();
    for (const [op, params] of [
      ['listGroups', {}],
      ['listGroupClusterBackupTenantSnapshots', { groupId: P, clusterName: TENANT }],
      ['listGroupClusterBackupTenantRestores', { groupId: P, clusterName: TENANT }],
      ['listGroupFlexClusterBackupRestoreJobs', { groupId: P, name: FLEX }],
      ['listGroupFlexClusters', { groupId: P }],
    ] as const) {
      expect(a.call(op, params)).toEqual(b.call(op, params));
    }
    const body = { snapshotId: SEED.flex.completedSnapshotId };
    expect(a.call('downloadGroupFlexClusterBackup', { groupId: P, name: FLEX }, { body })).toEqual(
      b.call('downloadGroupFlexClusterBackup', { groupId: P, name: FLEX }, { body }),
    );
  });

  it('has stable 24-hex ids, unique across the seed, independent of now', () => {
    const seed = buildSeed({ profile: 'small' });
    const later = buildSeed({ now: '2030-01-01T00:00:00Z', profile: 'small' });
    const ids = [
      ...seed.projects.map((p) => p.id),
      ...seed.clusters.map((c) => c.id),
      ...seed.snapshots.map((s) => s.id),
      ...seed.restoreJobs.map((j) => j.id),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-f0-9]{24}$/);
    expect(later.snapshots.map((s) => s.id)).toEqual(seed.snapshots.map((s) => s.id));
    expect(new Set(seed.projects.map((p) => p.orgId))).toEqual(new Set([SEED.orgId]));
  });

  it('holds the mix the tests rely on', () => {
    const seed = buildSeed({ profile: 'small' });
    expect(seed.projects.map((p) => p.name)).toEqual(['Payments', 'Analytics', 'Sandbox']);
    const tenant = seed.clusters.filter((c) => c.family === 'tenant');
    expect(new Set(tenant.map((c) => c.instanceSize))).toEqual(new Set(['M2', 'M5']));
    expect(new Set(seed.clusters.map((c) => c.backingProviderName))).toEqual(
      new Set(['AWS', 'GCP', 'AZURE']),
    );
    expect(seed.snapshots.filter((s) => s.status === 'PENDING').map((s) => s.id)).toEqual([
      SEED.tenant.pending.snapshotId,
    ]);
    for (const status of ['QUEUED', 'RUNNING', 'FAILED'] as const) {
      expect(seed.snapshots.some((s) => s.status === status)).toBe(true);
    }
    const byId = new Map(seed.snapshots.map((s) => [s.id, s]));
    expect(byId.get(SEED.tenant.completedSnapshotId)?.status).toBe('COMPLETED');
    expect(byId.get(SEED.tenant.runningSnapshotId)?.status).toBe('RUNNING');
    expect(byId.get(SEED.tenant.failedSnapshotId)?.status).toBe('FAILED');
    expect(byId.get(SEED.tenant.queuedSnapshotId)?.status).toBe('QUEUED');
    expect(byId.get(SEED.flex.completedSnapshotId)?.status).toBe('COMPLETED');
    expect(byId.get(SEED.flex.runningSnapshotId)?.status).toBe('RUNNING');
    expect(byId.get(SEED.flex.failedSnapshotId)?.status).toBe('FAILED');
    expect(seed.snapshots.filter((s) => s.clusterName === FLEX && s.groupId === P)).toHaveLength(120);
    for (const s of seed.snapshots) {
      expect(s.mongoDBVersion).toMatch(/^8\.0\.\d+$/);
      expect(Date.parse(s.scheduledTime)).toBeLessThan(Date.parse(SEED_EPOCH));
    }
  });

  it('serves seeded jobs: COMPLETED downloads with expired URLs, a RESTORE, a FAILED one', () => {
    const { call } = setup();
    const tenantParams = { groupId: P, clusterName: TENANT };
    const dl = call('getGroupClusterBackupTenantRestore', {
      ...tenantParams,
      restoreId: SEED.tenant.downloadJobId,
    });
    expect(dl).toMatchObject({ status: 'COMPLETED', deliveryType: 'DOWNLOAD', clusterName: TENANT });
    expect(Date.parse(dl.expirationDate as string)).toBeLessThan(Date.parse(SEED_EPOCH));
    expect(dl.snapshotUrl).toEqual(expect.stringContaining('/backup/download/'));
    const restore = call('getGroupClusterBackupTenantRestore', {
      ...tenantParams,
      restoreId: SEED.tenant.restoreJobId,
    });
    expect(restore).toMatchObject({
      status: 'COMPLETED',
      deliveryType: 'RESTORE',
      targetDeploymentItemName: 'ledger-m5',
    });
    expect(restore).not.toHaveProperty('snapshotUrl');
    const failed = call('getGroupClusterBackupTenantRestore', {
      ...tenantParams,
      restoreId: SEED.tenant.failedJobId,
    });
    expect(failed).toMatchObject({ status: 'FAILED' });
    expect(failed).not.toHaveProperty('snapshotUrl');
    expect(results(call('listGroupClusterBackupTenantRestores', tenantParams))).toHaveLength(
      SEED.tenant.restoreJobCount,
    );
    const flexJobs = results(call('listGroupFlexClusterBackupRestoreJobs', { groupId: P, name: FLEX }));
    expect(flexJobs).toHaveLength(SEED.flex.restoreJobCount);
    expect(flexJobs.map((j) => j.instanceName)).toEqual(Array(SEED.flex.restoreJobCount).fill(FLEX));
  });
});

describe('job lifecycle', () => {
  it('goes QUEUED → RUNNING → COMPLETED on the clock, with snapshotUrl and a 4 h expirationDate', () => {
    const { clock, call } = setup();
    const params = { groupId: P, name: FLEX };
    const t0 = clock.now();
    const created = call('downloadGroupFlexClusterBackup', params, {
      body: { snapshotId: SEED.flex.completedSnapshotId },
    });
    expectValid('downloadGroupFlexClusterBackup', created);
    expect(created).toMatchObject({
      status: 'QUEUED',
      deliveryType: 'DOWNLOAD',
      instanceName: FLEX,
      projectId: P,
    });
    expect(created).not.toHaveProperty('snapshotUrl');
    const get = () =>
      call('getGroupFlexClusterBackupRestoreJob', { ...params, restoreJobId: created.id as string });

    clock.advance(0.2 * JOB_MS - 1);
    expect(get().status).toBe('QUEUED');
    clock.advance(1);
    expect(get().status).toBe('RUNNING');
    expect(get()).not.toHaveProperty('snapshotUrl');
    clock.set(t0 + JOB_MS);
    const done = get();
    expectValid('getGroupFlexClusterBackupRestoreJob', done);
    expect(done.status).toBe('COMPLETED');
    // Whole seconds, as Atlas sends them.
    const whole = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    expect(done.restoreFinishedDate).toBe(whole(t0 + JOB_MS));
    expect(done.expirationDate).toBe(whole(t0 + JOB_MS + 4 * 3600_000));
    expect(done.snapshotFinishedDate).toEqual(expect.any(String));
    const url = parseUrl(done.snapshotUrl as string);
    expect(url).toMatchObject({ origin: BASE, jobId: created.id, snapshotId: SEED.flex.completedSnapshotId });
    expect(url.expires).toBe(Math.floor((t0 + JOB_MS + DOWNLOAD_URL_TTL_MS) / 1000));
    expect(url.signature).toMatch(/^[a-f0-9]{64}$/);
  });

  it('fails a job for a snapshot that is not COMPLETED: QUEUED until jobMs, then FAILED', () => {
    const { clock, call } = setup();
    const params = { groupId: P, clusterName: TENANT };
    const t0 = clock.now();
    const job = call('downloadGroupClusterBackupTenant', params, {
      body: { snapshotId: SEED.tenant.runningSnapshotId, targetDeploymentItemName: TENANT },
    });
    const get = () => call('getGroupClusterBackupTenantRestore', { ...params, restoreId: job.id as string });
    clock.set(t0 + JOB_MS - 1);
    expect(get().status).toBe('QUEUED');
    clock.set(t0 + JOB_MS);
    const failed = get();
    expect(failed.status).toBe('FAILED');
    expect(failed).not.toHaveProperty('snapshotUrl');
    expect(failed).not.toHaveProperty('restoreFinishedDate');
    expectValid('getGroupClusterBackupTenantRestore', failed);
  });

  it('never gives a RESTORE job a snapshotUrl, and checks the restore target', () => {
    const { clock, call, store } = setup();
    const params = { groupId: P, clusterName: TENANT };
    const job = call('createGroupClusterBackupTenantRestore', params, {
      body: {
        snapshotId: SEED.tenant.completedSnapshotId,
        targetDeploymentItemName: SEED.tenant.m5ClusterName,
      },
    });
    expect(job).toMatchObject({ deliveryType: 'RESTORE', targetProjectId: P, clusterName: TENANT });
    clock.advance(JOB_MS);
    const done = call('getGroupClusterBackupTenantRestore', { ...params, restoreId: job.id as string });
    expect(done.status).toBe('COMPLETED');
    expect(done).not.toHaveProperty('snapshotUrl');
    // A RESTORE job's expirationDate is restoreScheduledDate + 6 h, from the start (recorded).
    expect(Date.parse(job.expirationDate as string) - Date.parse(job.restoreScheduledDate as string)).toBe(
      6 * 3600_000,
    );
    expect(done.expirationDate).toBe(job.expirationDate);
    expectValid('createGroupClusterBackupTenantRestore', job);

    const e = expectError(
      () =>
        call('createGroupClusterBackupTenantRestore', params, {
          body: { snapshotId: SEED.tenant.completedSnapshotId, targetDeploymentItemName: 'no-such-cluster' },
        }),
      404,
      'CLUSTER_NOT_FOUND',
    );
    expect(e.parameters).toEqual(['no-such-cluster', P]);
    expectError(
      () =>
        call(
          'createGroupFlexClusterBackupRestoreJob',
          { groupId: P, name: FLEX },
          {
            body: {
              snapshotId: SEED.flex.completedSnapshotId,
              targetDeploymentItemName: FLEX,
              targetProjectId: SEED.unknownId,
            },
          },
        ),
      404,
      'GROUP_NOT_FOUND',
    );
    const flexRestore = call(
      'createGroupFlexClusterBackupRestoreJob',
      { groupId: P, name: FLEX },
      {
        body: {
          snapshotId: SEED.flex.completedSnapshotId,
          targetDeploymentItemName: SEED.flex.other.clusterName,
          targetProjectId: SEED.flex.other.groupId,
        },
      },
    );
    expect(flexRestore).toMatchObject({ deliveryType: 'RESTORE', targetProjectId: SEED.flex.other.groupId });
    expect(store.jobsCreatedFor(SEED.tenant.completedSnapshotId)).toBe(1);
    expect(store.jobsCreatedFor(SEED.flex.completedSnapshotId)).toBe(1);
    expect(store.jobsCreatedTotal()).toBe(2);
  });

  it('counts runtime jobs per snapshot, not seeded ones', () => {
    const { call, store } = setup();
    expect(store.jobsCreatedFor(SEED.flex.completedSnapshotId)).toBe(0);
    for (let i = 0; i < 3; i += 1) {
      call(
        'downloadGroupFlexClusterBackup',
        { groupId: P, name: FLEX },
        { body: { snapshotId: SEED.flex.completedSnapshotId } },
      );
    }
    expect(store.jobsCreatedFor(SEED.flex.completedSnapshotId)).toBe(3);
    const ids = results(call('listGroupFlexClusterBackupRestoreJobs', { groupId: P, name: FLEX })).map(
      (j) => j.id,
    );
    expect(new Set(ids).size).toBe(SEED.flex.restoreJobCount + 3);
  });
});

describe('downloads', () => {
  it('serves a valid tar.gz while the URL is valid and refuses it after 4 hours', async () => {
    const { clock, call, store } = setup();
    const params = { groupId: P, name: FLEX };
    const job = call('downloadGroupFlexClusterBackup', params, {
      body: { snapshotId: SEED.flex.completedSnapshotId },
    });
    clock.advance(JOB_MS);
    const done = call('getGroupFlexClusterBackupRestoreJob', { ...params, restoreJobId: job.id as string });
    const u = parseUrl(done.snapshotUrl as string);

    const ok = store.resolveDownload(u.jobId, u.snapshotId, u.expires, u.signature);
    if (!ok.ok) throw new Error(ok.message);
    const files = await tarFiles(ok.object.body);
    const dir = SEED.flex.completedSnapshotId;
    expect([...files.keys()]).toEqual([
      `${dir}/`,
      `${dir}/metadata.json`,
      `${dir}/WiredTiger`,
      `${dir}/storage.bson`,
    ]);
    const meta = JSON.parse(files.get(`${dir}/metadata.json`)!.toString('utf8')) as Json;
    expect(meta).toMatchObject({ snapshotId: dir, clusterName: FLEX, groupId: P });
    expect(files.get(`${dir}/storage.bson`)!.readInt32LE(0)).toBe(files.get(`${dir}/storage.bson`)!.length);
    // Deterministic bytes: the same snapshot gives the same archive.
    const again = store.resolveDownload(u.jobId, u.snapshotId, String(u.expires), u.signature);
    expect(again.ok && again.object.body.equals(ok.object.body)).toBe(true);

    clock.advance(DOWNLOAD_URL_TTL_MS);
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires, u.signature).ok).toBe(true);
    clock.advance(1000);
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires, u.signature)).toEqual({
      ok: false,
      status: 403,
      message: 'Request has expired',
    });
  });

  it('refuses a bad signature (403), a stretched expiry (403), and unknown jobs or snapshots (404)', () => {
    const { clock, call, store } = setup();
    const job = call(
      'downloadGroupFlexClusterBackup',
      { groupId: P, name: FLEX },
      {
        body: { snapshotId: SEED.flex.completedSnapshotId },
      },
    );
    clock.advance(JOB_MS);
    const done = call('getGroupFlexClusterBackupRestoreJob', {
      groupId: P,
      name: FLEX,
      restoreJobId: job.id as string,
    });
    const u = parseUrl(done.snapshotUrl as string);
    const flipped = `${u.signature.slice(0, -1)}${u.signature.endsWith('0') ? '1' : '0'}`;
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires, flipped)).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires, 'nothex')).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires + 3600, u.signature)).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(store.resolveDownload(u.jobId, u.snapshotId, Number.NaN, u.signature)).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(store.resolveDownload(SEED.unknownId, u.snapshotId, u.expires, u.signature)).toMatchObject({
      ok: false,
      status: 404,
    });
    expect(store.resolveDownload(u.jobId, SEED.flex.runningSnapshotId, u.expires, u.signature)).toMatchObject(
      {
        ok: false,
        status: 404,
      },
    );
    // Job ids are deterministic, so another store has the same job: its (random) secret must not sign for this one.
    const other = new SimStore({ clock, jobMs: JOB_MS, profile: 'small', firstJobStatus: 'QUEUED' });
    clock.set(Date.parse(SEED_EPOCH));
    const otherJob = other.createRestoreJob({
      groupId: P,
      clusterName: FLEX,
      snapshotId: SEED.flex.completedSnapshotId,
      deliveryType: 'DOWNLOAD',
      targetProjectId: P,
      targetDeploymentItemName: FLEX,
    });
    expect(otherJob.id).toBe(job.id);
    clock.advance(JOB_MS);
    const forged = parseUrl(other.snapshotUrl(otherJob, BASE)!);
    expect(forged.expires).toBe(u.expires);
    expect(forged.signature).not.toBe(u.signature);
    expect(
      store.resolveDownload(forged.jobId, forged.snapshotId, forged.expires, forged.signature),
    ).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(store.resolveDownload(u.jobId, u.snapshotId, u.expires, u.signature).ok).toBe(true);
  });

  it('has the seeded URLs: the old one expired, the fresh one still valid', () => {
    const { call, store } = setup();
    const old = call('getGroupFlexClusterBackupRestoreJob', {
      groupId: P,
      name: FLEX,
      restoreJobId: SEED.flex.downloadJobId,
    });
    const o = parseUrl(old.snapshotUrl as string);
    expect(store.resolveDownload(o.jobId, o.snapshotId, o.expires, o.signature)).toMatchObject({
      ok: false,
      status: 403,
      message: 'Request has expired',
    });
    const fresh = call('getGroupFlexClusterBackupRestoreJob', {
      groupId: P,
      name: FLEX,
      restoreJobId: SEED.flex.freshDownloadJobId,
    });
    const f = parseUrl(fresh.snapshotUrl as string);
    expect(store.resolveDownload(f.jobId, f.snapshotId, f.expires, f.signature).ok).toBe(true);
  });
});

describe('errors', () => {
  const { call } = setup();
  const unknown = SEED.unknownId;

  it('unknown project → 404 GROUP_NOT_FOUND', () => {
    const e = expectError(() => call('getGroup', { groupId: unknown }), 404, 'GROUP_NOT_FOUND');
    expect(e.message).toBe(`No group with ID ${unknown} exists.`);
    expect(e.parameters).toEqual([unknown]);
    expectError(() => call('listGroupClusters', { groupId: unknown }), 404, 'GROUP_NOT_FOUND');
    expectError(() => call('listGroupFlexClusters', { groupId: unknown }), 404, 'GROUP_NOT_FOUND');
    expectError(
      () => call('listGroupClusterBackupTenantSnapshots', { groupId: unknown, clusterName: TENANT }),
      404,
      'GROUP_NOT_FOUND',
    );
  });

  it('unknown cluster → 404 CLUSTER_NOT_FOUND', () => {
    const e = expectError(
      () => call('getGroupCluster', { groupId: P, clusterName: 'nope' }),
      404,
      'CLUSTER_NOT_FOUND',
    );
    expect(e.message).toBe(`No cluster named nope exists in group ${P}.`);
    expect(e.parameters).toEqual(['nope', P]);
    expectError(() => call('getGroupFlexCluster', { groupId: P, name: 'nope' }), 404, 'CLUSTER_NOT_FOUND');
    expectError(
      () => call('listGroupFlexClusterBackupSnapshots', { groupId: P, name: 'nope' }),
      404,
      'CLUSTER_NOT_FOUND',
    );
    // Names are per project: Sandbox has its own Cluster0, Payments has no events-flex.
    expectError(
      () => call('getGroupFlexCluster', { groupId: P, name: 'events-flex' }),
      404,
      'CLUSTER_NOT_FOUND',
    );
  });

  it('unknown snapshot or restore job → 404 RESOURCE_NOT_FOUND, also in POST bodies', () => {
    const t = { groupId: P, clusterName: TENANT };
    const f = { groupId: P, name: FLEX };
    expectError(
      () => call('getGroupClusterBackupTenantSnapshot', { ...t, snapshotId: unknown }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('getGroupClusterBackupTenantRestore', { ...t, restoreId: unknown }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('getGroupFlexClusterBackupSnapshot', { ...f, snapshotId: unknown }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('getGroupFlexClusterBackupRestoreJob', { ...f, restoreJobId: unknown }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    // A snapshot of another cluster is not found on this one.
    expectError(
      () => call('getGroupFlexClusterBackupSnapshot', { ...f, snapshotId: SEED.tenant.completedSnapshotId }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('getGroupFlexClusterBackupRestoreJob', { ...f, restoreJobId: SEED.tenant.downloadJobId }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('downloadGroupFlexClusterBackup', f, { body: { snapshotId: unknown } }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () =>
        call('downloadGroupClusterBackupTenant', t, {
          body: { snapshotId: unknown, targetDeploymentItemName: TENANT },
        }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () =>
        call('createGroupFlexClusterBackupRestoreJob', f, {
          body: { snapshotId: SEED.tenant.completedSnapshotId, targetDeploymentItemName: FLEX },
        }),
      404,
      'RESOURCE_NOT_FOUND',
    );
  });

  it('flex route on a tenant cluster → 400 CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API', () => {
    const f = { groupId: P, name: TENANT };
    for (const op of [
      'getGroupFlexCluster',
      'listGroupFlexClusterBackupSnapshots',
      'listGroupFlexClusterBackupRestoreJobs',
    ]) {
      expectError(() => call(op, f), 400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API');
    }
    expectError(
      () =>
        call('downloadGroupFlexClusterBackup', f, { body: { snapshotId: SEED.tenant.completedSnapshotId } }),
      400,
      'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API',
    );
  });

  it('tenant/cluster route on a flex cluster → 400 CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API', () => {
    const t = { groupId: P, clusterName: FLEX };
    for (const op of [
      'getGroupCluster',
      'listGroupClusterBackupTenantSnapshots',
      'listGroupClusterBackupTenantRestores',
      'v1.listTenantSnapshots',
    ]) {
      expectError(() => call(op, t), 400, 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API');
    }
    expectError(
      () =>
        call('downloadGroupClusterBackupTenant', t, {
          body: { snapshotId: SEED.flex.completedSnapshotId, targetDeploymentItemName: FLEX },
        }),
      400,
      'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API',
    );
  });
});

describe('a deleted snapshot', () => {
  it('is no longer listed, and its read and a download of it answer 404 RESOURCE_NOT_FOUND', () => {
    const { store, call } = setup();
    const id = SEED.flex.completedSnapshotId;
    const before = store.listSnapshots(P, FLEX).length;
    expect(store.deleteSnapshot(P, FLEX, id)).toBe(true);
    expect(store.listSnapshots(P, FLEX)).toHaveLength(before - 1);
    expect(store.listSnapshots(P, FLEX).some((s) => s.id === id)).toBe(false);
    const f = { groupId: P, name: FLEX };
    expectError(
      () => call('getGroupFlexClusterBackupSnapshot', { ...f, snapshotId: id }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectError(
      () => call('downloadGroupFlexClusterBackup', f, { body: { snapshotId: id } }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    // Only once, and only in its own cluster.
    expect(store.deleteSnapshot(P, FLEX, id)).toBe(false);
    const other = store.listSnapshots(P, FLEX)[0]!.id;
    expect(store.deleteSnapshot(P, TENANT, other)).toBe(false);
    expect(store.getSnapshot(P, FLEX, other)).toBeDefined();
  });
});

describe('tenant sunset', () => {
  it('serves M2/M5 clusters as migrated Flex clusters, with their backups on the flex routes', () => {
    const { call, store } = setup();
    expect(results(call('listGroupClusters', { groupId: P }))).toHaveLength(2);
    store.setTenantSunset(true);
    expect(store.tenantSunset).toBe(true);

    expect(results(call('listGroupClusters', { groupId: P }))).toEqual([]);
    const flex = call('listGroupFlexClusters', { groupId: P });
    expectValid('listGroupFlexClusters', flex);
    const migrated = results(flex).find((c) => c.name === TENANT);
    expect(migrated).toMatchObject({
      name: TENANT,
      providerSettings: { providerName: 'FLEX', backingProviderName: 'AWS' },
      backupSettings: { enabled: true },
    });
    expect(call('getGroupFlexCluster', { groupId: P, name: SEED.tenant.m5ClusterName })).toMatchObject({
      providerSettings: { providerName: 'FLEX', backingProviderName: 'AZURE' },
    });
    expectError(
      () => call('getGroupCluster', { groupId: P, clusterName: TENANT }),
      400,
      'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API',
    );

    const snaps = call('listGroupFlexClusterBackupSnapshots', { groupId: P, name: TENANT });
    expectValid('listGroupFlexClusterBackupSnapshots', snaps);
    expect(snaps.totalCount).toBe(SEED.tenant.snapshotCount);
    const jobs = call('listGroupFlexClusterBackupRestoreJobs', { groupId: P, name: TENANT });
    expectValid('listGroupFlexClusterBackupRestoreJobs', jobs);
    expect(results(jobs).map((j) => j.id)).toContain(SEED.tenant.downloadJobId);
    expect(results(jobs)[0]).toHaveProperty('instanceName', TENANT);
    expect(results(jobs)[0]).not.toHaveProperty('clusterName');
    const job = call(
      'downloadGroupFlexClusterBackup',
      { groupId: P, name: TENANT },
      {
        body: { snapshotId: SEED.tenant.completedSnapshotId },
      },
    );
    expect(job).toMatchObject({ instanceName: TENANT, deliveryType: 'DOWNLOAD' });

    store.setTenantSunset(false);
    expect(results(call('listGroupClusters', { groupId: P }))).toHaveLength(2);
  });

  it('can start in sunset mode', () => {
    const { call } = setup({ tenantSunset: true });
    const names = results(call('listGroupFlexClusters', { groupId: P })).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining([TENANT, SEED.tenant.m5ClusterName, FLEX]));
  });
});

describe('pagination', () => {
  const { call } = setup();
  const params = { groupId: P, name: FLEX };
  const path = `/api/atlas/v2/groups/${P}/flexClusters/${FLEX}/backup/snapshots`;

  it('pages the 120 flex snapshots at the default 100 with totalCount and a next link, oldest first as Atlas does', () => {
    const first = call('listGroupFlexClusterBackupSnapshots', params, { path });
    expectValid('listGroupFlexClusterBackupSnapshots', first);
    expect(results(first)).toHaveLength(100);
    expect(first.totalCount).toBe(120);
    const links = first.links as { rel: string; href: string }[];
    const next = links.find((l) => l.rel === 'next');
    expect(next?.href).toBe(`${BASE}${path}?includeCount=true&pageNum=2&itemsPerPage=100`);
    // Atlas's recorded order for Flex snapshots (flex-snapshots-list.http): oldest first.
    expect(results(first)[0]!.id).not.toBe(SEED.flex.runningSnapshotId);

    const second = call('listGroupFlexClusterBackupSnapshots', params, { path, query: { pageNum: '2' } });
    expect(results(second)).toHaveLength(20);
    expect(second.totalCount).toBe(120);
    const rels = (second.links as { rel: string }[]).map((l) => l.rel);
    expect(rels).toEqual(['self', 'previous']);
    const all = [...results(first), ...results(second)].map((s) => s.id);
    expect(new Set(all).size).toBe(120);
    // Oldest first across pages; the newest (running) snapshot is the last item of the last page.
    const times = [...results(first), ...results(second)].map((s) => Date.parse(s.scheduledTime as string));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(results(second).at(-1)!.id).toBe(SEED.flex.runningSnapshotId);
  });

  it('omits totalCount with includeCount=false and pages tenant lists the same way', () => {
    const noCount = call('listGroupFlexClusterBackupSnapshots', params, { query: { includeCount: 'false' } });
    expect(noCount).not.toHaveProperty('totalCount');
    const small = call(
      'listGroupClusterBackupTenantSnapshots',
      { groupId: P, clusterName: TENANT },
      {
        query: { itemsPerPage: '10', pageNum: '4' },
      },
    );
    expect(results(small)).toHaveLength(SEED.tenant.snapshotCount - 30);
    const empty = call('listGroupFlexClusterBackupSnapshots', {
      groupId: SEED.flex.empty.groupId,
      name: SEED.flex.empty.clusterName,
    });
    expect(empty).toMatchObject({ results: [], totalCount: 0 });
  });
});

describe('cluster shapes', () => {
  const { call } = setup();
  const mediaType = (v: string) => `application/vnd.atlas.${v}+json`;

  it('2023-01-01 LegacyAtlasCluster: providerSettings TENANT + backingProviderName + instanceSizeName', () => {
    const list = call('listGroupClusters', { groupId: P }, { apiVersion: '2023-01-01' });
    expectValid('listGroupClusters', list, mediaType('2023-01-01'));
    const c = call('getGroupCluster', { groupId: P, clusterName: TENANT }, { apiVersion: '2023-01-01' });
    expectValid('getGroupCluster', c, mediaType('2023-01-01'));
    expect(c).toMatchObject({
      id: SEED.tenant.clusterId,
      groupId: P,
      name: TENANT,
      stateName: 'IDLE',
      backupEnabled: true,
      mongoDBVersion: expect.stringMatching(/^8\.0\.\d+$/),
      providerSettings: { providerName: 'TENANT', backingProviderName: 'AWS', instanceSizeName: 'M2' },
      links: [{ rel: 'self', href: `${BASE}/api/atlas/v2/groups/${P}/clusters/${TENANT}` }],
    });
  });

  it.each(['2023-02-01', '2024-08-05'])(
    '%s: replicationSpecs[].regionConfigs[] TENANT + electableSpecs.instanceSize',
    (v) => {
      const list = call('listGroupClusters', { groupId: P }, { apiVersion: v });
      expectValid('listGroupClusters', list, mediaType(v));
      const c = call(
        'getGroupCluster',
        { groupId: P, clusterName: SEED.tenant.m5ClusterName },
        { apiVersion: v },
      );
      expectValid('getGroupCluster', c, mediaType(v));
      expect(c).toMatchObject({
        name: SEED.tenant.m5ClusterName,
        groupId: P,
        stateName: 'IDLE',
        backupEnabled: true,
        mongoDBVersion: expect.stringMatching(/^8\.0\.\d+$/),
        replicationSpecs: [
          {
            regionConfigs: [
              {
                providerName: 'TENANT',
                backingProviderName: 'AZURE',
                electableSpecs: { instanceSize: 'M5' },
              },
            ],
          },
        ],
      });
      expect(c).not.toHaveProperty('providerSettings');
    },
  );

  it('flex clusters: FlexClusterDescription20241113', () => {
    const c = call('getGroupFlexCluster', { groupId: P, name: FLEX });
    expectValid('getGroupFlexCluster', c);
    expect(c).toMatchObject({
      providerSettings: { providerName: 'FLEX', backingProviderName: 'AWS' },
      backupSettings: { enabled: true },
      stateName: 'IDLE',
      clusterType: 'REPLICASET',
    });
  });
});

describe('every operation answers a body valid against the spec', () => {
  const { call } = setup();
  const t = { groupId: P, clusterName: TENANT };
  const f = { groupId: P, name: FLEX };
  const cases: [string, Record<string, string>, unknown?][] = [
    ['listGroups', {}],
    ['getGroup', { groupId: P }],
    ['listGroupClusters', { groupId: P }],
    ['getGroupCluster', t],
    ['listGroupFlexClusters', { groupId: P }],
    ['getGroupFlexCluster', f],
    [
      'downloadGroupClusterBackupTenant',
      t,
      { snapshotId: SEED.tenant.completedSnapshotId, targetDeploymentItemName: TENANT },
    ],
    [
      'createGroupClusterBackupTenantRestore',
      t,
      {
        snapshotId: SEED.tenant.completedSnapshotId,
        targetDeploymentItemName: SEED.tenant.m5ClusterName,
        targetProjectId: P,
      },
    ],
    ['listGroupClusterBackupTenantRestores', t],
    ['getGroupClusterBackupTenantRestore', { ...t, restoreId: SEED.tenant.downloadJobId }],
    ['listGroupClusterBackupTenantSnapshots', t],
    ['getGroupClusterBackupTenantSnapshot', { ...t, snapshotId: SEED.tenant.runningSnapshotId }],
    ['downloadGroupFlexClusterBackup', f, { snapshotId: SEED.flex.completedSnapshotId }],
    ['listGroupFlexClusterBackupRestoreJobs', f],
    [
      'createGroupFlexClusterBackupRestoreJob',
      f,
      { snapshotId: SEED.flex.completedSnapshotId, targetDeploymentItemName: FLEX },
    ],
    ['getGroupFlexClusterBackupRestoreJob', { ...f, restoreJobId: SEED.flex.freshDownloadJobId }],
    ['listGroupFlexClusterBackupSnapshots', f],
    ['getGroupFlexClusterBackupSnapshot', { ...f, snapshotId: SEED.flex.failedSnapshotId }],
  ];

  it.each(cases)('%s', (op, params, body) => {
    expectValid(op, call(op, params, body === undefined ? {} : { body }));
  });

  it('covers all 18 operations and the 6 legacy keys', () => {
    const { handlers } = setup();
    expect(new Set(cases.map((c) => c[0])).size).toBe(18);
    expect(Object.keys(handlers).sort()).toEqual(
      [
        ...cases.map((c) => c[0]),
        'v1.downloadTenantSnapshot',
        'v1.restoreTenantSnapshot',
        'v1.listTenantSnapshots',
        'v1.getTenantSnapshot',
        'v1.listTenantRestores',
        'v1.getTenantRestore',
      ].sort(),
    );
  });
});

describe('legacy v1.0', () => {
  const { clock, call } = setup();
  const t = { groupId: P, clusterName: TENANT };
  const v1 = { apiVersion: 'v1.0' };

  it('adds timestamp to snapshots and submittedAt/finishedDate to restore jobs, with v1.0 links', () => {
    const snaps = call('v1.listTenantSnapshots', t, v1);
    expect(snaps.totalCount).toBe(SEED.tenant.snapshotCount);
    const snap = call('v1.getTenantSnapshot', { ...t, snapshotId: SEED.tenant.completedSnapshotId }, v1);
    expect(snap.timestamp).toBe(snap.finishTime);
    expect((snap.links as { href: string }[])[0]!.href).toContain('/api/atlas/v1.0/groups/');

    const restores = call('v1.listTenantRestores', t, v1);
    expect(results(restores)).toHaveLength(SEED.tenant.restoreJobCount);
    const done = call('v1.getTenantRestore', { ...t, restoreId: SEED.tenant.downloadJobId }, v1);
    expect(done.submittedAt).toBe(done.restoreScheduledDate);
    expect(done.finishedDate).toBe(done.restoreFinishedDate);

    const job = call('v1.downloadTenantSnapshot', t, {
      ...v1,
      body: { snapshotId: SEED.tenant.completedSnapshotId, targetDeploymentItemName: TENANT },
    });
    expect(job).toMatchObject({
      status: 'QUEUED',
      deliveryType: 'DOWNLOAD',
      submittedAt: expect.any(String),
    });
    expect(job).not.toHaveProperty('finishedDate');
    clock.advance(JOB_MS);
    const after = call('v1.getTenantRestore', { ...t, restoreId: job.id as string }, v1);
    expect(after).toMatchObject({
      status: 'COMPLETED',
      finishedDate: expect.any(String),
      snapshotUrl: expect.any(String),
    });
  });

  it('v1.0 download takes {"snapshotId"} alone (seed 003); v1.0 POST tenant/restore exists', () => {
    const job = call('v1.downloadTenantSnapshot', t, {
      ...v1,
      body: { snapshotId: SEED.tenant.completedSnapshotId },
    });
    expect(job).toMatchObject({ deliveryType: 'DOWNLOAD', targetDeploymentItemName: TENANT });
    const restore = call('v1.restoreTenantSnapshot', t, {
      ...v1,
      body: {
        snapshotId: SEED.tenant.completedSnapshotId,
        targetDeploymentItemName: SEED.tenant.m5ClusterName,
      },
    });
    expect(restore).toMatchObject({
      deliveryType: 'RESTORE',
      targetDeploymentItemName: SEED.tenant.m5ClusterName,
    });
  });

  it('keeps v1-only fields out of the v2 answers', () => {
    const snap = call('getGroupClusterBackupTenantSnapshot', {
      ...t,
      snapshotId: SEED.tenant.completedSnapshotId,
    });
    expect(snap).not.toHaveProperty('timestamp');
    const job = call('getGroupClusterBackupTenantRestore', { ...t, restoreId: SEED.tenant.downloadJobId });
    expect(job).not.toHaveProperty('submittedAt');
    expect(job).not.toHaveProperty('finishedDate');
  });
});
