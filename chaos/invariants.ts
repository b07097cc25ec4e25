import { DOCUMENTED_CODES, type Answer, type GraphQLErrorShape } from './client.js';
import type { Violation } from '../src/simulator/index.js';
import type { Exchange, Wait } from './recorder.js';
import type { DownloadOutcome, RoundOutcome, SubscriptionOutcome } from './workload.js';
import type { ScenarioRun } from './fleet-scenarios.js';

/** One invariant's verdict: its counts in one line, and the problems found (the first ones kept). */
export interface Check {
  name: string;
  ok: boolean;
  counts: string;
  problems: string[];
  /** All problems, also those not kept. */
  problemCount: number;
  /** Violations whose signature is exactly that of an open known bug (`[id] …`); they fail unless tolerated. */
  known: string[];
  knownCount: number;
}

/**
 * Bugs this suite found in `src/`, each with the regression test that pins it down
 * (test/chaos/regressions.test.ts). A violation is attributed to one only when its trace matches the
 * bug's exact signature; anything else is a new problem. A fixed bug's signature always fails (a
 * regression); an open one may be tolerated (`tolerateKnownBugs`, the run inside `npm test`).
 */
export const KNOWN_BUGS = {
  'lost-post-reread': {
    fixed: true,
    summary:
      'requestDownload: after a lost POST answer, a failed re-read was reported as its own (Atlas) error and freed the idempotency key, so a retry made a second job',
    test: 'requestDownload: a retry with the same idempotency key creates a second job after a lost POST answer whose re-read failed',
  },
  'post-2xx-unreadable': {
    fixed: true,
    summary:
      'requestDownload: a 2xx answer to the POST that could not be read (malformed JSON) counted as "not applied": the key was freed and a retry made a second job',
    test: 'requestDownload: a malformed 2xx answer to the POST frees the idempotency key, so the retry creates a second job',
  },
  'tenant-list-first-page': {
    fixed: true,
    summary:
      'tenant job lists were read from page 1 only (100 items): with more jobs a useful download was not seen, and reuseExisting made another job',
    test: 'requestDownload: a tenant cluster with more than 100 jobs hides a download in progress, so reuseExisting creates another job',
  },
  'digest-stale-resend': {
    fixed: true,
    summary:
      'Digest: a nonce that went stale on the one re-challenge answered UNAUTHENTICATED, and the job poller took that 401 as permanent (fixed twice: three stale resends, then, for a machine slower than the nonce life, a 401 still stale is marked nonceStale, transient for pollers and UPSTREAM_UNAVAILABLE for clients)',
    test: 'restoreJobStatus: a stale Digest nonce ends the stream with UNAUTHENTICATED instead of the job’s terminal state',
  },
  'unreadable-400': {
    fixed: true,
    summary:
      'an unreadable 400 body (family mismatch) became BAD_USER_INPUT: the family signal was lost and the job poller ended the stream',
    test: 'restoreJobStatus: an unreadable family-mismatch 400 ends the stream of a tenant job with BAD_USER_INPUT',
  },
  'unknown-outcome-race': {
    fixed: true,
    summary:
      'requestDownload: requests waiting on a key whose outcome is unknown each list the jobs, find none and create one: two jobs for one key',
    test: 'requestDownload: concurrent requests of an idempotency key whose outcome is unknown each create a job',
  },
  'unknown-outcome-foreign-job': {
    fixed: true,
    summary:
      'requestDownload: a key whose outcome was unknown stays unresolved after its job is made, so a later retry adopts the newest job of the snapshot, maybe another request’s',
    test: 'requestDownload: after an unknown outcome, a later retry of the key answers another request’s job',
  },
} as const;
export type KnownBug = keyof typeof KNOWN_BUGS;

const KEEP = 40;

/** Problems of one invariant, counted over all rounds; the first ones are kept for the report. */
class Problems {
  readonly list: string[] = [];
  readonly known: string[] = [];
  count = 0;
  knownCount = 0;
  constructor(readonly tolerateKnown: boolean) {}
  add(p: string, known?: KnownBug): void {
    const open = known !== undefined && !KNOWN_BUGS[known].fixed;
    if (open) {
      this.knownCount++;
      if (this.known.length < KEEP) this.known.push(`[${known}] ${p}`);
      if (this.tolerateKnown) return;
    }
    this.count++;
    const label =
      known === undefined ? '' : open ? `[open bug ${known}] ` : `[regression of fixed bug ${known}] `;
    if (this.list.length < KEEP) this.list.push(`${label}${p}`);
  }
  check(name: string, counts: string): Check {
    return {
      name,
      ok: this.count === 0,
      counts,
      problems: this.list,
      problemCount: this.count,
      known: this.known,
      knownCount: this.knownCount,
    };
  }
}

const codeOf = (e: GraphQLErrorShape) =>
  typeof e.extensions?.code === 'string' ? e.extensions.code : undefined;
const inc = (m: Record<string, number>, k: string, n = 1) => (m[k] = (m[k] ?? 0) + n);
const list = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

function answersOf(r: RoundOutcome): [string, Answer][] {
  return [
    ...r.reads.map(
      (x) => [`round ${r.round} ${x.action.kind} #${x.action.id}`, x.answer] as [string, Answer],
    ),
    ...r.downloads.map(
      (d) => [`round ${r.round} download #${d.action.id} (${d.action.intent})`, d.answer] as [string, Answer],
    ),
  ];
}

// ---------------------------------------------------------------------------------------------------
// 1. Every GraphQL request got an answer: data, or errors each with a documented extensions.code.

export class AnswersCheck {
  readonly #p: Problems;
  readonly #codes: Record<string, number> = {};
  #total = 0;
  #data = 0;
  #typed = 0;
  #hung = 0;
  #broken = 0;
  #untyped = 0;
  #slowest = 0;

  constructor(tolerateKnown = false) {
    this.#p = new Problems(tolerateKnown);
  }

  add(r: RoundOutcome): void {
    for (const [what, a] of answersOf(r)) {
      this.#total++;
      this.#slowest = Math.max(this.#slowest, a.ms);
      if (a.outcome === 'hung') {
        this.#hung++;
        this.#p.add(`${what}: no answer within the deadline (${a.ms} ms)`);
        continue;
      }
      if (a.outcome === 'broken') {
        this.#broken++;
        this.#p.add(`${what}: not a GraphQL answer (HTTP ${a.httpStatus ?? '-'}): ${a.detail ?? ''}`);
        continue;
      }
      if (a.errors.length === 0) {
        this.#data++;
        continue;
      }
      let allTyped = true;
      for (const e of a.errors) {
        const code = codeOf(e);
        inc(this.#codes, code ?? '(none)');
        if (!code || !DOCUMENTED_CODES.has(code)) {
          allTyped = false;
          this.#p.add(`${what}: error without a documented code: ${JSON.stringify(e).slice(0, 200)}`);
        }
      }
      if (allTyped) this.#typed++;
      else this.#untyped++;
    }
  }

  result(deadlineMs: number): Check {
    return this.#p.check(
      `every GraphQL request answered (data or a documented extensions.code), none hung past ${deadlineMs / 1000} s`,
      `${this.#total} requests: ${this.#data} data, ${this.#typed} typed errors, ${this.#untyped} untyped, ${this.#broken} broken, ${this.#hung} hung; slowest ${this.#slowest} ms; error codes: ${list(this.#codes)}`,
    );
  }
}

/** INTERNAL_SERVER_ERROR is documented, but under upstream faults each one is an unmapped error path. */
export class MaskedErrorsCheck {
  readonly #p: Problems;

  constructor(tolerateKnown = false) {
    this.#p = new Problems(tolerateKnown);
  }

  add(r: RoundOutcome): void {
    for (const [what, a] of answersOf(r)) {
      for (const e of a.errors) {
        if (codeOf(e) === 'INTERNAL_SERVER_ERROR') {
          this.#p.add(`${what}: "${e.message}" at ${JSON.stringify(e.path ?? [])}`);
        }
      }
    }
  }

  result(): Check {
    return this.#p.check(
      'no upstream fault surfaces as a masked INTERNAL_SERVER_ERROR',
      `${this.#p.count} masked errors`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. No snapshot got more DOWNLOAD jobs than the distinct requests meant to create one.

/** Codes that prove the request created nothing upstream (the gateway refused, or Atlas did). */
const NOTHING_CREATED = new Set([
  'BAD_USER_INPUT',
  'CONFLICT',
  'NOT_FOUND',
  'FORBIDDEN',
  'GONE',
  'UNAUTHENTICATED',
  'RATE_LIMITED',
]);

/**
 * A typed failure proving that this request made no job: a refusal before any POST, or an HTTP error
 * status from Atlas (`extensions.atlas.status`: Atlas answered, and an error answer has no side
 * effect). A network failure or an unreadable answer proves nothing: the POST may have been applied.
 */
export function provesNothingCreated(d: DownloadOutcome): boolean {
  if (d.answer.outcome !== 'errors' || d.jobId !== undefined) return false;
  const e = d.answer.errors[0];
  if (!e) return false;
  const code = codeOf(e);
  if (code && NOTHING_CREATED.has(code)) return true;
  const atlas = e.extensions?.atlas as { status?: unknown } | undefined;
  return code === 'UPSTREAM_UNAVAILABLE' && typeof atlas?.status === 'number';
}

export interface JobCounts {
  /** Jobs the simulator created at runtime per snapshot, before and after the round. */
  before: Map<string, number>;
  after: Map<string, number>;
  /** Reuse-only snapshots: jobs created for them before this round (a reuse group wants at most one ever). */
  reuseCreatedEarlier: Map<string, number>;
  /** Snapshots of tenant clusters that had at least 100 jobs (one default page) when the round began. */
  tenantOverOnePage: Set<string>;
}

export class JobsCheck {
  readonly #p: Problems;
  #requests = 0;
  #groups = 0;
  #snapshots = new Set<string>();
  #intended = 0;
  #created = 0;
  #answeredNew = 0;
  #keys = 0;
  #proofs = 0;

  constructor(tolerateKnown = false) {
    this.#p = new Problems(tolerateKnown);
  }

  /** `exchanges`: the round's upstream log, to show what each request involved in a violation did. */
  add(r: RoundOutcome, counts: JobCounts, exchanges: readonly Exchange[] = []): void {
    // Groups of requests that together may make at most one job: one key (per gateway: each keeps its
    // own keys) on one snapshot, one unkeyed request, or all reuse requests of a reuse-only snapshot.
    const groups = new Map<string, { snapshotId: string; intent: string; requests: DownloadOutcome[] }>();
    for (const d of r.downloads) {
      this.#requests++;
      if (d.reused === false) this.#answeredNew++;
      if (provesNothingCreated(d)) this.#proofs++;
      const s = d.action.snapshot.snapshotId;
      if (d.action.intent === 'invalid' && d.key === undefined) {
        // Malformed ids, unknown and not-COMPLETED snapshots: nothing may be created.
        if (d.jobId !== undefined) {
          this.#p.add(
            `round ${r.round} download #${d.action.id} should have failed with ${d.action.expect} but answered job ${d.jobId}`,
          );
        }
        continue;
      }
      const name =
        d.key !== undefined
          ? `key ${d.key} on ${s}`
          : d.action.intent === 'reuse'
            ? `reuse via ${d.action.gateway} on ${s}`
            : `request #${d.action.id} on ${s}`;
      const g = groups.get(name) ?? { snapshotId: s, intent: d.action.intent, requests: [] };
      g.requests.push(d);
      groups.set(name, g);
    }
    const intended = new Map<string, number>();
    for (const [name, g] of groups) {
      const meant = g.requests.some((d) => !provesNothingCreated(d)) ? 1 : 0;
      const earlier = g.intent === 'reuse' ? (counts.reuseCreatedEarlier.get(g.snapshotId) ?? 0) : 0;
      intended.set(g.snapshotId, (intended.get(g.snapshotId) ?? 0) + Math.max(0, meant - earlier));
      if (name.startsWith('key ')) {
        this.#keys++;
        const ids = new Set(g.requests.map((d) => d.jobId).filter((x) => x !== undefined));
        if (ids.size > 1) {
          const known: KnownBug | undefined = hadUnknownOutcome(g.requests)
            ? freshJobs(g.requests) > 1
              ? 'unknown-outcome-race'
              : 'unknown-outcome-foreign-job'
            : undefined;
          this.#p.add(
            `round ${r.round} ${name}: answered ${ids.size} different jobs (${g.requests.map(describeDownload).join(' | ')})`,
            known,
          );
        }
      }
    }
    this.#groups += groups.size;
    const snapshots = new Set([...counts.after.keys(), ...intended.keys()]);
    for (const s of snapshots) {
      const delta = (counts.after.get(s) ?? 0) - (counts.before.get(s) ?? 0);
      const meant = intended.get(s) ?? 0;
      if (intended.has(s)) this.#snapshots.add(s);
      this.#created += delta;
      this.#intended += meant;
      if (delta > meant) {
        // Known bugs: each extra job is explained by a failed request whose trace shows one (a lost POST
        // answer and a failed re-read, or an unreadable 2xx answer to the POST).
        const explained = [...groups.values()]
          .filter((g) => g.snapshotId === s)
          .flatMap((g) => g.requests)
          .filter((d) => d.jobId === undefined)
          .map((d) => knownDownloadBug(d.answer.requestId, exchanges))
          .filter((b) => b !== undefined);
        const reuseOnly = [...groups.values()].every((g) => g.snapshotId !== s || g.intent === 'reuse');
        // Keys whose first outcome was unknown and that then made more than one job (open bug).
        const raced = [...groups.values()]
          .filter((g) => g.snapshotId === s && hadUnknownOutcome(g.requests))
          .reduce((n, g) => n + Math.max(0, freshJobs(g.requests) - 1), 0);
        const known: KnownBug | undefined =
          raced > 0 && raced >= delta - meant
            ? 'unknown-outcome-race'
            : explained.length >= delta - meant
              ? explained[0]
              : reuseOnly && counts.tenantOverOnePage.has(s)
                ? 'tenant-list-first-page'
                : undefined;
        const detail = [...groups.entries()]
          .filter(([, g]) => g.snapshotId === s)
          .map(
            ([name, g]) =>
              `${name}: ${g.requests.map((d) => `${describeDownload(d)} [${trace(d.answer.requestId, exchanges)}]`).join(' | ')}`,
          );
        this.#p.add(
          `round ${r.round} snapshot ${s}: ${delta} jobs created, at most ${meant} intended; ${detail.join('; ')}`,
          known,
        );
      }
    }
  }

  result(): Check {
    return this.#p.check(
      'no snapshot got more DOWNLOAD jobs than the distinct requests meant to create one',
      `${this.#requests} download requests in ${this.#groups} groups (${this.#keys} idempotency keys) on ${this.#snapshots.size} snapshots; ${this.#proofs} typed failures proving nothing was created; ${this.#intended} jobs intended at most, ${this.#created} created (jobsCreatedFor deltas), ${this.#answeredNew} answers with reused:false`,
    );
  }
}

/** Some request of the group answered "Atlas may have created the job" (`extensions.outcome: unknown`). */
const hadUnknownOutcome = (requests: DownloadOutcome[]) =>
  requests.some((d) => d.answer.errors.some((e) => e.extensions?.outcome === 'unknown'));

/** Distinct jobs the group's requests answered as newly created (reused:false). */
const freshJobs = (requests: DownloadOutcome[]) =>
  new Set(requests.filter((d) => d.reused === false).map((d) => d.jobId)).size;

const isJobList = (e: Exchange) => e.method === 'GET' && /\/(restores|restoreJobs)(\?|$)/.test(e.target);
const failed = (e: Exchange) => e.status === undefined || e.status < 200 || e.status >= 300;

/**
 * The known bug a failed download request's trace shows, if any: a POST without an answer (reset after
 * it was handled) then a failed re-read of the job list; or a POST answered 2xx (so applied) that
 * nonetheless failed (its body unreadable).
 */
function knownDownloadBug(requestId: string, exchanges: readonly Exchange[]): KnownBug | undefined {
  const mine = exchanges.filter((e) => e.requestId === requestId).sort((a, b) => a.sentAt - b.sentAt);
  if (mine.some((e) => e.method === 'POST' && e.status !== undefined && e.status >= 200 && e.status < 300)) {
    return 'post-2xx-unreadable';
  }
  const post = mine.findIndex((e) => e.method === 'POST' && e.status === undefined);
  if (post < 0) return undefined;
  const rereads = mine.slice(post + 1).filter(isJobList);
  return rereads.length > 0 && failed(rereads[rereads.length - 1]!) ? 'lost-post-reread' : undefined;
}

/** The upstream round trips of one GraphQL request, compactly: `GET restoreJobs 429, POST download reset`. */
export function trace(requestId: string, exchanges: readonly Exchange[]): string {
  return exchanges
    .filter((e) => e.requestId === requestId)
    .map((e) => {
      const path = e.target.split('?')[0]!.split('/');
      const last = /^[a-f0-9]{24}$/.test(path[path.length - 1] ?? '')
        ? `${path[path.length - 2]}/{id}`
        : path[path.length - 1];
      return `${e.method} ${last} ${e.status ?? e.error ?? '?'}`;
    })
    .join(', ');
}

function describeDownload(d: DownloadOutcome): string {
  if (d.jobId) return `job ${d.jobId}${d.reused ? ' (reused)' : ''}`;
  const a = d.answer;
  if (a.outcome === 'hung' || a.outcome === 'broken') return a.outcome;
  const e = a.errors[0];
  const atlas = e?.extensions?.atlas as { status?: number; errorCode?: string } | undefined;
  return `${e ? codeOf(e) : '?'}${atlas?.status ? ` (atlas ${atlas.status} ${atlas.errorCode ?? ''})` : ''}`;
}

// ---------------------------------------------------------------------------------------------------
// 3. Every subscription ended with its job's terminal state, or a typed error for a permanent failure.

const TERMINAL = new Set(['COMPLETED', 'FAILED']);

type EventPayload = { data?: { restoreJobStatus?: { status?: string } }; errors?: GraphQLErrorShape[] };

function summarise(events: { event: string; data: unknown }[]): string {
  return (
    events
      .map((e) => {
        const d = e.data as EventPayload | undefined;
        const s = d?.data?.restoreJobStatus?.status ?? (d?.errors?.[0] ? codeOf(d.errors[0]) : undefined);
        return s ? `${e.event}:${s}` : e.event;
      })
      .join(' → ') || 'none'
  );
}

/** A job read on the Digest gateway answered 401, re-challenged, and got 401 again (stale nonce). */
function doubleDigest401(jobId: string, exchanges: readonly Exchange[]): boolean {
  const calls = new Map<string, number[]>();
  for (const e of exchanges) {
    if (e.gateway !== 'digest' || e.method !== 'GET' || !e.target.includes(`/${jobId}`)) continue;
    const l = calls.get(e.requestId) ?? [];
    l.push(e.status ?? 0);
    calls.set(e.requestId, l);
  }
  return [...calls.values()].some((l) => l.some((st, i) => st === 401 && l[i + 1] === 401));
}

export class SubscriptionsCheck {
  readonly #p: Problems;
  readonly #ends: Record<string, number> = {};
  #total = 0;
  #terminal = 0;
  #typedEnd = 0;
  #peak = 0;
  #leastPeak = Infinity;
  #held = 0;
  #events = 0;
  #skipped = 0;
  #fallback = 0;
  #longest = 0;

  constructor(tolerateKnown = false) {
    this.#p = new Problems(tolerateKnown);
  }

  /** `terminalOf`: the job's state in the simulator at the end of the round; `exchanges`: its upstream log. */
  add(
    r: RoundOutcome,
    terminalOf: (s: SubscriptionOutcome) => string | undefined,
    exchanges: readonly Exchange[] = [],
  ): void {
    this.#peak = Math.max(this.#peak, r.peakLiveSubscriptions);
    this.#leastPeak = Math.min(this.#leastPeak, r.peakLiveSubscriptions);
    this.#skipped += r.subscriptionsSkipped;
    for (const s of r.subscriptions) {
      this.#total++;
      if (s.fallback) this.#fallback++;
      if (s.source < 0) this.#held++;
      const what = `round ${r.round} subscription to ${s.job.jobId} via ${s.gateway} (${s.source < 0 ? 'held' : `from #${s.source}`})`;
      const res = s.result;
      this.#events += res.events.length;
      this.#longest = Math.max(this.#longest, res.ms);
      if (res.ended !== 'server') {
        this.#p.add(
          `${what}: ${res.ended} after ${res.ms} ms (${res.detail ?? ''}); events ${summarise(res.events)}`,
        );
        continue;
      }
      const next = res.events.filter((e) => e.event === 'next');
      const payload = next[next.length - 1]?.data as EventPayload | undefined;
      const status = payload?.data?.restoreJobStatus?.status;
      const errCode = payload?.errors?.[0] ? codeOf(payload.errors[0]) : undefined;
      inc(this.#ends, status ?? errCode ?? 'nothing');
      const completes = res.events.filter((e) => e.event === 'complete').length;
      if (completes !== 1 || res.events[res.events.length - 1]?.event !== 'complete') {
        this.#p.add(`${what}: the stream did not end with one 'complete' event: ${summarise(res.events)}`);
        continue;
      }
      if (s.expect === 'NOT_FOUND') {
        if (errCode === 'NOT_FOUND') this.#typedEnd++;
        else {
          const known =
            errCode === 'UNAUTHENTICATED' && s.gateway === 'digest' && doubleDigest401(s.job.jobId, exchanges)
              ? ('digest-stale-resend' as const)
              : undefined;
          this.#p.add(`${what}: expected a typed NOT_FOUND, got ${summarise(res.events)}`, known);
        }
        continue;
      }
      const expected = terminalOf(s);
      if (errCode !== undefined) {
        const message = payload?.errors?.[0]?.message ?? '';
        let known: KnownBug | undefined;
        if (
          errCode === 'UNAUTHENTICATED' &&
          s.gateway === 'digest' &&
          doubleDigest401(s.job.jobId, exchanges)
        ) {
          known = 'digest-stale-resend';
        } else if (
          errCode === 'BAD_USER_INPUT' &&
          (payload?.errors?.[0]?.extensions?.atlas as { errorCode?: string } | undefined)?.errorCode ===
            'HTTP_400'
        ) {
          // Clients no longer get the unreadable body (it is logged): Atlas's 400 without an errorCode is its sign.
          known = 'unreadable-400';
        }
        this.#p.add(
          `${what}: ended with ${errCode} ("${message.slice(0, 160)}") although the job exists and ends ${expected}; ${summarise(res.events)}`,
          known,
        );
        continue;
      }
      if (!status || !TERMINAL.has(status) || status !== expected) {
        this.#p.add(
          `${what}: last state ${status ?? 'none'}, the job ends ${expected}; ${summarise(res.events)}`,
        );
        continue;
      }
      const statuses = next.map((e) => (e.data as EventPayload).data?.restoreJobStatus?.status);
      if (statuses.some((x, i) => i > 0 && x === statuses[i - 1])) {
        this.#p.add(`${what}: the same state twice in a row: ${statuses.join(' → ')}`);
        continue;
      }
      this.#terminal++;
    }
  }

  result(deadlineMs: number): Check {
    return this.#p.check(
      `every subscription ended with the job’s terminal state, or a typed error for a permanent failure (none hung past ${deadlineMs / 1000} s)`,
      `${this.#total} SSE subscriptions (${this.#held} held; live at once: at least ${this.#leastPeak === Infinity ? 0 : this.#leastPeak} at the peak of every round, at most ${this.#peak}; ${this.#fallback} follow another job after their download failed, ${this.#skipped} skipped): ${this.#terminal} ended in the job's terminal state, ${this.#typedEnd} with a typed permanent error (NOT_FOUND); ${this.#events} events; longest ${this.#longest} ms; last states: ${list(this.#ends)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// 4. No retry storm, and Retry-After never violated.

export class RetryBoundCheck {
  readonly #p = new Problems(false);
  readonly #rounds: number[] = [];
  readonly #amplification: number[] = [];

  constructor(
    readonly baseline: number | undefined,
    readonly bound: number,
  ) {}

  /** `requests`: the simulator's request count for the round; `calls`/`sends`: the gateways' own. */
  add(round: number, requests: number, calls: number, sends: number): void {
    this.#rounds.push(requests);
    this.#amplification.push(sends / Math.max(1, calls));
    if (this.baseline === undefined) return;
    const limit = Math.ceil(this.bound * this.baseline);
    if (requests > limit) {
      this.#p.add(
        `round ${round}: ${requests} upstream requests > ${limit} (${this.bound}× the fault-free ${this.baseline})`,
      );
    }
  }

  result(): Check {
    const max = Math.max(0, ...this.#rounds);
    const amp = Math.max(0, ...this.#amplification).toFixed(2);
    if (this.baseline === undefined) {
      return this.#p.check(
        'no retry storm',
        `no fault-free run: bound not checked; chaos max ${max} requests per round`,
      );
    }
    const limit = Math.ceil(this.bound * this.baseline);
    return this.#p.check(
      `no retry storm: upstream requests per round ≤ ${this.bound}× the fault-free run of the same workload`,
      `fault-free ${this.baseline} requests, bound ${limit}, chaos max ${max} (${(max / Math.max(1, this.baseline)).toFixed(2)}×) over ${this.#rounds.length} round(s); round trips per Atlas call at most ${amp}`,
    );
  }
}

/** Allowed early arrival, for timer granularity (the wall-clock reading only). */
const SLACK_MS = 5;

/**
 * Retry-After, from the exchange log: after an answer with Retry-After (429/503), the same call (same
 * x-request-id, method and target: the gateway honours it per call) sends nothing before it has
 * waited at least that long; nor does a job poller read that job again. Counted, not timed: the next
 * send must come from a wait (the retry backoff, the poller's timer; recorder.ts WaitLog) that began
 * after the answer and asked for at least Retry-After. With `timed` (the soak of `npm run chaos`),
 * the measured gap is checked as well. Other calls for the same project inside such a window are
 * counted, not failed (documented per-call design).
 */
export class RetryAfterCheck {
  readonly #p: Problems;
  readonly #timed: boolean;
  #windows = 0;
  #retried = 0;
  #poller = 0;
  #other = 0;
  #n429 = 0;
  #n503 = 0;

  constructor(tolerateKnown = false, opts: { timed?: boolean } = {}) {
    this.#p = new Problems(tolerateKnown);
    this.#timed = opts.timed ?? false;
  }

  /** `waits`: the gateways' backoff sleeps and poller timers of the round (recorder.ts WaitLog). */
  add(round: number, exchanges: readonly Exchange[], waits: readonly Wait[]): void {
    const sorted = [...exchanges].sort((a, b) => a.sentAt - b.sentAt);
    const limited = (e: Exchange) =>
      e.retryAfterMs !== undefined &&
      e.headersAt !== undefined &&
      e.answeredSeq !== undefined &&
      (e.status === 429 || e.status === 503);
    const group = (key: (e: Exchange) => string | undefined) => {
      const m = new Map<string, Exchange[]>();
      for (const e of sorted) {
        const k = key(e);
        if (k === undefined) continue;
        const l = m.get(k) ?? [];
        l.push(e);
        m.set(k, l);
      }
      return m;
    };
    const scan = (
      groups: Map<string, Exchange[]>,
      label: string,
      onWindow: () => void,
      onNext: () => void,
    ) => {
      // The limited answers and the later sends of their key. One GraphQL request (one x-request-id)
      // may read the same target in two calls: any later send of the key may be the call's own.
      const owed: { key: string; e: Exchange; later: Exchange[] }[] = [];
      for (const [key, l] of groups) {
        l.forEach((e, i) => {
          if (!limited(e)) return;
          onWindow();
          const later = l.slice(i + 1).filter((x) => x.sentSeq > e.answeredSeq!);
          if (later.length === 0) return;
          onNext();
          owed.push({ key, e, later });
        });
      }
      // Each wait honours one answer at most: a wait of at least Retry-After that began after the
      // answer and ended before the send. Matched earliest send first, each taking the fitting wait
      // that began first (the one least likely to fit a later answer), so no answer steals the wait
      // another one needs.
      owed.sort((p, q) => p.later[0]!.sentSeq - q.later[0]!.sentSeq);
      const used = new Set<Wait>();
      for (const { key, e, later } of owed) {
        let honouring: { x: Exchange; w: Wait } | undefined;
        for (const x of later) {
          const w = waits.find(
            (w) =>
              !used.has(w) &&
              w.seq > e.answeredSeq! &&
              w.endSeq !== undefined &&
              w.endSeq < x.sentSeq &&
              w.ms >= e.retryAfterMs!,
          );
          if (w) {
            honouring = { x, w };
            break;
          }
        }
        if (!honouring) {
          const next = later[0]!;
          const between = waits
            .filter((w) => w.seq > e.answeredSeq! && w.endSeq !== undefined && w.endSeq < next.sentSeq)
            .map((w) => `${w.kind} ${w.ms} ms${used.has(w) ? ' (taken)' : ''}`);
          this.#p.add(
            `round ${round} ${label} ${key}: HTTP ${e.status} with Retry-After ${e.retryAfterMs} ms, next request sent with no wait of that length between (waits ended in between: ${between.slice(0, 8).join(', ') || 'none'}${between.length > 8 ? ', …' : ''}), nor before any of the ${later.length} later one(s)`,
          );
          continue;
        }
        used.add(honouring.w);
        const gap = honouring.x.sentAt - e.headersAt!;
        if (this.#timed && gap < e.retryAfterMs! - SLACK_MS) {
          this.#p.add(
            `round ${round} ${label} ${key}: HTTP ${e.status} with Retry-After ${e.retryAfterMs} ms, next request ${Math.round(gap)} ms later`,
          );
        }
      }
    };
    scan(
      group((e) => `${e.gateway} ${e.requestId} ${e.method} ${e.target}`),
      'call',
      () => this.#windows++,
      () => this.#retried++,
    );
    const isPollRead = (e: Exchange) =>
      !e.requestId.startsWith('chaos-') &&
      e.method === 'GET' &&
      /\/(restoreJobs|restores)\/[^/?]+/.test(e.target);
    scan(
      group((e) => (isPollRead(e) ? `${e.gateway} ${e.target}` : undefined)),
      'poller',
      () => this.#poller++,
      () => undefined,
    );
    const projectOf = (t: string) => /\/groups\/([a-f0-9]{24})/.exec(t)?.[1];
    for (const e of sorted) {
      if (e.status === 429) this.#n429++;
      if (e.status === 503 && e.retryAfterMs !== undefined) this.#n503++;
      if (!limited(e)) continue;
      const p = projectOf(e.target);
      if (!p) continue;
      const until = e.headersAt! + e.retryAfterMs!;
      this.#other += sorted.filter(
        (x) =>
          x.sentAt > e.headersAt! &&
          x.sentAt < until &&
          x.requestId !== e.requestId &&
          projectOf(x.target) === p,
      ).length;
    }
  }

  result(): Check {
    return this.#p.check(
      `Retry-After never violated (per call, and by the job pollers): the next send follows a wait of at least Retry-After${this.#timed ? ', and the measured gap agrees' : ''}`,
      `${this.#windows} answers with Retry-After (${this.#n429} × 429, ${this.#n503} × 503), ${this.#retried} followed by a retry of the same call, ${this.#poller} on job-poller reads; ${this.#other} requests of other calls for the same project inside a window (allowed: honoured per call)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// 5. No leak.

export class LeaksCheck {
  readonly #p: Problems;
  #maxLeft = 0;
  #maxSockets = 0;
  #grown = 'not measured';
  #heap = 'not measured';

  constructor(tolerateKnown = false) {
    this.#p = new Problems(tolerateKnown);
  }

  /** After a round: pollers and subscribers left, gateway sockets left once the client has gone. */
  addRound(round: number, left: { pollers: number; subscribers: number; sockets: number }): void {
    this.#maxLeft = Math.max(this.#maxLeft, left.pollers + left.subscribers);
    this.#maxSockets = Math.max(this.#maxSockets, left.sockets);
    if (left.pollers || left.subscribers) {
      this.#p.add(
        `round ${round}: ${left.pollers} pollers and ${left.subscribers} subscribers left after the round`,
      );
    }
    if (left.sockets)
      this.#p.add(`round ${round}: ${left.sockets} gateway sockets still open after the client left`);
  }

  /**
   * After teardown: handles by type that grew over the baseline (counted), and the heap: a failure
   * only when `toleranceMb` is given (the soak of `npm run chaos`); otherwise reported, not judged.
   */
  addTeardown(
    grown: Record<string, string>,
    heapBeforeMb: number,
    heapAfterMb: number,
    toleranceMb: number | undefined,
  ): void {
    for (const [type, change] of Object.entries(grown))
      this.#p.add(`active ${type}: ${change} after teardown`);
    this.#grown = Object.keys(grown).length ? JSON.stringify(grown) : 'none';
    const growth = Math.round((heapAfterMb - heapBeforeMb) * 10) / 10;
    if (toleranceMb !== undefined && growth > toleranceMb)
      this.#p.add(`heap grew ${growth} MB over the baseline (tolerance ${toleranceMb} MB)`);
    this.#heap = `${heapBeforeMb} → ${heapAfterMb} MB (${growth >= 0 ? '+' : ''}${growth}, ${
      toleranceMb !== undefined ? `tolerance ${toleranceMb}` : 'not judged: timing checks off'
    })`;
  }

  result(): Check {
    return this.#p.check(
      'memory, sockets and timers back to baseline (no leak)',
      `pollers+subscribers left after a round: max ${this.#maxLeft}; gateway sockets left: max ${this.#maxSockets}; handles/timers grown after teardown: ${this.#grown}; heap after GC ${this.#heap}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// 6. Every simulator answer is one the Atlas spec allows (but for the injected wire faults).

export class ContractCheck {
  readonly #p = new Problems(false);
  #checked = 0;
  #injected = 0;

  /** `contract`: the chaos stack's spec check of every simulator answer (chaos/stack.ts). */
  add(contract: { checked: number; injected: readonly Violation[]; violations: readonly Violation[] }): void {
    this.#checked += contract.checked;
    this.#injected += contract.injected.length;
    for (const v of contract.violations) this.#p.add(`${v.operationId} ${v.status}: ${v.problem}`);
  }

  result(): Check {
    return this.#p.check(
      'every simulator answer conforms to the Atlas spec (schema/atlas/openapi.json), injected truncated/malformed bodies aside',
      `${this.#checked} answers checked, ${this.#injected} broken on purpose by an injected body fault, ${this.#p.count} violations`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// 7. No duplicate job across replica deaths and Redis outages (the fleet of issue #16).

/**
 * The fleet scenarios (chaos/fleet-scenarios.ts): in each, the jobs Atlas created equal the distinct
 * requests meant to create one, and every answer is the job or a typed code that tells the truth about
 * whether one exists (judged per scenario). With `timed` (`npm run chaos`), a mutation answered later
 * than the execution timeout plus `marginMs` is a problem too; the run inside `npm test` only counts them.
 */
export class FleetCheck {
  readonly #p = new Problems(false);
  readonly #codes: Record<string, number> = {};
  readonly #byScenario: Record<string, number> = {};
  #runs = 0;
  #answers = 0;
  #intended = 0;
  #created = 0;
  #late = 0;
  #slowest = 0;
  #killed = 0;

  constructor(
    readonly timeoutMs: number,
    readonly opts: { timed: boolean; marginMs: number },
  ) {}

  add(runs: readonly ScenarioRun[]): void {
    for (const r of runs) {
      this.#runs++;
      inc(this.#byScenario, r.name);
      this.#intended += r.intended;
      this.#created += r.created;
      for (const p of r.problems) this.#p.add(`pass ${r.pass} ${r.name}: ${p}`);
      for (const a of r.answers) {
        this.#answers++;
        if (a.replicaKilled && a.httpStatus === undefined) {
          this.#killed++;
          continue;
        }
        const code = a.hung
          ? 'hung'
          : a.data && Object.values(a.data)[0]
            ? 'job'
            : String(a.errors[0]?.extensions?.code ?? 'untyped');
        inc(this.#codes, code);
        this.#slowest = Math.max(this.#slowest, a.ms);
        if (a.ms > this.timeoutMs + this.opts.marginMs) {
          this.#late++;
          if (this.opts.timed) {
            this.#p.add(
              `pass ${r.pass} ${r.name}: ${a.requestId} answered after ${a.ms} ms (execution timeout ${this.timeoutMs} ms)`,
            );
          }
        }
      }
    }
  }

  result(): Check {
    return this.#p.check(
      'no duplicate job across replica deaths and Redis outages: jobs created == distinct intended requests, every answer the job or a typed code that tells the truth',
      `${this.#runs} scenario runs (${list(this.#byScenario)}); ${this.#created} jobs created for ${this.#intended} intended requests; ${this.#answers} answers: ${list(this.#codes)}, ${this.#killed} lost with their killed replica; slowest ${this.#slowest} ms, ${this.#late} later than the execution timeout (${this.timeoutMs} ms) + ${this.opts.marginMs} ms${this.opts.timed ? '' : ' (counted, not judged)'}`,
    );
  }
}
