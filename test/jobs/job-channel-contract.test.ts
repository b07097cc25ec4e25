import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { TenantRestoreJob } from '../../src/atlas/tenant-backup.js';
import type { RestoreJobSource } from '../../src/backup/model.js';
import {
  MemoryJobChannel,
  type JobChannel,
  type JobMessage,
  type PolledState,
} from '../../src/jobs/job-channel.js';
import { RedisJobChannel } from '../../src/jobs/redis-job-channel.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { track } from '../support/disposer.js';

// The JobChannel contract, run against the one-process channel and against the Redis one (the
// machine's Redis on 127.0.0.1:6379, as in idempotency-store.test.ts). Each test gets its own key
// prefix and its own connections: one connection pair per replica, as in production, so that one
// replica unsubscribing can never silence another. Keys are removed and connections closed after
// each test.
const URL = 'redis://127.0.0.1:6379';
let admin: SharedRedis;
const prefixes: string[] = [];
beforeAll(async () => {
  admin = track(connectRedis({ url: URL, prefix: 'unused:' }), 'admin Redis');
  await ready(admin);
});
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await admin.client.keys(`${prefix}*`);
    if (keys.length > 0) await admin.client.del(...keys);
  }
});

async function ready(redis: SharedRedis): Promise<SharedRedis> {
  if (!redis.ready()) await once(redis.client, 'ready');
  // A SUBSCRIBE sent while the subscriber is still connecting can land before ioredis's ready check
  // (INFO), which is then refused in subscriber mode and costs a reconnect; wait for it here.
  if (redis.subscriber.status !== 'ready') await once(redis.subscriber, 'ready');
  return redis;
}

function newPrefix(): string {
  const prefix = `test-job-channel-${randomUUID()}:`;
  prefixes.push(prefix);
  onTestFinished(async () => {
    const keys = await admin.client.keys(`${prefix}*`);
    if (keys.length > 0) await admin.client.del(...keys);
  });
  return prefix;
}

/** One replica's connections to the fleet's Redis, closed when the test ends. */
async function replicaRedis(prefix: string): Promise<SharedRedis> {
  return ready(track(connectRedis({ url: URL, prefix }), 'replica Redis'));
}

/** Polls until `check` holds (Redis delivers on another connection); fails with `what` if it never does. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

/** How many connections are subscribed to a Redis channel. */
async function subscribers(channel: string): Promise<number> {
  const [, count] = (await admin.client.pubsub('NUMSUB', channel)) as [string, number];
  return Number(count);
}

type Status = NonNullable<TenantRestoreJob['status']>;
const job = (status: Status, id = 'job-1'): RestoreJobSource => ({
  family: 'TENANT',
  projectId: 'p1',
  clusterName: 'Cluster0',
  dto: { id, status, deliveryType: 'DOWNLOAD', snapshotId: 'snap-1' },
});
const jobMessage = (status: Status, id?: string): JobMessage => ({ type: 'job', job: job(status, id) });
const errorMessage: JobMessage = {
  type: 'error',
  status: 404,
  errorCode: 'RESTORE_JOB_NOT_FOUND',
  detail: 'gone',
};

/** What one listener received, in order. */
function recorder(): { got: JobMessage<PolledState>[]; listener: (m: JobMessage<PolledState>) => void } {
  const got: JobMessage<PolledState>[] = [];
  return { got, listener: (m) => got.push(m) };
}

interface Fleet {
  /** Two replicas of one fleet; the memory channel is one process, so both are the same channel. */
  replicas: [JobChannel, JobChannel];
  /** Resolves once `count` replicas (each counted once) receive what is published on `key`. */
  listening(key: string, count: number): Promise<void>;
}

const fleets: [string, () => Promise<Fleet>][] = [
  [
    'MemoryJobChannel',
    async () => {
      const channel = new MemoryJobChannel();
      return { replicas: [channel, channel], listening: async () => undefined };
    },
  ],
  [
    'RedisJobChannel',
    async () => {
      const prefix = newPrefix();
      const a = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
      const b = new RedisJobChannel(await replicaRedis(prefix), 'replica-b');
      return {
        replicas: [a, b],
        listening: async (key, count) => {
          // Commands on one connection run in order: after these round trips, every SUBSCRIBE and
          // UNSUBSCRIBE the replicas sent before has landed.
          await Promise.all([a, b].map((r) => r.redis.subscriber.ping()));
          await until(
            `${count} subscriber(s) on ${key}`,
            async () => (await subscribers(`${prefix}job:events:${key}`)) === count,
          );
        },
      };
    },
  ],
];

describe.each(fleets)('%s: the JobChannel contract', (name, makeFleet) => {
  const replicaCount = name === 'MemoryJobChannel' ? 1 : 2;

  it('delivers every message published on a key to every listener of that key, on every replica, exactly once each and in order', async () => {
    const { replicas, listening } = await makeFleet();
    const [a, b] = replicas;
    const onA = recorder();
    const onB1 = recorder();
    const onB2 = recorder();
    const otherKey = recorder();
    a.listen('job-1', onA.listener);
    b.listen('job-1', onB1.listener);
    b.listen('job-1', onB2.listener);
    b.listen('job-2', otherKey.listener);
    await listening('job-1', replicaCount);
    await listening('job-2', 1);

    const sent = [jobMessage('QUEUED'), jobMessage('RUNNING'), jobMessage('COMPLETED')];
    for (const m of sent) await a.publish('job-1', m);
    // The terminal message is the last one sent: once every listener has it, anything doubled
    // (delivered in the same turn as its original) has arrived too.
    await until('every listener has the last message', () =>
      [onA, onB1, onB2].every((r) => r.got.length >= sent.length),
    );

    expect(onA.got).toEqual(sent);
    expect(onB1.got).toEqual(sent);
    expect(onB2.got).toEqual(sent);
    expect(otherKey.got).toEqual([]);
  });

  it('delivers an error message as published', async () => {
    const { replicas, listening } = await makeFleet();
    const [a, b] = replicas;
    const onB = recorder();
    b.listen('job-1', onB.listener);
    await listening('job-1', 1);
    await a.publish('job-1', errorMessage);
    await until('the error arrives', () => onB.got.length === 1);
    expect(onB.got).toEqual([errorMessage]);
  });

  it('publishing on a key nobody listens to is fine', async () => {
    const { replicas } = await makeFleet();
    await expect(replicas[0].publish('nobody', jobMessage('QUEUED'))).resolves.toBeUndefined();
    await expect(replicas[0].publish('nobody', errorMessage)).resolves.toBeUndefined();
  });

  it('stops delivering to a listener once it unlistens; the other listeners of the key still receive', async () => {
    const { replicas, listening } = await makeFleet();
    const [a, b] = replicas;
    const stays = recorder();
    const leaves = recorder();
    const leavesToo = recorder();
    a.listen('job-1', stays.listener);
    const stopLeaves = b.listen('job-1', leaves.listener);
    const stopLeavesToo = b.listen('job-1', leavesToo.listener);
    await listening('job-1', replicaCount);
    await a.publish('job-1', jobMessage('QUEUED'));
    await until('the first message arrives', () => leaves.got.length === 1 && leavesToo.got.length === 1);

    stopLeaves();
    // Stopping twice is harmless: it must not take the remaining listener's delivery with it.
    stopLeaves();
    await a.publish('job-1', jobMessage('RUNNING'));
    await until('the second message arrives', () => leavesToo.got.length === 2);
    stopLeavesToo();
    await listening('job-1', 1);
    await a.publish('job-1', jobMessage('COMPLETED'));
    await until('the last message arrives', () => stays.got.length === 3);

    expect(stays.got).toEqual([jobMessage('QUEUED'), jobMessage('RUNNING'), jobMessage('COMPLETED')]);
    expect(leaves.got).toEqual([jobMessage('QUEUED')]);
    expect(leavesToo.got).toEqual([jobMessage('QUEUED'), jobMessage('RUNNING')]);
  });

  it('a key listened to again after everyone left is delivered again', async () => {
    const { replicas, listening } = await makeFleet();
    const [a, b] = replicas;
    const first = recorder();
    b.listen('job-1', first.listener)();
    const second = recorder();
    b.listen('job-1', second.listener);
    await listening('job-1', 1);
    await a.publish('job-1', jobMessage('QUEUED'));
    await until('the message arrives', () => second.got.length === 1);
    expect(second.got).toEqual([jobMessage('QUEUED')]);
    expect(first.got).toEqual([]);
  });

  it.each([
    ['a COMPLETED state', jobMessage('COMPLETED')],
    ['a FAILED state', jobMessage('FAILED')],
    ['an error', errorMessage],
  ])(
    '`last` answers the last non-terminal state on every replica, and nothing after %s',
    async (_what, ending) => {
      const { replicas, listening } = await makeFleet();
      const [a, b] = replicas;
      const onB = recorder();
      b.listen('job-1', onB.listener);
      await listening('job-1', 1);
      expect(await a.last('job-1')).toBeUndefined();
      expect(await b.last('job-1')).toBeUndefined();

      await a.publish('job-1', jobMessage('QUEUED'));
      await a.publish('job-1', jobMessage('RUNNING'));
      await a.publish('job-2', jobMessage('QUEUED', 'job-2'));
      await until('both states arrive', () => onB.got.length === 2);
      for (const replica of replicas) {
        expect(await replica.last('job-1')).toEqual(job('RUNNING'));
        expect(await replica.last('job-2')).toEqual(job('QUEUED', 'job-2'));
      }

      await a.publish('job-1', ending);
      await until('the end arrives', () => onB.got.length === 3);
      for (const replica of replicas) {
        expect(await replica.last('job-1')).toBeUndefined();
        // Another job's state is untouched.
        expect(await replica.last('job-2')).toEqual(job('QUEUED', 'job-2'));
      }

      // A job that starts again under the same key (a new watch) is remembered again.
      await a.publish('job-1', jobMessage('QUEUED'));
      await until('the new state arrives', () => onB.got.length === 4);
      for (const replica of replicas) expect(await replica.last('job-1')).toEqual(job('QUEUED'));
    },
  );

  it('a replica leads a key it takes, and may give it up', async () => {
    const { replicas } = await makeFleet();
    expect(await replicas[0].lead('job-1', 6000)).toBe(true);
    expect(await replicas[0].lead('job-1', 6000)).toBe(true);
    await expect(replicas[0].release('job-1')).resolves.toBeUndefined();
    expect(await replicas[0].lead('job-1', 6000)).toBe(true);
  });
});

describe('MemoryJobChannel', () => {
  it('always leads: one process is the whole fleet', async () => {
    const channel: JobChannel = new MemoryJobChannel();
    const other: JobChannel = new MemoryJobChannel();
    expect(await channel.lead('job-1', 6000)).toBe(true);
    expect(await other.lead('job-1', 6000)).toBe(true);
  });

  it('`deliver` reaches this process only, like `publish`, and `last` follows it', async () => {
    const channel = new MemoryJobChannel();
    const got = recorder();
    channel.listen('job-1', got.listener);
    channel.deliver('job-1', jobMessage('QUEUED'));
    expect(got.got).toEqual([jobMessage('QUEUED')]);
    expect(await channel.last('job-1')).toEqual(job('QUEUED'));
  });
});

describe('RedisJobChannel', () => {
  it('listen bug: two listeners of one key on one replica each got every Redis message twice (one Redis subscription per listen)', async () => {
    const prefix = newPrefix();
    const publisher = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
    const replica = new RedisJobChannel(await replicaRedis(prefix), 'replica-b');
    const first = recorder();
    const second = recorder();
    replica.listen('job-1', first.listener);
    replica.listen('job-1', second.listener);
    await until('replica-b subscribes', async () => (await subscribers(`${prefix}job:events:job-1`)) === 1);

    await publisher.publish('job-1', jobMessage('QUEUED'));
    await publisher.publish('job-1', jobMessage('COMPLETED'));
    await until(
      'both listeners have the last message',
      () => first.got.length >= 2 && second.got.length >= 2,
    );

    expect(first.got).toEqual([jobMessage('QUEUED'), jobMessage('COMPLETED')]);
    expect(second.got).toEqual([jobMessage('QUEUED'), jobMessage('COMPLETED')]);
  });

  it('subscribes to <prefix>job:events:<key> once per key, and unsubscribes when its last listener of the key goes', async () => {
    const prefix = newPrefix();
    const replica = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
    const channel = `${prefix}job:events:job-1`;
    const stopFirst = replica.listen('job-1', () => undefined);
    const stopSecond = replica.listen('job-1', () => undefined);
    await until('subscribed', async () => (await subscribers(channel)) === 1);
    stopFirst();
    stopFirst();
    // Still subscribed: a round trip on the subscriber connection lets an UNSUBSCRIBE land first.
    await replica.redis.subscriber.ping();
    expect(await subscribers(channel)).toBe(1);
    stopSecond();
    await until('unsubscribed', async () => (await subscribers(channel)) === 0);
    replica.listen('job-1', () => undefined);
    await until('subscribed again', async () => (await subscribers(channel)) === 1);
  });

  it('publishes the message as JSON on <prefix>job:events:<key>, and keeps the last state in <prefix>job:last:<key> for a day', async () => {
    const prefix = newPrefix();
    const replica = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
    const spy = await replicaRedis(prefix);
    const raw: [string, string][] = [];
    spy.subscriber.on('message', (channel: string, message: string) => raw.push([channel, message]));
    await spy.subscriber.subscribe(`${prefix}job:events:job-1`);

    await replica.publish('job-1', jobMessage('QUEUED'));
    expect(await admin.client.get(`${prefix}job:last:job-1`)).toBe(JSON.stringify(job('QUEUED')));
    const ttl = await admin.client.pttl(`${prefix}job:last:job-1`);
    expect(ttl).toBeGreaterThan(86_400_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000);

    await replica.publish('job-1', errorMessage);
    expect(await admin.client.exists(`${prefix}job:last:job-1`)).toBe(0);
    await until('both messages arrive', () => raw.length === 2);
    expect(raw).toEqual([
      [`${prefix}job:events:job-1`, JSON.stringify(jobMessage('QUEUED'))],
      [`${prefix}job:events:job-1`, JSON.stringify(errorMessage)],
    ]);
    expect(await admin.client.keys(`${prefix}*`)).toEqual([]);
  });

  it('`last` answers what this replica saw when Redis has no last state for the key (expired or flushed)', async () => {
    const prefix = newPrefix();
    const a = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
    const b = new RedisJobChannel(await replicaRedis(prefix), 'replica-b');
    const onB = recorder();
    b.listen('job-1', onB.listener);
    await until('replica-b subscribes', async () => (await subscribers(`${prefix}job:events:job-1`)) === 1);
    await a.publish('job-1', jobMessage('RUNNING'));
    await until('the state arrives', () => onB.got.length === 1);
    await admin.client.del(`${prefix}job:last:job-1`);
    expect(await b.last('job-1')).toEqual(job('RUNNING'));
    // Replica a delivered nothing itself (no listener there) and Redis has nothing.
    expect(await a.last('job-1')).toBeUndefined();
  });

  describe('leases', () => {
    async function twoReplicas() {
      const prefix = newPrefix();
      const a = new RedisJobChannel(await replicaRedis(prefix), 'replica-a');
      const b = new RedisJobChannel(await replicaRedis(prefix), 'replica-b');
      return { prefix, a, b, lease: `${prefix}job:lease:job-1` };
    }

    it('only one replica leads a key; the lease <prefix>job:lease:<key> holds its id for the ttl, rounded up', async () => {
      const { a, b, lease } = await twoReplicas();
      expect(await a.lead('job-1', 6000.2)).toBe(true);
      expect(await admin.client.get(lease)).toBe('replica-a');
      const ttl = await admin.client.pttl(lease);
      expect(ttl).toBeGreaterThan(6001 - 1000);
      expect(ttl).toBeLessThanOrEqual(6001);
      expect(await b.lead('job-1', 6000)).toBe(false);
      expect(await admin.client.get(lease)).toBe('replica-a');
      // Another key is free.
      expect(await b.lead('job-2', 6000)).toBe(true);
      const [first, second] = await Promise.all([a.lead('job-3', 6000), b.lead('job-3', 6000)]);
      expect([first, second].filter(Boolean)).toHaveLength(1);
    });

    it('the leader renews its lease for the new ttl', async () => {
      const { a, b, lease } = await twoReplicas();
      expect(await a.lead('job-1', 5000)).toBe(true);
      expect(await admin.client.pttl(lease)).toBeLessThanOrEqual(5000);
      expect(await a.lead('job-1', 120_000)).toBe(true);
      expect(await admin.client.pttl(lease)).toBeGreaterThan(5000);
      expect(await admin.client.get(lease)).toBe('replica-a');
      expect(await b.lead('job-1', 6000)).toBe(false);
    });

    it('after the leader releases, the other replica can lead', async () => {
      const { a, b, lease } = await twoReplicas();
      expect(await a.lead('job-1', 60_000)).toBe(true);
      await a.release('job-1');
      expect(await admin.client.exists(lease)).toBe(0);
      expect(await b.lead('job-1', 60_000)).toBe(true);
      expect(await admin.client.get(lease)).toBe('replica-b');
      expect(await a.lead('job-1', 60_000)).toBe(false);
    });

    it('after the lease expires (the leader died), the other replica can lead', async () => {
      const { a, b, lease } = await twoReplicas();
      expect(await a.lead('job-1', 30)).toBe(true);
      await until('the lease expires', async () => (await admin.client.exists(lease)) === 0);
      expect(await b.lead('job-1', 60_000)).toBe(true);
      expect(await admin.client.get(lease)).toBe('replica-b');
    });

    it('a release by a replica that does not hold the lease does nothing', async () => {
      const { a, b, lease } = await twoReplicas();
      expect(await a.lead('job-1', 60_000)).toBe(true);
      await b.release('job-1');
      expect(await admin.client.get(lease)).toBe('replica-a');
      expect(await b.lead('job-1', 60_000)).toBe(false);
      expect(await a.lead('job-1', 60_000)).toBe(true);
    });
  });

  describe('while Redis is down (ready() is false)', () => {
    // The connections work, so anything the channel wrote or sent to Redis anyway would show.
    async function downReplica() {
      const prefix = newPrefix();
      const up = await replicaRedis(prefix);
      const down = new RedisJobChannel({ ...up, ready: () => false }, 'replica-a');
      const other = new RedisJobChannel(await replicaRedis(prefix), 'replica-b');
      return { prefix, down, other };
    }

    it('publish delivers to this replica only and writes nothing to Redis', async () => {
      const { prefix, down, other } = await downReplica();
      const here = recorder();
      const there = recorder();
      down.listen('job-1', here.listener);
      other.listen('job-1', there.listener);
      await until('both subscribe', async () => (await subscribers(`${prefix}job:events:job-1`)) === 2);
      await down.publish('job-1', jobMessage('QUEUED'));
      expect(here.got).toEqual([jobMessage('QUEUED')]);
      // A round trip through Redis after the publish: anything published would have arrived.
      await other.publish('job-1', jobMessage('RUNNING'));
      await until('the up replica publishes', () => there.got.length >= 1 && here.got.length >= 2);
      expect(there.got).toEqual([jobMessage('RUNNING')]);
      expect(await admin.client.get(`${prefix}job:last:job-1`)).toBe(JSON.stringify(job('RUNNING')));
    });

    it('lead answers true (each replica polls on its own) without touching the lease', async () => {
      const { prefix, down } = await downReplica();
      await admin.client.set(`${prefix}job:lease:job-1`, 'replica-b', 'PX', 60_000);
      expect(await down.lead('job-1', 6000)).toBe(true);
      expect(await down.lead('job-2', 6000)).toBe(true);
      expect(await admin.client.get(`${prefix}job:lease:job-1`)).toBe('replica-b');
      expect(await admin.client.exists(`${prefix}job:lease:job-2`)).toBe(0);
    });

    it('last answers the state this replica delivered, not what Redis holds', async () => {
      const { prefix, down } = await downReplica();
      await admin.client.set(`${prefix}job:last:job-1`, JSON.stringify(job('RUNNING')), 'PX', 60_000);
      expect(await down.last('job-1')).toBeUndefined();
      await down.publish('job-1', jobMessage('QUEUED'));
      expect(await down.last('job-1')).toEqual(job('QUEUED'));
      await down.publish('job-1', jobMessage('COMPLETED'));
      expect(await down.last('job-1')).toBeUndefined();
    });

    it('release does nothing, even to a lease it holds', async () => {
      const { prefix, down } = await downReplica();
      await admin.client.set(`${prefix}job:lease:job-1`, 'replica-a', 'PX', 60_000);
      await expect(down.release('job-1')).resolves.toBeUndefined();
      expect(await admin.client.get(`${prefix}job:lease:job-1`)).toBe('replica-a');
    });
  });

  describe('when a Redis command fails although Redis looked ready', () => {
    // A command connection that is closed: every command fails at once (no offline queue).
    async function failingReplica() {
      const prefix = newPrefix();
      const redis = await replicaRedis(prefix);
      redis.client.disconnect();
      return { prefix, channel: new RedisJobChannel({ ...redis, ready: () => true }, 'replica-a') };
    }

    it('publish delivers to this replica, and last answers what it delivered', async () => {
      const { channel } = await failingReplica();
      const here = recorder();
      channel.listen('job-1', here.listener);
      await channel.publish('job-1', jobMessage('QUEUED'));
      expect(here.got).toEqual([jobMessage('QUEUED')]);
      expect(await channel.last('job-1')).toEqual(job('QUEUED'));
      await channel.publish('job-1', errorMessage);
      expect(here.got).toEqual([jobMessage('QUEUED'), errorMessage]);
      expect(await channel.last('job-1')).toBeUndefined();
    });

    it('lead answers true and release resolves', async () => {
      const { channel } = await failingReplica();
      expect(await channel.lead('job-1', 6000)).toBe(true);
      await expect(channel.release('job-1')).resolves.toBeUndefined();
    });
  });
});
