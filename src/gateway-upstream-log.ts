import type { Logger } from 'pino';
import type { AtlasExchange } from './atlas/index.js';

/**
 * One log line per Atlas round trip, with the request id it was sent with (and Atlas's own when it
 * has one): failures (an Atlas error code, 5xx, 429) at `warn`, the rest at `debug`.
 */
export function logUpstreamExchange(logger: Logger): (e: AtlasExchange) => void {
  return (e) => {
    const line = {
      requestId: e.requestId,
      operation: e.operation,
      status: e.status,
      ms: Math.round(e.durationMs),
      // Atlas's own words stay in the logs; clients get only its status and errorCode.
      ...(e.detail ? { detail: e.detail } : {}),
    };
    if (e.errorCode || (e.status ?? 0) >= 500 || e.status === 429)
      logger.warn({ ...line, error: e.errorCode }, 'atlas call failed');
    else logger.debug(line, 'atlas call');
  };
}
