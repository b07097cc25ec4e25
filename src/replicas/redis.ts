import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { checkRedisDurability } from './redis-durability.js';

/** The shared Redis of a fleet of replicas: one command client and one subscriber client. */
export interface SharedRedis {
  client: Redis;
  subscriber: Redis;
  /** Every key and channel starts with this (one fleet, or one test, per prefix). */
  prefix: string;
  /** Whether commands can run now; the shared parts fall back to memory while it is false. */
  ready(): boolean;
  close(): Promise<void>;
}

export interface SharedRedisOptions {
  url: string;
  /** @default 'atlas-gw:' */
  prefix?: string;
  logger?: Logger;
  /** What is degraded while Redis is away, for the log line. */
  degraded?: string[];
}

/**
 * Connects to Redis and keeps reconnecting forever. Commands fail fast while it is down (no offline
 * queue) so requests never wait on Redis; the subscriber keeps its queue so its subscriptions come
 * back by themselves when Redis does.
 */
export function connectRedis(options: SharedRedisOptions): SharedRedis {
  const retryStrategy = (times: number) => Math.min(100 * times, 2000);
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy,
  });
  const subscriber = new Redis(options.url, { maxRetriesPerRequest: null, retryStrategy });
  const log = options.logger;
  let up = false;
  const degraded = options.degraded ?? [];
  // Once per process: whether this Redis keeps idempotency keys through restarts and memory pressure.
  client.once('ready', () => {
    void checkRedisDurability(client).then((d) => {
      if (!d.checked) {
        log?.info(
          { redis: 'durability', checked: false },
          'Redis does not allow CONFIG GET: make sure it runs with appendonly yes, appendfsync everysec (or always) and maxmemory-policy noeviction, or a restart may forget idempotency keys',
        );
      } else if (d.problems.length > 0) {
        log?.warn(
          { redis: 'durability', settings: d.settings, problems: d.problems },
          `Redis settings break the one-job-per-idempotency-key guarantee: ${d.problems.join('; ')}`,
        );
      }
    });
  });
  client.on('ready', () => {
    if (!up) log?.info({ redis: 'ready' }, 'Redis reachable: shared idempotency, polling and caches are on');
    up = true;
  });
  const down = (err?: Error) => {
    if (up || err) {
      log?.warn(
        { redis: 'unreachable', error: err?.message, degraded },
        `Redis unreachable: degraded until it returns (${degraded.join('; ')})`,
      );
    }
    up = false;
  };
  client.on('close', () => down());
  // ioredis emits 'error' on every failed reconnect; one warning per outage is enough.
  client.on('error', (err: Error) => (up ? down(err) : undefined));
  subscriber.on('error', () => undefined);
  return {
    client,
    subscriber,
    prefix: options.prefix ?? 'atlas-gw:',
    ready: () => up && client.status === 'ready',
    close: async () => {
      client.disconnect();
      subscriber.disconnect();
    },
  };
}
