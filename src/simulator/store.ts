import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../time/clock.js';
import {
  buildSeed,
  type BackupStatus,
  type ClusterFamily,
  type DeliveryType,
  type SeedCluster,
  type SeedData,
  type SeedProfile,
  type SeedProject,
  type SeedRestoreJob,
  type SeedSnapshot,
} from './seed.js';
import { snapshotArchive } from './tgz.js';
import type { StoredObject } from './download-response.js';

export interface SimStoreOptions {
  clock: Clock;
  /** Time from a download/restore request to its end state. @default 3000 */
  jobMs?: number;
  /** Serve tenant (M2/M5) clusters as migrated Flex clusters. @default false */
  tenantSunset?: boolean;
  /**
   * A new job's first status. Atlas answers a POST with PENDING, then RUNNING and COMPLETED (recorded
   * August 2026; no QUEUED seen); `QUEUED` keeps the lifecycle the older tests were written against.
   * @default 'PENDING'
   */
  firstJobStatus?: 'PENDING' | 'QUEUED';
  /** Which data to hold (see `SeedProfile`). @default 'realistic' */
  profile?: SeedProfile;
  /** @default buildSeed({ now: clock.now(), profile }) */
  seed?: SeedData;
  /** HMAC key of the snapshotUrl signatures. @default 32 random bytes, so URLs of one store can't be forged */
  downloadSecret?: string | Buffer;
  /**
   * Incompressible bytes added to every download archive (`<snapshotId>/padding.bin`), so benchmarks
   * can stream archives of a realistic size. @default 0
   */
  archiveExtraBytes?: number;
}

export interface RestoreJobRecord {
  id: string;
  groupId: string;
  /** Source cluster. */
  clusterName: string;
  snapshotId: string;
  deliveryType: DeliveryType;
  /** Epoch ms of the request. */
  createdAt: number;
  targetProjectId: string;
  targetDeploymentItemName: string;
  /** Fixed at creation: a job for a snapshot that is not COMPLETED can only fail. */
  outcome: 'COMPLETED' | 'FAILED';
}

/** How a snapshot taken at runtime moves along (`SimStore.takeSnapshot`). */
interface LiveSnapshot {
  createdAt: number;
  durationMs: number;
  outcome: 'COMPLETED' | 'FAILED';
}

/** Whole seconds, as Atlas sends its dates. */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export interface CreateRestoreJobInput {
  groupId: string;
  clusterName: string;
  snapshotId: string;
  deliveryType: DeliveryType;
  targetProjectId: string;
  targetDeploymentItemName: string;
}

/** The tenant sunset (UPSTREAM-NOTES §2: moved from 2026-01-15 to 2026-01-22 on 2026-01-16). */
export const TENANT_SUNSET_DATE = '2026-01-22T00:00:00Z';
const TENANT_SUNSET_MS = Date.parse(TENANT_SUNSET_DATE);

/** A job's state as of the store's clock. */
export interface JobState {
  status: BackupStatus;
  /** Epoch ms at which the job reached COMPLETED or FAILED. */
  finishedAt?: number;
  /** DOWNLOAD jobs once COMPLETED: epoch ms after which the snapshotUrl stops working. */
  urlExpiresAt?: number;
}

export type DownloadResult =
  { ok: true; object: StoredObject } | { ok: false; status: 403 | 404; message: string };

/** Atlas: the snapshotUrl "remains active for four hours". */
export const DOWNLOAD_URL_TTL_MS = 4 * 60 * 60 * 1000;

const clusterKey = (groupId: string, name: string) => `${groupId}/${name}`;

/** The path the simulator serves a download under (the server matches the same shape). */
export function downloadPath(jobId: string, snapshotId: string): string {
  return `/backup/download/${jobId}/${snapshotId}.tgz`;
}

/**
 * The simulator's state: the seed plus restore jobs created at runtime. Job status is derived from
 * the injected clock on every read, so a test moves time instead of waiting.
 */
export class SimStore {
  readonly clock: Clock;
  readonly jobMs: number;
  readonly orgId: string;
  readonly firstJobStatus: 'PENDING' | 'QUEUED';
  #tenantSunset: boolean;
  readonly #secret: Buffer;
  readonly #projects = new Map<string, SeedProject>();
  readonly #clusters = new Map<string, SeedCluster>();
  /** cluster key → snapshots, newest first */
  readonly #snapshots = new Map<string, SeedSnapshot[]>();
  readonly #snapshotById = new Map<string, SeedSnapshot>();
  readonly #jobs = new Map<string, RestoreJobRecord>();
  readonly #createdPerSnapshot = new Map<string, number>();
  /** Cluster key → jobs to make on first touch (`SeedData.lazyJobs`). */
  readonly #lazyJobs = new Map<string, () => SeedRestoreJob[]>();
  #jobCounter = 0;
  /** Snapshots taken at runtime (`takeSnapshot`): their status follows the clock. */
  readonly #live = new Map<string, LiveSnapshot>();
  readonly #archiveExtraBytes: number;
  /** Snapshot id → its archive: built once, as an object store keeps the object it was handed. */
  readonly #objects = new Map<string, StoredObject>();

  constructor(opts: SimStoreOptions) {
    this.clock = opts.clock;
    this.jobMs = opts.jobMs ?? 3000;
    this.firstJobStatus = opts.firstJobStatus ?? 'PENDING';
    this.#tenantSunset = opts.tenantSunset ?? false;
    this.#archiveExtraBytes = opts.archiveExtraBytes ?? 0;
    this.#secret =
      opts.downloadSecret === undefined
        ? randomBytes(32)
        : Buffer.isBuffer(opts.downloadSecret)
          ? opts.downloadSecret
          : Buffer.from(opts.downloadSecret, 'utf8');
    const seed = opts.seed ?? buildSeed({ now: this.clock.now(), profile: opts.profile ?? 'realistic' });
    this.orgId = seed.orgId;
    for (const p of seed.projects) this.#projects.set(p.id, { ...p });
    for (const c of seed.clusters) {
      this.#clusters.set(clusterKey(c.groupId, c.name), { ...c });
      this.#snapshots.set(clusterKey(c.groupId, c.name), []);
    }
    const byNewest = [...seed.snapshots].sort((a, b) => b.scheduledTime.localeCompare(a.scheduledTime));
    for (const s of byNewest) {
      const list = this.#snapshots.get(clusterKey(s.groupId, s.clusterName));
      if (!list) throw new Error(`seed snapshot ${s.id} names unknown cluster ${s.groupId}/${s.clusterName}`);
      const copy = { ...s };
      list.push(copy);
      this.#snapshotById.set(s.id, copy);
    }
    this.#addJobs(seed.restoreJobs);
    for (const l of seed.lazyJobs ?? []) this.#lazyJobs.set(clusterKey(l.groupId, l.clusterName), l.build);
  }

  #addJobs(jobs: SeedRestoreJob[]): void {
    for (const j of jobs) {
      const snapshot = this.#snapshotById.get(j.snapshotId);
      this.#jobs.set(j.id, {
        ...j,
        createdAt: Date.parse(j.createdAt),
        outcome: snapshot?.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED',
      });
    }
  }

  /** Makes a cluster's lazy jobs, once. */
  #touch(groupId: string, clusterName: string): void {
    const key = clusterKey(groupId, clusterName);
    const build = this.#lazyJobs.get(key);
    if (!build) return;
    this.#lazyJobs.delete(key);
    this.#addJobs(build());
  }

  get tenantSunset(): boolean {
    return this.#tenantSunset;
  }

  /**
   * Whether the clusters API still serves Flex clusters (in the TENANT shape, see handlers.ts): the
   * spec's descriptions say `listClusters`/`getCluster` serve Flex "until January 2026", and the
   * tenant sunset came on 2026-01-22. So: before that date on the store's clock, and not in sunset
   * mode (which stands for "after the sunset" whatever the clock says).
   */
  get clusterApiServesFlex(): boolean {
    return !this.#tenantSunset && this.clock.now() < TENANT_SUNSET_MS;
  }

  /** Flips the tenant sunset at runtime (the admin route and tests use it). */
  setTenantSunset(on: boolean): void {
    this.#tenantSunset = on;
  }

  listProjects(): SeedProject[] {
    return [...this.#projects.values()];
  }

  getProject(groupId: string): SeedProject | undefined {
    return this.#projects.get(groupId);
  }

  /** Every cluster of a project, whatever family. */
  listClusters(groupId: string): SeedCluster[] {
    return [...this.#clusters.values()].filter((c) => c.groupId === groupId);
  }

  getCluster(groupId: string, name: string): SeedCluster | undefined {
    return this.#clusters.get(clusterKey(groupId, name));
  }

  /**
   * The family a cluster is served as: after the sunset Atlas has migrated every M2/M5 to Flex. M0
   * stays tenant (free clusters were not migrated by this sunset), dedicated stays dedicated.
   */
  familyOf(cluster: SeedCluster): ClusterFamily {
    if (cluster.family === 'dedicated' || cluster.instanceSize === 'M0') return cluster.family;
    return this.#tenantSunset ? 'flex' : cluster.family;
  }

  /** Newest first. */
  listSnapshots(groupId: string, clusterName: string): SeedSnapshot[] {
    return (this.#snapshots.get(clusterKey(groupId, clusterName)) ?? []).map((s) => this.#now(s));
  }

  getSnapshot(groupId: string, clusterName: string, snapshotId: string): SeedSnapshot | undefined {
    const s = this.#snapshotById.get(snapshotId);
    return s && s.groupId === groupId && s.clusterName === clusterName ? this.#now(s) : undefined;
  }

  /**
   * Deletes a snapshot, as a user (or its expiration) does on Atlas (for tests): from then on it is
   * not listed, and a read or a job request naming it is answered 404. Its jobs stay listed.
   */
  deleteSnapshot(groupId: string, clusterName: string, snapshotId: string): boolean {
    if (!this.getSnapshot(groupId, clusterName, snapshotId)) return false;
    const list = this.#snapshots.get(clusterKey(groupId, clusterName)) ?? [];
    this.#snapshots.set(
      clusterKey(groupId, clusterName),
      list.filter((s) => s.id !== snapshotId),
    );
    this.#snapshotById.delete(snapshotId);
    this.#live.delete(snapshotId);
    return true;
  }

  /**
   * Takes a snapshot of the cluster now, as Atlas's scheduler would (on demand, for tests): QUEUED
   * for the first 20 % of `durationMs`, then RUNNING (with `startTime`), then COMPLETED (with
   * `finishTime`), or FAILED when `outcome` says so, all on the store's clock.
   */
  takeSnapshot(
    groupId: string,
    clusterName: string,
    opts: { durationMs?: number; outcome?: 'COMPLETED' | 'FAILED' } = {},
  ): SeedSnapshot {
    const cluster = this.getCluster(groupId, clusterName);
    if (!cluster) throw new Error(`no cluster ${groupId}/${clusterName}`);
    const now = this.clock.now();
    this.#jobCounter += 1;
    const tail = createHash('sha256').update(`atlas-sim:snapshot:${this.#jobCounter}`).digest('hex');
    const id = `${Math.floor(now / 1000)
      .toString(16)
      .padStart(8, '0')
      .slice(-8)}${tail.slice(0, 16)}`;
    const snapshot: SeedSnapshot = {
      id,
      groupId,
      clusterName,
      status: 'QUEUED',
      mongoDBVersion: cluster.mongoDBVersion,
      scheduledTime: iso(now),
      expiration: iso(now + 7 * 86_400_000),
    };
    this.#live.set(id, {
      createdAt: now,
      durationMs: opts.durationMs ?? this.jobMs,
      outcome: opts.outcome ?? 'COMPLETED',
    });
    this.#snapshots.get(clusterKey(groupId, clusterName))!.unshift(snapshot);
    this.#snapshotById.set(id, snapshot);
    return this.#now(snapshot);
  }

  /** A snapshot as of the clock: seeded ones never change, taken ones move along. */
  #now(s: SeedSnapshot): SeedSnapshot {
    const live = this.#live.get(s.id);
    if (!live) return s;
    const elapsed = this.clock.now() - live.createdAt;
    const started = live.createdAt + 0.2 * live.durationMs;
    if (elapsed < 0.2 * live.durationMs) return { ...s, status: 'QUEUED' };
    if (elapsed < live.durationMs) return { ...s, status: 'RUNNING', startTime: iso(started) };
    return {
      ...s,
      status: live.outcome,
      startTime: iso(started),
      finishTime: iso(live.createdAt + live.durationMs),
    };
  }

  /** Restore and download jobs whose source is the cluster, newest first. */
  listRestoreJobs(groupId: string, clusterName: string): RestoreJobRecord[] {
    this.#touch(groupId, clusterName);
    return [...this.#jobs.values()]
      .filter((j) => j.groupId === groupId && j.clusterName === clusterName)
      .sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id));
  }

  getRestoreJob(groupId: string, clusterName: string, jobId: string): RestoreJobRecord | undefined {
    this.#touch(groupId, clusterName);
    const j = this.#jobs.get(jobId);
    return j && j.groupId === groupId && j.clusterName === clusterName ? j : undefined;
  }

  /** Records a new job at the clock's now. The caller has checked that the snapshot belongs to the cluster. */
  createRestoreJob(input: CreateRestoreJobInput): RestoreJobRecord {
    const snapshot = this.getSnapshot(input.groupId, input.clusterName, input.snapshotId);
    if (!snapshot)
      throw new Error(`snapshot ${input.snapshotId} is not one of ${input.groupId}/${input.clusterName}`);
    this.#touch(input.groupId, input.clusterName);
    const now = this.clock.now();
    this.#jobCounter += 1;
    // ObjectId-like: creation seconds first, so ids sort by time as Atlas's do; the rest is stable per store.
    const tail = createHash('sha256').update(`atlas-sim:job:${this.#jobCounter}`).digest('hex').slice(0, 16);
    const id = `${Math.floor(now / 1000)
      .toString(16)
      .padStart(8, '0')
      .slice(-8)}${tail}`;
    const job: RestoreJobRecord = {
      ...input,
      id,
      createdAt: now,
      outcome: snapshot.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED',
    };
    this.#jobs.set(id, job);
    this.#createdPerSnapshot.set(input.snapshotId, (this.#createdPerSnapshot.get(input.snapshotId) ?? 0) + 1);
    return job;
  }

  /** Jobs created at runtime (not seeded) for one snapshot: lets tests see whether a client deduplicated. */
  jobsCreatedFor(snapshotId: string): number {
    return this.#createdPerSnapshot.get(snapshotId) ?? 0;
  }

  /** Jobs created at runtime, all snapshots. */
  jobsCreatedTotal(): number {
    let n = 0;
    for (const v of this.#createdPerSnapshot.values()) n += v;
    return n;
  }

  /**
   * `firstJobStatus` (PENDING, as Atlas) for the first 20 % of jobMs, then RUNNING, then COMPLETED; a
   * doomed job stays in its first status, then FAILED.
   */
  jobState(job: RestoreJobRecord): JobState {
    const elapsed = this.clock.now() - job.createdAt;
    const end = job.createdAt + this.jobMs;
    const first = this.firstJobStatus;
    if (elapsed < 0.2 * this.jobMs) return { status: first };
    if (job.outcome === 'FAILED') {
      return elapsed < this.jobMs ? { status: first } : { status: 'FAILED', finishedAt: end };
    }
    if (elapsed < this.jobMs) return { status: 'RUNNING' };
    return {
      status: 'COMPLETED',
      finishedAt: end,
      ...(job.deliveryType === 'DOWNLOAD' ? { urlExpiresAt: end + DOWNLOAD_URL_TTL_MS } : {}),
    };
  }

  /** The signed URL of a COMPLETED download; it keeps being listed after it has expired, as on Atlas. */
  snapshotUrl(job: RestoreJobRecord, baseUrl: string): string | undefined {
    const { urlExpiresAt } = this.jobState(job);
    if (urlExpiresAt === undefined) return undefined;
    const expires = Math.floor(urlExpiresAt / 1000);
    const path = downloadPath(job.id, job.snapshotId);
    return `${baseUrl}${path}?expires=${expires}&signature=${this.#sign(path, expires)}`;
  }

  /** Serves `GET /backup/download/{jobId}/{snapshotId}.tgz?expires=&signature=`. */
  resolveDownload(
    jobId: string,
    snapshotId: string,
    expires: number | string,
    signature: string,
  ): DownloadResult {
    const job = this.#jobs.get(jobId);
    const state = job ? this.jobState(job) : undefined;
    if (!job || job.snapshotId !== snapshotId || state?.urlExpiresAt === undefined) {
      return { ok: false, status: 404, message: 'The specified key does not exist.' };
    }
    const exp = typeof expires === 'string' ? Number(expires) : expires;
    const path = downloadPath(jobId, snapshotId);
    if (!Number.isSafeInteger(exp) || !this.#verify(path, exp, signature)) {
      return {
        ok: false,
        status: 403,
        message: 'The request signature we calculated does not match the signature you provided.',
      };
    }
    // Object-store wording: the client sees what a pre-signed S3 URL answers once past its expiry.
    if (this.clock.now() > exp * 1000) return { ok: false, status: 403, message: 'Request has expired' };
    const snapshot = this.#snapshotById.get(snapshotId);
    const cluster = snapshot ? this.getCluster(snapshot.groupId, snapshot.clusterName) : undefined;
    if (!snapshot || !cluster)
      return { ok: false, status: 404, message: 'The specified key does not exist.' };
    let object = this.#objects.get(snapshotId);
    if (!object) {
      const body = snapshotArchive(snapshot, cluster, this.#archiveExtraBytes);
      object = {
        body,
        etag: `"${createHash('md5').update(body).digest('hex')}"`,
        lastModified: Date.parse(snapshot.finishTime ?? snapshot.scheduledTime),
      };
      this.#objects.set(snapshotId, object);
    }
    return { ok: true, object };
  }

  #sign(path: string, expires: number): string {
    return createHmac('sha256', this.#secret).update(`${path}\n${expires}`).digest('hex');
  }

  #verify(path: string, expires: number, signature: string): boolean {
    const expected = Buffer.from(this.#sign(path, expires), 'hex');
    if (!/^[0-9a-f]{64}$/.test(signature)) return false;
    return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
  }
}
