import { envVar, oneOf } from './env-var.js';
import { LOG_LEVELS, type LoggingConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

export const loggingEnv = {
  LOG_LEVEL: envVar<LoggingConfig['level']>(
    {
      group: 'logging',
      description: `Least level of the JSON log lines: ${LOG_LEVELS.join(', ')}.`,
      example: 'debug',
      default: 'info',
    },
    oneOf(LOG_LEVELS, `one of ${LOG_LEVELS.join(', ')}`),
  ),
};

export function loggingFromEnv(v: EnvValues<typeof loggingEnv>): LoggingConfig {
  return { level: v.LOG_LEVEL };
}
