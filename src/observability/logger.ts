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

/** How an error the gateway answered on purpose is logged: a level below `error`, no stack. */
export interface ExpectedErrorLine {
  level: 'info' | 'warn';
  /** What the line says besides the message (the error code, the field's path); never a stack. */
  fields: Record<string, unknown>;
  /** The message as the client got it. */
  message: string;
}

/**
 * yoga's logger on top of pino, so yoga's own messages are JSON lines too.
 *
 * yoga logs at `error`, with the stack, every error its masking function replaced, which is every
 * error the gateway maps, refusals included: a 401 or a refused subscription is no fault of the
 * gateway, and a flood of them must not look like one. `expected` tells such errors apart (undefined:
 * unexpected, logged at `error` with its stack as before).
 * @default expected: every error is unexpected
 */
export function yogaLogger(
  logger: Logger,
  expected: (err: Error) => ExpectedErrorLine | undefined = () => undefined,
): YogaLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      const line = level === 'error' && first instanceof Error ? expected(first) : undefined;
      if (line) logger[line.level](line.fields, line.message);
      else if (first instanceof Error) logger[level]({ err: first }, first.message);
      else logger[level]({ args: rest.length ? rest : undefined }, String(first));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
