import type { CachedRead, SharedReadStore, TagAt } from '../atlas/index.js';
import type { SharedRedis } from './redis.js';

// Stores only while the tag's generation is still the one the read began with: an invalidation by any
// replica between the read's start and its answer keeps the older answer out.
// KEYS: entry, tag set, generation; ARGV: value, ttl ms, expected generation ('' = untagged).
const SET = `
if ARGV[3] ~= '' then
  local g = redis.call('GET', KEYS[3]) or '0'
  if g ~= ARGV[3] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[2], KEYS[1])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
end
return 1
`;

// KEYS: tag set, generation. The generation outlives any read in flight by far (a day).
const INVALIDATE = `
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
local keys = redis.call('SMEMBERS', KEYS[1])
for i = 1, #keys do redis.call('DEL', keys[i]) end
redis.call('DEL', KEYS[1])
return #keys
`;

/**
 * The read cache's entries in the fleet's Redis, so N replicas behind a load balancer read Atlas once
 * per freshness bound between them. Keys are `<prefix>read:e:<hash>` (the hash of credential scope and
 * request: no token, no caller id), `<prefix>read:t:<tag>` and `<prefix>read:g:<tag>`.
 */
export class RedisReadStore implements SharedReadStore {
  constructor(private readonly redis: SharedRedis) {}

  ready(): boolean {
    return this.redis.ready();
  }

  async get(key: string): Promise<CachedRead | undefined> {
    const raw = await this.redis.client.get(this.#k('e', key));
    if (raw === null) return undefined;
    const v = JSON.parse(raw) as Partial<CachedRead>;
    // Anything else (a foreign writer on the prefix) is a miss, not an answer.
    return typeof v.body === 'string' && typeof v.storedAt === 'number'
      ? {
          body: v.body,
          contentType: typeof v.contentType === 'string' ? v.contentType : undefined,
          storedAt: v.storedAt,
        }
      : undefined;
  }

  async generation(tag: string): Promise<number> {
    return Number((await this.redis.client.get(this.#k('g', tag))) ?? 0);
  }

  async set(key: string, entry: CachedRead, ttlMs: number, tag?: TagAt): Promise<void> {
    await this.redis.client.eval(
      SET,
      3,
      this.#k('e', key),
      this.#k('t', tag?.tag ?? ''),
      this.#k('g', tag?.tag ?? ''),
      JSON.stringify(entry),
      String(Math.max(1, Math.ceil(ttlMs))),
      tag ? String(tag.generation) : '',
    );
  }

  async invalidate(tag: string): Promise<void> {
    await this.redis.client.eval(INVALIDATE, 2, this.#k('t', tag), this.#k('g', tag));
  }

  #k(kind: 'e' | 't' | 'g', id: string): string {
    return `${this.redis.prefix}read:${kind}:${id}`;
  }
}
