import { DateTimeISOResolver } from 'graphql-scalars';
import { canSeeProject } from '../callers/caller.js';
import { clusterFields, isTerminal, jobClusterName } from '../backup/mappers.js';
import type {
  BackupPage,
  ClusterRef,
  ClusterSource,
  RestoreJobSource,
  SnapshotSource,
} from '../backup/model.js';
import { checkFirst, decodeCursor, pageFromList, pageFromUpstream, type Slice } from './connection.js';
import type { GatewayContext } from './context.js';
import type { DeliveryType, JobStatus, Resolvers } from './generated/resolvers-types.js';
import type { PageKey } from './loaders.js';
import { checkClusterName, checkId } from './validate.js';
import { requireAccess } from './access.js';
import { requestDownload, requestRestore, type JobRequestDeps } from '../jobs/job-requests.js';
import { watchJob } from '../jobs/watch-job.js';
import { isShuttingDown, type JobEvent } from '../jobs/job-pollers.js';
import { GatewayError } from '../errors/index.js';

const refOf = (c: ClusterSource): ClusterRef => ({ projectId: c.projectId, clusterName: c.dto.name ?? '' });

interface ListArgs {
  first?: number | null;
  after?: string | null;
  status?: readonly JobStatus[] | null;
  deliveryType?: DeliveryType | null;
}

/**
 * A connection over one of a cluster's lists. Unfiltered: only the Atlas page(s) that hold the
 * requested range. Filtered (Atlas has no status filter): the whole list, filtered here.
 */
async function connection<T extends { dto: { status?: string; deliveryType?: string } }>(
  args: ListArgs,
  page: (k: PageKey) => Promise<BackupPage<T>>,
  all: () => Promise<T[]>,
  ref: ClusterRef,
  keep?: (item: T) => boolean,
): Promise<Slice<T>> {
  const first = checkFirst(args.first);
  const offset = decodeCursor(args.after);
  const status = args.status?.length ? new Set<string>(args.status) : undefined;
  if (status !== undefined || args.deliveryType != null || keep !== undefined) {
    const items = (await all()).filter(
      (i) =>
        (!keep || keep(i)) &&
        (!status || status.has(i.dto.status ?? '')) &&
        (args.deliveryType == null || i.dto.deliveryType === args.deliveryType),
    );
    return pageFromList(items, offset, first);
  }
  let whole: T[] | undefined;
  const slice = await pageFromUpstream<T>(
    async (pageNum, itemsPerPage) => {
      const p = await page({ ...ref, pageNum, itemsPerPage });
      if (p.whole) whole = p.results;
      return p;
    },
    offset,
    first,
  );
  // Some families' lists arrive whole whatever page was asked for (`whole`); those are sliced here.
  return whole ? pageFromList(whole, offset, first) : slice;
}

export const resolvers: Resolvers = {
  DateTime: DateTimeISOResolver,

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
        projectId: input.targetProjectId
          ? checkId('input.targetProjectId', input.targetProjectId)
          : projectId,
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
    id: (p) => p.id ?? '',
    name: (p) => p.name,
    orgId: (p) => p.orgId,
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
    backingProvider: (c) => clusterFields(c).backingProvider,
    region: (c) => clusterFields(c).region,
    state: (c) => clusterFields(c).state,
    mongoDBVersion: (c) => clusterFields(c).mongoDBVersion,
    backupEnabled: (c) => clusterFields(c).backupEnabled,
    createDate: (c) => clusterFields(c).createDate,
    snapshots: (c, args, { loaders }) =>
      connection<SnapshotSource>(
        args,
        (k) => loaders.snapshotPage.load(k),
        () => loaders.allSnapshots.load(refOf(c)),
        refOf(c),
      ),
    snapshot: (c, { id }, { loaders }) => loaders.snapshot.load({ ...refOf(c), id: checkId('id', id) }),
    restoreJobs: (c, args, { loaders }) =>
      connection<RestoreJobSource>(
        args,
        (k) => loaders.jobPage.load(k),
        () => loaders.allJobs.load(refOf(c)),
        refOf(c),
      ),
  },

  Snapshot: {
    id: (s) => s.dto.id ?? '',
    status: (s) => s.dto.status ?? 'PENDING',
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
        () => loaders.allJobs.load(s),
        s,
        (j) => j.dto.snapshotId === s.dto.id,
      ),
  },

  RestoreJob: {
    id: (j) => j.dto.id ?? '',
    status: (j) => j.dto.status ?? 'PENDING',
    deliveryType: (j) => j.dto.deliveryType ?? 'DOWNLOAD',
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

function jobDeps(ctx: GatewayContext): JobRequestDeps {
  return {
    // Not the loaders' service, whose calls stop when the request ends (see `backupPolicy`).
    service: ctx.jobs.backup({
      use: 'write',
      requestId: ctx.requestId,
      bearerToken: ctx.caller.atlasBearerToken,
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
