import { Repeater } from 'graphql-yoga';
import { AtlasApiError } from '../atlas/errors.js';
import { canSeeProject } from '../callers/caller.js';
import type { ClusterRef, ClusterSource, RestoreJobSource, SnapshotSource } from '../backup/model.js';
import { clusterKey } from '../backup/model.js';
import { timeOf } from '../backup/newest-first.js';
import { DELIVERY_TYPES, JOB_STATUSES, readEnum } from '../backup/unknown-values.js';
import { BadUserInputError, GatewayError } from '../errors/index.js';
import { isShuttingDown, SHUTTING_DOWN, type PollEvent } from '../jobs/job-pollers.js';
import { watchJobsInScope, type JobChange } from '../jobs/job-scope-watcher.js';
import { watchSnapshot } from '../jobs/watch-snapshot.js';
import { requireAccess } from './access.js';
import { decodeCursor, encodeCursor, type Slice } from './connection.js';
import type { GatewayContext } from './context.js';
import type { JobFeedFilter, Resolvers } from './generated/resolvers-types.js';
import { connection, jobDating, refOf, snapshotDating } from './resolvers.js';
import { checkClusterName, checkId } from './validate.js';

/** Largest `first` of the jobs feed: each page reads up to this many jobs of every cluster in scope. */
export const FEED_MAX_FIRST = 100;

/** Snapshots read per step while looking for the newest COMPLETED one (`latestCompletedSnapshot`). */
export const LATEST_SNAPSHOT_STEP = 5;

/** A feed position: newest first by date, then id (the gateway's order for every list). */
type Key = readonly [number, string];
const keyOf = (j: RestoreJobSource): Key => [timeOf(jobDating.dateOf(j)), jobDating.idOf(j)];
/** Positive when `a` comes before (is newer than) `b`. */
const newer = (a: Key, b: Key) => a[0] - b[0] || (a[1] > b[1] ? 1 : a[1] < b[1] ? -1 : 0);

/**
 * Inside a feed cursor: the last job walked (`k`), and per cluster how many of its jobs are older
 * than the next one to read (`c`, the per-cluster cursor of `Cluster.restoreJobs`: it stays valid
 * while new jobs arrive at the newest end; 0 means the cluster is done). A cluster missing from `c`
 * is read from its newest end, skipping jobs not older than `k`.
 */
interface FeedCursor {
  k: [number, string];
  c: Record<string, number>;
}

function encodeFeedCursor(c: FeedCursor): string {
  return Buffer.from(`f:${JSON.stringify(c)}`).toString('base64url');
}

function decodeFeedCursor(after: string | null | undefined): FeedCursor | undefined {
  if (after == null) return undefined;
  const bad = () => new BadUserInputError('after', 'an endCursor from a previous page of `jobs`', after);
  const text = Buffer.from(after, 'base64url').toString('utf8');
  if (!text.startsWith('f:')) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(2));
  } catch {
    throw bad();
  }
  const p = parsed as Partial<FeedCursor> | null;
  const ok =
    p !== null &&
    typeof p === 'object' &&
    Array.isArray(p.k) &&
    p.k.length === 2 &&
    typeof p.k[0] === 'number' &&
    typeof p.k[1] === 'string' &&
    typeof p.c === 'object' &&
    p.c !== null &&
    Object.values(p.c).every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
  if (!ok) throw bad();
  return p as FeedCursor;
}

function checkFeedFirst(first: number | null | undefined): number {
  const n = first ?? 20;
  if (!Number.isInteger(n) || n < 1 || n > FEED_MAX_FIRST) {
    throw new BadUserInputError('first', `an integer from 1 to ${FEED_MAX_FIRST}`, first);
  }
  return n;
}

/** `since` as epoch ms; the DateTime scalar has checked it (it may arrive as a Date). */
const sinceOf = (filter: JobFeedFilter | null | undefined): number =>
  filter?.since == null ? -Infinity : new Date(filter.since as unknown as string | Date).getTime();

/**
 * The projects a filter names that the caller can see (a project it cannot see is left out, exactly
 * as one that does not exist), or every project it can see. Checked before any upstream call.
 */
async function visibleProjects(filter: JobFeedFilter | null | undefined, ctx: GatewayContext) {
  const asked = filter?.projectIds?.length
    ? filter.projectIds.map((id, i) => checkId(`filter.projectIds[${i}]`, id))
    : undefined;
  if (asked) return [...new Set(asked)].filter((id) => canSeeProject(ctx.caller, id));
  if (ctx.caller.projects !== 'all') return [...ctx.caller.projects];
  return (await ctx.loaders.projects()).flatMap((p) => (p.id ? [p.id] : []));
}

function checkNames(filter: JobFeedFilter | null | undefined): string[] | undefined {
  return filter?.clusterNames?.length
    ? filter.clusterNames.map((n, i) => checkClusterName(`filter.clusterNames[${i}]`, n))
    : undefined;
}

/** The clusters of the scope, from the request's cluster lists (two calls per project). */
async function clustersInScope(
  filter: JobFeedFilter | null | undefined,
  projectIds: readonly string[],
  ctx: GatewayContext,
): Promise<ClusterSource[]> {
  const names = checkNames(filter);
  const families = filter?.families?.length ? new Set<string>(filter.families) : undefined;
  const lists = await Promise.all(
    projectIds.map((id) =>
      // A project the caller's list names but Atlas does not know (or no longer lets it read) has
      // no jobs to show; the rest of the feed goes on.
      ctx.loaders.projectClusters.load(id).catch((err: unknown) => {
        if (err instanceof AtlasApiError && (err.status === 403 || err.status === 404)) return [];
        throw err;
      }),
    ),
  );
  return lists
    .flat()
    .filter((c) => (!names || names.includes(c.dto.name ?? '')) && (!families || families.has(c.family)));
}

/** The jobs of one cluster read for a feed page, with where each sits in the cluster's list. */
interface ClusterRead {
  key: string;
  /** Newest first, each with its index counted from the oldest end of the cluster's list. */
  jobs: { job: RestoreJobSource; index: number; key: Key }[];
  /** Older jobs are left to read (and none of these is before `since`). */
  more: boolean;
}

async function readCluster(
  ref: ClusterRef,
  before: number | undefined,
  count: number,
  sinceMs: number,
  ctx: GatewayContext,
): Promise<ClusterRead> {
  const key = clusterKey(ref);
  const slice = await connection<RestoreJobSource>(
    { first: count, after: before === undefined ? null : encodeCursor(before) },
    (k) => ctx.loaders.jobPage.load(k),
    () => ctx.loaders.allJobs.load(ref),
    ref,
    jobDating,
  );
  const older = slice.nodes.length > 0 ? (decodeCursor(slice.pageInfo.endCursor) ?? 0) : 0;
  const n = slice.nodes.length;
  const jobs = slice.nodes.map((job, i) => ({ job, index: older + (n - 1 - i), key: keyOf(job) }));
  const oldest = jobs.at(-1);
  return { key, jobs, more: older > 0 && !(oldest && oldest.key[0] < sinceMs) };
}

/**
 * One page of the jobs feed. Per cluster in scope, the next `first` jobs (older than the cursor) are
 * read from the newest end of its list, through the request's loaders (`connection`, as
 * `Cluster.restoreJobs` reads); they are merged newest first, and walked while no cluster can still
 * hold a newer job than the one walked (a cluster with more jobs than were read bounds the page at
 * the oldest job read of it). Filters keep what they match of the walk; the cursor remembers each
 * cluster's position, so a job is never walked twice and every page reads at most `first` jobs per
 * cluster.
 */
async function jobsFeed(
  args: { filter?: JobFeedFilter | null; first?: number | null; after?: string | null },
  ctx: GatewayContext,
): Promise<Slice<RestoreJobSource>> {
  const first = checkFeedFirst(args.first);
  const cursor = decodeFeedCursor(args.after);
  const filter = args.filter;
  const sinceMs = sinceOf(filter);
  const statuses = filter?.statuses?.length ? new Set<string>(filter.statuses) : undefined;
  const deliveryTypes = filter?.deliveryTypes?.length ? new Set<string>(filter.deliveryTypes) : undefined;
  checkNames(filter);
  const clusters = await clustersInScope(filter, await visibleProjects(filter, ctx), ctx);
  const reads = await Promise.all(
    clusters
      .map(refOf)
      .filter((ref) => cursor?.c[clusterKey(ref)] !== 0)
      .map((ref) => readCluster(ref, cursor?.c[clusterKey(ref)], first, sinceMs, ctx)),
  );
  // No job older than the oldest one read of a cluster with more may be walked on this page.
  let bound: Key | undefined;
  for (const r of reads) {
    const oldest = r.jobs.at(-1);
    if (r.more && oldest && (!bound || newer(oldest.key, bound) > 0)) bound = oldest.key;
  }
  const candidates = reads
    .flatMap((r) => r.jobs.map((j) => ({ ...j, cluster: r.key })))
    .sort((a, b) => newer(b.key, a.key));
  const positions: Record<string, number> = { ...cursor?.c };
  const walked = new Map<string, number>();
  const nodes: RestoreJobSource[] = [];
  let last: Key | undefined;
  for (const c of candidates) {
    if (nodes.length >= first || (bound && newer(c.key, bound) < 0)) break;
    walked.set(c.cluster, (walked.get(c.cluster) ?? 0) + 1);
    positions[c.cluster] = c.index;
    last = c.key;
    const status = readEnum('status', JOB_STATUSES, c.job.dto.status) ?? '';
    const delivery = readEnum('deliveryType', DELIVERY_TYPES, c.job.dto.deliveryType) ?? '';
    if (
      (!cursor || newer(c.key, cursor.k) < 0) &&
      c.key[0] >= sinceMs &&
      (!statuses || statuses.has(status)) &&
      (!deliveryTypes || deliveryTypes.has(delivery))
    ) {
      nodes.push(c.job);
    }
  }
  // A cluster read to its end (or to `since`) with every job walked is done.
  for (const r of reads) {
    if (!r.more && (walked.get(r.key) ?? 0) === r.jobs.length) positions[r.key] = 0;
  }
  const hasNextPage = reads.some((r) => positions[r.key] !== 0);
  const k = last ?? cursor?.k;
  return {
    nodes,
    totalCount: null,
    pageInfo: {
      hasNextPage,
      endCursor:
        k && (hasNextPage || nodes.length > 0) ? encodeFeedCursor({ k: [k[0], k[1]], c: positions }) : null,
    },
  };
}

/**
 * The newest COMPLETED snapshot: the newest `LATEST_SNAPSHOT_STEP` snapshots first (the newest end
 * of the list, as `Cluster.snapshots` reads it), then older steps only while none of them is
 * COMPLETED (the newest ones may still be running, or have failed).
 */
async function latestCompleted(c: ClusterSource, ctx: GatewayContext): Promise<SnapshotSource | null> {
  const ref = refOf(c);
  let after: string | null = null;
  let step = LATEST_SNAPSHOT_STEP;
  for (;;) {
    const slice: Slice<SnapshotSource> = await connection<SnapshotSource>(
      { first: step, after },
      (k) => ctx.loaders.snapshotPage.load(k),
      () => ctx.loaders.allSnapshots.load(ref),
      ref,
      snapshotDating,
    );
    const found = slice.nodes.find((s) => s.dto.status === 'COMPLETED');
    if (found) return found;
    if (!slice.pageInfo.hasNextPage || !slice.pageInfo.endCursor) return null;
    after = slice.pageInfo.endCursor;
    // Farther back, a step of 5 would cost a call each: read in larger pages.
    step = 50;
  }
}

/** A subscription's end because the gateway shuts down: retryable, as `restoreJobStatus` says it. */
function shuttingDown(what: string): never {
  throw new GatewayError(
    'SHUTTING_DOWN',
    `The gateway is shutting down; subscribe again to keep following ${what} (it goes on in Atlas).`,
    { extensions: { retryable: true } },
  );
}

/**
 * The scope's changes that pass the filter's status, delivery and date parts; SHUTTING_DOWN last on
 * shutdown. A Repeater, not an async generator: a generator's `return()` waits for the `next()` it is
 * suspended in, so a client leaving a quiet scope would keep its pollers running until the next
 * change; a Repeater stops at once and returns the watch with it.
 */
function filteredChanges(
  changes: AsyncIterableIterator<JobChange>,
  filter: JobFeedFilter | null | undefined,
  closed: () => boolean,
): AsyncIterableIterator<PollEvent<JobChange>> {
  const statuses = filter?.statuses?.length ? new Set<string>(filter.statuses) : undefined;
  const deliveryTypes = filter?.deliveryTypes?.length ? new Set<string>(filter.deliveryTypes) : undefined;
  const sinceMs = sinceOf(filter);
  const wanted = (change: JobChange) => {
    const dto = change.job.dto;
    return (
      (!statuses || statuses.has(readEnum('status', JOB_STATUSES, dto.status) ?? '')) &&
      (!deliveryTypes ||
        deliveryTypes.has(readEnum('deliveryType', DELIVERY_TYPES, dto.deliveryType) ?? '')) &&
      !(timeOf(dto.restoreScheduledDate) < sinceMs)
    );
  };
  return new Repeater<PollEvent<JobChange>>(async (push, stop) => {
    void (async () => {
      try {
        for await (const change of changes) if (wanted(change)) await push(change);
        if (closed()) await push(SHUTTING_DOWN);
        stop();
      } catch (err) {
        stop(err);
      }
    })();
    await stop;
    await changes.return?.();
  });
}

export const feedResolvers: Resolvers = {
  Query: {
    jobs: (_p, args, ctx) => jobsFeed(args, ctx),
  },

  Cluster: {
    latestCompletedSnapshot: (c, _a, ctx) => latestCompleted(c, ctx),
  },

  JobEvent: {
    kind: (e) => (e.kind === 'appeared' ? 'APPEARED' : 'CHANGED'),
    job: (e) => e.job,
    previousStatus: (e, _a, ctx) =>
      e.previousStatus === undefined
        ? null
        : (readEnum('status', JOB_STATUSES, e.previousStatus, ctx.unknownValues) ?? null),
  },

  Subscription: {
    snapshotStatus: {
      subscribe: (_p, { projectId, clusterName, snapshotId }, { caller, jobs }) => {
        const ref = {
          projectId: checkId('projectId', projectId),
          clusterName: checkClusterName('clusterName', clusterName),
        };
        checkId('snapshotId', snapshotId);
        requireAccess(caller, projectId, 'read');
        return watchSnapshot(jobs, {
          ...ref,
          snapshotId,
          callerId: caller.id,
          bearerToken: caller.atlasBearerToken,
        });
      },
      resolve: (event: PollEvent<SnapshotSource>) =>
        isShuttingDown(event) ? shuttingDown('the snapshot') : event,
    },
    jobEvents: {
      subscribe: async (_p, { filter }, ctx) => {
        checkNames(filter);
        const projectIds = await visibleProjects(filter, ctx);
        // Visibility first (projects the caller cannot see are already out), then the right.
        requireAccess(ctx.caller, projectIds, 'read');
        const changes = watchJobsInScope(
          ctx.jobs,
          {
            projectIds,
            clusterNames: filter?.clusterNames ?? undefined,
            families: filter?.families ?? undefined,
          },
          { callerId: ctx.caller.id, bearerToken: ctx.caller.atlasBearerToken },
        );
        return filteredChanges(changes, filter, () => ctx.jobs.pollers.closed);
      },
      resolve: (event: PollEvent<JobChange>) => (isShuttingDown(event) ? shuttingDown('these jobs') : event),
    },
  },
};
