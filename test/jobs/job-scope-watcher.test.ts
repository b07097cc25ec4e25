import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtlasApiError } from '../../src/atlas/errors.js';
import { backupServices, type BackupServices } from '../../src/backup/backup-service.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import { JobPollers } from '../../src/jobs/job-pollers.js';
import { RedisJobChannel } from '../../src/jobs/redis-job-channel.js';
import {
  clusterJobsKey,
  CLUSTER_LIST_INTERVALS,
  jobChanges,
  watchJobsInScope,
  type JobChange,
  type JobScope,
} from '../../src/jobs/job-scope-watcher.js';
import type { RestoreJobSource } from '../../src/backup/model.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import { startAtlasClient } from '../support/atlas-client.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';

/*
 * The job scope watcher against the spec-checked simulator over a real socket, with manual timers:
 * each `fireUpTo(INTERVAL)` is one poll interval; the simulator's clock moves its jobs along. Upstream
 * reads are counted from the simulator's own request log.
 */

const INTERVAL = 1000;
/** A new job's first status on the contract simulator (test/support/contract.ts). */
const FIRST = 'QUEUED';
const F = SEED.flex;
const T = SEED.tenant;
const PAYMENTS = SEED.projects.payments.id;
const SCOPE: JobScope = { projectIds: [PAYMENTS], clusterNames: [T.clusterName, F.clusterName] };

/** Lets promise callbacks and socket reads in flight finish (a state the test can see, not a duration). */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

async function world() {
  const { sim, client: atlas, clock } = await startAtlasClient({ sleepMovesClock: false });
  const backup: BackupServices = backupServices({ atlas, families: new FamilyCache({ clock: sim.clock }) });
  const calls = () => sim.stats().requests.filter((r) => !r.operationId.startsWith('oauth.'));
  const download = (clusterName: string, snapshotId: string) =>
    sim.store.createRestoreJob({
      groupId: PAYMENTS,
      clusterName,
      snapshotId,
      deliveryType: 'DOWNLOAD',
      targetProjectId: PAYMENTS,
      targetDeploymentItemName: clusterName,
    });
  return { sim, clock, backup, calls, download };
}

function replica(backup: BackupServices, channel?: RedisJobChannel) {
  const timers = new ManualTimers();
  const pollers = new JobPollers({ timers, intervalMs: INTERVAL, ...(channel ? { channel } : {}) });
  track({ close: () => pollers.close() }, 'pollers');
  return { timers, pollers };
}

const summary = (c: IteratorResult<JobChange>) =>
  c.done ? 'done' : [c.value.kind, c.value.ref.clusterName, c.value.previousStatus, c.value.job.dto.status];

describe('watchJobsInScope', () => {
  it('shares one read per cluster per interval among watches, and reports appeared then changed', async () => {
    const { sim, clock, backup, calls, download } = await world();
    const { timers, pollers } = replica(backup);
    const watches = [0, 1].map(() => watchJobsInScope({ pollers, backup }, SCOPE, { callerId: 'a' }));
    const next = watches.map((w) => w.next());
    // Started: one project list (2 calls) and one read per cluster, for both watches together.
    await until('every poller waits for its next interval', () => timers.pending === 3);
    expect(
      calls()
        .map((c) => c.operationId)
        .sort(),
    ).toEqual(
      [
        'listGroupClusters',
        'listGroupFlexClusters',
        'listGroupClusterBackupTenantRestores',
        'listGroupFlexClusterBackupRestoreJobs',
      ].sort(),
    );
    expect(pollers.stats()).toMatchObject({ pollers: 3, subscribers: 6 });

    const job = download(F.clusterName, F.completedSnapshotId);
    let before = calls().length;
    expect(timers.fireUpTo(INTERVAL)).toBe(2);
    expect((await Promise.all(next)).map(summary)).toEqual([
      ['appeared', F.clusterName, undefined, FIRST],
      ['appeared', F.clusterName, undefined, FIRST],
    ]);
    await until('both clusters read', () => timers.pending === 3);
    expect(calls().length - before).toBe(2);

    clock.advance(sim.store.jobMs * 0.5);
    before = calls().length;
    timers.fireUpTo(INTERVAL);
    const running = await Promise.all(watches.map((w) => w.next()));
    expect(running.map(summary)).toEqual([
      ['changed', F.clusterName, FIRST, 'RUNNING'],
      ['changed', F.clusterName, FIRST, 'RUNNING'],
    ]);
    expect(running.map((r) => (r.done ? null : r.value.job.dto.id))).toEqual([job.id, job.id]);
    await until('both clusters read', () => timers.pending === 3);
    expect(calls().length - before).toBe(2);

    // An interval with nothing new is no event: the next event is the next change.
    timers.fireUpTo(INTERVAL);
    await until('both clusters read', () => timers.pending === 3);
    clock.advance(sim.store.jobMs);
    timers.fireUpTo(INTERVAL);
    const done = await Promise.all(watches.map((w) => w.next()));
    expect(done.map(summary)).toEqual([
      ['changed', F.clusterName, 'RUNNING', 'COMPLETED'],
      ['changed', F.clusterName, 'RUNNING', 'COMPLETED'],
    ]);
    expect(done.every((d) => !d.done && typeof d.value.job.dto.snapshotUrl === 'string')).toBe(true);

    // The cluster list is read every CLUSTER_LIST_INTERVALS intervals, not every interval.
    await until('both clusters read', () => timers.pending === 3);
    expect(timers.delays.filter((d) => d === INTERVAL * CLUSTER_LIST_INTERVALS)).toHaveLength(1);
    for (const w of watches) await w.return?.();
    expect(pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
    expect(timers.pending).toBe(0);
  });

  it('follows only the clusters of the families and names asked for, and a job of another is no event', async () => {
    const { backup, calls, download } = await world();
    const { timers, pollers } = replica(backup);
    const w = watchJobsInScope(
      { pollers, backup },
      { projectIds: [PAYMENTS], families: ['TENANT'] },
      {
        callerId: 'a',
      },
    );
    const first = w.next();
    await until('every poller waits', () => timers.pending === 3);
    // Payments' tenant clusters: Cluster0 and ledger-m5 (M0 and dedicated have no backups here).
    const read = calls()
      .filter((c) => !c.operationId.startsWith('listGroup') || c.operationId.includes('Restore'))
      .map((c) => [c.operationId, decodeURIComponent(c.target).split('/clusters/')[1]?.split('/')[0]]);
    expect(read.sort()).toEqual(
      [
        ['listGroupClusterBackupTenantRestores', T.clusterName],
        ['listGroupClusterBackupTenantRestores', T.m5ClusterName],
      ].sort(),
    );

    download(F.clusterName, F.completedSnapshotId);
    const tenantJob = download(T.clusterName, T.completedSnapshotId);
    timers.fireUpTo(INTERVAL);
    const change = await first;
    expect(summary(change)).toEqual(['appeared', T.clusterName, undefined, FIRST]);
    expect(change.done ? null : change.value.job.dto.id).toBe(tenantJob.id);
    expect(change.done ? null : change.value.job.family).toBe('TENANT');
    await w.return?.();
  });

  it('ends with the error when nothing of the scope can be read, after reporting what it dropped', async () => {
    const { backup } = await world();
    const { pollers } = replica(backup);
    const dropped: unknown[] = [];
    const w = watchJobsInScope(
      { pollers, backup },
      { projectIds: [SEED.unknownId] },
      { callerId: 'a' },
      { onDropped: (where, err) => dropped.push([where, (err as AtlasApiError).status]) },
    );
    const err = await w.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtlasApiError);
    expect((err as AtlasApiError).status).toBe(404);
    expect(dropped).toEqual([[{ projectId: SEED.unknownId }, 404]]);
  });

  it('completes when the gateway shuts down, and says so through `pollers.closed`', async () => {
    const { backup } = await world();
    const { timers, pollers } = replica(backup);
    const w = watchJobsInScope({ pollers, backup }, SCOPE, { callerId: 'a' });
    const next = w.next();
    await until('started', () => timers.pending === 3);
    pollers.close();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(pollers.closed).toBe(true);
  });

  it('keys a pass-through reader’s pollers by caller, everyone else’s by cluster alone', () => {
    const ref = { projectId: PAYMENTS, clusterName: F.clusterName };
    expect(clusterJobsKey({ callerId: 'a' }, ref)).toBe(clusterJobsKey({ callerId: 'b' }, ref));
    expect(clusterJobsKey({ callerId: 'a', bearerToken: 't' }, ref)).not.toBe(
      clusterJobsKey({ callerId: 'b', bearerToken: 't' }, ref),
    );
  });
});

describe('jobChanges', () => {
  const j = (id: string, status: string, extra: Record<string, unknown> = {}): RestoreJobSource =>
    ({ projectId: 'p', clusterName: 'c', family: 'FLEX', dto: { id, status, ...extra } }) as RestoreJobSource;
  const ref = { projectId: 'p', clusterName: 'c' };
  const at = (...jobs: RestoreJobSource[]) => new Map(jobs.map((x) => [x.dto.id!, x]));

  it('reports nothing for the first read, then new jobs and visible changes oldest first', () => {
    expect(jobChanges(undefined, { ref, jobs: [j('2', 'RUNNING')] })).toEqual([]);
    const changes = jobChanges(at(j('1', 'RUNNING'), j('0', 'COMPLETED')), {
      ref,
      jobs: [
        j('3', 'PENDING'),
        j('2', 'PENDING'),
        j('1', 'COMPLETED', { snapshotUrl: 'u' }),
        j('0', 'COMPLETED'),
      ],
    });
    expect(changes.map((c) => [c.kind, c.job.dto.id, c.previousStatus])).toEqual([
      ['changed', '1', 'RUNNING'],
      ['appeared', '2', undefined],
      ['appeared', '3', undefined],
    ]);
    // A link appearing without a status change is a change too; an id-less job is skipped.
    expect(
      jobChanges(at(j('1', 'COMPLETED')), { ref, jobs: [j('1', 'COMPLETED', { snapshotUrl: 'u' })] }).map(
        (c) => c.kind,
      ),
    ).toEqual(['changed']);
    expect(
      jobChanges(at(), { ref, jobs: [{ ...j('x', 'PENDING'), dto: { status: 'PENDING' } } as never] }),
    ).toEqual([]);
  });
});

// Two replicas sharing the machine's Redis (127.0.0.1:6379) under a key prefix of this file's own.
describe('watchJobsInScope across replicas', () => {
  const URL = 'redis://127.0.0.1:6379';
  const prefix = `test-scope-watcher-${randomUUID()}:`;
  let admin: SharedRedis;
  const ready = async (redis: SharedRedis) => {
    if (!redis.ready()) await once(redis.client, 'ready');
    if (redis.subscriber.status !== 'ready') await once(redis.subscriber, 'ready');
    return redis;
  };
  beforeAll(async () => {
    admin = await ready(track(connectRedis({ url: URL, prefix: 'unused:' }), 'admin Redis'));
  });
  afterAll(async () => {
    const keys = await admin.client.keys(`${prefix}*`);
    if (keys.length > 0) await admin.client.del(...keys);
  });

  it('one replica reads each cluster per interval, every replica delivers the change', async () => {
    const { backup, calls, download } = await world();
    const channel = async (id: string) =>
      new RedisJobChannel(await ready(track(connectRedis({ url: URL, prefix }), `redis ${id}`)), id);
    const a = replica(backup, await channel('replica-a'));
    const b = replica(backup, await channel('replica-b'));
    const onA = watchJobsInScope({ pollers: a.pollers, backup }, SCOPE, { callerId: 'a' });
    const nextA = onA.next();
    await until('replica a started', () => a.timers.pending === 3);
    const started = calls().length;
    const onB = watchJobsInScope({ pollers: b.pollers, backup }, SCOPE, { callerId: 'b' });
    const nextB = onB.next();
    // Replica b starts from the states replica a published, and does not hold the leases.
    await until('replica b waits', () => b.timers.pending === 3);
    expect(calls().length).toBe(started);

    download(F.clusterName, F.completedSnapshotId);
    const before = calls().length;
    b.timers.fireUpTo(INTERVAL);
    a.timers.fireUpTo(INTERVAL);
    expect([summary(await nextA), summary(await nextB)]).toEqual([
      ['appeared', F.clusterName, undefined, FIRST],
      ['appeared', F.clusterName, undefined, FIRST],
    ]);
    await until('both replicas wait again', () => a.timers.pending === 3 && b.timers.pending === 3);
    expect(calls().length - before).toBe(2);
    await onA.return?.();
    await onB.return?.();
  });
});
