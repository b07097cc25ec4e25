import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { SharedRedis } from '../replicas/redis.js';
import {
  endsKey,
  MemoryJobChannel,
  type JobChannel,
  type JobMessage,
  type PolledState,
} from './job-channel.js';

// Atomic "take the lease, or renew it if it is mine": two replicas can never both hold it.
const LEAD = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Jobs shared across replicas through Redis: a lease per job elects the one poller of the fleet,
 * pub/sub carries each change to every replica, and the last state waits for late subscribers.
 * While Redis is away each replica polls and delivers on its own (still one poller per job here).
 */
export class RedisJobChannel implements JobChannel {
  readonly #local = new MemoryJobChannel();
  readonly #events: ReturnType<typeof createRedisEventTarget>;
  readonly #replicaId: string;
  /** The keys this replica listens to on Redis, with how many local listeners each has. */
  readonly #topics = new Map<
    string,
    { name: string; fromRedis: (event: Event) => void; listeners: number }
  >();

  constructor(
    readonly redis: SharedRedis,
    replicaId: string,
  ) {
    this.#replicaId = replicaId;
    this.#events = createRedisEventTarget({ publishClient: redis.client, subscribeClient: redis.subscriber });
  }

  #k(kind: string, key: string): string {
    return `${this.redis.prefix}job:${kind}:${key}`;
  }

  async publish(key: string, message: JobMessage<PolledState>): Promise<void> {
    if (!this.redis.ready()) return this.#local.deliver(key, message);
    const payload = JSON.stringify(message);
    try {
      const ends = message.type === 'error' || endsKey(message.job);
      if (ends) await this.redis.client.del(this.#k('last', key));
      else await this.redis.client.set(this.#k('last', key), JSON.stringify(message.job), 'PX', 86_400_000);
      await this.redis.client.publish(this.#k('events', key), payload);
    } catch {
      this.#local.deliver(key, message);
    }
  }

  listen(key: string, onMessage: (message: JobMessage<PolledState>) => void): () => void {
    const stopLocal = this.#local.listen(key, onMessage);
    // One Redis listener per key, not per listen(): it delivers to every local listener of the key,
    // so a second one would hand each of them every message twice.
    let topic = this.#topics.get(key);
    if (!topic) {
      const fromRedis = (event: Event) =>
        this.#local.deliver(key, (event as CustomEvent<JobMessage<PolledState>>).detail);
      topic = { name: this.#k('events', key), fromRedis, listeners: 0 };
      this.#topics.set(key, topic);
      this.#events.addEventListener(topic.name, fromRedis as never);
    }
    topic.listeners += 1;
    const listening = topic;
    let stopped = false;
    return () => {
      // Stopping twice must not count this listener out twice and unsubscribe the others.
      if (stopped) return;
      stopped = true;
      stopLocal();
      listening.listeners -= 1;
      if (listening.listeners > 0) return;
      this.#topics.delete(key);
      this.#events.removeEventListener(listening.name, listening.fromRedis as never);
    };
  }

  async last(key: string): Promise<PolledState | undefined> {
    if (this.redis.ready()) {
      try {
        const raw = await this.redis.client.get(this.#k('last', key));
        if (raw) return JSON.parse(raw) as PolledState;
      } catch {
        // fall through to what this replica knows
      }
    }
    return this.#local.last(key);
  }

  async lead(key: string, ttlMs: number): Promise<boolean> {
    if (!this.redis.ready()) return true;
    try {
      const won = await this.redis.client.eval(
        LEAD,
        1,
        this.#k('lease', key),
        this.#replicaId,
        Math.ceil(ttlMs),
      );
      return won === 1;
    } catch {
      return true;
    }
  }

  async release(key: string): Promise<void> {
    if (!this.redis.ready()) return;
    await this.redis.client.eval(RELEASE, 1, this.#k('lease', key), this.#replicaId).catch(() => undefined);
  }
}
