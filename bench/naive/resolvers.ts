import { setTimeout as sleep } from 'node:timers/promises';
import { MEDIA, RestError, type AtlasRest, type Paginated } from './atlas-rest.js';

type Family = 'TENANT' | 'FLEX';
type Dto = Record<string, unknown>;

/** A cluster as the naive resolvers pass it down: which family served it, and Atlas's DTO. */
interface ClusterObj {
  family: Family;
  projectId: string;
  dto: Dto;
}
/** A snapshot or job: its cluster is known by name only, as in a hand-written REST resolver. */
interface ItemObj {
  family: Family;
  projectId: string;
  clusterName: string;
  dto: Dto;
}

/** The naive server's context: the REST client and how often a watched job is read. */
export interface NaiveContext {
  rest: AtlasRest;
  pollIntervalMs: number;
}

interface ListArgs {
  first?: number | null;
  after?: string | null;
}

const g = (projectId: string) => `/groups/${projectId}`;
const flexPath = (projectId: string, name: string) => `${g(projectId)}/flexClusters/${name}`;
const tenantPath = (projectId: string, name: string) => `${g(projectId)}/clusters/${name}`;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** null for a 404, like the gateway's single lookups. */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof RestError && err.status === 404) return null;
    throw err;
  }
}

/**
 * A cluster whose family is not known yet: Flex first, then the tenant route when Atlas says the
 * cluster is not Flex. Nothing is remembered, so every resolver that starts from a name pays this.
 */
async function byFamily<T>(
  flex: () => Promise<T>,
  tenant: () => Promise<T>,
): Promise<{ family: Family; value: T }> {
  try {
    return { family: 'FLEX', value: await flex() };
  } catch (err) {
    if (err instanceof RestError && err.errorCode === 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API') {
      return { family: 'TENANT', value: await tenant() };
    }
    throw err;
  }
}

function getCluster(rest: AtlasRest, projectId: string, name: string, family?: Family) {
  const flex = () => rest.get<Dto>(flexPath(projectId, name), MEDIA.flex);
  const tenant = () => rest.get<Dto>(tenantPath(projectId, name), MEDIA.clusters);
  if (family === 'FLEX') return flex().then((dto): ClusterObj => ({ family, projectId, dto }));
  if (family === 'TENANT') return tenant().then((dto): ClusterObj => ({ family, projectId, dto }));
  return byFamily(flex, tenant).then((r): ClusterObj => ({ family: r.family, projectId, dto: r.value }));
}

const offsetOf = (after: string | null | undefined) => (after ? Number(after) + 1 : 0);

/** One list call per connection field: a Flex page of `first`, or the whole tenant list, sliced. */
async function listPage(
  rest: AtlasRest,
  c: { family: Family; projectId: string; clusterName: string },
  kind: 'snapshots' | 'jobs',
  args: ListArgs,
) {
  const first = args.first ?? 20;
  const offset = offsetOf(args.after);
  const path =
    c.family === 'FLEX'
      ? `${flexPath(c.projectId, c.clusterName)}/backup/${kind === 'snapshots' ? 'snapshots' : 'restoreJobs'}?itemsPerPage=${first}&pageNum=${Math.floor(offset / first) + 1}`
      : `${tenantPath(c.projectId, c.clusterName)}/backup/tenant/${kind === 'snapshots' ? 'snapshots' : 'restores'}`;
  const page = await rest.get<Paginated<Dto>>(path, c.family === 'FLEX' ? MEDIA.flex : MEDIA.tenantBackup);
  const items = c.family === 'FLEX' ? page.results : page.results.slice(offset, offset + first);
  const total = page.totalCount ?? page.results.length;
  const nodes = items.map((dto): ItemObj => ({ ...c, dto }));
  return {
    nodes,
    totalCount: total,
    pageInfo: {
      hasNextPage: offset + nodes.length < total,
      endCursor: nodes.length ? String(offset + nodes.length - 1) : null,
    },
  };
}

function getItem(rest: AtlasRest, c: ItemObj | ClusterRefArgs, kind: 'snapshots' | 'jobs', id: string) {
  const family = 'family' in c ? c.family : undefined;
  const { projectId, clusterName } = c;
  const flex = () =>
    rest.get<Dto>(
      `${flexPath(projectId, clusterName)}/backup/${kind === 'snapshots' ? 'snapshots' : 'restoreJobs'}/${id}`,
      MEDIA.flex,
    );
  const tenant = () =>
    rest.get<Dto>(
      `${tenantPath(projectId, clusterName)}/backup/tenant/${kind === 'snapshots' ? 'snapshots' : 'restores'}/${id}`,
      MEDIA.tenantBackup,
    );
  const wrap = (f: Family, dto: Dto): ItemObj => ({ family: f, projectId, clusterName, dto });
  if (family === 'FLEX') return flex().then((dto) => wrap('FLEX', dto));
  if (family === 'TENANT') return tenant().then((dto) => wrap('TENANT', dto));
  return byFamily(flex, tenant).then((r) => wrap(r.family, r.value));
}

interface ClusterRefArgs {
  projectId: string;
  clusterName: string;
}

function tenantRegion(dto: Dto): Dto | undefined {
  const specs = (dto.replicationSpecs as { regionConfigs?: Dto[] }[] | undefined) ?? [];
  return specs.flatMap((s) => s.regionConfigs ?? [])[0];
}

/**
 * Resolvers written the obvious way, without DataLoader or priming: every field that needs Atlas calls
 * it, once per parent (N+1), and a cluster met by name is probed for its family every time.
 */
export const naiveResolvers = {
  Query: {
    projects: async (_: unknown, __: unknown, { rest }: NaiveContext) =>
      (await rest.get<Paginated<Dto>>('/groups?itemsPerPage=500', MEDIA.groups)).results,
    project: (_: unknown, { id }: { id: string }, { rest }: NaiveContext) =>
      orNull(rest.get<Dto>(g(id), MEDIA.groups)),
    cluster: (_: unknown, a: { projectId: string; name: string }, { rest }: NaiveContext) =>
      orNull(getCluster(rest, a.projectId, a.name)),
    snapshot: (_: unknown, a: ClusterRefArgs & { id: string }, { rest }: NaiveContext) =>
      orNull(getItem(rest, a, 'snapshots', a.id)),
    restoreJob: (_: unknown, a: ClusterRefArgs & { id: string }, { rest }: NaiveContext) =>
      orNull(getItem(rest, a, 'jobs', a.id)),
  },
  Project: {
    clusters: async (p: Dto, _: unknown, { rest }: NaiveContext): Promise<ClusterObj[]> => {
      const projectId = String(p.id);
      const [tenant, flex] = await Promise.all([
        rest.get<Paginated<Dto>>(`${g(projectId)}/clusters`, MEDIA.clusters),
        rest.get<Paginated<Dto>>(`${g(projectId)}/flexClusters`, MEDIA.flex),
      ]);
      return [
        ...tenant.results.map((dto): ClusterObj => ({ family: 'TENANT', projectId, dto })),
        ...flex.results.map((dto): ClusterObj => ({ family: 'FLEX', projectId, dto })),
      ];
    },
    cluster: (p: Dto, { name }: { name: string }, { rest }: NaiveContext) =>
      orNull(getCluster(rest, String(p.id), name)),
  },
  Cluster: {
    id: (c: ClusterObj) => c.dto.id,
    name: (c: ClusterObj) => c.dto.name,
    projectId: (c: ClusterObj) => c.projectId,
    project: (c: ClusterObj, _: unknown, { rest }: NaiveContext) =>
      orNull(rest.get<Dto>(g(c.projectId), MEDIA.groups)),
    family: (c: ClusterObj) => c.family,
    instanceSize: (c: ClusterObj) =>
      c.family === 'FLEX'
        ? 'FLEX'
        : (str((tenantRegion(c.dto)?.electableSpecs as Dto | undefined)?.instanceSize) ?? 'M2'),
    backingProvider: (c: ClusterObj) =>
      str(
        c.family === 'FLEX'
          ? (c.dto.providerSettings as Dto | undefined)?.backingProviderName
          : tenantRegion(c.dto)?.backingProviderName,
      ),
    region: (c: ClusterObj) =>
      str(
        c.family === 'FLEX'
          ? (c.dto.providerSettings as Dto | undefined)?.regionName
          : tenantRegion(c.dto)?.regionName,
      ),
    state: (c: ClusterObj) => c.dto.stateName,
    mongoDBVersion: (c: ClusterObj) => c.dto.mongoDBVersion,
    backupEnabled: () => true,
    createDate: (c: ClusterObj) => c.dto.createDate,
    snapshots: (c: ClusterObj, args: ListArgs, { rest }: NaiveContext) =>
      listPage(rest, { ...c, clusterName: String(c.dto.name) }, 'snapshots', args),
    snapshot: (c: ClusterObj, { id }: { id: string }, { rest }: NaiveContext) =>
      orNull(
        getItem(
          rest,
          { family: c.family, projectId: c.projectId, clusterName: String(c.dto.name), dto: {} },
          'snapshots',
          id,
        ),
      ),
    restoreJobs: (c: ClusterObj, args: ListArgs, { rest }: NaiveContext) =>
      listPage(rest, { ...c, clusterName: String(c.dto.name) }, 'jobs', args),
  },
  Snapshot: {
    id: (s: ItemObj) => s.dto.id,
    status: (s: ItemObj) => s.dto.status,
    cluster: (s: ItemObj, _: unknown, { rest }: NaiveContext) =>
      getCluster(rest, s.projectId, s.clusterName, s.family),
    mongoDBVersion: (s: ItemObj) => s.dto.mongoDBVersion,
    scheduledTime: (s: ItemObj) => s.dto.scheduledTime,
    startTime: (s: ItemObj) => s.dto.startTime,
    finishTime: (s: ItemObj) => s.dto.finishTime,
    expiration: (s: ItemObj) => s.dto.expiration,
    restoreJobs: async (s: ItemObj, _args: ListArgs, { rest }: NaiveContext) => {
      // Atlas cannot list jobs by snapshot: the whole list, filtered here.
      const all = await listPage(rest, s, 'jobs', { first: 500 });
      const nodes = all.nodes.filter((j) => j.dto.snapshotId === s.dto.id);
      return { nodes, totalCount: nodes.length, pageInfo: { hasNextPage: false, endCursor: null } };
    },
  },
  RestoreJob: {
    id: (j: ItemObj) => j.dto.id,
    status: (j: ItemObj) => j.dto.status,
    deliveryType: (j: ItemObj) => j.dto.deliveryType,
    cluster: (j: ItemObj, _: unknown, { rest }: NaiveContext) =>
      getCluster(rest, j.projectId, j.clusterName, j.family),
    snapshotId: (j: ItemObj) => j.dto.snapshotId,
    snapshot: (j: ItemObj, _: unknown, { rest }: NaiveContext) =>
      typeof j.dto.snapshotId === 'string' ? orNull(getItem(rest, j, 'snapshots', j.dto.snapshotId)) : null,
    snapshotUrl: (j: ItemObj) => j.dto.snapshotUrl ?? null,
    expirationDate: (j: ItemObj) => j.dto.expirationDate ?? null,
    isTerminal: (j: ItemObj) => j.dto.status === 'COMPLETED' || j.dto.status === 'FAILED',
  },
  Mutation: {
    requestDownload: async (
      _: unknown,
      { input }: { input: ClusterRefArgs & { snapshotId: string } },
      { rest }: NaiveContext,
    ) => {
      const { projectId, clusterName, snapshotId } = input;
      const r = await byFamily(
        () =>
          rest.post<Dto>(`${flexPath(projectId, clusterName)}/backup/download`, MEDIA.flex, { snapshotId }),
        () =>
          rest.post<Dto>(`${tenantPath(projectId, clusterName)}/backup/tenant/download`, MEDIA.tenantBackup, {
            snapshotId,
            targetDeploymentItemName: clusterName,
            targetProjectId: projectId,
          }),
      );
      const job: ItemObj = { family: r.family, projectId, clusterName, dto: r.value };
      return { job, reused: false };
    },
  },
  Subscription: {
    restoreJobStatus: {
      // Each subscriber polls for itself: N watchers of one job cost N reads per interval.
      subscribe: async function* (
        _: unknown,
        a: ClusterRefArgs & { jobId: string },
        { rest, pollIntervalMs }: NaiveContext,
      ) {
        let last = '';
        for (;;) {
          const job = await getItem(rest, a, 'jobs', a.jobId);
          const sig = JSON.stringify([job.dto.status, job.dto.snapshotUrl]);
          if (sig !== last) {
            last = sig;
            yield { restoreJobStatus: job };
          }
          if (job.dto.status === 'COMPLETED' || job.dto.status === 'FAILED') return;
          await sleep(pollIntervalMs);
        }
      },
    },
  },
};
