/** One fault to inject. Several effects may be combined in a rule (latency + a status, say). */
export interface FaultRule {
  /**
   * Which requests it hits: an operationId of the spec, a legacy key (`v1.listTenantSnapshots`…),
   * `oauth.token`, `oauth.revoke` or `download` (the `.tgz`). Every request when omitted.
   */
  operationId?: string;
  /** Added before the answer. @default 0 */
  latencyMs?: number;
  /** Answer with this status and an ApiError body instead of handling the request (no side effect). */
  status?: 500 | 502 | 503 | 504;
  /** With `status`: a `Retry-After` header, in seconds. */
  retryAfterSec?: number;
  /**
   * Destroy the connection. `before`: nothing was handled. `after`: the request was handled (a job may
   * exist now), then the answer is lost — the case where a client must not blindly retry a POST.
   */
  reset?: 'before' | 'after';
  /** `truncated`: half the body, then the socket closes. `malformed`: a complete answer that is not JSON. */
  body?: 'truncated' | 'malformed';
  /** Stream the body in small pieces spread over this many milliseconds. */
  slowBodyMs?: number;
  /** Applies to the next N matching requests, then is removed. @default Infinity */
  times?: number;
  /** Chance that a matching request is hit, with the injector's random source. @default 1 */
  probability?: number;
}

export interface ActiveFault extends FaultRule {
  id: number;
  /** How many requests it hit so far. */
  hits: number;
}

const STATUSES = new Set([500, 502, 503, 504]);

/** Checks a rule that arrives from outside (the admin route): names the field and what arrived. */
export function parseFaultRule(input: unknown): FaultRule {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TypeError(`fault rule: expected a JSON object, got ${JSON.stringify(input)}`);
  }
  const r = input as Record<string, unknown>;
  const known = [
    'operationId',
    'latencyMs',
    'status',
    'retryAfterSec',
    'reset',
    'body',
    'slowBodyMs',
    'times',
    'probability',
  ];
  for (const k of Object.keys(r)) {
    if (!known.includes(k))
      throw new TypeError(`fault rule: unknown field "${k}" (known: ${known.join(', ')})`);
  }
  const num = (k: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = r[k];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new TypeError(
        `fault rule: "${k}" must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`,
      );
    }
  };
  num('latencyMs', 0, 600_000);
  num('retryAfterSec', 0, 3600);
  num('slowBodyMs', 0, 600_000);
  num('times', 1);
  num('probability', 0, 1);
  if (r.operationId !== undefined && typeof r.operationId !== 'string') {
    throw new TypeError(`fault rule: "operationId" must be a string, got ${JSON.stringify(r.operationId)}`);
  }
  if (r.status !== undefined && !STATUSES.has(r.status as number)) {
    throw new TypeError(
      `fault rule: "status" must be one of 500, 502, 503, 504, got ${JSON.stringify(r.status)}`,
    );
  }
  if (r.reset !== undefined && r.reset !== 'before' && r.reset !== 'after') {
    throw new TypeError(`fault rule: "reset" must be "before" or "after", got ${JSON.stringify(r.reset)}`);
  }
  if (r.body !== undefined && r.body !== 'truncated' && r.body !== 'malformed') {
    throw new TypeError(
      `fault rule: "body" must be "truncated" or "malformed", got ${JSON.stringify(r.body)}`,
    );
  }
  return r as FaultRule;
}

/** Holds the active faults; the server asks it once per request which one (if any) applies. */
export class FaultInjector {
  #rules: ActiveFault[] = [];
  #nextId = 1;
  readonly #random: () => number;

  /** @param random source for `probability`. @default Math.random */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Adds a rule; returns its id (for `remove`). Rules are tried in the order they were added. */
  add(rule: FaultRule): number {
    const id = this.#nextId++;
    this.#rules.push({ ...parseFaultRule(rule), id, hits: 0 });
    return id;
  }

  remove(id: number): void {
    this.#rules = this.#rules.filter((r) => r.id !== id);
  }

  clear(): void {
    this.#rules = [];
  }

  list(): ActiveFault[] {
    return this.#rules.map((r) => ({ ...r }));
  }

  /** The rule that hits this request, counted against its `times`. */
  take(operationId: string): ActiveFault | undefined {
    for (const rule of this.#rules) {
      if (rule.operationId !== undefined && rule.operationId !== operationId) continue;
      if (rule.probability !== undefined && this.#random() >= rule.probability) continue;
      rule.hits += 1;
      if (rule.times !== undefined && rule.hits >= rule.times) this.remove(rule.id);
      return { ...rule };
    }
    return undefined;
  }
}

/**
 * An edit of successful JSON answers, for tests that feed the gateway what a real Atlas may send and
 * the simulator would not: a new enum value (`CANCELLED`), a field left out. In-process only (a
 * function cannot cross the admin route).
 */
export interface BodyOverride {
  /** Which answers it edits (an operationId of the spec). Every one when omitted. */
  operationId?: string;
  /** Returns the body to send instead (it may change `body` in place and return it). */
  edit: (body: unknown) => unknown;
  /** Applies to the next N matching answers, then is removed. @default Infinity */
  times?: number;
}

/** The active body overrides; the server passes each successful JSON answer through them. */
export class BodyOverrides {
  #rules: (BodyOverride & { hits: number })[] = [];

  add(rule: BodyOverride): void {
    this.#rules.push({ ...rule, hits: 0 });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The body after every matching rule, in the order they were added. */
  apply(operationId: string, body: unknown): unknown {
    let out = body;
    for (const rule of [...this.#rules]) {
      if (rule.operationId !== undefined && rule.operationId !== operationId) continue;
      out = rule.edit(out);
      rule.hits += 1;
      if (rule.times !== undefined && rule.hits >= rule.times)
        this.#rules = this.#rules.filter((r) => r !== rule);
    }
    return out;
  }
}
