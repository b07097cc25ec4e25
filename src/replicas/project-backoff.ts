import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { AtlasApiError, type AtlasExchange } from '../atlas/index.js';
import type { Clock } from '../time/clock.js';
import type { SharedRedis } from './redis.js';

const PROJECT = /\/groups\/([a-f0-9]{24})(?:\/|$|\?)/;

/**
 * Atlas limits per project, and every replica spends the same budget. When Atlas answers any
 * replica with 429/503 and a `Retry-After` for a project, every replica leaves that project alone
 * until then: calls fail unsent with a 429 the client's retry logic waits out (within its budget).
 * Replicas learn of a backoff through pub/sub, so checking costs no Redis round trip.
 */
export class ProjectBackoff {
  readonly #until = new Map<string, number>();
  readonly #topic: string;
  readonly #events: ReturnType<typeof createRedisEventTarget> | undefined;

  constructor(
    readonly clock: Clock,
    readonly redis?: SharedRedis,
  ) {
    this.#topic = `${redis?.prefix ?? ''}backoff`;
    if (redis) {
      this.#events = createRedisEventTarget({
        publishClient: redis.client,
        subscribeClient: redis.subscriber,
      });
      this.#events.addEventListener(this.#topic, ((e: CustomEvent<{ projectId: string; until: number }>) =>
        this.#remember(e.detail.projectId, e.detail.until)) as never);
    }
  }

  #remember(projectId: string, until: number): void {
    if (until > (this.#until.get(projectId) ?? 0)) this.#until.set(projectId, until);
  }

  /** Transport hook: refuses a call to a project Atlas asked the fleet to leave alone. */
  beforeSend = ({ operation, target }: { operation: string; target: string }): void => {
    const projectId = PROJECT.exec(target)?.[1];
    if (!projectId) return;
    const until = this.#until.get(projectId);
    if (until === undefined) return;
    const wait = until - this.clock.now();
    if (wait <= 0) {
      this.#until.delete(projectId);
      return;
    }
    throw new AtlasApiError({
      operation,
      status: 429,
      errorCode: 'RATE_LIMITED',
      detail: `Atlas asked to leave project ${projectId} alone for ${Math.ceil(wait / 1000)} more seconds.`,
      retryAfterMs: wait,
    });
  };

  /** Exchange hook: learns a backoff from Atlas's answer and tells the other replicas. */
  onExchange = (e: AtlasExchange): void => {
    if ((e.status !== 429 && e.status !== 503) || !e.retryAfterMs) return;
    const projectId = PROJECT.exec(e.target)?.[1];
    if (!projectId) return;
    const until = this.clock.now() + e.retryAfterMs;
    this.#remember(projectId, until);
    if (this.redis?.ready()) {
      void this.redis.client
        .publish(this.#topic, JSON.stringify({ projectId, until }))
        .catch(() => undefined);
    }
  };
}
