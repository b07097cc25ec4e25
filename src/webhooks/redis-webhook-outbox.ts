import type { SharedRedis } from '../replicas/redis.js';
import {
  RECORD_RETENTION_MS,
  type AttemptOutcome,
  type ClaimedDelivery,
  type DeliveryRecord,
  type DeliveryStatus,
  type DeliverySubject,
  type EnqueueResult,
  type WebhookOutbox,
} from './webhook-outbox.js';

export interface RedisWebhookOutboxOptions {
  /**
   * How long a delivery may stay claimed by one replica before another takes it over: a stream entry
   * pending that long (XAUTOCLAIM's min idle time), or a retry leased that long. Longer than a POST
   * may take, or a slow receiver is sent the event twice. @default 60000
   */
  claimIdleMs?: number;
  /** Most records per hook the deliveries query can list (older ones still expire on their own). @default 1000 */
  maxRecords?: number;
}

const GROUP = 'deliver';

// Once per event id: the record doubles as the dedupe key, so replicas that see the same change add it once.
const ENQUEUE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'body', ARGV[3], 'status', 'PENDING', 'attempts', 0,
  'createdAt', ARGV[4], 'nextAttemptAt', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
redis.call('XADD', KEYS[3], '*', 'e', ARGV[1])
return 1`;

// Due retries, each leased for the claim time: a replica that dies holding one lets it fall due again.
const CLAIM_RETRIES = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), m) end
return due`;

// One attempt's outcome, atomically: the entry leaves the stream (or the retry schedule), the record
// says what happened, and a retry is scheduled.
const SETTLE = `
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'lastStatusCode', ARGV[5], 'lastError', ARGV[6], 'nextAttemptAt', ARGV[7])
if ARGV[4] == 'RETRYING' then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[3])
elseif ARGV[4] == 'DELIVERED' then
  redis.call('HSET', KEYS[1], 'deliveredAt', ARGV[8])
  redis.call('HDEL', KEYS[1], 'body')
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
else
  redis.call('HSET', KEYS[1], 'deadLetteredAt', ARGV[8])
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
end
return 1`;

// Hands a claimed delivery back, due now: out of the stream (if it came from there) into the schedule.
const RELEASE = `
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[1], 'nextAttemptAt', ARGV[4])
return 1`;

type StreamEntries = [id: string, fields: string[]][];

/**
 * The durable outbox: per hook, a Redis Stream read through one consumer group (`deliver`; each
 * replica a consumer, its name the replica id) for first attempts, a sorted set of scheduled retries,
 * and a hash per event (its record, the body until delivered). XAUTOCLAIM takes over the entries a
 * dead replica read and never acknowledged; a leased retry falls due again the same way. Every
 * outcome is one Lua script, so a crash between two steps never loses nor duplicates the record.
 */
export class RedisWebhookOutbox implements WebhookOutbox {
  readonly #redis: SharedRedis;
  readonly #claimIdleMs: number;
  readonly #maxRecords: number;
  readonly #groups = new Set<string>();

  constructor(redis: SharedRedis, options: RedisWebhookOutboxOptions = {}) {
    this.#redis = redis;
    this.#claimIdleMs = options.claimIdleMs ?? 60_000;
    this.#maxRecords = options.maxRecords ?? 1000;
  }

  #k(hookId: string, part: string): string {
    return `${this.#redis.prefix}wh:${hookId}:${part}`;
  }

  #record(hookId: string, eventId: string): string {
    return this.#k(hookId, `d:${eventId}`);
  }

  async #group(hookId: string): Promise<void> {
    if (this.#groups.has(hookId)) return;
    try {
      // From the start of the stream: entries added before any replica made the group are read too.
      await this.#redis.client.xgroup('CREATE', this.#k(hookId, 'stream'), GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
    this.#groups.add(hookId);
  }

  async enqueue(
    hookId: string,
    subject: DeliverySubject,
    body: string,
    nowMs: number,
  ): Promise<EnqueueResult> {
    await this.#group(hookId);
    const added = await this.#redis.client.eval(
      ENQUEUE,
      3,
      this.#record(hookId, subject.eventId),
      this.#k(hookId, 'index'),
      this.#k(hookId, 'stream'),
      subject.eventId,
      JSON.stringify(subject),
      body,
      nowMs,
      this.#maxRecords,
    );
    return added === 1 ? 'added' : 'duplicate';
  }

  async claim(hookId: string, consumer: string, max: number, nowMs: number): Promise<ClaimedDelivery[]> {
    if (max <= 0) return [];
    await this.#group(hookId);
    const client = this.#redis.client;
    const stream = this.#k(hookId, 'stream');
    const out: ClaimedDelivery[] = [];
    const retries = (await client.eval(
      CLAIM_RETRIES,
      1,
      this.#k(hookId, 'retry'),
      nowMs,
      this.#claimIdleMs,
      max,
    )) as string[];
    for (const eventId of retries) {
      const claimed = await this.#load(hookId, eventId, { kind: 'retry' });
      if (claimed) out.push(claimed);
      else await client.zrem(this.#k(hookId, 'retry'), eventId);
    }
    if (out.length < max) {
      // Entries another consumer read and has not settled for `claimIdleMs`: its replica died.
      const [, taken] = (await client.xautoclaim(
        stream,
        GROUP,
        consumer,
        this.#claimIdleMs,
        '0-0',
        'COUNT',
        max - out.length,
      )) as [string, StreamEntries, string[]];
      await this.#fromStream(hookId, taken, out);
    }
    if (out.length < max) {
      const read = await this.#readNew(hookId, consumer, max - out.length);
      await this.#fromStream(hookId, read, out);
    }
    return out;
  }

  async #readNew(hookId: string, consumer: string, count: number): Promise<StreamEntries> {
    const stream = this.#k(hookId, 'stream');
    const read = async () =>
      (await this.#redis.client.xreadgroup(
        'GROUP',
        GROUP,
        consumer,
        'COUNT',
        count,
        'STREAMS',
        stream,
        '>',
      )) as [string, StreamEntries][] | null;
    try {
      return (await read())?.[0]?.[1] ?? [];
    } catch (err) {
      // A Redis that lost its data (no persistence) lost the group too: make it again, once.
      if (!String((err as Error).message).startsWith('NOGROUP')) throw err;
      this.#groups.delete(hookId);
      await this.#group(hookId);
      return (await read())?.[0]?.[1] ?? [];
    }
  }

  async #fromStream(hookId: string, entries: StreamEntries, out: ClaimedDelivery[]): Promise<void> {
    for (const [entryId, fields] of entries) {
      if (!fields) continue;
      const eventId = fields[fields.indexOf('e') + 1] ?? '';
      const claimed = await this.#load(hookId, eventId, { kind: 'stream', entryId });
      if (claimed) out.push(claimed);
      else {
        // Its record is gone (expired or settled by a replica that was only slow): nothing to send.
        await this.#redis.client.xack(this.#k(hookId, 'stream'), GROUP, entryId);
        await this.#redis.client.xdel(this.#k(hookId, 'stream'), entryId);
      }
    }
  }

  async #load(
    hookId: string,
    eventId: string,
    ref: ClaimedDelivery['ref'],
  ): Promise<ClaimedDelivery | undefined> {
    const [body, attempts, status] = await this.#redis.client.hmget(
      this.#record(hookId, eventId),
      'body',
      'attempts',
      'status',
    );
    if (body == null || status === 'DELIVERED' || status === 'DEAD_LETTERED') return undefined;
    return { eventId, body, attempts: Number(attempts ?? 0), ref };
  }

  /** SETTLE's and RELEASE's 3 keys, then the group and the claimed entry: one claimed delivery. */
  #claimedArgs(hookId: string, claimed: ClaimedDelivery): string[] {
    return [
      this.#record(hookId, claimed.eventId),
      this.#k(hookId, 'stream'),
      this.#k(hookId, 'retry'),
      GROUP,
      claimed.ref.kind === 'stream' ? claimed.ref.entryId : '',
      claimed.eventId,
    ];
  }

  async settle(
    hookId: string,
    claimed: ClaimedDelivery,
    outcome: AttemptOutcome,
    nowMs: number,
  ): Promise<void> {
    const status: DeliveryStatus =
      outcome.kind === 'delivered' ? 'DELIVERED' : outcome.kind === 'retry' ? 'RETRYING' : 'DEAD_LETTERED';
    await this.#redis.client.eval(
      SETTLE,
      3,
      ...this.#claimedArgs(hookId, claimed),
      status,
      outcome.statusCode ?? '',
      outcome.kind === 'delivered' ? '' : outcome.error,
      outcome.kind === 'retry' ? outcome.nextAttemptAt : '',
      nowMs,
      RECORD_RETENTION_MS,
    );
  }

  async release(hookId: string, claimed: ClaimedDelivery, nowMs: number): Promise<void> {
    await this.#redis.client.eval(RELEASE, 3, ...this.#claimedArgs(hookId, claimed), nowMs);
  }

  async nextRetryAt(hookId: string): Promise<number | undefined> {
    const [, score] = await this.#redis.client.zrange(this.#k(hookId, 'retry'), 0, 0, 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  async deliveries(
    hookId: string,
    query: { statuses?: readonly DeliveryStatus[] | undefined; first: number },
  ): Promise<DeliveryRecord[]> {
    const client = this.#redis.client;
    const index = this.#k(hookId, 'index');
    const ids = await client.zrevrange(index, 0, this.#maxRecords - 1);
    if (ids.length === 0) return [];
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.hgetall(this.#record(hookId, id));
    const rows = (await pipeline.exec()) ?? [];
    const wanted = query.statuses?.length ? new Set(query.statuses) : undefined;
    const out: DeliveryRecord[] = [];
    const expired: string[] = [];
    rows.forEach(([, row], i) => {
      const h = row as Record<string, string> | null;
      if (!h || !h.subject) return void expired.push(ids[i]!);
      const r = recordOf(hookId, h);
      if (out.length < query.first && (!wanted || wanted.has(r.status))) out.push(r);
    });
    if (expired.length) await client.zrem(index, ...expired);
    return out;
  }

  async backlog(hookId: string): Promise<number> {
    const [len, retries] = await Promise.all([
      this.#redis.client.xlen(this.#k(hookId, 'stream')),
      this.#redis.client.zcard(this.#k(hookId, 'retry')),
    ]);
    return len + retries;
  }
}

const numberOrNull = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));

function recordOf(hookId: string, h: Record<string, string>): DeliveryRecord {
  const subject = JSON.parse(h.subject!) as DeliverySubject;
  return {
    ...subject,
    hookId,
    status: h.status as DeliveryStatus,
    attempts: Number(h.attempts ?? 0),
    lastStatusCode: numberOrNull(h.lastStatusCode),
    lastError: h.lastError ? h.lastError : null,
    createdAt: Number(h.createdAt),
    nextAttemptAt: numberOrNull(h.nextAttemptAt),
    deliveredAt: numberOrNull(h.deliveredAt),
    deadLetteredAt: numberOrNull(h.deadLetteredAt),
  };
}
