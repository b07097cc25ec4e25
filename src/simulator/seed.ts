import { createHash } from 'node:crypto';

/** The status enum Atlas shares between tenant/flex snapshots and restore jobs. */
export type BackupStatus = 'PENDING' | 'QUEUED' | 'RUNNING' | 'FAILED' | 'COMPLETED';
export type DeliveryType = 'RESTORE' | 'DOWNLOAD';
export type BackingProvider = 'AWS' | 'GCP' | 'AZURE';
/**
 * How a cluster was created: shared tier (M0/M2/M5), Flex, or dedicated (M10+). Sunset mode serves
 * M2/M5 ones as Flex.
 */
export type ClusterFamily = 'tenant' | 'flex' | 'dedicated';

export interface SeedProject {
  id: string;
  name: string;
  orgId: string;
  /** ISO-8601 */
  created: string;
}

export interface SeedCluster {
  id: string;
  groupId: string;
  name: string;
  family: ClusterFamily;
  /**
   * M0 (free, TENANT provider) and M100 (dedicated) are listed by the clusters API but have no
   * backups the tenant or Flex routes serve.
   */
  instanceSize: 'M0' | 'M2' | 'M5' | 'M100' | 'FLEX';
  backingProviderName: BackingProvider;
  /** The backing provider's region, e.g. `US_EAST_1` (AWS), `CENTRAL_US` (GCP), `US_EAST_2` (Azure). */
  regionName: string;
  mongoDBVersion: string;
  diskSizeGB: number;
  /** ISO-8601 */
  createDate: string;
  replicationSpecId: string;
  zoneId: string;
}

export interface SeedSnapshot {
  id: string;
  groupId: string;
  clusterName: string;
  status: BackupStatus;
  mongoDBVersion: string;
  /** ISO-8601 times; `startTime` only once started, `finishTime` only once COMPLETED/FAILED. */
  scheduledTime: string;
  startTime?: string;
  finishTime?: string;
  expiration: string;
}

export interface SeedRestoreJob {
  id: string;
  groupId: string;
  /** Source cluster. */
  clusterName: string;
  snapshotId: string;
  deliveryType: DeliveryType;
  /** ISO-8601 time the job was requested. */
  createdAt: string;
  targetProjectId: string;
  targetDeploymentItemName: string;
}

export interface SeedData {
  orgId: string;
  projects: SeedProject[];
  clusters: SeedCluster[];
  /** Newest first per cluster. */
  snapshots: SeedSnapshot[];
  restoreJobs: SeedRestoreJob[];
  /**
   * Jobs made when their cluster's jobs are first touched, so a cluster with thousands of jobs costs
   * nothing at start-up.
   */
  lazyJobs?: { groupId: string; clusterName: string; build: () => SeedRestoreJob[] }[];
}

/**
 * Which data the simulator holds:
 * - `realistic` (the default): as a real Atlas project looks (recorded August 2026): Flex clusters
 *   keep 8 daily snapshots (8-day retention); `busy-flex` has 2,160 restore jobs, made on first use;
 *   an M0 and a dedicated (M100) cluster sit in the clusters API next to the shared ones.
 * - `small`: the compact data the tests are written against: a Flex cluster with 120 six-hourly
 *   snapshots (a second page at Atlas's default 100), four jobs per cluster, no M0 or dedicated.
 */
export type SeedProfile = 'realistic' | 'small';

/** Matches `ManualClock`'s default start, so a store on a fresh ManualClock sees the seed "as of now". */
export const SEED_EPOCH = '2026-11-23T12:00:00Z';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A stable 24-hex id for a label: ids survive reordering of the seed, unlike a plain counter. */
export function seedId(label: string): string {
  return createHash('sha256').update(`atlas-sim:${label}`).digest('hex').slice(0, 24);
}

type ProjectKey = 'payments' | 'analytics' | 'sandbox';

interface ClusterSpec {
  project: ProjectKey;
  name: string;
  family: ClusterFamily;
  instanceSize: SeedCluster['instanceSize'];
  backing: BackingProvider;
  region: string;
  /** Newest snapshots run this patch; older ones step back one patch per `patchEvery` snapshots. */
  patch: number;
  snapshots: number;
  intervalMs: number;
  retentionMs: number;
  /** Snapshot index (0 = newest) → non-COMPLETED status. */
  statuses: Record<number, BackupStatus>;
  ageDays: number;
}

const PROJECTS: Record<ProjectKey, { name: string; ageDays: number }> = {
  payments: { name: 'Payments', ageDays: 400 },
  analytics: { name: 'Analytics', ageDays: 300 },
  sandbox: { name: 'Sandbox', ageDays: 30 },
};

const CLUSTERS: ClusterSpec[] = [
  {
    project: 'payments',
    name: 'Cluster0',
    family: 'tenant',
    instanceSize: 'M2',
    backing: 'AWS',
    region: 'US_EAST_1',
    patch: 4,
    snapshots: 36,
    intervalMs: DAY,
    retentionMs: 60 * DAY,
    statuses: { 0: 'RUNNING', 7: 'FAILED' },
    ageDays: 380,
  },
  {
    project: 'payments',
    name: 'ledger-m5',
    family: 'tenant',
    instanceSize: 'M5',
    backing: 'AZURE',
    region: 'US_EAST_2',
    patch: 4,
    snapshots: 30,
    intervalMs: DAY,
    retentionMs: 60 * DAY,
    statuses: { 0: 'QUEUED', 12: 'FAILED' },
    ageDays: 200,
  },
  {
    project: 'payments',
    name: 'payments-flex',
    family: 'flex',
    instanceSize: 'FLEX',
    backing: 'AWS',
    region: 'US_EAST_1',
    patch: 5,
    snapshots: 120,
    intervalMs: 6 * HOUR,
    retentionMs: 35 * DAY,
    statuses: { 0: 'RUNNING', 9: 'FAILED', 50: 'FAILED' },
    ageDays: 90,
  },
  {
    project: 'analytics',
    name: 'reporting-m5',
    family: 'tenant',
    instanceSize: 'M5',
    backing: 'GCP',
    region: 'CENTRAL_US',
    patch: 4,
    snapshots: 40,
    intervalMs: DAY,
    retentionMs: 60 * DAY,
    statuses: { 0: 'PENDING', 3: 'FAILED' },
    ageDays: 250,
  },
  {
    project: 'analytics',
    name: 'events-flex',
    family: 'flex',
    instanceSize: 'FLEX',
    backing: 'GCP',
    region: 'CENTRAL_US',
    patch: 5,
    snapshots: 24,
    intervalMs: DAY,
    retentionMs: 35 * DAY,
    statuses: { 0: 'QUEUED' },
    ageDays: 60,
  },
  {
    project: 'sandbox',
    name: 'Cluster0',
    family: 'tenant',
    instanceSize: 'M2',
    backing: 'AZURE',
    region: 'US_EAST_2',
    patch: 3,
    snapshots: 12,
    intervalMs: DAY,
    retentionMs: 60 * DAY,
    statuses: { 0: 'RUNNING' },
    ageDays: 20,
  },
  {
    project: 'sandbox',
    name: 'sandbox-flex',
    family: 'flex',
    instanceSize: 'FLEX',
    backing: 'AZURE',
    region: 'US_EAST_2',
    patch: 5,
    snapshots: 18,
    intervalMs: DAY,
    retentionMs: 35 * DAY,
    statuses: { 2: 'FAILED' },
    ageDays: 25,
  },
  {
    // Created minutes ago: no snapshot yet, for empty lists.
    project: 'sandbox',
    name: 'scratch-flex',
    family: 'flex',
    instanceSize: 'FLEX',
    backing: 'AWS',
    region: 'EU_WEST_1',
    patch: 5,
    snapshots: 0,
    intervalMs: DAY,
    retentionMs: 35 * DAY,
    statuses: {},
    ageDays: 0,
  },
];

/** What `realistic` adds to the clusters of `small` (and Flex snapshots become 8 daily ones). */
const REALISTIC_CLUSTERS: ClusterSpec[] = [
  {
    project: 'payments',
    name: 'busy-flex',
    family: 'flex',
    instanceSize: 'FLEX',
    backing: 'AWS',
    region: 'US_EAST_1',
    patch: 5,
    snapshots: 8,
    intervalMs: DAY,
    retentionMs: 8 * DAY,
    statuses: {},
    ageDays: 120,
  },
  {
    project: 'payments',
    name: 'free-m0',
    family: 'tenant',
    instanceSize: 'M0',
    backing: 'AWS',
    region: 'US_EAST_1',
    patch: 5,
    snapshots: 0,
    intervalMs: DAY,
    retentionMs: DAY,
    statuses: {},
    ageDays: 40,
  },
  {
    project: 'payments',
    name: 'prod-dedicated',
    family: 'dedicated',
    // An AWS-only size: the spec's electableSpecs `oneOf` takes an M10 as AWS, Azure and GCP at once,
    // so no M10 answer validates. The gateway reads no size of a dedicated cluster anyway.
    instanceSize: 'M100',
    backing: 'AWS',
    region: 'US_EAST_1',
    patch: 5,
    snapshots: 0,
    intervalMs: DAY,
    retentionMs: DAY,
    statuses: {},
    ageDays: 300,
  },
];

/** Restore jobs of `busy-flex` in `realistic`: as many as the real Flex cluster had. */
export const BUSY_JOB_COUNT = 2160;

interface JobSpec {
  label: string;
  project: ProjectKey;
  cluster: string;
  snapshot: number;
  deliveryType: DeliveryType;
  agoMs: number;
  target?: { project: ProjectKey; cluster: string };
}

const JOBS: JobSpec[] = [
  // Finished two days ago: COMPLETED, its snapshotUrl long expired.
  {
    label: 'tenant-download',
    project: 'payments',
    cluster: 'Cluster0',
    snapshot: 2,
    deliveryType: 'DOWNLOAD',
    agoMs: 2 * DAY,
  },
  {
    label: 'tenant-restore',
    project: 'payments',
    cluster: 'Cluster0',
    snapshot: 3,
    deliveryType: 'RESTORE',
    agoMs: 5 * DAY,
    target: { project: 'payments', cluster: 'ledger-m5' },
  },
  // Asked for a FAILED snapshot, so the job FAILED.
  {
    label: 'tenant-failed',
    project: 'payments',
    cluster: 'Cluster0',
    snapshot: 7,
    deliveryType: 'DOWNLOAD',
    agoMs: 6 * DAY,
  },
  {
    label: 'tenant-restore-reporting',
    project: 'analytics',
    cluster: 'reporting-m5',
    snapshot: 5,
    deliveryType: 'RESTORE',
    agoMs: 20 * DAY,
  },
  {
    label: 'flex-download',
    project: 'payments',
    cluster: 'payments-flex',
    snapshot: 4,
    deliveryType: 'DOWNLOAD',
    agoMs: 3 * DAY,
  },
  // One hour old: COMPLETED and its URL still valid for about three hours.
  {
    label: 'flex-fresh-download',
    project: 'payments',
    cluster: 'payments-flex',
    snapshot: 1,
    deliveryType: 'DOWNLOAD',
    agoMs: HOUR,
  },
  {
    label: 'flex-restore',
    project: 'payments',
    cluster: 'payments-flex',
    snapshot: 5,
    deliveryType: 'RESTORE',
    agoMs: 10 * DAY,
    target: { project: 'analytics', cluster: 'events-flex' },
  },
  {
    label: 'flex-failed',
    project: 'payments',
    cluster: 'payments-flex',
    snapshot: 9,
    deliveryType: 'DOWNLOAD',
    agoMs: 4 * DAY,
  },
];

const projectId = (key: ProjectKey) => seedId(`project:${key}`);
const clusterId = (key: ProjectKey, name: string) => seedId(`cluster:${key}:${name}`);
const snapshotId = (key: ProjectKey, cluster: string, index: number) =>
  seedId(`snapshot:${key}:${cluster}:${index}`);
const jobId = (label: string) => seedId(`restore-job:${label}`);

/** Whole seconds, as Atlas sends dates (recorded: `2026-08-02T17:05:10Z`). */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/**
 * Builds the seed. Ids depend only on labels; times are relative to `now` (floored to the hour) so the
 * newest snapshot is always recent whatever clock the store runs on.
 */
export function buildSeed(opts: { now?: number | string | Date; profile?: SeedProfile } = {}): SeedData {
  const now = new Date(opts.now ?? SEED_EPOCH).getTime();
  const realistic = (opts.profile ?? 'realistic') === 'realistic';
  // Real Flex backups: one snapshot a day, kept 8 days (recorded: 8 snapshots, 08-02 … 08-09).
  const specs: ClusterSpec[] = realistic
    ? [
        ...CLUSTERS.map((c) =>
          c.family === 'flex' && c.snapshots > 0
            ? { ...c, snapshots: 8, intervalMs: DAY, retentionMs: 8 * DAY }
            : c,
        ),
        ...REALISTIC_CLUSTERS,
      ]
    : CLUSTERS;
  const hour = Math.floor(now / HOUR) * HOUR;
  const orgId = seedId('org:acme');

  const projects: SeedProject[] = (Object.keys(PROJECTS) as ProjectKey[]).map((key) => ({
    id: projectId(key),
    name: PROJECTS[key].name,
    orgId,
    created: iso(hour - PROJECTS[key].ageDays * DAY),
  }));

  const clusters: SeedCluster[] = [];
  const snapshots: SeedSnapshot[] = [];
  for (const spec of specs) {
    const groupId = projectId(spec.project);
    clusters.push({
      id: clusterId(spec.project, spec.name),
      groupId,
      name: spec.name,
      family: spec.family,
      instanceSize: spec.instanceSize,
      backingProviderName: spec.backing,
      regionName: spec.region,
      mongoDBVersion: `8.0.${spec.patch}`,
      diskSizeGB: spec.instanceSize === 'M2' ? 2 : spec.instanceSize === 'M100' ? 100 : 5,
      createDate: iso(spec.ageDays === 0 ? hour - 10 * MINUTE : hour - spec.ageDays * DAY),
      replicationSpecId: seedId(`replication-spec:${spec.project}:${spec.name}`),
      zoneId: seedId(`zone:${spec.project}:${spec.name}`),
    });
    for (let i = 0; i < spec.snapshots; i += 1) {
      const status = (realistic && spec.family === 'flex' ? undefined : spec.statuses[i]) ?? 'COMPLETED';
      // One hour back so even the newest snapshot has started and (if done) finished before `now`.
      const scheduled = hour - HOUR - i * spec.intervalMs;
      const started = status === 'QUEUED' || status === 'PENDING' ? undefined : scheduled + 2 * MINUTE;
      const finished =
        started !== undefined && (status === 'COMPLETED' || status === 'FAILED')
          ? started + (3 + (i % 5)) * MINUTE
          : undefined;
      snapshots.push({
        id: snapshotId(spec.project, spec.name, i),
        groupId,
        clusterName: spec.name,
        status,
        mongoDBVersion: `8.0.${Math.max(0, spec.patch - Math.floor(i / 30))}`,
        scheduledTime: iso(scheduled),
        ...(started !== undefined ? { startTime: iso(started) } : {}),
        ...(finished !== undefined ? { finishTime: iso(finished) } : {}),
        expiration: iso(scheduled + spec.retentionMs),
      });
    }
  }

  const byId = new Map(snapshots.map((x) => [x.id, x]));
  const countOf = new Map(specs.map((c) => [`${c.project}/${c.name}`, c.snapshots]));
  const restoreJobs: SeedRestoreJob[] = JOBS.map((j) => {
    const target = j.target ?? { project: j.project, cluster: j.cluster };
    // Fewer snapshots in `realistic`: the job takes the oldest one there is.
    const index = Math.min(j.snapshot, (countOf.get(`${j.project}/${j.cluster}`) ?? 1) - 1);
    const sid = snapshotId(j.project, j.cluster, index);
    const snap = byId.get(sid);
    // A job is never older than its snapshot: scheduled at least 30 minutes after it was taken.
    const taken = snap ? Date.parse(snap.finishTime ?? snap.scheduledTime) + 30 * MINUTE : -Infinity;
    return {
      id: jobId(j.label),
      groupId: projectId(j.project),
      clusterName: j.cluster,
      snapshotId: sid,
      deliveryType: j.deliveryType,
      createdAt: iso(Math.min(now - MINUTE, Math.max(now - j.agoMs, taken))),
      targetProjectId: projectId(target.project),
      targetDeploymentItemName: target.cluster,
    };
  });

  const lazyJobs: SeedData['lazyJobs'] = [];
  if (realistic) {
    const groupId = projectId('payments');
    const busy = snapshots.filter((x) => x.groupId === groupId && x.clusterName === 'busy-flex');
    lazyJobs.push({ groupId, clusterName: 'busy-flex', build: () => busyJobs(groupId, busy, now) });
  }

  return { orgId, projects, clusters, snapshots, restoreJobs, lazyJobs };
}

/**
 * 2,160 jobs over the 8 days of `busy-flex`'s snapshots, each of the newest snapshot finished before
 * it (as CLI end-to-end runs make them): mostly RESTOREs into the cluster itself, every fourth a
 * DOWNLOAD. All finished long ago except what the store's clock makes of the newest.
 */
function busyJobs(groupId: string, busy: SeedSnapshot[], now: number): SeedRestoreJob[] {
  const oldest = Math.min(...busy.map((x) => Date.parse(x.finishTime ?? x.scheduledTime)));
  const span = now - 2 * HOUR - oldest;
  const jobs: SeedRestoreJob[] = [];
  for (let i = 0; i < BUSY_JOB_COUNT; i++) {
    // Whole seconds, as Atlas's dates are.
    const at = Math.floor((oldest + 10 * MINUTE + (span * i) / BUSY_JOB_COUNT) / 1000) * 1000;
    const snap = busy.find((x) => Date.parse(x.finishTime ?? x.scheduledTime) < at) ?? busy.at(-1)!;
    jobs.push({
      id: seedId(`restore-job:busy:${i}`),
      groupId,
      clusterName: 'busy-flex',
      snapshotId: snap.id,
      deliveryType: i % 4 === 3 ? 'DOWNLOAD' : 'RESTORE',
      createdAt: iso(at),
      targetProjectId: groupId,
      targetDeploymentItemName: 'busy-flex',
    });
  }
  return jobs;
}

/** Stable handles into the seed for tests; they do not depend on the `now` the seed was built with. */
export const SEED = {
  epoch: SEED_EPOCH,
  orgId: seedId('org:acme'),
  projects: {
    payments: { id: projectId('payments'), name: 'Payments' },
    analytics: { id: projectId('analytics'), name: 'Analytics' },
    sandbox: { id: projectId('sandbox'), name: 'Sandbox' },
  },
  /** What the `realistic` profile adds (payments project). */
  realistic: {
    groupId: projectId('payments'),
    /** Flex, 8 daily snapshots, `BUSY_JOB_COUNT` jobs. */
    busyClusterName: 'busy-flex',
    busyNewestSnapshotId: snapshotId('payments', 'busy-flex', 0),
    busyJobCount: BUSY_JOB_COUNT,
    /** M0: in the clusters API, no backups here. */
    m0ClusterName: 'free-m0',
    /** Dedicated (M100 on AWS): in the clusters API, no backups here. */
    dedicatedClusterName: 'prod-dedicated',
  },
  /** A 24-hex id that names nothing in the seed. */
  unknownId: 'ffffffffffffffffffffffff',
  tenant: {
    groupId: projectId('payments'),
    /** M2 on AWS, 36 snapshots. */
    clusterName: 'Cluster0',
    clusterId: clusterId('payments', 'Cluster0'),
    snapshotCount: 36,
    /** M5 on Azure in the same project, newest snapshot QUEUED. */
    m5ClusterName: 'ledger-m5',
    completedSnapshotId: snapshotId('payments', 'Cluster0', 1),
    runningSnapshotId: snapshotId('payments', 'Cluster0', 0),
    failedSnapshotId: snapshotId('payments', 'Cluster0', 7),
    queuedSnapshotId: snapshotId('payments', 'ledger-m5', 0),
    /** The only PENDING snapshot of the seed, on Analytics / reporting-m5 (M5 on GCP). */
    pending: {
      groupId: projectId('analytics'),
      clusterName: 'reporting-m5',
      snapshotId: snapshotId('analytics', 'reporting-m5', 0),
    },
    /** DOWNLOAD, COMPLETED two days ago: its snapshotUrl has expired. */
    downloadJobId: jobId('tenant-download'),
    /** RESTORE into ledger-m5, COMPLETED. */
    restoreJobId: jobId('tenant-restore'),
    /** DOWNLOAD of the FAILED snapshot: FAILED. */
    failedJobId: jobId('tenant-failed'),
    restoreJobCount: 3,
  },
  flex: {
    groupId: projectId('payments'),
    /** AWS-backed, 120 snapshots (6-hourly) so a second page exists at the default page size. */
    clusterName: 'payments-flex',
    clusterId: clusterId('payments', 'payments-flex'),
    snapshotCount: 120,
    completedSnapshotId: snapshotId('payments', 'payments-flex', 1),
    runningSnapshotId: snapshotId('payments', 'payments-flex', 0),
    failedSnapshotId: snapshotId('payments', 'payments-flex', 9),
    /** DOWNLOAD, COMPLETED three days ago: expired URL. */
    downloadJobId: jobId('flex-download'),
    /** DOWNLOAD, COMPLETED an hour ago: URL valid for about three more hours. */
    freshDownloadJobId: jobId('flex-fresh-download'),
    /** RESTORE into Analytics / events-flex, COMPLETED. */
    restoreJobId: jobId('flex-restore'),
    failedJobId: jobId('flex-failed'),
    restoreJobCount: 4,
    /** Sandbox / scratch-flex: no snapshots, no jobs. */
    empty: { groupId: projectId('sandbox'), clusterName: 'scratch-flex' },
    /** Analytics / events-flex, GCP-backed. */
    other: { groupId: projectId('analytics'), clusterName: 'events-flex' },
  },
} as const;
