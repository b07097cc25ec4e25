import { canSeeProject } from '../callers/caller.js';
import { clusterFields, isTerminal, jobClusterName } from '../backup/mappers.js';
import {
  CLUSTER_STATES,
  DELIVERY_TYPES,
  JOB_STATUSES,
  PROVIDERS,
  readEnum,
} from '../backup/unknown-values.js';
import type {
  BackupPage,
  ClusterRef,
  ClusterSource,
  RestoreJobSource,
  SnapshotSource,
} from '../backup/model.js';
import { checkFirst, decodeCursor, pageFromList, pageFromUpstream, type Slice } from './connection.js';
import { sortNewestFirst, timeOf } from '../backup/newest-first.js';
import type { GatewayContext } from './context.js';
import { DateTimeScalar } from './date-time.js';
import type { DeliveryType, JobStatus, Resolvers } from './generated/resolvers-types.js';
import type { PageKey } from './loaders.js';
import { checkClusterName, checkId } from './validate.js';
import { requireAccess } from './access.js';
import { requestDownload, requestRestore, type JobRequestDeps } from '../jobs/job-requests.js';
import { watchJob } from '../jobs/watch-job.js';
import { isShuttingDown, type JobEvent } from '../jobs/job-pollers.js';
import { GatewayError } from '../errors/index.js';

export const refOf = (c: ClusterSource): ClusterRef => ({
  projectId: c.projectId,
  clusterName: c.dto.name ?? '',
});

interface ListArgs {
  first?: number | null;
  after?: string | null;
  status?: readonly JobStatus[] | null;
  deliveryType?: DeliveryType | null;
}

/** How a list's items are dated: the gateway's order is newest first by this date, then id. */
export interface Dating<T> {
  dateOf: (item: T) => string | undefined;
  idOf: (item: T) => string;
}
export const snapshotDating: Dating<SnapshotSource> = {
  dateOf: (s) => s.dto.scheduledTime,
  idOf: (s) => s.dto.id ?? '',
};
export const jobDating: Dating<RestoreJobSource> = {
  dateOf: (j) => j.dto.restoreScheduledDate,
  idOf: (j) => j.dto.id ?? '',
};

/**
 * A connection over one of a cluster's lists, newest first whatever order Atlas uses. Unfiltered:
 * only the Atlas page(s) that hold the requested range, read from the newest end of Atlas's
 * oldest-first list (src/backup/newest-first.ts); a list that arrives whole (tenant) is sorted here.
 * Filtered (Atlas has no status filter): the whole list (or `all`'s bounded part), sorted and
 * filtered here. A page whose order contradicts Atlas's assumed one falls back to the whole list.
 */
export async function connection<T extends { dto: { status?: string; deliveryType?: string } }>(
  args: ListArgs,
  page: (k: PageKey) => Promise<BackupPage<T>>,
  all: () => Promise<T[]>,
  ref: ClusterRef,
  dating: Dating<T>,
  keep?: (item: T) => boolean,
): Promise<Slice<T>> {
  const first = checkFirst(args.first);
  const before = decodeCursor(args.after);
  const status = args.status?.length ? new Set<string>(args.status) : undefined;
  const sorted = (items: T[]) => sortNewestFirst(items, dating.dateOf, dating.idOf);
  if (status !== undefined || args.deliveryType != null || keep !== undefined) {
    const items = (await all()).filter(
      (i) =>
        (!keep || keep(i)) &&
        (!status || status.has(readEnum('status', JOB_STATUSES, i.dto.status) ?? '')) &&
        (args.deliveryType == null ||
          readEnum('deliveryType', DELIVERY_TYPES, i.dto.deliveryType) === args.deliveryType),
    );
    return pageFromList(sorted(items), before, first);
  }
  let whole: T[] | undefined;
  const older = (a: T, b: T) => timeOf(dating.dateOf(a)) < timeOf(dating.dateOf(b));
  const slice = await pageFromUpstream<T>(
    async (pageNum, itemsPerPage) => {
      const p = await page({ ...ref, pageNum, itemsPerPage });
      if (p.whole) whole = p.results;
      return p;
    },
    before,
    first,
    older,
  );
  // Some families' lists arrive whole whatever page was asked for (`whole`); those are sorted here.
  if (whole) return pageFromList(sorted(whole), before, first);
  if (slice.orderBroken) return pageFromList(sorted(await all()), before, first);
  const { orderBroken: _checked, ...answer } = slice;
  return answer;
}

export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,

  // A project outside the caller's list answers exactly like one that does not exist (null), so
  // existence does not leak; the check comes before any upstream call.
  Query: {
    projects: async (_p, _a, { loaders, caller }) =>
      (await loaders.projects()).filter((p) => canSeeProject(caller, p.id ?? '')),
    project: (_p, { id }, { loaders, caller }) =>
      canSeeProject(caller, checkId('id', id)) ? loaders.project.load(id) : null,
    cluster: (_p, { projectId, name }, { loaders, caller }) => {
      const ref = { projectId: checkId('projectId', projectId), clusterName: checkClusterName('name', name) };
      return canSeeProject(caller, projectId) ? loaders.cluster.load(ref) : null;
    },
    snapshot: (_p, { projectId, clusterName, id }, { loaders, caller }) => {
      const key = {
        projectId: checkId('projectId', projectId),
        clusterName: checkClusterName('clusterName', clusterName),
        id: checkId('id', id),
      };
      return canSeeProject(caller, projectId) ? loaders.snapshot.load(key) : null;
    },
    restoreJob: (_p, { projectId, clusterName, id }, { loaders, caller }) => {
      const key = {
        projectId: checkId('projectId', projectId),
        clusterName: checkClusterName('clusterName', clusterName),
        id: checkId('id', id),
      };
      return canSeeProject(caller, projectId) ? loaders.job.load(key) : null;
    },
  },

  Mutation: {
    requestDownload: (_p, { input }, ctx) => {
      const projectId = checkId('input.projectId', input.projectId);
      const clusterName = checkClusterName('input.clusterName', input.clusterName);
      const snapshotId = checkId('input.snapshotId', input.snapshotId);
      requireAccess(ctx.caller, projectId, 'download');
      return requestDownload(jobDeps(ctx), {
        projectId,
        clusterName,
        snapshotId,
        idempotencyKey: input.idempotencyKey ?? undefined,
        reuseExisting: input.reuseExisting ?? true,
      });
    },
    requestRestore: (_p, { input }, ctx) => {
      const projectId = checkId('input.projectId', input.projectId);
      const clusterName = checkClusterName('input.clusterName', input.clusterName);
      const snapshotId = checkId('input.snapshotId', input.snapshotId);
      const target = {
        // Only an absent (or null) target means the source project: an empty string is a bad id, not a
        // default, or a typo'd variable would restore over the source cluster.
        projectId:
          input.targetProjectId != null ? checkId('input.targetProjectId', input.targetProjectId) : projectId,
        clusterName: checkClusterName('input.targetClusterName', input.targetClusterName),
      };
      requireAccess(ctx.caller, [projectId, target.projectId], 'restore');
      return requestRestore(jobDeps(ctx), {
        projectId,
        clusterName,
        snapshotId,
        target,
        idempotencyKey: input.idempotencyKey ?? undefined,
      });
    },
  },

  Subscription: {
    restoreJobStatus: {
      subscribe: (_p, { projectId, clusterName, jobId }, { caller, jobs }) => {
        const ref = {
          projectId: checkId('projectId', projectId),
          clusterName: checkClusterName('clusterName', clusterName),
        };
        checkId('jobId', jobId);
        requireAccess(caller, projectId, 'read');
        return watchJob(jobs, { ...ref, jobId, callerId: caller.id, bearerToken: caller.atlasBearerToken });
      },
      resolve: (event: JobEvent) => {
        if (isShuttingDown(event)) {
          throw new GatewayError(
            'SHUTTING_DOWN',
            'The gateway is shutting down; subscribe again to keep following the job (it goes on in Atlas).',
            { extensions: { retryable: true } },
          );
        }
        return event;
      },
    },
  },

  Project: {
    id: (p) => p.id ?? missing('Project', 'id'),
    name: (p) => p.name ?? missing('Project', 'name'),
    orgId: (p) => p.orgId ?? missing('Project', 'orgId'),
    created: (p) => p.created ?? null,
    clusterCount: (p) => p.clusterCount ?? null,
    clusters: (p, _a, { loaders }) => loaders.projectClusters.load(p.id ?? ''),
    cluster: (p, { name }, { loaders }) =>
      loaders.cluster.load({ projectId: p.id ?? '', clusterName: checkClusterName('name', name) }),
  },

  Cluster: {
    id: (c) => clusterFields(c).id,
    name: (c) => clusterFields(c).name,
    projectId: (c) => c.projectId,
    project: (c, _a, { loaders }) => loaders.project.load(c.projectId),
    family: (c) => c.family,
    instanceSize: (c) => clusterFields(c).instanceSize,
    backingProvider: (c, _a, ctx) =>
      readEnum('backingProvider', PROVIDERS, clusterFields(c).backingProviderRaw, ctx.unknownValues),
    backingProviderRaw: (c) => clusterFields(c).backingProviderRaw,
    region: (c) => clusterFields(c).region,
    state: (c, _a, ctx) =>
      readEnum('clusterState', CLUSTER_STATES, clusterFields(c).stateRaw, ctx.unknownValues),
    stateRaw: (c) => clusterFields(c).stateRaw,
    mongoDBVersion: (c) => clusterFields(c).mongoDBVersion,
    backupEnabled: (c) => clusterFields(c).backupEnabled,
    createDate: (c) => clusterFields(c).createDate,
    snapshots: (c, args, { loaders }) =>
      connection<SnapshotSource>(
        args,
        (k) => loaders.snapshotPage.load(k),
        () => loaders.allSnapshots.load(refOf(c)),
        refOf(c),
        snapshotDating,
      ),
    snapshot: (c, { id }, { loaders }) => loaders.snapshot.load({ ...refOf(c), id: checkId('id', id) }),
    restoreJobs: (c, args, { loaders }) =>
      connection<RestoreJobSource>(
        args,
        (k) => loaders.jobPage.load(k),
        () => loaders.allJobs.load(refOf(c)),
        refOf(c),
        jobDating,
      ),
  },

  Snapshot: {
    id: (s) => s.dto.id ?? missing('Snapshot', 'id'),
    status: (s, _a, ctx) => statusOf('Snapshot', s.dto.status, ctx),
    statusRaw: (s) => s.dto.status ?? null,
    cluster: (s, _a, ctx) => clusterOf(s, ctx),
    mongoDBVersion: (s) => s.dto.mongoDBVersion ?? null,
    scheduledTime: (s) => s.dto.scheduledTime ?? null,
    startTime: (s) => s.dto.startTime ?? null,
    finishTime: (s) => s.dto.finishTime ?? null,
    expiration: (s) => s.dto.expiration ?? null,
    restoreJobs: (s, args, { loaders }) =>
      connection<RestoreJobSource>(
        args,
        (k) => loaders.jobPage.load(k),
        // A job of this snapshot is never older than the snapshot: only the recent end of the
        // cluster's jobs is read (bounded by `listRecentJobs`), not a list of thousands.
        () =>
          s.dto.scheduledTime
            ? loaders.recentJobs.load({
                projectId: s.projectId,
                clusterName: s.clusterName,
                since: s.dto.scheduledTime,
              })
            : loaders.allJobs.load(s),
        s,
        jobDating,
        (j) => j.dto.snapshotId === s.dto.id,
      ),
  },

  RestoreJob: {
    id: (j) => j.dto.id ?? missing('RestoreJob', 'id'),
    status: (j, _a, ctx) => statusOf('RestoreJob', j.dto.status, ctx),
    statusRaw: (j) => j.dto.status ?? null,
    deliveryType: (j, _a, ctx) =>
      readEnum('deliveryType', DELIVERY_TYPES, j.dto.deliveryType, ctx.unknownValues) ??
      missing('RestoreJob', 'deliveryType'),
    deliveryTypeRaw: (j) => j.dto.deliveryType ?? null,
    cluster: (j, _a, ctx) => clusterOf({ projectId: j.projectId, clusterName: jobClusterName(j) }, ctx),
    snapshotId: (j) => j.dto.snapshotId ?? '',
    snapshot: (j, _a, { loaders }) =>
      j.dto.snapshotId
        ? loaders.snapshot.load({
            projectId: j.projectId,
            clusterName: jobClusterName(j),
            id: j.dto.snapshotId,
          })
        : null,
    snapshotUrl: (j) => j.dto.snapshotUrl ?? null,
    expirationDate: (j) => j.dto.expirationDate ?? null,
    restoreScheduledDate: (j) => j.dto.restoreScheduledDate ?? null,
    restoreFinishedDate: (j) => j.dto.restoreFinishedDate ?? null,
    snapshotFinishedDate: (j) => j.dto.snapshotFinishedDate ?? null,
    targetProjectId: (j) => j.dto.targetProjectId ?? null,
    targetDeploymentItemName: (j) => j.dto.targetDeploymentItemName ?? null,
    isTerminal: (j) => isTerminal(j.dto.status),
  },
};

/**
 * A status Atlas sent, or UNKNOWN (noted once) for one this gateway does not know: an unknown value
 * never fails the field, so it never nulls the parent list. A missing one is a field error of this
 * object alone.
 */
function statusOf(type: string, raw: string | undefined, ctx: GatewayContext): JobStatus {
  return readEnum('status', JOB_STATUSES, raw, ctx.unknownValues) ?? missing(type, 'status');
}

/** Atlas left out a field the schema promises: an error on this field (and object) only. */
function missing(type: string, field: string): never {
  throw new GatewayError(
    'UPSTREAM_UNAVAILABLE',
    `Atlas sent a ${type} without its required field "${field}".`,
    { extensions: { field, retryable: false } },
  );
}

function jobDeps(ctx: GatewayContext): JobRequestDeps {
  return {
    // Not the loaders' service, whose calls stop when the request ends (see `backupPolicy`).
    service: ctx.jobs.backup({
      use: 'write',
      requestId: ctx.requestId,
      bearerToken: ctx.caller.atlasBearerToken,
      spender: ctx.caller.id,
    }),
    idempotency: ctx.jobs.idempotency,
    clock: ctx.jobs.clock,
    callerId: ctx.caller.id,
    inflight: ctx.jobs.inflightDownloads,
    deadline: ctx.deadline?.(),
    ...ctx.jobs.requestOptions,
  };
}

/** A child's cluster: primed by any list this request saw, else one upstream read. */
async function clusterOf(ref: ClusterRef, { loaders }: GatewayContext): Promise<ClusterSource> {
  const c = await loaders.cluster.load(ref);
  if (!c) throw new Error(`cluster ${ref.projectId}/${ref.clusterName} of a listed item no longer exists`);
  return c;
}
