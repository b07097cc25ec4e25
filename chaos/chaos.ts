import { ChaosClient } from './client.js';
import type { ChaosConfig } from './config.js';
import { FaultDriver } from './fault-driver.js';
import { Fleet, FLEET_DEFAULTS } from './fleet.js';
import { runScenarios, summarise, type ScenarioRun } from './fleet-scenarios.js';
import {
  AnswersCheck,
  ContractCheck,
  FleetCheck,
  JobsCheck,
  LeaksCheck,
  MaskedErrorsCheck,
  RetryAfterCheck,
  RetryBoundCheck,
  SubscriptionsCheck,
  KNOWN_BUGS,
  type Check,
  type KnownBug,
} from './invariants.js';
import {
  describeFault,
  GATEWAYS,
  planFaults,
  planWorkload,
  type FaultWindow,
  type WorkloadPlan,
} from './plan.js';
import { grownResources, settle, snapshotResources } from './resources.js';
import { startChaosStack, type ChaosStack } from './stack.js';
import { runRound, type RoundOutcome } from './workload.js';
import { SEED } from '../src/simulator/seed.js';

/** The snapshot of the seed's fresh download (URL valid for hours): reuse requests of it create nothing. */
const SEED_FRESH_SNAPSHOT: string = SEED.flex.completedSnapshotId;

export interface RoundSummary {
  round: number;
  durationMs: number;
  requests: number;
  faultHits: number;
  graphql: number;
  subscriptions: number;
  peakLive: number;
  jobsCreated: number;
  rssMb: number;
  heapUsedMb: number;
}

export interface ChaosReport {
  seed: number;
  replay: string;
  config: ChaosConfig;
  startedAt: string;
  durationMs: number;
  baseline: { requests: number; byOperation: Record<string, number>; unexpectedErrors: number } | undefined;
  /** Every round's fault windows (the schedule), and how many requests each window hit. */
  faults: { round: number; windows: FaultWindow[]; hits: Record<number, number> }[];
  faultHitsByLabel: Record<string, number>;
  /** Auth traffic of the chaos stack: token fetches and resends, Digest challenges. */
  auth: string;
  /** Handles by type when the chaos run started (the leak baseline). */
  baselineResources: Record<string, number>;
  rounds: RoundSummary[];
  /** The fleet scenarios (issue #16), one line each; undefined when the fleet was off. */
  fleet: FleetRunSummary[] | undefined;
  checks: Check[];
  ok: boolean;
}

/** One fleet scenario run as the report keeps it. */
export interface FleetRunSummary {
  pass: number;
  name: string;
  kind: string;
  answers: string;
  created: number;
  intended: number;
  problems: string[];
  durationMs: number;
}

const fleetSummary = (r: ScenarioRun): FleetRunSummary => ({
  pass: r.pass,
  name: r.name,
  kind: r.kind,
  answers: summarise(r.answers),
  created: r.created,
  intended: r.intended,
  problems: r.problems,
  durationMs: r.durationMs,
});

/** The fleet's timings for a run's config: the chaos defaults (chaos/fleet.ts) with its replica count. */
const fleetConfig = (config: ChaosConfig) => ({ ...FLEET_DEFAULTS, replicas: config.fleet.replicas });

/**
 * Only the fleet (issue #16): its gateway processes, Redis and simulator, one pass of the configured
 * scenarios, and the fleet invariant. What test/chaos/fleet.test.ts runs inside `npm test`.
 */
export async function runFleetChaos(
  config: ChaosConfig,
  log: (s: string) => void = () => {},
): Promise<{ runs: FleetRunSummary[]; check: Check; durationMs: number }> {
  const started = performance.now();
  const fc = fleetConfig(config);
  const check = new FleetCheck(fc.executionTimeoutMs, {
    timed: config.timingChecks,
    marginMs: config.fleet.marginMs,
  });
  const fleet = await Fleet.start(fc, `s${config.seed}`);
  const runs: ScenarioRun[] = [];
  try {
    runs.push(...(await runScenarios(fleet, config.seed, 0, config.fleet.scenarios, log)));
  } finally {
    await fleet.close();
  }
  check.add(runs);
  return {
    runs: runs.map(fleetSummary),
    check: check.result(),
    durationMs: Math.round(performance.now() - started),
  };
}

const gatewayTotals = (stack: ChaosStack) => {
  let calls = 0;
  let sends = 0;
  for (const g of GATEWAYS) {
    const s = stack.gateways[g].gateway.atlas.stats();
    calls += Object.values(s.callsByOperation).reduce((a, b) => a + b, 0);
    sends += s.requests;
  }
  return { calls, sends };
};

const connections = (stack: ChaosStack) =>
  Promise.all(
    GATEWAYS.map(
      (g) =>
        new Promise<number>((resolve) =>
          stack.gateways[g].gateway.server.getConnections((err, n) => resolve(err ? -1 : n)),
        ),
    ),
  ).then((ns) => ns.reduce((a, b) => a + b, 0));

const pollerTotals = (stack: ChaosStack) =>
  GATEWAYS.map((g) => stack.gateways[g].gateway.pollers.stats()).reduce(
    (a, s) => ({ pollers: a.pollers + s.pollers, subscribers: a.subscribers + s.subscribers }),
    { pollers: 0, subscribers: 0 },
  );

function snapshotsOf(plan: WorkloadPlan): string[] {
  const ids = new Set<string>();
  for (const a of plan.actions) if (a.kind === 'download') ids.add(a.snapshot.snapshotId);
  return [...ids];
}

/** After a round: every stream over, the client gone; pollers and gateway sockets must drain. */
async function drain(stack: ChaosStack, client: ChaosClient) {
  await client.close();
  await settle(async () => {
    const p = pollerTotals(stack);
    return p.pollers === 0 && p.subscribers === 0 && (await connections(stack)) === 0;
  }, 5000);
  return { ...pollerTotals(stack), sockets: await connections(stack) };
}

/** The workload without any fault, on a fresh stack: the ideal upstream cost of one round. */
async function baselineRun(plan: WorkloadPlan, config: ChaosConfig, log: (s: string) => void) {
  const conf: ChaosConfig = { ...config, faults: false };
  const stack = await startChaosStack(conf, 'baseline');
  try {
    const client = new ChaosClient(`s${config.seed}-base`);
    const outcome = await runRound(stack, client, plan, conf, 0, `s${config.seed}-base`);
    await drain(stack, client);
    const stats = stack.sim.stats();
    // Without faults only the invalid requests fail, and only NOT_FOUND subscriptions end in errors.
    let unexpected = 0;
    for (const d of outcome.downloads) if (d.action.intent !== 'invalid' && !d.jobId) unexpected++;
    for (const r of outcome.reads) if (r.answer.outcome !== 'data') unexpected++;
    log(
      `fault-free run: ${stats.total} upstream requests, ${outcome.reads.length + outcome.downloads.length} GraphQL requests, ${outcome.subscriptions.length} subscriptions, ${unexpected} unexpected errors, ${outcome.durationMs} ms`,
    );
    return {
      summary: { requests: stats.total, byOperation: stats.byOperation, unexpectedErrors: unexpected },
      contract: stack.contract(),
    };
  } finally {
    await stack.close();
  }
}

/** The command that replays a run: same profile, seed and length. */
export function replayCommand(c: ChaosConfig): string {
  return [
    'npm run chaos --',
    c.profile !== 'default' ? `--profile ${c.profile}` : '',
    `--seed ${c.seed}`,
    c.minutes !== undefined ? `--minutes ${c.minutes}` : c.rounds !== 1 ? `--rounds ${c.rounds}` : '',
    c.tolerateKnownBugs && c.profile === 'default' ? '--tolerate-known-bugs' : '',
    c.fleet.enabled ? '' : '--no-fleet',
  ]
    .filter(Boolean)
    .join(' ');
}

/** Runs the chaos: a fault-free run of the workload, then rounds of it under faults, then the checks. */
export async function runChaos(
  config: ChaosConfig,
  log: (s: string) => void = () => {},
): Promise<ChaosReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const plan = planWorkload(config);
  const faultFree = config.baseline ? await baselineRun(plan, config, log) : undefined;
  const baseline = faultFree?.summary;
  if (!config.baseline) {
    // Warm-up, so lazily loaded modules and caches are not counted as a leak.
    const warm = await startChaosStack({ ...config, faults: false }, 'warm-up');
    await warm.close();
  }
  // Baseline of handles: wait for the sockets of the fault-free run to finish closing.
  await settle(() => {
    const r = snapshotResources(false).resources;
    return !r.TCPSocketWrap && !r.TCPServerWrap;
  }, 3000);
  const before = snapshotResources();

  const checks = {
    answers: new AnswersCheck(config.tolerateKnownBugs),
    masked: new MaskedErrorsCheck(config.tolerateKnownBugs),
    jobs: new JobsCheck(config.tolerateKnownBugs),
    subscriptions: new SubscriptionsCheck(config.tolerateKnownBugs),
    bound: new RetryBoundCheck(baseline?.requests, config.retryBound),
    retryAfter: new RetryAfterCheck(config.tolerateKnownBugs, { timed: config.timingChecks }),
    leaks: new LeaksCheck(config.tolerateKnownBugs),
    contract: new ContractCheck(),
    fleet: new FleetCheck(fleetConfig(config).executionTimeoutMs, {
      timed: config.timingChecks,
      marginMs: config.fleet.marginMs,
    }),
  };
  if (faultFree) checks.contract.add(faultFree.contract);
  const report: ChaosReport = {
    seed: config.seed,
    replay: replayCommand(config),
    config,
    startedAt,
    durationMs: 0,
    baseline,
    faults: [],
    faultHitsByLabel: {},
    auth: '',
    baselineResources: before.resources,
    rounds: [],
    fleet: config.fleet.enabled ? [] : undefined,
    checks: [],
    ok: false,
  };

  const stack = await startChaosStack(config, 'chaos');
  const driver = new FaultDriver(stack.sim);
  // The fleet: gateway processes with a Redis of the run's own, one pass of its scenarios per round.
  let fleet: Fleet | undefined;
  try {
    fleet = config.fleet.enabled ? await Fleet.start(fleetConfig(config), `s${config.seed}`) : undefined;
  } catch (err) {
    driver.dispose();
    await stack.close();
    throw err;
  }
  const snapshots = snapshotsOf(plan);
  const reuse = new Set(plan.reuseSnapshots.map((r) => r.snapshot.snapshotId));
  const deadline = config.minutes !== undefined ? started + config.minutes * 60_000 : undefined;
  try {
    for (
      let round = 0;
      deadline !== undefined ? performance.now() < deadline : round < config.rounds;
      round++
    ) {
      const windows = planFaults(config, round);
      const beforeJobs = new Map(snapshots.map((s) => [s, stack.sim.store.jobsCreatedFor(s)]));
      const tenantOverOnePage = new Set(
        plan.reuseSnapshots
          .map((r) => r.snapshot)
          .filter(
            (r) =>
              stack.sim.store.getCluster(r.projectId, r.clusterName)?.family === 'tenant' &&
              stack.sim.store.listRestoreJobs(r.projectId, r.clusterName).length >= 100,
          )
          .map((r) => r.snapshotId),
      );
      const reuseEarlier = new Map(
        [...reuse].map((s) => [s, s === SEED_FRESH_SNAPSHOT ? 1 : (beforeJobs.get(s) ?? 0)] as const),
      );
      stack.sim.resetStats();
      stack.exchanges.splice(0);
      stack.waits.waits.splice(0);
      const gwBefore = gatewayTotals(stack);
      driver.hits.splice(0);

      const client = new ChaosClient(`s${config.seed}`);
      driver.play(windows);
      let outcome: RoundOutcome;
      try {
        outcome = await runRound(stack, client, plan, config, round, `s${config.seed}`);
      } finally {
        driver.stop();
      }
      const left = await drain(stack, client);
      checks.contract.add(stack.contract());

      const afterJobs = new Map(snapshots.map((s) => [s, stack.sim.store.jobsCreatedFor(s)]));
      const requests = stack.sim.stats().total;
      const gwAfter = gatewayTotals(stack);
      const terminalOf = (s: { job: { projectId: string; clusterName: string; jobId: string } }) => {
        const job = stack.sim.store.getRestoreJob(s.job.projectId, s.job.clusterName, s.job.jobId);
        return job ? stack.sim.store.jobState(job).status : undefined;
      };
      checks.answers.add(outcome);
      checks.masked.add(outcome);
      checks.jobs.add(
        outcome,
        { before: beforeJobs, after: afterJobs, reuseCreatedEarlier: reuseEarlier, tenantOverOnePage },
        stack.exchanges,
      );
      checks.subscriptions.add(outcome, terminalOf, stack.exchanges);
      checks.bound.add(round, requests, gwAfter.calls - gwBefore.calls, gwAfter.sends - gwBefore.sends);
      checks.retryAfter.add(round, stack.exchanges, stack.waits.waits);
      checks.leaks.addRound(round, left);

      const hits: Record<number, number> = {};
      for (const h of driver.hits) {
        hits[h.window] = (hits[h.window] ?? 0) + 1;
        report.faultHitsByLabel[h.label] = (report.faultHitsByLabel[h.label] ?? 0) + 1;
      }
      report.faults.push({ round, windows, hits });
      // After a full GC, so the heap column is what stays alive, not where the collector happened to be.
      const mem = snapshotResources();
      let created = 0;
      for (const s of snapshots) created += (afterJobs.get(s) ?? 0) - (beforeJobs.get(s) ?? 0);
      const summary: RoundSummary = {
        round,
        durationMs: outcome.durationMs,
        requests,
        faultHits: driver.hits.length,
        graphql: outcome.reads.length + outcome.downloads.length,
        subscriptions: outcome.subscriptions.length,
        peakLive: outcome.peakLiveSubscriptions,
        jobsCreated: created,
        rssMb: Math.round(mem.rssMb),
        heapUsedMb: Math.round(mem.heapUsedMb),
      };
      report.rounds.push(summary);
      stack.exchanges.splice(0);
      stack.waits.waits.splice(0);
      log(
        `round ${round}: ${summary.durationMs} ms, ${summary.graphql} GraphQL requests, ${summary.subscriptions} subscriptions (peak ${summary.peakLive} live), ${summary.requests} upstream requests, ${summary.faultHits} faults hit, ${summary.jobsCreated} jobs created, rss ${summary.rssMb} MB, heap ${summary.heapUsedMb} MB`,
      );
      if (fleet) {
        const runs = await runScenarios(fleet, config.seed, round, config.fleet.scenarios, log);
        checks.fleet.add(runs);
        report.fleet?.push(...runs.map(fleetSummary));
      }
    }
    const o = stack.gateways.oauth.gateway.atlas.stats();
    const d = stack.gateways.digest.gateway.atlas.stats();
    const a = stack.sim.auth.stats();
    report.auth = `gateway "oauth": ${o.tokenFetches} token fetches, ${o.authResends} resends after 401 (expired tokens); gateway "digest": ${d.digestChallenges} challenges taken up (stale or refused nonces), ${d.authResends} resends; simulator: ${a.tokensIssued} tokens issued, ${a.tokensRevoked} revoked, ${a.digestChallenges} 401 challenges sent`;
  } finally {
    await fleet?.close();
    driver.dispose();
    await stack.close();
    checks.contract.add(stack.contract()); // what the teardown answered (the token revocation)
  }

  // Teardown: sockets close asynchronously; give them a moment before comparing.
  let after = snapshotResources();
  await settle(() => {
    after = snapshotResources(false);
    return Object.keys(grownResources(before, after)).length === 0;
  }, 3000);
  after = snapshotResources();
  checks.leaks.addTeardown(
    grownResources(before, after),
    before.heapUsedMb,
    after.heapUsedMb,
    config.timingChecks ? config.heapToleranceMb : undefined,
  );

  report.checks = [
    checks.answers.result(config.requestDeadlineMs),
    checks.masked.result(),
    checks.jobs.result(),
    checks.subscriptions.result(config.subscriptionDeadlineMs),
    checks.bound.result(),
    checks.retryAfter.result(),
    checks.leaks.result(),
    checks.contract.result(),
    ...(config.fleet.enabled ? [checks.fleet.result()] : []),
  ];
  report.ok = report.checks.every((c) => c.ok);
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

/** The report as printed: seed and replay first, then the schedule, the rounds and the invariants. */
export function formatReport(r: ChaosReport, opts: { windows?: boolean } = {}): string {
  const lines: string[] = [];
  const c = r.config;
  lines.push(`=== chaos run, seed ${r.seed} — replay: ${r.replay}`);
  lines.push(
    `config: ${c.minutes !== undefined ? `soak ${c.minutes} min` : `${c.rounds} round(s)`}, jobMs ${c.jobMs}, poll ${c.pollIntervalMs} ms, span ${c.spanMs} ms, upstream timeout ${c.upstreamTimeoutMs} ms, OAuth token TTL ${c.tokenTtlSec} s (gateway "oauth"), Digest nonce TTL ${c.nonceTtlMs} ms (gateway "digest"), rate limit ${c.rateLimit.capacity}/${c.rateLimit.refillPerSecond} per s, request deadline ${c.requestDeadlineMs} ms, subscription deadline ${c.subscriptionDeadlineMs} ms`,
  );
  if (r.baseline) {
    lines.push(
      `fault-free run of the same workload: ${r.baseline.requests} upstream requests, ${r.baseline.unexpectedErrors} unexpected errors`,
    );
  }
  const showWindows = opts.windows ?? r.faults.length <= 2;
  for (const f of r.faults) {
    if (!showWindows && f.round > 0) break;
    lines.push(`fault schedule, round ${f.round} (${f.windows.length} windows; hits in brackets):`);
    for (const w of f.windows) lines.push(`  ${describeFault(w)} [${f.hits[w.id] ?? 0}]`);
  }
  if (!showWindows && r.faults.length > 1) {
    lines.push(
      `  … rounds 1-${r.faults.length - 1}: ${r.faults.slice(1).reduce((n, f) => n + f.windows.length, 0)} more windows (all in the JSON report)`,
    );
  }
  lines.push(`auth under chaos: ${r.auth}`);
  const hits = Object.entries(r.faultHitsByLabel).sort((a, b) => b[1] - a[1]);
  lines.push(
    `faults hit: ${hits.reduce((n, [, k]) => n + k, 0)} requests — ${hits.map(([l, n]) => `${l}: ${n}`).join('; ')}`,
  );
  const every = Math.max(1, Math.ceil(r.rounds.length / 20));
  lines.push('rounds (RSS over time):');
  for (const s of r.rounds) {
    if (s.round % every !== 0 && s.round !== r.rounds.length - 1) continue;
    lines.push(
      `  round ${s.round}: ${s.durationMs} ms, ${s.graphql} GraphQL, ${s.subscriptions} subs (peak ${s.peakLive} live), ${s.requests} upstream, ${s.faultHits} faults, ${s.jobsCreated} jobs, rss ${s.rssMb} MB, heap ${s.heapUsedMb} MB`,
    );
  }
  if (r.fleet) {
    const failed = r.fleet.filter((f) => f.problems.length > 0);
    lines.push(
      `fleet (${c.fleet.replicas} gateway processes, Redis of the run's own): ${r.fleet.length} scenario runs, ${failed.length} with problems`,
    );
    for (const f of r.fleet.slice(0, 12)) {
      lines.push(
        `  pass ${f.pass} ${f.name} (${f.kind}): ${f.answers}; ${f.created} job(s) for ${f.intended} intended; ${f.durationMs} ms`,
      );
    }
    if (r.fleet.length > 12) lines.push(`  … ${r.fleet.length - 12} more (all in the JSON report)`);
  }
  lines.push('invariants:');
  for (const ch of r.checks) {
    lines.push(`  [${ch.ok ? 'PASS' : 'FAIL'}] ${ch.name}`);
    lines.push(`         ${ch.counts}`);
    for (const p of ch.problems) lines.push(`         ! ${p}`);
    if (ch.problemCount > ch.problems.length)
      lines.push(`         ! … ${ch.problemCount - ch.problems.length} more`);
    if (c.tolerateKnownBugs) {
      for (const k of ch.known.slice(0, 5)) lines.push(`         ~ tolerated open bug ${k}`);
      if (ch.knownCount > 5) lines.push(`         ~ … ${ch.knownCount - 5} more of open bugs`);
    }
  }
  const seen = new Set<string>();
  for (const ch of r.checks) {
    for (const line of [...ch.known, ...ch.problems]) {
      const id = /^\[(?:open bug |regression of fixed bug )?([a-z0-9-]+)\]/.exec(line)?.[1];
      if (id && id in KNOWN_BUGS) seen.add(id);
    }
  }
  if (seen.size > 0) {
    lines.push('bugs whose signature was seen (test/chaos/regressions.test.ts):');
    for (const id of seen) {
      const bug = KNOWN_BUGS[id as KnownBug];
      lines.push(`  ${id} (${bug.fixed ? 'FIXED: this is a regression' : 'open'}): ${bug.summary}`);
      lines.push(`    regression test: "${bug.test}"`);
    }
  }
  lines.push(
    `${r.ok ? 'PASS' : 'FAIL'}: ${r.checks.filter((x) => x.ok).length}/${r.checks.length} invariants hold, seed ${r.seed}, ${Math.round(r.durationMs / 100) / 10} s — replay: ${r.replay}`,
  );
  return lines.join('\n');
}
