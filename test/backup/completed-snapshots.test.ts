import { describe, expect, it } from 'vitest';
import { CompletedSnapshots } from '../../src/backup/completed-snapshots.js';
import type { SnapshotSource } from '../../src/backup/model.js';
import { ManualClock } from '../../src/time/clock.js';

const REF = { projectId: 'p1', clusterName: 'c1' };
const NOW = Date.parse('2026-11-30T12:00:00Z');

const snapshot = (
  id: string,
  // null: Atlas sent no status.
  status: string | null = 'COMPLETED',
  extra: { expiration?: string; scheduledTime?: string; clusterName?: string } = {},
): SnapshotSource =>
  ({
    projectId: REF.projectId,
    clusterName: extra.clusterName ?? REF.clusterName,
    family: 'FLEX',
    dto: {
      id,
      ...(status !== null ? { status } : {}),
      scheduledTime: extra.scheduledTime ?? '2026-11-30T06:00:00Z',
      expiration: extra.expiration ?? '2026-12-30T06:00:00Z',
    },
  }) as SnapshotSource;

describe('the memo of snapshots known COMPLETED', () => {
  it('remembers a COMPLETED snapshot with its scheduledTime, per cluster', () => {
    const memo = new CompletedSnapshots({ clock: new ManualClock(NOW) });
    memo.saw(snapshot('s1'));
    expect(memo.get(REF, 's1')).toEqual({ scheduledTime: '2026-11-30T06:00:00Z' });
    // The same id under another cluster is another snapshot.
    expect(memo.get({ ...REF, clusterName: 'c2' }, 's1')).toBeUndefined();
  });

  it('does not remember a snapshot that is not COMPLETED, and forgets one a read shows otherwise', () => {
    const memo = new CompletedSnapshots({ clock: new ManualClock(NOW) });
    for (const status of ['PENDING', 'QUEUED', 'RUNNING', 'FAILED', null]) {
      memo.saw(snapshot(`s-${status}`, status));
    }
    expect(memo.size).toBe(0);
    memo.saw(snapshot('s1'));
    memo.saw(snapshot('s1', 'FAILED'));
    expect(memo.get(REF, 's1')).toBeUndefined();
  });

  it('does not use an entry from the snapshot’s expiration on (the injected clock)', () => {
    const clock = new ManualClock(NOW);
    const memo = new CompletedSnapshots({ clock });
    memo.saw(snapshot('s1', 'COMPLETED', { expiration: new Date(NOW + 1000).toISOString() }));
    clock.advance(999);
    expect(memo.get(REF, 's1')).toBeDefined();
    clock.advance(1);
    expect(memo.get(REF, 's1')).toBeUndefined();
    // Dropped, not kept around.
    expect(memo.size).toBe(0);
  });

  it('forgets a snapshot when told it is gone', () => {
    const memo = new CompletedSnapshots({ clock: new ManualClock(NOW) });
    memo.saw(snapshot('s1'));
    memo.forget(REF, 's1');
    expect(memo.get(REF, 's1')).toBeUndefined();
  });

  it('keeps at most maxEntries snapshots, dropping the one used longest ago', () => {
    const memo = new CompletedSnapshots({ clock: new ManualClock(NOW), maxEntries: 2 });
    memo.saw(snapshot('a'));
    memo.saw(snapshot('b'));
    // Using `a` makes it the most recent: `b` is now the oldest.
    expect(memo.get(REF, 'a')).toBeDefined();
    memo.saw(snapshot('c'));
    expect(memo.size).toBe(2);
    expect([memo.get(REF, 'a'), memo.get(REF, 'b'), memo.get(REF, 'c')].map(Boolean)).toEqual([
      true,
      false,
      true,
    ]);
  });

  it('keeps 10 000 snapshots by default', () => {
    const memo = new CompletedSnapshots({ clock: new ManualClock(NOW) });
    for (let i = 0; i <= 10_000; i++) memo.saw(snapshot(`s${i}`));
    expect(memo.size).toBe(10_000);
    expect(memo.get(REF, 's0')).toBeUndefined();
    expect(memo.get(REF, 's1')).toBeDefined();
    expect(memo.get(REF, 's10000')).toBeDefined();
  });
});
