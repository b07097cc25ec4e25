import { envVar, integer, invalid, oneOf, text } from './env-var.js';
import type { RedisConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

/** The URL with its user and password replaced, for messages. */
export const redactRedisUrl = (url: string) => url.replace(/\/\/[^@/]*@/, '//[redacted]@');

export const redisEnv = {
  REDIS_URL: envVar(
    {
      group: 'redis',
      description:
        'Redis shared by every replica (`redis://` or `rediss://`); unset keeps all state in this process.',
      example: 'redis://:secret@127.0.0.1:6379/0',
    },
    (value) =>
      /^rediss?:\/\//.test(value)
        ? value
        : invalid('a redis:// or rediss:// URL', JSON.stringify(redactRedisUrl(value))),
  ),
  REDIS_PREFIX: envVar(
    {
      group: 'redis',
      description: 'Starts every Redis key and channel of this fleet (one prefix per fleet).',
      example: 'payments-gw:',
      default: 'atlas-gw:',
    },
    text,
  ),
  GATEWAY_IDEMPOTENCY_WITHOUT_REDIS: envVar(
    {
      group: 'redis',
      description:
        'Keyed mutations while Redis is unreachable: `refuse` (STORE_UNAVAILABLE, nothing sent) or `single-replica` (keys kept in this process and written to Redis when it returns; only safe with one replica).',
      example: 'single-replica',
      default: 'refuse' as const,
    },
    oneOf(['refuse', 'single-replica'], '"refuse" or "single-replica"'),
  ),
  GATEWAY_IDEMPOTENCY_LEASE_MS: envVar(
    {
      group: 'redis',
      description:
        "How long a replica's hold on an idempotency key outlives it (renewed every third of it): a key not renewed this long is an orphan, whose job the next request looks for.",
      example: '5000',
      default: 10_000,
    },
    integer(200, 3_600_000),
  ),
};

export function redisFromEnv(v: EnvValues<typeof redisEnv>): RedisConfig | undefined {
  return v.REDIS_URL === undefined
    ? undefined
    : {
        url: v.REDIS_URL,
        prefix: v.REDIS_PREFIX,
        withoutRedis: v.GATEWAY_IDEMPOTENCY_WITHOUT_REDIS,
        leaseMs: v.GATEWAY_IDEMPOTENCY_LEASE_MS,
      };
}
