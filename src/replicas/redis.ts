import { Redis } from 'ioredis';
import type { Logger } from 'pino';

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
