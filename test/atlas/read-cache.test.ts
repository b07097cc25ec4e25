import { describe, expect, it } from 'vitest';
import { ReadCache, type CachedRead, type FreshRead } from '../../src/atlas/read-cache.js';
import { freshnessOf } from '../../src/atlas/read-cache.js';
import { ManualClock } from '../../src/time/clock.js';

// The cache's own rules, with an injected upstream read (a deferred answer per call) and clock: what
// is stored, for how long, and what one waiter giving up does to the others.

const TTL = { projects: 60_000, clusters: 30_000, snapshots: 15_000, jobs: 5_000 };
const entry = (body: string, storedAt = 0): CachedRead => ({
  body,
  contentType: 'application/json',
  storedAt,
});

function upstream() {
  const calls: { signal: AbortSignal; answer: (r: FreshRead) => void; fail: (e: Error) => void }[] = [];
  const fetch = (signal: AbortSignal) =>
    new Promise<FreshRead>((answer, fail) => {
      calls.push({ signal, answer, fail });
    });
  return { calls, fetch };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ReadCache', () => {
  it('stores successes only, for the kind’s bound or Atlas’s shorter max-age', async () => {
    const clock = new ManualClock();
    const cache = new ReadCache({ ttlMs: TTL, clock });
    const up = upstream();
    const read = (key: string) => cache.read({ key, kind: 'snapshots', mode: 'use' }, up.fetch);

    const failing = read('k');
    await tick();
    up.calls[0]!.fail(new Error('503'));
    await expect(failing).rejects.toThrow('503');
    const ok = read('k');
    await tick();
    expect(up.calls).toHaveLength(2);
    up.calls[1]!.answer({ entry: entry('a'), maxAgeMs: 1_000 });
    expect((await ok).body).toBe('a');
    expect((await read('k')).body).toBe('a');
    clock.advance(1_000);
    const again = read('k');
    await tick();
    expect(up.calls).toHaveLength(3);
    up.calls[2]!.answer({ entry: entry('b'), maxAgeMs: false });
    await again;
    void read('k');
    await tick();
    expect(up.calls).toHaveLength(4);
    expect(cache.stats.notStored).toBe(1);
  });

  it('keeps an answer out when an invalidation of its tag overtook it, and starts a new read after', async () => {
    const cache = new ReadCache({ ttlMs: TTL, clock: new ManualClock() });
    const up = upstream();
    const read = () => cache.read({ key: 'k', kind: 'jobs', tag: 'jobs:p/c', mode: 'use' }, up.fetch);
    const before = read();
    await tick();
    await cache.invalidate('jobs:p/c');
    // Begun after the invalidation: not joined to the older read.
    const after = read();
    await tick();
    expect(up.calls).toHaveLength(2);
    up.calls[0]!.answer({ entry: entry('old') });
    up.calls[1]!.answer({ entry: entry('new') });
    expect((await before).body).toBe('old');
    expect((await after).body).toBe('new');
    expect((await read()).body).toBe('new');
    expect(up.calls).toHaveLength(2);
  });

  it('lets one waiter give up without failing the others; the last one to leave aborts the upstream read', async () => {
    const cache = new ReadCache({ ttlMs: TTL, clock: new ManualClock() });
    const up = upstream();
    const [one, two] = [new AbortController(), new AbortController()];
    const read = (signal: AbortSignal) =>
      cache.read({ key: 'k', kind: 'clusters', mode: 'use', signal }, up.fetch);
    const a = read(one.signal);
    const b = read(two.signal);
    await tick();
    expect(up.calls).toHaveLength(1);
    one.abort();
    await expect(a).rejects.toThrow();
    expect(up.calls[0]!.signal.aborted).toBe(false);
    up.calls[0]!.answer({ entry: entry('x') });
    expect((await b).body).toBe('x');

    const c = cache.read({ key: 'k2', kind: 'clusters', mode: 'use', signal: one.signal }, up.fetch);
    await expect(c).rejects.toThrow();
    const lone = new AbortController();
    const d = cache.read({ key: 'k3', kind: 'clusters', mode: 'use', signal: lone.signal }, up.fetch);
    await tick();
    lone.abort();
    await expect(d).rejects.toThrow();
    expect(up.calls.at(-1)!.signal.aborted).toBe(true);
  });

  it('bypass and a 0 bound neither read nor write; refresh always reads and writes', async () => {
    const cache = new ReadCache({ ttlMs: { ...TTL, projects: 0 }, clock: new ManualClock() });
    const up = upstream();
    const go = async (mode: 'use' | 'refresh' | 'bypass', kind: 'jobs' | 'projects' = 'jobs') => {
      const p = cache.read({ key: `k-${kind}`, kind, mode }, up.fetch);
      await tick();
      up.calls.at(-1)!.answer({ entry: entry(String(up.calls.length)) });
      return (await p).body;
    };
    expect(await go('use')).toBe('1');
    expect(await cache.read({ key: 'k-jobs', kind: 'jobs', mode: 'use' }, up.fetch)).toMatchObject({
      body: '1',
    });
    expect(await go('bypass')).toBe('2');
    expect(await go('refresh')).toBe('3');
    expect(await cache.read({ key: 'k-jobs', kind: 'jobs', mode: 'use' }, up.fetch)).toMatchObject({
      body: '3',
    });
    expect(await go('use', 'projects')).toBe('4');
    expect(await go('use', 'projects')).toBe('5');
    expect(cache.stats).toMatchObject({ hits: 2, bypassed: 3, refreshes: 1 });
  });

  it('reads Cache-Control: no-store and no-cache forbid storing, max-age bounds it', () => {
    expect(freshnessOf(undefined)).toBeUndefined();
    expect(freshnessOf('private')).toBeUndefined();
    expect(freshnessOf('no-store')).toBe(false);
    expect(freshnessOf('private, No-Cache')).toBe(false);
    expect(freshnessOf('max-age=2')).toBe(2_000);
    expect(freshnessOf(['public', 'max-age=0'])).toBe(0);
    expect(freshnessOf('max-age=soon')).toBe(false);
  });
});
