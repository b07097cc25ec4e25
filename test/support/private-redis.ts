import { startPrivateRedis, type PrivateRedis, type RedisPersistence } from '../../chaos/redis-server.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { track } from './disposer.js';

export type { PrivateRedis };

/**
 * A `redis-server` of the test's own on a free port (never the shared one on 6379), so the test may
 * stop, restart and flush it; killed and its directory removed when the test ends.
 */
export async function privateRedis(persistence: RedisPersistence = 'aof-always'): Promise<PrivateRedis> {
  return track(await startPrivateRedis(persistence), 'redis-server');
}

/** The gateway's shared-Redis connection to it, ready; closed when the test ends. */
export async function sharedRedisOf(server: PrivateRedis, prefix = 'test:'): Promise<SharedRedis> {
  const redis = track(connectRedis({ url: server.url, prefix }), 'shared redis');
  await until(() => redis.ready());
  return redis;
}

/** Polls `test` (a state the test changed, not a duration) until it holds. */
export async function until(test: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} never held`);
}
