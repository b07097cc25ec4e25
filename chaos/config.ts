import { SCENARIOS, type ScenarioName } from './fleet-scenarios.js';

/** Everything a chaos run is made of; the presets below are the CLI's and the test's. */
export interface ChaosConfig {
  /** Which preset the run started from (`--profile`): `default` is `npm run chaos`, `test` the one in `npm test`. */
  profile: 'default' | 'test';
  /** The run's seed: the workload, the fault schedule and every random draw derive from it. */
  seed: number;
  /** Rounds to run; ignored when `minutes` is set (soak: rounds until the time is up). */
  rounds: number;
  /** Soak: repeat rounds for this many minutes. */
  minutes: number | undefined;
  /** Inject faults (off for the fault-free baseline). */
  faults: boolean;
  /** Run the same workload once without faults first, to bound the upstream calls. */
  baseline: boolean;
  /** Simulated time from a download request to COMPLETED (the simulator's real clock). */
  jobMs: number;
  /** The gateways' job poll interval. */
  pollIntervalMs: number;
  /** Mutations and reads of a round are spread over this long. */
  spanMs: number;
  /** Workload sizes per round. */
  workload: {
    dashboards: number;
    snapshotReads: number;
    keyedDownloads: number;
    unkeyedDownloads: number;
    reuseDownloads: number;
    invalidDownloads: number;
    /** Subscriptions per created job: weights of 0…n subscribers. */
    subscribersPerJob: readonly (readonly [number, number])[];
    /** Subscriptions to seeded jobs that have already ended, and to a job that does not exist. */
    finishedJobSubscriptions: number;
    unknownJobSubscriptions: number;
    /**
     * Subscriptions to jobs the harness creates in the simulator when the round starts, all opened in
     * its first 300 ms: they stay live until those jobs end (`jobMs`), so every round has at least this
     * many live at once, however many downloads the faults made fail.
     */
    heldSubscriptions: number;
  };
  /** A GraphQL request that has not answered after this long counts as hung. */
  requestDeadlineMs: number;
  /** A subscription that has not ended after this long counts as hung. */
  subscriptionDeadlineMs: number;
  /** Upstream timeouts of the gateways (latency spikes above them become ATLAS_TIMEOUT). */
  upstreamTimeoutMs: number;
  /** Short OAuth token lifetime (seconds) and Digest nonce lifetime (ms) under chaos. */
  tokenTtlSec: number;
  nonceTtlMs: number;
  /** The simulator's rate limiter under chaos (bursts lower it further). */
  rateLimit: { capacity: number; refillPerSecond: number };
  /** Chaos round upstream requests ≤ bound × the fault-free run's. */
  retryBound: number;
  /** Heap after teardown may exceed the baseline by this much (MB) before it counts as a leak. */
  heapToleranceMb: number;
  /**
   * Judge wall-clock and heap numbers too: the measured Retry-After gaps (besides the counted waits)
   * and the heap tolerance. On for `npm run chaos` and its soak; off for the run inside `npm test`
   * (`--profile test`), which asserts only counted events: waits asked for, pollers, sockets, handles.
   */
  timingChecks: boolean;
  /**
   * Violations that match the exact signature of an open bug already pinned by a failing regression
   * test (invariants.ts KNOWN_BUGS, `fixed: false`) are reported but do not fail the run. A fixed bug's
   * signature always fails. Off for `npm run chaos`.
   */
  tolerateKnownBugs: boolean;
  /** Print progress lines. */
  verbose: boolean;
  /**
   * The fleet of issue #16 (chaos/fleet.ts): gateway processes sharing a Redis of the run's own, put
   * through Redis outages and restarts, SIGKILLs and hung POSTs (chaos/fleet-scenarios.ts); one pass
   * of `scenarios` after each round.
   */
  fleet: {
    enabled: boolean;
    replicas: number;
    scenarios: readonly ScenarioName[];
    /** A mutation answered later than the execution timeout plus this is late (judged with `timingChecks`). */
    marginMs: number;
  };
}

const WORKLOAD: ChaosConfig['workload'] = {
  dashboards: 10,
  snapshotReads: 16,
  keyedDownloads: 18,
  unkeyedDownloads: 10,
  reuseDownloads: 10,
  invalidDownloads: 6,
  // About 3.7 per job: 150+ subscriptions a round (plus the held ones: 100+ live at once).
  subscribersPerJob: [
    [1, 1],
    [2, 2],
    [3, 3],
    [3, 5],
    [1, 8],
  ],
  finishedJobSubscriptions: 6,
  unknownJobSubscriptions: 2,
  heldSubscriptions: 100,
};

/** `npm run chaos`: the fault-free run, then one round under faults; 15-20 s. */
export function defaultConfig(overrides: Partial<ChaosConfig> = {}): ChaosConfig {
  return {
    profile: 'default',
    seed: 1,
    rounds: 1,
    minutes: undefined,
    faults: true,
    baseline: true,
    jobMs: 2000,
    pollIntervalMs: 400,
    spanMs: 1500,
    workload: WORKLOAD,
    requestDeadlineMs: 45_000,
    subscriptionDeadlineMs: 60_000,
    upstreamTimeoutMs: 2500,
    tokenTtlSec: 2,
    nonceTtlMs: 700,
    rateLimit: { capacity: 80, refillPerSecond: 150 },
    retryBound: 3,
    heapToleranceMb: 32,
    timingChecks: true,
    tolerateKnownBugs: false,
    verbose: false,
    fleet: { enabled: true, replicas: 3, scenarios: SCENARIOS, marginMs: 1500 },
    ...overrides,
  };
}

/**
 * The short run inside `npm test` (test/chaos/chaos.test.ts): a smaller workload (still 100+ SSE
 * subscriptions) and shorter jobs, about 10 s with its fault-free run. Open known bugs are tolerated
 * (each has its own `it.fails` regression test); anything else, a fixed bug's return included, fails.
 */
export function testConfig(overrides: Partial<ChaosConfig> = {}): ChaosConfig {
  return defaultConfig({
    profile: 'test',
    seed: 20261123,
    jobMs: 1500,
    spanMs: 1000,
    workload: {
      dashboards: 5,
      snapshotReads: 8,
      keyedDownloads: 12,
      unkeyedDownloads: 6,
      reuseDownloads: 6,
      invalidDownloads: 3,
      subscribersPerJob: [
        [1, 1],
        [2, 2],
        [3, 4],
        [3, 5],
        [1, 8],
      ],
      finishedJobSubscriptions: 6,
      unknownJobSubscriptions: 2,
      heldSubscriptions: 100,
    },
    timingChecks: false,
    tolerateKnownBugs: true,
    // Two processes and each fault the issue names once (test/chaos/fleet.test.ts runs them).
    fleet: {
      enabled: true,
      replicas: 2,
      scenarios: SCENARIOS.filter((s) => s !== 'hung-post-unkeyed' && s !== 'hung-post-no-job'),
      marginMs: 1500,
    },
    ...overrides,
  });
}
