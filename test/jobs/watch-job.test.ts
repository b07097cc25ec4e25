import { beforeAll, describe, expect, it } from 'vitest';
import { type AtlasClient } from '../../src/atlas/index.js';
import { backupServices, type BackupServices, type BackupUse } from '../../src/backup/backup-service.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import { isShuttingDown, JobPollers } from '../../src/jobs/job-pollers.js';
import { jobWatchKey, watchJob } from '../../src/jobs/watch-job.js';
import { DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { startContractSimulator } from '../support/contract.js';
import { ManualTimers } from '../support/manual-timers.js';
import { fetchToken } from '../support/sim-http.js';
import { until } from '../support/private-redis.js';
import { POLLERS_SPENDER } from '../../src/replicas/atlas-budget.js';
import { startAtlasClient } from '../support/atlas-client.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const F = SEED.flex;
const JOB = { projectId: F.groupId, clusterName: F.clusterName, jobId: F.downloadJobId };

let sim: Awaited<ReturnType<typeof startContractSimulator>>;
let atlas: AtlasClient;

beforeAll(async () => {
  // The shared helper: spec-checked simulator (a violation fails the file) and client, both closed by it.
  ({ sim, client: atlas } = await startAtlasClient({ sleepMovesClock: false }));
});

describe('watchJob', () => {
  it('names one poller per job, and one per caller only for pass-through callers', () => {
    expect(jobWatchKey({ ...JOB, callerId: 'a' })).toBe(jobWatchKey({ ...JOB, callerId: 'b' }));
    expect(jobWatchKey({ ...JOB, callerId: 'a', bearerToken: 't' })).not.toBe(
      jobWatchKey({ ...JOB, callerId: 'b', bearerToken: 't' }),
    );
    expect(jobWatchKey({ ...JOB, callerId: 'a', bearerToken: 't' })).not.toBe(
      jobWatchKey({ ...JOB, callerId: 'a' }),
    );
    expect(jobWatchKey({ ...JOB, callerId: 'a' })).not.toBe(
      jobWatchKey({ ...JOB, jobId: 'x', callerId: 'a' }),
    );
  });

  // The job is COMPLETED, so each stream answers it once and ends; `polls` counts the upstream reads.
  async function watchTwice(callers: { callerId: string; bearerToken?: string }[]) {
    const uses: BackupUse[] = [];
    const make = backupServices({ atlas, families: new FamilyCache({ clock: sim.clock }) });
    const backup: BackupServices = (use) => {
      uses.push(use);
      return make(use);
    };
    const pollers = new JobPollers({ timers: new ManualTimers() });
    const streams = callers.map((c) => watchJob({ pollers, backup }, { ...JOB, ...c }));
    const first = await Promise.all(streams.map((s) => s.next()));
    for (const s of streams) await s.return?.();
    return {
      uses,
      polls: pollers.stats().polls,
      ids: first.map((r) => (r.done || isShuttingDown(r.value) ? null : r.value.dto.id)),
    };
  }

  it('reads with the gateway’s credentials through a poll service, one read and one service for callers sharing it', async () => {
    const { uses, polls, ids } = await watchTwice([{ callerId: 'a' }, { callerId: 'b' }]);
    expect(ids).toEqual([F.downloadJobId, F.downloadJobId]);
    expect(polls).toBe(1);
    // The watch that joins a running poller never reads, so it makes no service (memory per subscriber).
    expect(uses.map((u) => [u.use, u.bearerToken, u.spender])).toEqual([['poll', undefined, 'a']]);
  });

  it('gives pass-through callers a poller each, reading with their own token', async () => {
    const token = String((await fetchToken(sim, OWNER)).body.access_token);
    const { uses, polls, ids } = await watchTwice([
      { callerId: 'a', bearerToken: token },
      { callerId: 'b', bearerToken: token },
    ]);
    expect(ids).toEqual([F.downloadJobId, F.downloadJobId]);
    expect(polls).toBe(2);
    expect(uses.map((u) => [u.use, u.bearerToken])).toEqual([
      ['poll', token],
      ['poll', token],
    ]);
  });
});

describe('watchJob: who pays for the poller’s later reads', () => {
  it('the first read spends the subscriber’s share, later ones the pollers’ share, both with the caller’s own token', async () => {
    const token = String((await fetchToken(sim, OWNER)).body.access_token);
    // A job that is not finished yet: the poller reads it again.
    const created = await atlas.flexBackup.download({
      groupId: F.groupId,
      name: F.clusterName,
      snapshotId: F.completedSnapshotId,
    });
    expect(['COMPLETED', 'FAILED']).not.toContain(created.status);
    const uses: BackupUse[] = [];
    const make = backupServices({ atlas, families: new FamilyCache({ clock: sim.clock }) });
    const timers = new ManualTimers();
    const pollers = new JobPollers({ timers });
    const before = sim.stats().requests.length;
    const stream = watchJob(
      {
        pollers,
        backup: (use) => {
          uses.push(use);
          return make(use);
        },
      },
      { ...JOB, jobId: created.id!, callerId: 'apikey:a', bearerToken: token },
    );
    expect((await stream.next()).done).toBe(false);
    for (const n of [2, 3]) {
      await until(() => timers.pending === 1, 'the next poll scheduled');
      timers.fire();
      await until(() => pollers.stats().polls === n, `poll ${n}`);
    }
    await stream.return?.();
    expect(uses.map((u) => [u.use, u.bearerToken, 'spender' in u ? u.spender : undefined])).toEqual([
      ['poll', token, 'apikey:a'],
      ['poll', token, POLLERS_SPENDER],
    ]);
    const reads = sim
      .stats()
      .requests.slice(before)
      .filter((r) => r.operationId === 'getGroupFlexClusterBackupRestoreJob');
    expect(reads).toHaveLength(3);
  });
});
