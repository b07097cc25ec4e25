import { setTimeout as delay } from 'node:timers/promises';
import { SEED } from '../src/simulator/seed.js';
import type { Fleet } from './fleet.js';
import { fleetSnapshots, type FleetAnswer, type FleetConfig, type Replica } from './fleet.js';
import { fork, type Prng } from './prng.js';

/**
 * The replica and Redis faults of issue #16, each a scripted scenario on the fleet (chaos/fleet.ts):
 * Redis down before, during and after a keyed mutation; Redis restarted mid-flight with its AOF and
 * as an empty instance (a restart without persistence); SIGKILL of the replica that holds the key,
 * before and after its POST; a slow POST and hung POSTs past the deadline (keyed, unkeyed, and one
 * Atlas never turns into a job).
 */
export const SCENARIOS = [
  'redis-down-before',
  'redis-down-during',
  'redis-down-after',
  'redis-restart-aof',
  'redis-restart-empty',
  'kill-before-post',
  'kill-after-post',
  'slow-post',
  'hung-post',
  'hung-post-unkeyed',
  'hung-post-no-job',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const F = SEED.flex;
const TARGET = F.other;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id } } }`;
const POST = {
  download: 'downloadGroupFlexClusterBackup',
  restore: 'createGroupFlexClusterBackupRestoreJob',
} as const;

/** One scenario as it ran: what was sent, what came back, what Atlas made, and what went wrong. */
export interface ScenarioRun {
  name: ScenarioName;
  pass: number;
  kind: 'download' | 'restore';
  snapshotId: string;
  answers: (FleetAnswer & { replicaKilled: boolean })[];
  /** Distinct requests meant to create a job (one per scenario: every scenario ends with its job). */
  intended: number;
  /** Jobs Atlas (the simulator) created for the scenario's snapshot meanwhile. */
  created: number;
  problems: string[];
  durationMs: number;
}

const codeOf = (a: FleetAnswer) => a.errors[0]?.extensions?.code as string | undefined;
const jobOf = (a: FleetAnswer) =>
  (Object.values(a.data ?? {})[0] as { job?: { id?: string } } | undefined)?.job?.id;

class Ctx {
  readonly answers: ScenarioRun['answers'] = [];
  readonly problems: string[] = [];
  readonly killed = new Set<string>();
  readonly key: string;

  constructor(
    readonly fleet: Fleet,
    readonly name: ScenarioName,
    readonly kind: 'download' | 'restore',
    readonly snapshotId: string,
    readonly rng: Prng,
    tag: string,
  ) {
    this.key = `${tag}-${name}`;
  }

  /** `n` different live replicas, in a seeded order. */
  pick(n: number): Replica[] {
    const live = this.fleet.replicas.filter((r) => r.proc.exitCode === null && r.proc.signalCode === null);
    return this.rng.shuffle(live).slice(0, n);
  }

  input(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const base = { projectId: F.groupId, clusterName: F.clusterName, snapshotId: this.snapshotId };
    return this.kind === 'download'
      ? { ...base, reuseExisting: false, ...extra }
      : { ...base, targetClusterName: TARGET.clusterName, targetProjectId: TARGET.groupId, ...extra };
  }

  async ask(replica: Replica, extra: Record<string, unknown> = { idempotencyKey: this.key }) {
    const answer = await this.fleet.ask(
      replica,
      this.kind === 'download' ? DOWNLOAD : RESTORE,
      this.input(extra),
    );
    this.answers.push({ ...answer, replicaKilled: this.killed.has(replica.id) });
    return answer;
  }

  expect(answer: FleetAnswer, code: string): void {
    if (codeOf(answer) !== code) {
      this.problems.push(
        `${answer.requestId} via ${answer.replica}: expected ${code}, got ${codeOf(answer) ?? (jobOf(answer) ? `job ${jobOf(answer)}` : 'nothing')}`,
      );
    }
  }

  /**
   * Sends the request again (round robin over `replicas`, a pause between) until it answers a job, as
   * a client following the answers would: STORE_UNAVAILABLE and OUTCOME_UNKNOWN say to retry with the
   * key. Gives up after 40 s (a problem).
   */
  async retryUntilJob(replicas: Replica[], extra: Record<string, unknown> = { idempotencyKey: this.key }) {
    const until = performance.now() + 40_000;
    for (let n = 0; performance.now() < until; n++) {
      const a = await this.ask(replicas[n % replicas.length]!, extra);
      const job = jobOf(a);
      if (job) return job;
      await delay(200);
    }
    this.problems.push(`no job for ${JSON.stringify(extra)} after 40 s of retries`);
    return undefined;
  }

  async kill(replica: Replica): Promise<void> {
    this.killed.add(replica.id);
    await this.fleet.kill(replica);
  }
}

/** Polls `test` (a state, not a duration) until it holds; a problem after 30 s. */
async function until(ctx: Ctx, what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (test()) return;
    await delay(50);
  }
  ctx.problems.push(`${what} never happened`);
}

const scripts: Record<ScenarioName, { kind: 'download' | 'restore'; run: (c: Ctx) => Promise<void> }> = {
  'redis-down-before': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      await c.fleet.redis.stop('SIGKILL');
      await c.fleet.untilReady([a], 503);
      c.expect(await c.ask(a), 'STORE_UNAVAILABLE');
      await c.fleet.redis.start();
      await c.fleet.untilReady();
      await c.retryUntilJob([b, a]);
    },
  },
  'redis-down-during': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.download);
      const first = c.ask(a);
      await until(c, 'the POST reaching Atlas', held);
      await c.fleet.redis.stop('SIGKILL');
      c.fleet.release();
      await first;
      await c.fleet.redis.start();
      await c.fleet.untilReady();
      await c.retryUntilJob([b, a]);
    },
  },
  'redis-down-after': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      await c.retryUntilJob([a]);
      await c.fleet.redis.stop('SIGKILL');
      await c.fleet.untilReady([a, b], 503);
      c.expect(await c.ask(a), 'STORE_UNAVAILABLE');
      c.expect(await c.ask(b), 'STORE_UNAVAILABLE');
      await c.fleet.redis.start();
      await c.fleet.untilReady();
      await c.retryUntilJob([b, a]);
    },
  },
  'redis-restart-aof': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.download);
      const first = c.ask(a);
      await until(c, 'the POST reaching Atlas', held);
      await c.fleet.redis.stop('SIGTERM');
      await c.fleet.redis.start();
      c.fleet.release();
      await first;
      await c.fleet.untilReady();
      await c.retryUntilJob([b, a]);
    },
  },
  'redis-restart-empty': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.download);
      const first = c.ask(a);
      await until(c, 'the POST reaching Atlas', held);
      // Back without any data, as a Redis without persistence restarts: every key is gone.
      await c.fleet.redis.stop('SIGKILL');
      await c.fleet.redis.start(undefined, true);
      c.fleet.release();
      await first;
      await c.fleet.untilReady();
      await c.retryUntilJob([b, a]);
    },
  },
  'kill-before-post': {
    kind: 'restore',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      // The jobs list is read before every POST; the snapshot read is not (a snapshot the replica already
      // read COMPLETED is not read again: src/backup/completed-snapshots.ts), so a long soak that reuses
      // snapshots would wait for it forever.
      const held = c.fleet.hold('listGroupFlexClusterBackupRestoreJobs');
      const first = c.ask(a);
      await until(c, 'the jobs list read reaching Atlas', held);
      await c.kill(a);
      await first;
      await c.retryUntilJob([b]);
      c.fleet.release();
      await c.fleet.spawn(a.id);
    },
  },
  'kill-after-post': {
    kind: 'restore',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.restore);
      const first = c.ask(a);
      await until(c, 'the POST reaching Atlas', held);
      await c.kill(a);
      await first;
      c.fleet.release(); // Atlas creates the job the dead replica asked for
      await until(c, 'the job being created', () => c.fleet.sim.store.jobsCreatedFor(c.snapshotId) > 0);
      await c.retryUntilJob([b]);
      await c.fleet.spawn(a.id);
    },
  },
  'slow-post': {
    kind: 'restore',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const latencyMs = c.fleet.config.executionTimeoutMs + 500; // past the deadline, within the upstream timeout
      c.fleet.sim.faults.add({ operationId: POST.restore, latencyMs, times: 1 });
      c.expect(await c.ask(a), 'OUTCOME_UNKNOWN');
      await c.retryUntilJob([b, a]);
    },
  },
  'hung-post': {
    kind: 'restore',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.restore);
      c.expect(await c.ask(a), 'OUTCOME_UNKNOWN');
      await until(c, 'the POST reaching Atlas', held);
      // The replica's upstream timeout passes (its POST fails, sent: outcome unknown), then Atlas,
      // late, creates the job.
      await delay(c.fleet.config.upstreamTimeoutMs + 500);
      c.fleet.release();
      await c.retryUntilJob([b, a]);
    },
  },
  'hung-post-unkeyed': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      const held = c.fleet.hold(POST.download);
      const answer = await c.ask(a, {});
      c.expect(answer, 'OUTCOME_UNKNOWN');
      const key = answer.errors[0]?.extensions?.idempotencyKey;
      await until(c, 'the POST reaching Atlas', held);
      await delay(c.fleet.config.upstreamTimeoutMs + 500);
      c.fleet.release();
      if (typeof key !== 'string') {
        c.problems.push(`${answer.requestId}: OUTCOME_UNKNOWN without a key to retry with`);
        return;
      }
      await c.retryUntilJob([b, a], { idempotencyKey: key });
    },
  },
  'hung-post-no-job': {
    kind: 'download',
    run: async (c) => {
      const [a, b] = c.pick(2) as [Replica, Replica];
      // Atlas never makes a job of it (its late answer is a 503 to a closed connection): the key
      // stays unknown until the settle time, then a retry proves there is none and creates it.
      const held = c.fleet.hold(POST.download, { status: 503 });
      c.expect(await c.ask(a), 'OUTCOME_UNKNOWN');
      await until(c, 'the POST reaching Atlas', held);
      await delay(c.fleet.config.upstreamTimeoutMs + 500);
      c.fleet.release();
      await c.retryUntilJob([b, a]);
    },
  },
};

/** Waits until no restore onto the target runs (Atlas refuses a second one with 409). */
async function targetFree(fleet: Fleet): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const busy = fleet.sim.store
      .listRestoreJobs(F.groupId, F.clusterName)
      .some(
        (j) =>
          j.deliveryType === 'RESTORE' &&
          j.targetDeploymentItemName === TARGET.clusterName &&
          ['QUEUED', 'RUNNING', 'PENDING'].includes(fleet.sim.store.jobState(j).status),
      );
    if (!busy) return;
    await delay(50);
  }
}

/**
 * The truth of every answer of a run: a job answered is the one job Atlas made for the scenario; a
 * typed code says what is true of this request (STORE_UNAVAILABLE and a retryable timeout: it sent
 * no POST that Atlas accepted; OUTCOME_UNKNOWN: not retryable, with a key to retry with, the
 * request's own when it had one). Plus: jobs created == intended, no answer hung.
 */
function judge(c: Ctx, created: number, jobIds: string[], timeoutMs: number): string[] {
  const problems = [...c.problems];
  if (created !== 1) {
    problems.push(`${created} jobs created for one intended request (snapshot ${c.snapshotId})`);
  }
  for (const a of c.answers) {
    const what = `${a.requestId} via ${a.replica}`;
    if (a.replicaKilled && a.httpStatus === undefined && !a.hung) continue; // its replica died: no answer
    if (a.hung) {
      problems.push(`${what}: no answer within ${4 * timeoutMs} ms`);
      continue;
    }
    const job = jobOf(a);
    if (job) {
      if (!jobIds.includes(job))
        problems.push(`${what}: answered job ${job}, not the scenario's (${jobIds.join(', ')})`);
      continue;
    }
    const e = a.errors[0];
    const code = codeOf(a);
    const ext = e?.extensions ?? {};
    switch (code) {
      case 'STORE_UNAVAILABLE':
        if (ext.retryable !== true) problems.push(`${what}: STORE_UNAVAILABLE not retryable`);
        if (c.fleet.postsOf(a.requestId) > 0)
          problems.push(`${what}: STORE_UNAVAILABLE after a POST Atlas took`);
        break;
      case 'UPSTREAM_UNAVAILABLE':
        if (ext.retryable === true && c.fleet.postsOf(a.requestId) > 0) {
          problems.push(`${what}: "retryable" although a POST of it created a job`);
        }
        break;
      case 'OUTCOME_UNKNOWN':
        if (ext.retryable !== false) problems.push(`${what}: OUTCOME_UNKNOWN said retryable`);
        if (typeof ext.idempotencyKey !== 'string') problems.push(`${what}: OUTCOME_UNKNOWN without a key`);
        else if (a.key !== undefined && ext.idempotencyKey !== a.key) {
          problems.push(
            `${what}: OUTCOME_UNKNOWN names key ${String(ext.idempotencyKey)}, not the request's ${a.key}`,
          );
        }
        break;
      default:
        problems.push(`${what}: ${code ?? 'untyped'} (${e?.message ?? 'no error'})`);
    }
  }
  return problems;
}

/** A pass over the scenarios: each on a fresh snapshot, in a seeded order. */
export async function runScenarios(
  fleet: Fleet,
  seed: number,
  pass: number,
  names: readonly ScenarioName[] = SCENARIOS,
  log: (line: string) => void = () => {},
): Promise<ScenarioRun[]> {
  const rng = fork(seed, `fleet:${pass}`);
  const pool = fleetSnapshots(fleet.sim);
  const runs: ScenarioRun[] = [];
  for (const [i, name] of rng.shuffle(names).entries()) {
    const script = scripts[name];
    // A snapshot no earlier scenario of the run used (the pool is large; a long soak wraps around).
    const snapshotId = pool[(pass * names.length + i) % pool.length]!;
    if (script.kind === 'restore') await targetFree(fleet);
    const before = fleet.sim.store.jobsCreatedFor(snapshotId);
    const c = new Ctx(
      fleet,
      name,
      script.kind,
      snapshotId,
      fork(seed, `fleet:${pass}:${name}`),
      `s${seed}p${pass}`,
    );
    const started = performance.now();
    try {
      await script.run(c);
    } catch (err) {
      c.problems.push(`the scenario itself failed: ${(err as Error).message}`);
    } finally {
      fleet.release();
      fleet.sim.faults.clear();
    }
    const created = fleet.sim.store.jobsCreatedFor(snapshotId) - before;
    const jobIds = fleet.sim.store
      .listRestoreJobs(F.groupId, F.clusterName)
      .filter((j) => j.snapshotId === snapshotId)
      .map((j) => j.id);
    const run: ScenarioRun = {
      name,
      pass,
      kind: script.kind,
      snapshotId,
      answers: c.answers,
      intended: 1,
      created,
      problems: judge(c, created, jobIds, fleet.config.executionTimeoutMs),
      durationMs: Math.round(performance.now() - started),
    };
    runs.push(run);
    log(
      `fleet pass ${pass} ${name}: ${run.answers.length} answers (${summarise(run.answers)}), ${created} job(s) for ${run.intended} intended, ${run.problems.length} problem(s), ${run.durationMs} ms`,
    );
  }
  return runs;
}

/** Codes (or "job") of the answers, counted. */
export function summarise(answers: readonly FleetAnswer[]): string {
  const m = new Map<string, number>();
  for (const a of answers) {
    const k = a.hung
      ? 'hung'
      : jobOf(a)
        ? 'job'
        : (codeOf(a) ?? (a.httpStatus === undefined ? 'no answer' : 'untyped'));
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].map(([k, n]) => `${k} ${n}`).join(', ');
}

export type { FleetConfig };
