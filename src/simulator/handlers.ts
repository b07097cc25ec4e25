import { SimHttpError, type Principal, type SimRequest, type SimResponse } from './http-types.js';
import { paginate, type Link, type PageParams } from './paginate.js';
import type { DeliveryType, SeedCluster, SeedProject, SeedSnapshot } from './seed.js';
import type { RestoreJobRecord, SimStore } from './store.js';

export interface HandlerContext {
  req: SimRequest;
  /** Path params, already pattern-checked: groupId, clusterName, name, snapshotId, restoreId, restoreJobId. */
  params: Record<string, string>;
  /** Parsed JSON, already validated against the operation's request schema (undefined for GET). */
  body: unknown;
  principal: Principal;
  /** e.g. `http://127.0.0.1:12345`, for snapshotUrl and links. */
  baseUrl: string;
  page: PageParams;
  /** The version the client selected by Accept, e.g. `2024-08-05`; `v1.0` on the legacy routes. */
  apiVersion: string;
}

/** Answers status 200 with the DTO as body; errors are thrown as `SimHttpError`. */
export type Handler = (ctx: HandlerContext) => SimResponse;

type Json = Record<string, unknown>;

const V1 = 'v1.0';
/** Atlas's dates are whole seconds (`2026-08-10T03:03:29Z`, recorded): no milliseconds. */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
/** A RESTORE job's `expirationDate`: scheduled + 6 h, present from PENDING (recorded). */
const RESTORE_EXPIRY_MS = 6 * 60 * 60 * 1000;
const ok = (body: unknown): SimResponse => ({ status: 200, body });

function apiRoot(ctx: HandlerContext): string {
  return `${ctx.baseUrl}/api/atlas/${ctx.apiVersion === V1 ? V1 : 'v2'}`;
}

function self(href: string): Link[] {
  return [{ href, rel: 'self' }];
}

function param(ctx: HandlerContext, name: string): string {
  const v = ctx.params[name];
  if (v === undefined) throw new SimHttpError(500, 'UNEXPECTED_ERROR', `Missing path parameter ${name}.`);
  return v;
}

function bodyField(body: unknown, key: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const v = (body as Json)[key];
  return typeof v === 'string' ? v : undefined;
}

function requiredBodyField(body: unknown, key: string): string {
  const v = bodyField(body, key);
  if (v === undefined) {
    throw new SimHttpError(400, 'VALIDATION_ERROR', `Invalid request body: ${key} is required.`, {
      parameters: [key],
      badRequestDetail: { fields: [{ field: key, description: 'is required' }] },
    });
  }
  return v;
}

// ---- lookups with Atlas's error codes ----

function requireProject(store: SimStore, groupId: string): SeedProject {
  const p = store.getProject(groupId);
  if (!p) {
    throw new SimHttpError(404, 'GROUP_NOT_FOUND', `No group with ID ${groupId} exists.`, {
      parameters: [groupId],
    });
  }
  return p;
}

function requireCluster(store: SimStore, groupId: string, name: string): SeedCluster {
  requireProject(store, groupId);
  const c = store.getCluster(groupId, name);
  if (!c) {
    throw new SimHttpError(404, 'CLUSTER_NOT_FOUND', `No cluster named ${name} exists in group ${groupId}.`, {
      parameters: [name, groupId],
    });
  }
  return c;
}

/** Cluster API: a Flex cluster (or a migrated M2/M5) is refused, as Atlas does; M0 and dedicated answer. */
function requireClusterApiCluster(store: SimStore, groupId: string, name: string): SeedCluster {
  const c = requireCluster(store, groupId, name);
  if (store.familyOf(c) === 'flex') {
    throw new SimHttpError(
      400,
      'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API',
      `Cannot use the flex cluster ${name} in the cluster API; use the flex cluster API instead.`,
      { parameters: [name] },
    );
  }
  return c;
}

/**
 * Tenant backup routes: as the cluster API, and an M0 or dedicated cluster has no tenant backups.
 * ASSUMED answer for those (no recording): 404 CLUSTER_NOT_FOUND, "no such shared-tier cluster".
 */
function requireTenantCluster(store: SimStore, groupId: string, name: string): SeedCluster {
  const c = requireClusterApiCluster(store, groupId, name);
  if (c.family === 'dedicated' || c.instanceSize === 'M0') {
    throw new SimHttpError(404, 'CLUSTER_NOT_FOUND', `No cluster named ${name} exists in group ${groupId}.`, {
      parameters: [name, groupId],
    });
  }
  return c;
}

/** Flex routes: the CLI falls back to the cluster API on exactly this code. */
function requireFlexCluster(store: SimStore, groupId: string, name: string): SeedCluster {
  const c = requireCluster(store, groupId, name);
  if (store.familyOf(c) !== 'flex') {
    throw new SimHttpError(
      400,
      'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API',
      `Cannot use the non-flex cluster ${name} in the flex API; use the cluster API instead.`,
      { parameters: [name] },
    );
  }
  return c;
}

function requireSnapshot(store: SimStore, cluster: SeedCluster, snapshotId: string): SeedSnapshot {
  const s = store.getSnapshot(cluster.groupId, cluster.name, snapshotId);
  if (!s) {
    throw new SimHttpError(
      404,
      'RESOURCE_NOT_FOUND',
      `No backup snapshot with ID ${snapshotId} exists for cluster ${cluster.name}.`,
      { parameters: [snapshotId] },
    );
  }
  return s;
}

function requireJob(store: SimStore, cluster: SeedCluster, jobId: string): RestoreJobRecord {
  const j = store.getRestoreJob(cluster.groupId, cluster.name, jobId);
  if (!j) {
    throw new SimHttpError(
      404,
      'RESOURCE_NOT_FOUND',
      `No restore job with ID ${jobId} exists for cluster ${cluster.name}.`,
      {
        parameters: [jobId],
      },
    );
  }
  return j;
}

/**
 * A RESTORE overwrites a cluster that must exist, and Atlas refuses a second restore into a cluster
 * while one is still running (409), so two restores never race on the same target.
 */
function requireRestoreTarget(store: SimStore, targetProjectId: string, targetName: string): void {
  requireCluster(store, targetProjectId, targetName);
  for (const p of store.listProjects()) {
    for (const c of store.listClusters(p.id)) {
      const busy = store
        .listRestoreJobs(p.id, c.name)
        .some(
          (j) =>
            j.deliveryType === 'RESTORE' &&
            j.targetProjectId === targetProjectId &&
            j.targetDeploymentItemName === targetName &&
            !['COMPLETED', 'FAILED'].includes(store.jobState(j).status),
        );
      if (busy) {
        throw new SimHttpError(
          409,
          'CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE',
          `Cannot restore into cluster ${targetName} while a restore into it is in progress.`,
          { parameters: [targetName] },
        );
      }
    }
  }
}

// ---- DTOs: only properties the spec declares, so strict clients decode them ----

function groupDto(store: SimStore, p: SeedProject, ctx: HandlerContext): Json {
  return {
    clusterCount: store.listClusters(p.id).length,
    created: p.created,
    id: p.id,
    links: self(`${apiRoot(ctx)}/groups/${p.id}`),
    name: p.name,
    orgId: p.orgId,
    tags: [],
    withDefaultAlertsSettings: true,
  };
}

function connectionStrings(c: SeedCluster): { standard: string; standardSrv: string } {
  const host = `${c.name.toLowerCase()}.${c.id.slice(0, 5)}.mongodb.net`;
  const shards = [0, 1, 2].map(
    (n) => `ac-${c.id.slice(5, 12)}-shard-00-0${n}.${c.id.slice(0, 5)}.mongodb.net:27017`,
  );
  return {
    standard: `mongodb://${shards.join(',')}/?ssl=true&authSource=admin&replicaSet=atlas-${c.id.slice(12, 18)}-shard-0`,
    standardSrv: `mongodb+srv://${host}`,
  };
}

/** A dedicated cluster runs on its provider; shared tiers (M0/M2/M5) are TENANT on a backing one. */
const providerOf = (c: SeedCluster) => (c.family === 'dedicated' ? c.backingProviderName : 'TENANT');

const majorVersion = (v: string) => v.split('.').slice(0, 2).join('.');

/** Fields the three cluster versions share. */
function clusterCommon(c: SeedCluster, ctx: HandlerContext): Json {
  return {
    backupEnabled: true,
    clusterType: 'REPLICASET',
    connectionStrings: connectionStrings(c),
    createDate: c.createDate,
    encryptionAtRestProvider: 'NONE',
    groupId: c.groupId,
    id: c.id,
    labels: [],
    links: self(`${apiRoot(ctx)}/groups/${c.groupId}/clusters/${c.name}`),
    mongoDBMajorVersion: majorVersion(c.mongoDBVersion),
    mongoDBVersion: c.mongoDBVersion,
    name: c.name,
    paused: false,
    pitEnabled: false,
    rootCertType: 'ISRGROOTX1',
    stateName: 'IDLE',
    tags: [],
    terminationProtectionEnabled: false,
    versionReleaseSystem: 'LTS',
  };
}

/**
 * `2023-01-01` LegacyAtlasCluster. `diskSizeGB` is left out: the schema's minimum is 10, below any
 * tenant disk (2 or 5 GB).
 */
function legacyClusterDto(c: SeedCluster, ctx: HandlerContext): Json {
  const region = { analyticsNodes: 0, electableNodes: 3, priority: 7, readOnlyNodes: 0 };
  const conn = connectionStrings(c);
  return {
    ...clusterCommon(c, ctx),
    mongoURI: conn.standard.split('/?')[0],
    mongoURIUpdated: c.createDate,
    mongoURIWithOptions: conn.standard,
    numShards: 1,
    providerBackupEnabled: false,
    providerSettings: {
      ...(c.family === 'dedicated' ? {} : { backingProviderName: c.backingProviderName }),
      effectiveInstanceSizeName: c.instanceSize,
      instanceSizeName: c.instanceSize,
      providerName: providerOf(c),
      regionName: c.regionName,
    },
    replicationFactor: 3,
    replicationSpec: { [c.regionName]: region },
    replicationSpecs: [
      {
        id: c.replicationSpecId,
        numShards: 1,
        regionsConfig: { [c.regionName]: region },
        zoneName: 'Zone 1',
      },
    ],
    srvAddress: conn.standardSrv,
  };
}

/*
 * 2023-02-01 and 2024-08-05 region configs carry `regionName` as a string, as Atlas sends it; the
 * spec's `type: object` declaration is corrected in src/simulator/openapi.ts (`patchRegionName`).
 */
function advancedClusterDto(c: SeedCluster, ctx: HandlerContext): Json {
  return {
    ...clusterCommon(c, ctx),
    replicationSpecs: [
      {
        id: c.replicationSpecId,
        numShards: 1,
        regionConfigs: [
          {
            ...(c.family === 'dedicated' ? {} : { backingProviderName: c.backingProviderName }),
            electableSpecs: { effectiveInstanceSize: c.instanceSize, instanceSize: c.instanceSize },
            priority: 7,
            providerName: providerOf(c),
            regionName: c.regionName,
          },
        ],
        zoneId: c.zoneId,
        zoneName: 'Zone 1',
      },
    ],
  };
}

function cluster20240805Dto(c: SeedCluster, ctx: HandlerContext): Json {
  const spec = {
    id: c.replicationSpecId,
    regionConfigs: [
      {
        ...(c.family === 'dedicated' ? {} : { backingProviderName: c.backingProviderName }),
        electableSpecs: {
          diskSizeGB: c.diskSizeGB,
          effectiveInstanceSize: c.instanceSize,
          instanceSize: c.instanceSize,
        },
        priority: 7,
        providerName: providerOf(c),
        // Set on tenant clusters as Atlas sends it (recorded: `US_EAST_1`).
        regionName: c.regionName,
      },
    ],
    zoneId: c.zoneId,
    zoneName: 'Zone 1',
  };
  return {
    ...clusterCommon(c, ctx),
    featureCompatibilityVersion: majorVersion(c.mongoDBVersion),
    replicationSpecs: [spec],
  };
}

function clusterDto(c: SeedCluster, ctx: HandlerContext): Json {
  if (ctx.apiVersion === '2023-01-01') return legacyClusterDto(c, ctx);
  if (ctx.apiVersion === '2023-02-01') return advancedClusterDto(c, ctx);
  return cluster20240805Dto(c, ctx);
}

/** Also the shape of a migrated M2/M5 after the sunset: providerName FLEX, backing provider kept. */
function flexClusterDto(c: SeedCluster, ctx: HandlerContext): Json {
  return {
    backupSettings: { enabled: true },
    clusterType: 'REPLICASET',
    connectionStrings: connectionStrings(c),
    createDate: c.createDate,
    groupId: c.groupId,
    id: c.id,
    links: self(`${ctx.baseUrl}/api/atlas/v2/groups/${c.groupId}/flexClusters/${c.name}`),
    mongoDBVersion: c.mongoDBVersion,
    name: c.name,
    providerSettings: {
      backingProviderName: c.backingProviderName,
      diskSizeGB: 5,
      providerName: 'FLEX',
      regionName: c.regionName,
    },
    stateName: 'IDLE',
    tags: [],
    terminationProtectionEnabled: false,
    versionReleaseSystem: 'LTS',
  };
}

type Route = 'tenant' | 'flex';

function backupRoot(ctx: HandlerContext, c: SeedCluster, route: Route): string {
  return route === 'tenant'
    ? `${apiRoot(ctx)}/groups/${c.groupId}/clusters/${c.name}/backup/tenant`
    : `${ctx.baseUrl}/api/atlas/v2/groups/${c.groupId}/flexClusters/${c.name}/backup`;
}

function snapshotDto(s: SeedSnapshot, c: SeedCluster, route: Route, ctx: HandlerContext): Json {
  const dto: Json = {
    expiration: s.expiration,
    ...(s.finishTime !== undefined ? { finishTime: s.finishTime } : {}),
    id: s.id,
    // Flex items carry no links (recorded); tenant ones keep the self link v1.0 documented.
    ...(route === 'tenant' ? { links: self(`${backupRoot(ctx, c, route)}/snapshots/${s.id}`) } : {}),
    mongoDBVersion: s.mongoDBVersion,
    scheduledTime: s.scheduledTime,
    ...(s.startTime !== undefined ? { startTime: s.startTime } : {}),
    status: s.status,
  };
  // v1.0 also named the snapshot's point in time.
  if (ctx.apiVersion === V1) dto.timestamp = s.finishTime ?? s.startTime ?? s.scheduledTime;
  return dto;
}

function restoreJobDto(
  store: SimStore,
  j: RestoreJobRecord,
  c: SeedCluster,
  route: Route,
  ctx: HandlerContext,
): Json {
  const state = store.jobState(j);
  const snapshot = store.getSnapshot(j.groupId, j.clusterName, j.snapshotId);
  const url = store.snapshotUrl(j, ctx.baseUrl);
  const jobsPath = route === 'tenant' ? 'restores' : 'restoreJobs';
  const dto: Json = {
    // Tenant names the source cluster `clusterName`, Flex `instanceName`.
    ...(route === 'tenant' ? { clusterName: j.clusterName } : {}),
    deliveryType: j.deliveryType,
    ...(state.urlExpiresAt !== undefined
      ? { expirationDate: iso(state.urlExpiresAt) }
      : j.deliveryType === 'RESTORE'
        ? { expirationDate: iso(j.createdAt + RESTORE_EXPIRY_MS) }
        : {}),
    id: j.id,
    ...(route === 'flex' ? { instanceName: j.clusterName } : {}),
    ...(route === 'tenant' ? { links: self(`${backupRoot(ctx, c, route)}/${jobsPath}/${j.id}`) } : {}),
    projectId: j.groupId,
    ...(state.status === 'COMPLETED' && state.finishedAt !== undefined
      ? { restoreFinishedDate: iso(state.finishedAt) }
      : {}),
    restoreScheduledDate: iso(j.createdAt),
    ...(snapshot?.status === 'COMPLETED' && snapshot.finishTime !== undefined
      ? { snapshotFinishedDate: snapshot.finishTime }
      : {}),
    snapshotId: j.snapshotId,
    ...(url !== undefined ? { snapshotUrl: url } : {}),
    status: state.status,
    targetDeploymentItemName: j.targetDeploymentItemName,
    targetProjectId: j.targetProjectId,
  };
  if (ctx.apiVersion === V1) {
    dto.submittedAt = iso(j.createdAt);
    if (state.finishedAt !== undefined) dto.finishedDate = iso(state.finishedAt);
  }
  return dto;
}

// ---- operations ----

export function createHandlers(store: SimStore): Record<string, Handler> {
  const tenantSnapshots: Handler = (ctx) => {
    const c = requireTenantCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName'));
    // Newest first: ASSUMED (no recording of a tenant list; V1DOCS examples list newest first). The
    // gateway reads tenant lists whole and sorts them, so the order is not relied on.
    const items = store.listSnapshots(c.groupId, c.name).map((s) => snapshotDto(s, c, 'tenant', ctx));
    return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
  };
  const tenantSnapshot: Handler = (ctx) => {
    const c = requireTenantCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName'));
    return ok(snapshotDto(requireSnapshot(store, c, param(ctx, 'snapshotId')), c, 'tenant', ctx));
  };
  const tenantRestores: Handler = (ctx) => {
    const c = requireTenantCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName'));
    const items = store
      .listRestoreJobs(c.groupId, c.name)
      .map((j) => restoreJobDto(store, j, c, 'tenant', ctx));
    return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
  };
  const tenantRestore: Handler = (ctx) => {
    const c = requireTenantCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName'));
    return ok(restoreJobDto(store, requireJob(store, c, param(ctx, 'restoreId')), c, 'tenant', ctx));
  };

  /** Tenant download and restore both take a full TenantRestore body (the spec's quirk). */
  const tenantCreate =
    (deliveryType: DeliveryType): Handler =>
    (ctx) => {
      const c = requireTenantCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName'));
      const snapshot = requireSnapshot(store, c, requiredBodyField(ctx.body, 'snapshotId'));
      // v1.0's download takes the snapshot id alone; its target is the source cluster.
      const targetDeploymentItemName =
        ctx.apiVersion === V1 && deliveryType === 'DOWNLOAD'
          ? (bodyField(ctx.body, 'targetDeploymentItemName') ?? c.name)
          : requiredBodyField(ctx.body, 'targetDeploymentItemName');
      const targetProjectId = bodyField(ctx.body, 'targetProjectId') ?? c.groupId;
      if (deliveryType === 'RESTORE') requireRestoreTarget(store, targetProjectId, targetDeploymentItemName);
      const job = store.createRestoreJob({
        groupId: c.groupId,
        clusterName: c.name,
        snapshotId: snapshot.id,
        deliveryType,
        targetProjectId,
        targetDeploymentItemName,
      });
      return ok(restoreJobDto(store, job, c, 'tenant', ctx));
    };

  const flexCluster = (ctx: HandlerContext) =>
    requireFlexCluster(store, param(ctx, 'groupId'), param(ctx, 'name'));

  return {
    listGroups: (ctx) =>
      ok(
        paginate(
          store.listProjects().map((p) => groupDto(store, p, ctx)),
          ctx.page,
          ctx.baseUrl,
          ctx.req,
        ),
      ),
    getGroup: (ctx) => ok(groupDto(store, requireProject(store, param(ctx, 'groupId')), ctx)),

    listGroupClusters: (ctx) => {
      const groupId = param(ctx, 'groupId');
      requireProject(store, groupId);
      const items = store
        .listClusters(groupId)
        .filter((c) => store.familyOf(c) !== 'flex')
        .map((c) => clusterDto(c, ctx));
      return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
    },
    getGroupCluster: (ctx) =>
      ok(clusterDto(requireClusterApiCluster(store, param(ctx, 'groupId'), param(ctx, 'clusterName')), ctx)),

    listGroupFlexClusters: (ctx) => {
      const groupId = param(ctx, 'groupId');
      requireProject(store, groupId);
      const items = store
        .listClusters(groupId)
        .filter((c) => store.familyOf(c) === 'flex')
        .map((c) => flexClusterDto(c, ctx));
      return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
    },
    getGroupFlexCluster: (ctx) => ok(flexClusterDto(flexCluster(ctx), ctx)),

    downloadGroupClusterBackupTenant: tenantCreate('DOWNLOAD'),
    createGroupClusterBackupTenantRestore: tenantCreate('RESTORE'),
    listGroupClusterBackupTenantRestores: tenantRestores,
    getGroupClusterBackupTenantRestore: tenantRestore,
    listGroupClusterBackupTenantSnapshots: tenantSnapshots,
    getGroupClusterBackupTenantSnapshot: tenantSnapshot,

    downloadGroupFlexClusterBackup: (ctx) => {
      const c = flexCluster(ctx);
      const snapshot = requireSnapshot(store, c, requiredBodyField(ctx.body, 'snapshotId'));
      // The flex download body is only {snapshotId}: the job names the source cluster as its target.
      const job = store.createRestoreJob({
        groupId: c.groupId,
        clusterName: c.name,
        snapshotId: snapshot.id,
        deliveryType: 'DOWNLOAD',
        targetProjectId: c.groupId,
        targetDeploymentItemName: c.name,
      });
      return ok(restoreJobDto(store, job, c, 'flex', ctx));
    },
    listGroupFlexClusterBackupRestoreJobs: (ctx) => {
      const c = flexCluster(ctx);
      // Oldest first, ASSUMED like the snapshots' recorded order (no recording of a job list).
      const items = store
        .listRestoreJobs(c.groupId, c.name)
        .reverse()
        .map((j) => restoreJobDto(store, j, c, 'flex', ctx));
      return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
    },
    createGroupFlexClusterBackupRestoreJob: (ctx) => {
      const c = flexCluster(ctx);
      const snapshot = requireSnapshot(store, c, requiredBodyField(ctx.body, 'snapshotId'));
      const targetDeploymentItemName = requiredBodyField(ctx.body, 'targetDeploymentItemName');
      const targetProjectId = bodyField(ctx.body, 'targetProjectId') ?? c.groupId;
      requireRestoreTarget(store, targetProjectId, targetDeploymentItemName);
      const job = store.createRestoreJob({
        groupId: c.groupId,
        clusterName: c.name,
        snapshotId: snapshot.id,
        deliveryType: 'RESTORE',
        targetProjectId,
        targetDeploymentItemName,
      });
      return ok(restoreJobDto(store, job, c, 'flex', ctx));
    },
    getGroupFlexClusterBackupRestoreJob: (ctx) => {
      const c = flexCluster(ctx);
      return ok(restoreJobDto(store, requireJob(store, c, param(ctx, 'restoreJobId')), c, 'flex', ctx));
    },
    listGroupFlexClusterBackupSnapshots: (ctx) => {
      const c = flexCluster(ctx);
      // Oldest first, as Atlas lists them (recorded: flex-snapshots-list.http, scheduled 08-02 … 08-09).
      const items = store
        .listSnapshots(c.groupId, c.name)
        .reverse()
        .map((s) => snapshotDto(s, c, 'flex', ctx));
      return ok(paginate(items, ctx.page, ctx.baseUrl, ctx.req));
    },
    getGroupFlexClusterBackupSnapshot: (ctx) => {
      const c = flexCluster(ctx);
      return ok(snapshotDto(requireSnapshot(store, c, param(ctx, 'snapshotId')), c, 'flex', ctx));
    },

    // Legacy v1.0: the same tenant data; the DTOs add the v1-only fields when apiVersion is 'v1.0'.
    'v1.downloadTenantSnapshot': tenantCreate('DOWNLOAD'),
    'v1.restoreTenantSnapshot': tenantCreate('RESTORE'),
    'v1.listTenantSnapshots': tenantSnapshots,
    'v1.getTenantSnapshot': tenantSnapshot,
    'v1.listTenantRestores': tenantRestores,
    'v1.getTenantRestore': tenantRestore,
  };
}
