import { afterEach, describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasConfigError,
  AtlasNetworkError,
  AtlasResponseError,
  createAtlasClient,
  type AtlasClient,
  type AtlasClientConfig,
} from '../../src/atlas/index.js';
import {
  json,
  recordingSleep,
  startTinyServer,
  type SeenRequest,
  type TinyServer,
} from '../support/tiny-server.js';

const G = '5f2a0c7e9b1d4e3f2a1b0c9d';
const V2023 = 'application/vnd.atlas.2023-01-01+json';
const V2024 = 'application/vnd.atlas.2024-11-13+json';
const CLUSTERS = 'application/vnd.atlas.2024-08-05+json';

let server: TinyServer | undefined;
let client: AtlasClient | undefined;

afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

/** A client against a tiny server answering every request with `answer`. */
async function setup(
  answer: (req: SeenRequest) => {
    status: number;
    body: unknown;
    type?: string;
    headers?: Record<string, string>;
  },
  config: Partial<AtlasClientConfig> = {},
) {
  server = await startTinyServer((req, res) => {
    const a = answer(req);
    const payload = Buffer.from(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    res.writeHead(a.status, { 'content-type': a.type ?? 'application/json', ...a.headers });
    res.end(payload);
  });
  const { sleep, delays } = recordingSleep();
  client = createAtlasClient({ baseUrl: server.url, auth: { type: 'none' }, sleep, ...config });
  return { server, client, delays };
}

const ok = (type: string, body: unknown = { results: [], totalCount: 0, links: [] }) => ({
  status: 200,
  type,
  body,
});

describe('request headers and paths', () => {
  it('sends the exact versioned media type of each family, a user agent and an x-request-id', async () => {
    const { server, client } = await setup((req) =>
      ok(
        req.url.includes('/flexClusters')
          ? V2024
          : req.url.includes('/clusters') && !req.url.includes('/backup/')
            ? CLUSTERS
            : V2023,
        req.url.endsWith('s') || req.url.includes('?') ? undefined : { id: 'x' },
      ),
    );
    await client.projects.listGroups();
    await client.clusters.listGroupClusters({ groupId: G });
    await client.flexClusters.getGroupFlexCluster({ groupId: G, name: 'f1' });
    await client.tenantBackup.listSnapshots({ groupId: G, clusterName: 'c1' });
    await client.flexBackup.listSnapshots({ groupId: G, name: 'f1', itemsPerPage: 7 });
    expect(server.seen.map((r) => [r.url, r.headers.accept])).toEqual([
      ['/api/atlas/v2/groups', V2023],
      [`/api/atlas/v2/groups/${G}/clusters`, CLUSTERS],
      [`/api/atlas/v2/groups/${G}/flexClusters/f1`, V2024],
      [`/api/atlas/v2/groups/${G}/clusters/c1/backup/tenant/snapshots`, V2023],
      [`/api/atlas/v2/groups/${G}/flexClusters/f1/backup/snapshots?itemsPerPage=7`, V2024],
    ]);
    for (const r of server.seen) {
      expect(r.headers['user-agent']).toBe('atlas-backup-graphql-gateway/0.1.0');
      expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers['content-type']).toBeUndefined();
      expect(r.headers.authorization).toBeUndefined();
    }
    expect(new Set(server.seen.map((r) => r.headers['x-request-id'])).size).toBe(5);
  });

  it('sends no pagination parameters to v2 tenant lists, which declare none', async () => {
    const { server, client } = await setup(() => ok(V2023));
    await client.tenantBackup.listSnapshots({ groupId: G, clusterName: 'c1', pageNum: 2, itemsPerPage: 10 });
    await client.tenantBackup.listAllRestores({ groupId: G, clusterName: 'c1' }, { itemsPerPage: 10 });
    expect(server.seen.map((r) => r.url)).toEqual([
      `/api/atlas/v2/groups/${G}/clusters/c1/backup/tenant/snapshots`,
      `/api/atlas/v2/groups/${G}/clusters/c1/backup/tenant/restores`,
    ]);
  });

  it('POSTs JSON with the versioned Content-Type; the tenant download body is a full TenantRestore', async () => {
    const { server, client } = await setup((req) =>
      ok(req.url.includes('flex') ? V2024 : V2023, { id: 'j' }),
    );
    await client.tenantBackup.download({ groupId: G, clusterName: 'c1', snapshotId: 'a'.repeat(24) });
    await client.tenantBackup.restore({
      groupId: G,
      clusterName: 'c1',
      snapshotId: 'b'.repeat(24),
      targetDeploymentItemName: 'c2',
    });
    await client.flexBackup.download({ groupId: G, name: 'f1', snapshotId: 'c'.repeat(24) });
    await client.flexBackup.createRestoreJob({
      groupId: G,
      name: 'f1',
      snapshotId: 'd'.repeat(24),
      targetDeploymentItemName: 'f2',
      targetProjectId: G,
    });
    expect(server.seen.map((r) => [r.method, r.url, r.headers['content-type'], JSON.parse(r.body)])).toEqual([
      [
        'POST',
        `/api/atlas/v2/groups/${G}/clusters/c1/backup/tenant/download`,
        V2023,
        { snapshotId: 'a'.repeat(24), targetDeploymentItemName: 'c1' },
      ],
      [
        'POST',
        `/api/atlas/v2/groups/${G}/clusters/c1/backup/tenant/restore`,
        V2023,
        { snapshotId: 'b'.repeat(24), targetDeploymentItemName: 'c2' },
      ],
      [
        'POST',
        `/api/atlas/v2/groups/${G}/flexClusters/f1/backup/download`,
        V2024,
        { snapshotId: 'c'.repeat(24) },
      ],
      [
        'POST',
        `/api/atlas/v2/groups/${G}/flexClusters/f1/backup/restoreJobs`,
        V2024,
        { snapshotId: 'd'.repeat(24), targetDeploymentItemName: 'f2', targetProjectId: G },
      ],
    ]);
  });

  it('encodes path parameters and keeps a base URL path prefix', async () => {
    server = await startTinyServer((_req, res) => json(res, 200, { id: 'x' }, { 'content-type': CLUSTERS }));
    client = createAtlasClient({ baseUrl: `${server.url}/proxy/`, auth: { type: 'none' } });
    await client.clusters.getGroupCluster({ groupId: G, clusterName: 'a/b?c' });
    expect(server.seen[0]?.url).toBe(`/proxy/api/atlas/v2/groups/${G}/clusters/a%2Fb%3Fc`);
    await expect(client.clusters.getGroupCluster({ groupId: '', clusterName: 'x' })).rejects.toBeInstanceOf(
      AtlasConfigError,
    );
  });

  it('uses the v1.0 routes with Accept: application/json when legacyV1 is set', async () => {
    const { server, client } = await setup(() => ok('application/json', { results: [], links: [] }), {
      legacyV1: true,
    });
    await client.tenantBackup.listAllSnapshots({ groupId: G, clusterName: 'c1' });
    await client.tenantBackup.getRestore({ groupId: G, clusterName: 'c1', restoreId: 'r'.repeat(24) });
    await client.tenantBackup.download({ groupId: G, clusterName: 'c1', snapshotId: 's'.repeat(24) });
    expect(server.seen.map((r) => [r.url, r.headers.accept, r.headers['content-type']])).toEqual([
      [
        `/api/atlas/v1.0/groups/${G}/clusters/c1/backup/tenant/snapshots?pageNum=1&itemsPerPage=500`,
        'application/json',
        undefined,
      ],
      [
        `/api/atlas/v1.0/groups/${G}/clusters/c1/backup/tenant/restores/${'r'.repeat(24)}`,
        'application/json',
        undefined,
      ],
      [
        `/api/atlas/v1.0/groups/${G}/clusters/c1/backup/tenant/download`,
        'application/json',
        'application/json',
      ],
    ]);
    expect(client.stats().callsByOperation).toMatchObject({ listGroupClusterBackupTenantSnapshotsV1: 1 });
    // v1.0 takes API keys only: a pass-through bearer token is refused before sending.
    await expect(
      client.tenantBackup.listSnapshots({ groupId: G, clusterName: 'c1' }, { bearerToken: 't' }),
    ).rejects.toMatchObject({ code: 'ATLAS_CONFIG_ERROR' });
    expect(() =>
      createAtlasClient({ legacyV1: true, auth: { type: 'oauth', clientId: 'a', clientSecret: 'b' } }),
    ).toThrow(AtlasConfigError);
  });

  it("sends a caller's bearer token instead of the configured credentials", async () => {
    const { server, client } = await setup(() => ok(V2023, { id: 'g' }), {
      auth: { type: 'oauth', clientId: 'id', clientSecret: 'secret' },
    });
    await client.projects.getGroup({ groupId: G }, { bearerToken: 'caller-token', requestId: 'req-1' });
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]?.headers.authorization).toBe('Bearer caller-token');
    expect(server.seen[0]?.headers['x-request-id']).toBe('req-1');
    expect(client.stats().tokenFetches).toBe(0);
  });
});

describe('responses', () => {
  it('accepts the media type with parameters and in any case', async () => {
    const { client } = await setup(() =>
      ok('Application/VND.atlas.2023-01-01+JSON; charset=utf-8', { id: 'g' }),
    );
    await expect(client.projects.getGroup({ groupId: G })).resolves.toEqual({ id: 'g' });
  });

  it('turns an ApiError body into AtlasApiError with every field, keeping Atlas request id', async () => {
    const body = {
      error: 400,
      errorCode: 'VALIDATION_ERROR',
      reason: 'Bad Request',
      detail: 'Invalid parameter.',
      parameters: ['groupId'],
      badRequestDetail: { fields: [{ field: 'groupId', description: 'must match' }] },
    };
    const { client } = await setup(() => ({ status: 400, body, headers: { 'x-request-id': 'atlas-rid' } }));
    const err = await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasApiError);
    expect(err).toMatchObject({
      code: 'ATLAS_API_ERROR',
      status: 400,
      errorCode: 'VALIDATION_ERROR',
      reason: 'Bad Request',
      detail: 'Invalid parameter.',
      parameters: ['groupId'],
      badRequestDetail: { fields: [{ field: 'groupId', description: 'must match' }] },
      operation: 'getGroup',
      requestId: 'atlas-rid',
      retryAfterMs: undefined,
    });
  });

  it('keeps our x-request-id when Atlas sends none, and reads Retry-After', async () => {
    const { client, delays } = await setup(() => ({
      status: 429,
      body: { error: 429, errorCode: 'RATE_LIMITED' },
      headers: { 'retry-after': '1' },
    }));
    const err = await client.projects
      .getGroup({ groupId: G }, { requestId: 'mine' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      status: 429,
      errorCode: 'RATE_LIMITED',
      requestId: 'mine',
      retryAfterMs: 1000,
    });
    expect(delays.every((d) => d >= 1000)).toBe(true);
  });

  it('gives a non-JSON error (a proxy page) a synthetic errorCode', async () => {
    const { client } = await setup(
      () => ({ status: 502, type: 'text/html', body: '<html>Bad gateway</html>' }),
      {
        retry: { maxAttempts: 1 },
      },
    );
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({
      status: 502,
      errorCode: 'HTTP_502',
      detail: '<html>Bad gateway</html>',
    });
  });

  it('refuses a 2xx of the wrong content type, malformed JSON or the wrong shape', async () => {
    const answers = [
      ok('application/json', { id: 'g' }),
      ok(V2023, '{"id": '),
      ok(V2023, '[1,2]'),
      { status: 200, type: V2023, body: { results: {} } },
    ];
    let i = 0;
    const { client } = await setup(() => answers[i++]!);
    const errors = [
      await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e),
      await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e),
      await client.projects.getGroup({ groupId: G }).catch((e: unknown) => e),
      await client.projects.listGroups().catch((e: unknown) => e),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(AtlasResponseError);
      expect(e).toMatchObject({ code: 'ATLAS_BAD_RESPONSE', status: 200 });
    }
    expect(errors[0]).toMatchObject({ contentType: 'application/json' });
    expect((errors[1] as Error).cause).toBeInstanceOf(SyntaxError);
    // Not retried: a bad body is not transient.
    expect(client.stats().retries).toBe(0);
  });

  it('refuses bodies above maxResponseBytes', async () => {
    const { client } = await setup(() => ok(V2023, { id: 'x'.repeat(5000) }), { maxResponseBytes: 1000 });
    await expect(client.projects.getGroup({ groupId: G })).rejects.toMatchObject({
      code: 'ATLAS_BAD_RESPONSE',
    });
  });

  it('maps a refused connection to ATLAS_NETWORK_ERROR (not sent) and retries a GET', async () => {
    const { sleep, delays } = recordingSleep();
    client = createAtlasClient({
      baseUrl: 'http://127.0.0.1:1',
      auth: { type: 'none' },
      sleep,
      random: () => 0,
    });
    const err = await client.projects.listGroups().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasNetworkError);
    expect(err).toMatchObject({ code: 'ATLAS_NETWORK_ERROR', sent: false, operation: 'listGroups' });
    expect(delays).toHaveLength(3);
    expect(client.stats()).toMatchObject({ retries: 3, requests: 4 });
  });
});
