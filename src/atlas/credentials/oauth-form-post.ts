import { randomUUID } from 'node:crypto';
import type { AtlasStats } from '../atlas-stats.js';
import type { Clock } from '../../time/clock.js';
import { withRetries, type RetryOptions } from '../retry.js';
import type { Sleep } from '../../time/sleep.js';
import type { Transport } from '../transport.js';
import { oauthError, type OAuthFormPost } from './oauth-auth.js';

/**
 * Form POSTs to `/api/oauth/token|revoke` over the client's transport, so they share its dispatcher,
 * timeouts, counters and retry policy. Non-2xx → `AtlasAuthError`.
 */
export function createOAuthFormPost(deps: {
  transport: Transport;
  userAgent: string;
  retry: Readonly<Required<RetryOptions>>;
  clock: Clock;
  sleep: Sleep;
  random: () => number;
  stats: AtlasStats;
}): OAuthFormPost {
  return ({ operation, path, form, authorization, retryable }) => {
    const requestId = randomUUID();
    return withRetries(
      {
        options: deps.retry,
        clock: deps.clock,
        sleep: deps.sleep,
        random: deps.random,
        retryable,
        signal: undefined,
        operation,
        requestId,
        onRetry: () => deps.stats.retries++,
      },
      async () => {
        const res = await deps.transport({
          operation,
          method: 'POST',
          target: path,
          headers: {
            accept: 'application/json',
            'content-type': 'application/x-www-form-urlencoded',
            authorization,
            'user-agent': deps.userAgent,
            'x-request-id': requestId,
          },
          body: Buffer.from(form.toString()),
          signal: undefined,
          requestId,
        });
        if (res.status >= 200 && res.status < 300) return res;
        throw oauthError(res, operation, deps.clock.now());
      },
    );
  };
}
