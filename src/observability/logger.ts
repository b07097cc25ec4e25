import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { YogaLogger } from 'graphql-yoga';

export interface LoggerOptions {
  /** @default 'info' (LOG_LEVEL) */
  level?: LevelWithSilent;
  /** Where the JSON lines go. @default stdout */
  destination?: DestinationStream;
}

/**
 * Structured JSON logs. Secrets are redacted by path whatever a caller logs: credentials, tokens and
 * the signed `snapshotUrl` (anyone holding it can download the snapshot).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'atlas-backup-gateway' },
      redact: {
        paths: [
          'headers.authorization',
          'headers["x-api-key"]',
          'headers["x-atlas-access-token"]',
          'headers.cookie',
          '*.clientSecret',
          '*.privateKey',
          '*.token',
          '*.snapshotUrl',
          'snapshotUrl',
        ],
        censor: '[redacted]',
      },
    },
    options.destination,
  );
}

/** yoga's logger on top of pino, so yoga's own messages are JSON lines too. */
export function yogaLogger(logger: Logger): YogaLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) logger[level]({ err: first }, first.message);
      else logger[level]({ args: rest.length ? rest : undefined }, String(first));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
