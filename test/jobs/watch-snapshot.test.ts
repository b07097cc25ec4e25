import { describe, expect, it } from 'vitest';
import { backupServices, type BackupServices, type BackupUse } from '../../src/backup/backup-service.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import { isShuttingDown, JobPollers } from '../../src/jobs/job-pollers.js';
import { watchJobsInScope } from '../../src/jobs/job-scope-watcher.js';
import { snapshotWatchKey, watchSnapshot } from '../../src/jobs/watch-snapshot.js';
import { POLLERS_SPENDER } from '../../src/replicas/atlas-budget.js';
import { SEED } from '../../src/simulator/seed.js';
import { startAtlasClient } from '../support/atlas-client.js';
import { ManualTimers } from '../support/manual-timers.js';

/*
 * watchSnapshot and the scope watcher spend the Atlas budget as watchJob does: the read that starts a
 * poller is its subscriber's, every later read the pollers' share; a watch joining a poller reads
 * nothing. Against the spec-checked simulator, with manual timers.
 */

const F = SEED.flex;
const P = SEED.projects.payments.id;

async function world() {
  const { sim, client: atlas, clock } = await startAtlasClient({ sleepMovesClock: false });
  const uses: BackupUse[] = [];
  const make = backupServices({ atlas, families: new FamilyCache({ clock: sim.clock }) });
  const backup: BackupServices = (use) => {
    uses.push(use);
    return make(use);
  };
  const timers = new ManualTimers();
  const pollers = new JobPollers({ timers, intervalMs: 1000 });
  return { sim, clock, uses, backup, timers, pollers };
}

const settled = async (check: () => boolean) => {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
};

describe('watchSnapshot', () => {
  it('follows a snapshot to COMPLETED; first read on the subscriber’s budget, later ones on the pollers’', async () => {
    const { sim, clock, uses, backup, timers, pollers } = await world();
    const snap = sim.store.takeSnapshot(P, F.clusterName, { durationMs: 10_000 });
    const req = { projectId: P, clusterName: F.clusterName, snapshotId: snap.id };
    const a = watchSnapshot({ pollers, backup }, { ...req, callerId: 'a' });
    const status = (r: IteratorResult<unknown>) =>
      r.done
        ? 'done'
        : isShuttingDown(r.value)
          ? 'shut'
          : (r.value as { dto: { status: string } }).dto.status;
    expect(status(await a.next())).toBe('QUEUED');
    // A second watcher joins the poller: it reads nothing.
    const b = watchSnapshot({ pollers, backup }, { ...req, callerId: 'b' });
    expect(status(await b.next())).toBe('QUEUED');
    expect(pollers.stats()).toMatchObject({ pollers: 1, subscribers: 2, polls: 1 });

    clock.advance(5000);
    timers.fire();
    expect([status(await a.next()), status(await b.next())]).toEqual(['RUNNING', 'RUNNING']);
    clock.advance(10_000);
    timers.fire();
    expect([status(await a.next()), status(await b.next())]).toEqual(['COMPLETED', 'COMPLETED']);
    expect([status(await a.next()), status(await b.next())]).toEqual(['done', 'done']);
    expect(uses.map((u) => [u.use, u.spender])).toEqual([
      ['poll', 'a'],
      ['poll', 'b'],
      ['poll', POLLERS_SPENDER],
    ]);
    expect(pollers.stats()).toMatchObject({ pollers: 0, polls: 3 });
    expect(snapshotWatchKey({ ...req, callerId: 'a' })).toBe(snapshotWatchKey({ ...req, callerId: 'b' }));
    expect(snapshotWatchKey({ ...req, callerId: 'a', bearerToken: 't' })).not.toBe(
      snapshotWatchKey({ ...req, callerId: 'b', bearerToken: 't' }),
    );
  });
});

describe('watchJobsInScope and the Atlas budget', () => {
  it('spends the subscriber’s share on the reads that start its pollers, the pollers’ share after', async () => {
    const { uses, backup, timers, pollers } = await world();
    const w = watchJobsInScope(
      { pollers, backup },
      { projectIds: [P], clusterNames: [F.clusterName] },
      { callerId: 'watcher' },
    );
    const first = w.next();
    await settled(() => timers.pending === 2);
    timers.fireUpTo(1000);
    await settled(() => timers.pending === 2 && pollers.polls === 3);
    // Made per poller: the project list's and the cluster's, each with a first and a later service.
    const spent = uses.map((u) => u.spender);
    expect(spent.filter((s) => s === 'watcher')).toHaveLength(2);
    expect(spent.filter((s) => s === POLLERS_SPENDER)).toHaveLength(1);
    await w.return?.();
    expect(await first).toEqual({ done: true, value: undefined });
  });
});
