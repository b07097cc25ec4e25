import { envVar, invalid, text } from './env-var.js';
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
};

export function redisFromEnv(v: EnvValues<typeof redisEnv>): RedisConfig | undefined {
  return v.REDIS_URL === undefined ? undefined : { url: v.REDIS_URL, prefix: v.REDIS_PREFIX };
}
