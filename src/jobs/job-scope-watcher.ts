import { Repeater } from 'graphql-yoga';
import { AtlasApiError } from '../atlas/errors.js';
import { RECENT_JOBS_CHUNK, type BackupServices } from '../backup/backup-service.js';
import { clusterKey, type ClusterRef, type Family, type RestoreJobSource } from '../backup/model.js';
import { isShuttingDown, JOB_KIND, type JobPollers, type PollEvent, type PollKind } from './job-pollers.js';
import type { PolledState } from './job-channel.js';
import { pollerServices, readerKey, type PollerCredentials } from './watch-job.js';

/**
 * Which jobs a watch follows: the restore and download jobs of every cluster of `projectIds` that
 * matches `clusterNames` and `families`. Whoever builds a scope has already checked that its caller
 * may see each project (src/graphql/access.ts); the watcher reads with `PollerCredentials`.
 */
export interface JobScope {
  /** The projects watched. */
  projectIds: readonly string[];
  /** Only clusters with one of these names (in any of the projects). @default every cluster */
  clusterNames?: readonly string[] | undefined;
  /** Only clusters of these families. @default both (TENANT and FLEX) */
  families?: readonly Family[] | undefined;
}

/**
 * One change of one job in scope: a job that was not there at the previous read (`appeared`), or a job
 * whose visible state changed (`changed`: its status, its download link or one of its dates), with
 * the status it had before. A watch starts from what is there when it starts: the jobs it finds then
 * are no events.
 */
export interface JobChange {
  /** The job as it is now. */
  job: RestoreJobSource;
  /** The cluster it belongs to (the one whose list it was read from). */
  ref: ClusterRef;
  /** Its status at the previous read (`changed` only). */
  previousStatus?: string | undefined;
  kind: 'appeared' | 'changed';
}

export interface ScopeWatcherDeps {
  /** The process's pollers (`JobsRuntime.pollers`): reads are shared through them. */
  pollers: JobPollers;
  /** The process's backup services (`JobsRuntime.backup`). */
  backup: BackupServices;
}

export interface ScopeWatchOptions {
  /**
   * A project or cluster of the scope Atlas refused for good (deleted, no right any more): it leaves
   * the watch, the rest goes on. When nothing is left, the stream ends with that error.
   * @default not reported
   */
  onDropped?: (where: { projectId: string; clusterName?: string }, err: unknown) => void;
}

/**
 * How many jobs of each cluster a watch follows: the newest end of its list (`listRecentJobs`). One
 * upstream call per tenant cluster (its list is whole anyway) and per Flex cluster of up to this many
 * jobs, two for a longer Flex list. A job that falls out of this window is not followed any more.
 */
export const SCOPE_JOBS_PER_CLUSTER = RECENT_JOBS_CHUNK;

/**
 * The clusters of each project are listed again every this many poll intervals (60 s at the default
 * 4 s), so clusters created or deleted while a watch runs join or leave it. Two upstream calls per
 * project (the clusters API and the Flex one).
 */
export const CLUSTER_LIST_INTERVALS = 15;

/** What a cluster's poller shares: the newest end of its jobs. No `dto`: it never ends by itself. */
export interface ClusterJobs extends PolledState {
  ref: ClusterRef;
  /** Newest first, at most `SCOPE_JOBS_PER_CLUSTER`. */
  jobs: RestoreJobSource[];
}

/** What a project's poller shares: its clusters with backups, by name and family. */
export interface ProjectClusters extends PolledState {
  projectId: string;
  clusters: { clusterName: string; family: Family }[];
}

/** A cluster's newest jobs: a new or changed job (`JOB_KIND.signature`) is one change. */
export const CLUSTER_JOBS_KIND: PollKind<ClusterJobs> = {
  name: 'cluster-jobs:',
  operation: 'listRestoreJobs',
  signature: (s) => JSON.stringify(s.jobs.map((j) => [j.dto.id, JOB_KIND.signature(j)])),
  isFinal: () => false,
};

/** A project's cluster list, read every `CLUSTER_LIST_INTERVALS` intervals. */
export const PROJECT_CLUSTERS_KIND: PollKind<ProjectClusters> = {
  name: 'project-clusters:',
  operation: 'listClusters',
  signature: (s) => JSON.stringify(s.clusters.map((c) => `${c.family}:${c.clusterName}`).sort()),
  isFinal: () => false,
  intervalFactor: CLUSTER_LIST_INTERVALS,
};

/** The poller key of a cluster's jobs (shared by every watch with the same reader). */
export const clusterJobsKey = (who: PollerCredentials, ref: ClusterRef): string =>
  `${readerKey(who)}${clusterKey(ref)}`;

/**
 * The changes between two reads of a cluster's newest jobs, oldest job first. The first read of a
 * watch (`previous` undefined) is where it starts from: no changes.
 */
export function jobChanges(
  previous: ReadonlyMap<string, RestoreJobSource> | undefined,
  next: ClusterJobs,
): JobChange[] {
  if (!previous) return [];
  const out: JobChange[] = [];
  for (const job of [...next.jobs].reverse()) {
    const id = job.dto.id;
    if (id === undefined) continue;
    const before = previous.get(id);
    if (!before) out.push({ job, ref: next.ref, kind: 'appeared' });
    else if (JOB_KIND.signature(before) !== JOB_KIND.signature(job)) {
      out.push({ job, ref: next.ref, previousStatus: before.dto.status, kind: 'changed' });
    }
  }
  return out;
}

const byId = (jobs: readonly RestoreJobSource[]) =>
  new Map(jobs.flatMap((j) => (j.dto.id === undefined ? [] : [[j.dto.id, j] as const])));

/**
 * Every job change in `scope`, as it happens, until the consumer stops (`return()`) or the gateway
 * shuts down (the stream then completes; `deps.pollers.closed` says why).
 *
 * Shared reads: each project's cluster list and each cluster's newest jobs are polled by one poller
 * per key (`CLUSTER_JOBS_KIND`, `PROJECT_CLUSTERS_KIND` through `JobPollers.watchKind`), however many
 * watches (subscriptions, webhooks) include them, and with a shared `JobChannel` by one replica of
 * the fleet (lease), every replica delivering. Pass-through credentials (`bearerToken`) get pollers
 * of their own. Per poll interval a scope costs one call per cluster (two for a Flex cluster of more
 * than `SCOPE_JOBS_PER_CLUSTER` jobs), plus two per project every `CLUSTER_LIST_INTERVALS`
 * intervals; nothing is read twice for two watches.
 *
 * The Atlas budget, as for `watchJob`: the read that starts a poller spends `who.callerId`'s share,
 * later reads the pollers' share (`POLLERS_SPENDER`). A first read refused by the budget ends the
 * stream with RATE_LIMITED; Atlas's transient errors only slow the poller down (backoff); a project
 * or cluster Atlas refuses for good is dropped (`onDropped`).
 *
 * @example
 * for await (const change of watchJobsInScope(jobs, { projectIds: [p] }, { callerId: 'webhooks' })) {
 *   if (isTerminal(change.job.dto.status)) deliver(change);
 * }
 */
export function watchJobsInScope(
  deps: ScopeWatcherDeps,
  scope: JobScope,
  who: PollerCredentials,
  options: ScopeWatchOptions = {},
): AsyncIterableIterator<JobChange> {
  const names = scope.clusterNames?.length ? new Set(scope.clusterNames) : undefined;
  const families = scope.families?.length ? new Set<Family>(scope.families) : undefined;
  const wanted = (c: { clusterName: string; family: Family }) =>
    (!names || names.has(c.clusterName)) && (!families || families.has(c.family));

  return new Repeater<JobChange>(async (push, stop) => {
    let over = false;
    const watches = new Set<AsyncIterableIterator<unknown>>();
    // Per project, the clusters followed now (name → their stream).
    const following = new Map<string, Map<string, AsyncIterableIterator<unknown>>>();
    let alive = 0;

    /** Runs one poller stream; answers whether it ended because Atlas refused its key for good. */
    const run = async <T>(
      it: AsyncIterableIterator<PollEvent<T>>,
      onState: (state: T) => void,
      onRefused: (err: AtlasApiError) => void,
    ) => {
      watches.add(it);
      alive += 1;
      try {
        for await (const event of it) {
          if (isShuttingDown(event)) break;
          onState(event);
        }
        if (deps.pollers.closed) stop();
      } catch (err) {
        if (!(err instanceof AtlasApiError) || over) {
          stop(err);
          return;
        }
        onRefused(err);
        if (alive === 1) stop(err);
      } finally {
        alive -= 1;
        watches.delete(it);
      }
    };

    const follow = (projectId: string, clusterName: string) => {
      const clusters = following.get(projectId);
      if (over || !clusters || clusters.has(clusterName)) return;
      const ref = { projectId, clusterName };
      const service = pollerServices(deps.backup, who);
      const it = deps.pollers.watchKind<ClusterJobs>(
        CLUSTER_JOBS_KIND,
        clusterJobsKey(who, ref),
        async () => ({
          ref,
          jobs: await service().listRecentJobs(ref, { maxJobs: SCOPE_JOBS_PER_CLUSTER }),
        }),
      );
      clusters.set(clusterName, it);
      let previous: Map<string, RestoreJobSource> | undefined;
      void run(
        it,
        (state) => {
          const changes = jobChanges(previous, state);
          previous = byId(state.jobs);
          for (const change of changes) void push(change);
        },
        (err) => {
          if (clusters.get(clusterName) === it) clusters.delete(clusterName);
          options.onDropped?.(ref, err);
        },
      );
    };

    for (const projectId of new Set(scope.projectIds)) {
      following.set(projectId, new Map());
      const service = pollerServices(deps.backup, who);
      const it = deps.pollers.watchKind<ProjectClusters>(
        PROJECT_CLUSTERS_KIND,
        `${readerKey(who)}${projectId}`,
        async () => ({
          projectId,
          clusters: (await service().listClusters(projectId)).map((c) => ({
            clusterName: c.dto.name ?? '',
            family: c.family,
          })),
        }),
      );
      void run(
        it,
        (state) => {
          const now = new Set(state.clusters.filter(wanted).map((c) => c.clusterName));
          const clusters = following.get(projectId)!;
          for (const [name, stream] of clusters) {
            if (now.has(name)) continue;
            clusters.delete(name);
            void stream.return?.();
          }
          for (const name of now) follow(projectId, name);
        },
        (err) => options.onDropped?.({ projectId }, err),
      );
    }
    if (watches.size === 0) stop();

    await stop;
    over = true;
    await Promise.all([...watches].map((it) => it.return?.()));
  });
}
