import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { BeforeSend } from '../atlas/index.js';
import { GatewayError } from '../errors/index.js';
import type { SharedRedis } from './redis.js';

/** How many upstream requests each Atlas project may receive, and how much of it one caller may take. */
export interface AtlasBudgetOptions {
  /**
   * Requests one Atlas project may receive per window, from every caller (and, with Redis, every
   * replica) together. Set it below what Atlas allows the project (its `RateLimit-Limit`): Atlas's
   * own 429 stops the whole project for everyone (`ProjectBackoff`), the budget only the spender.
   * @default 50
   */
  points: number;
  /** The window, in milliseconds (whole seconds). @default 10000 */
  windowMs: number;
  /**
   * The fraction of a project's points one spender may take in a window, in (0, 1]: a caller, or
   * all the job pollers together (`POLLERS_SPENDER`). Others keep the rest.
   * @default 0.5
   */
  callerShare: number;
}

export const ATLAS_BUDGET_DEFAULTS: Readonly<AtlasBudgetOptions> = {
  // Within the bucket the simulator models Atlas with (100, refilled at 10 a second) even across a
  // window edge, where a fixed window lets up to twice its points through in a moment.
  points: 50,
  windowMs: 10_000,
  callerShare: 0.5,
};

/**
 * The spender of every poll read but a poller's first (that one is its subscriber's): one poller
 * per job reads for all its subscribers, so the pollers share one caller's share of the budget.
 */
export const POLLERS_SPENDER = 'pollers';

const PROJECT = /\/groups\/([a-f0-9]{24})(?:\/|$|\?)/;

/**
 * The Atlas request budget: per Atlas project, a bucket of `points` refilled every `windowMs`
 * (rate-limiter-flexible's fixed window, in Redis when the fleet shares one, so replicas spend one
 * budget), and per spender at most `callerShare` of it. Checked before each round trip, retries and
 * pages included, since Atlas counts those too. A spent budget refuses the call unsent with
 * `RATE_LIMITED` (`retryable`, `retryAfterMs`) for that spender only, while Atlas is never pushed to
 * the 429 that would stop the project for everyone.
 *
 * Calls outside any project (the project list) share one bucket, `org`; the OAuth token endpoint is
 * not budgeted (one call per token lifetime). A call without a spender (readiness) counts against
 * the project only.
 */
export class AtlasBudget {
  readonly options: Readonly<AtlasBudgetOptions>;
  /** Points one spender may take per project and window. */
  readonly spenderPoints: number;
  readonly #projects: RateLimiterAbstract;
  readonly #spenders: RateLimiterAbstract;

  constructor(options: Partial<AtlasBudgetOptions> = {}, redis?: SharedRedis) {
    this.options = { ...ATLAS_BUDGET_DEFAULTS, ...options };
    const { points, windowMs, callerShare } = this.options;
    if (!(callerShare > 0 && callerShare <= 1)) {
      throw new RangeError(`callerShare must be in (0, 1]; got ${callerShare}`);
    }
    this.spenderPoints = Math.max(1, Math.floor(points * callerShare));
    this.#projects = limiter('project', points, windowMs, redis);
    this.#spenders = limiter('spender', this.spenderPoints, windowMs, redis);
  }

  /** Transport hook (`beforeSend`): spends one point, or throws `RATE_LIMITED` with nothing sent. */
  beforeSend = async ({ target, spender }: BeforeSend): Promise<void> => {
    if (!target.includes('/api/atlas/')) return;
    const scope = PROJECT.exec(target)?.[1] ?? 'org';
    const spenderKey = spender === undefined ? undefined : `${scope}|${spender}`;
    if (spenderKey !== undefined) {
      const refused = await take(this.#spenders, spenderKey);
      if (refused) throw this.#spent('spender', scope, refused, this.spenderPoints);
    }
    const refused = await take(this.#projects, scope);
    if (refused) {
      // Not sent: the spender keeps the point it was charged.
      if (spenderKey !== undefined) await this.#spenders.reward(spenderKey).catch(() => undefined);
      throw this.#spent('project', scope, refused, this.options.points);
    }
  };

  #spent(budget: 'spender' | 'project', scope: string, res: RateLimiterRes, points: number): GatewayError {
    const retryAfterMs = Math.max(0, Math.ceil(res.msBeforeNext));
    const where = scope === 'org' ? 'calls outside a project' : `project ${scope}`;
    const per = `${points} Atlas requests per ${this.options.windowMs / 1000} s`;
    return new GatewayError(
      'RATE_LIMITED',
      budget === 'spender'
        ? `This caller's share of the Atlas budget for ${where} is spent (${per}); retry in ${Math.ceil(retryAfterMs / 1000)} s.`
        : `The Atlas budget for ${where} is spent for now (${per}); retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
      { extensions: { retryable: true, retryAfterMs, budget } },
    );
  }
}

function limiter(name: string, points: number, windowMs: number, redis?: SharedRedis): RateLimiterAbstract {
  const duration = windowMs / 1000;
  const memory = new RateLimiterMemory({ keyPrefix: `budget-${name}`, points, duration });
  if (!redis) return memory;
  return new RateLimiterRedis({
    storeClient: redis.client,
    keyPrefix: `${redis.prefix}budget-${name}`,
    points,
    duration,
    // While Redis is away each replica counts alone, as the other shared parts fall back to memory.
    rejectIfRedisNotReady: true,
    insuranceLimiter: memory,
  });
}

/** The refusal when no point is left, else undefined. */
async function take(limiter: RateLimiterAbstract, key: string): Promise<RateLimiterRes | undefined> {
  try {
    await limiter.consume(key);
    return undefined;
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return rejection;
    throw rejection;
  }
}
