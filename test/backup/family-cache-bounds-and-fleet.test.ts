import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FamilyCache } from '../../src/backup/family-cache.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { ManualClock } from '../../src/time/clock.js';

const ref = (clusterName: string) => ({ projectId: 'p1', clusterName });

describe('the family cache of one replica', () => {
  it('trusts a family for 10 minutes by default, and not a millisecond longer', () => {
    const clock = new ManualClock();
    const cache = new FamilyCache({ clock });
    cache.set(ref('a'), 'FLEX');
    clock.advance(599_999);
    expect(cache.get(ref('a'))).toBe('FLEX');
    clock.advance(1);
    expect(cache.get(ref('a'))).toBeUndefined();
    // The expired entry is dropped, not kept around.
    expect(cache.size).toBe(0);
  });

  it('counts hits and misses of its lookups', () => {
    const clock = new ManualClock();
    const cache = new FamilyCache({ clock, ttlMs: 1000 });
    expect(cache.get(ref('a'))).toBeUndefined();
    cache.set(ref('a'), 'TENANT');
    expect(cache.get(ref('a'))).toBe('TENANT');
    expect(cache.get(ref('a'))).toBe('TENANT');
    clock.advance(1000);
    expect(cache.get(ref('a'))).toBeUndefined();
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 2 });
  });

  it('keeps at most maxEntries clusters, dropping the one learned longest ago', () => {
    const cache = new FamilyCache({ clock: new ManualClock(), maxEntries: 2 });
    cache.set(ref('a'), 'FLEX');
    cache.set(ref('b'), 'TENANT');
    // Learning `a` again makes it the newest: `b` is now the oldest.
    cache.set(ref('a'), 'FLEX');
    cache.set(ref('c'), 'FLEX');
    expect(cache.size).toBe(2);
    expect([cache.get(ref('a')), cache.get(ref('b')), cache.get(ref('c'))]).toEqual([
      'FLEX',
      undefined,
      'FLEX',
    ]);
  });

  it('keeps 10 000 clusters by default', () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    for (let i = 0; i <= 10_000; i++) cache.set(ref(`c${i}`), 'FLEX');
    expect(cache.size).toBe(10_000);
    expect(cache.get(ref('c0'))).toBeUndefined();
    expect(cache.get(ref('c1'))).toBe('FLEX');
    expect(cache.get(ref('c10000'))).toBe('FLEX');
  });

  it('answers lookups from itself when it has no Redis', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    expect(await cache.lookup(ref('a'))).toBeUndefined();
    cache.set(ref('a'), 'TENANT');
    expect(await cache.lookup(ref('a'))).toBe('TENANT');
  });
});

describe('the family cache shared by a fleet through Redis', () => {
  let redis: SharedRedis;
  beforeAll(async () => {
    redis = connectRedis({ url: 'redis://127.0.0.1:6379', prefix: `test-family-${randomUUID()}:` });
    if (!redis.ready()) await once(redis.client, 'ready');
  });
  afterAll(async () => {
    const keys = await redis.client.keys(`${redis.prefix}*`);
    if (keys.length) await redis.client.del(...keys);
    await redis.close();
  });
  const key = (clusterName: string) => `${redis.prefix}family:p1/${clusterName}`;

  it('writes what one replica learns under <prefix>family:<project>/<cluster>, for the TTL', async () => {
    const cache = new FamilyCache({ clock: new ManualClock(), redis, ttlMs: 60_000 });
    cache.set(ref('w'), 'TENANT');
    // Same connection: the GET runs after the SET.
    expect(await redis.client.get(key('w'))).toBe('TENANT');
    const pttl = await redis.client.pttl(key('w'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('lets another replica learn it with one lookup, and then answers it locally', async () => {
    const first = new FamilyCache({ clock: new ManualClock(), redis });
    const second = new FamilyCache({ clock: new ManualClock(), redis });
    first.set(ref('x'), 'FLEX');
    await redis.client.get(key('x'));
    expect(await second.lookup(ref('x'))).toBe('FLEX');
    expect(second.size).toBe(1);
    // Now local: what Redis says afterwards does not change it until the TTL runs out.
    await redis.client.set(key('x'), 'TENANT');
    expect(await second.lookup(ref('x'))).toBe('FLEX');
  });

  it('writes a family only when it is new to the replica', async () => {
    const cache = new FamilyCache({ clock: new ManualClock(), redis });
    cache.set(ref('y'), 'TENANT');
    await redis.client.del(key('y'));
    cache.set(ref('y'), 'TENANT');
    expect(await redis.client.get(key('y'))).toBeNull();
    cache.set(ref('y'), 'FLEX');
    expect(await redis.client.get(key('y'))).toBe('FLEX');
  });

  it('ignores a value in Redis that is no family, and remembers nothing for it', async () => {
    await redis.client.set(key('z'), 'DEDICATED');
    const cache = new FamilyCache({ clock: new ManualClock(), redis });
    expect(await cache.lookup(ref('z'))).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(await cache.lookup(ref('nothing-there'))).toBeUndefined();
  });

  it('neither reads nor writes Redis while it is not ready', async () => {
    const down: SharedRedis = { ...redis, ready: () => false };
    await redis.client.set(key('d'), 'FLEX');
    const cache = new FamilyCache({ clock: new ManualClock(), redis: down });
    expect(await cache.lookup(ref('d'))).toBeUndefined();
    cache.set(ref('e'), 'TENANT');
    expect(await redis.client.get(key('e'))).toBeNull();
  });
});
