import type { FaultRule } from '../src/simulator/index.js';
import { buildSeed, SEED } from '../src/simulator/seed.js';
import type { ChaosConfig } from './config.js';
import { fork, type Prng } from './prng.js';

export type GatewayName = 'oauth' | 'digest';
export const GATEWAYS: readonly GatewayName[] = ['oauth', 'digest'];

export interface ClusterRef {
  projectId: string;
  clusterName: string;
}
export interface SnapshotRef extends ClusterRef {
  snapshotId: string;
}
export interface JobRef extends ClusterRef {
  jobId: string;
}

/**
 * What a download request is for, which decides how many jobs it may create:
 * - `keyed`: an idempotency key; all requests with one key make at most one job;
 * - `unkeyed`: no key, reuseExisting:false: each request may make one job;
 * - `reuse`: no key, reuseExisting:true, on snapshots only these touch: at most one job per snapshot;
 * - `invalid`: must fail with `expect` before any POST.
 */
export type DownloadIntent = 'keyed' | 'unkeyed' | 'reuse' | 'invalid';

export interface Subscriber {
  gateway: GatewayName;
  /** After the mutation answered. */
  delayMs: number;
}

export interface DownloadAction {
  kind: 'download';
  id: number;
  atMs: number;
  gateway: GatewayName;
  intent: DownloadIntent;
  snapshot: SnapshotRef;
  /** A key name, made unique per run and round when sent. */
  key: string | undefined;
  reuseExisting: boolean;
  /** invalid only: the code it must fail with. */
  expect: string | undefined;
  subscribers: Subscriber[];
}

export interface ReadAction {
  kind: 'dashboard' | 'snapshot' | 'clusterLists' | 'jobRead';
  id: number;
  atMs: number;
  gateway: GatewayName;
  variables: Record<string, unknown>;
}

/** A subscription to a job that exists before the run (already finished) or to no job at all. */
export interface FixedSubscription {
  kind: 'subscribe';
  id: number;
  atMs: number;
  gateway: GatewayName;
  job: JobRef;
  /** `terminal`: one event with the final state, then complete; `NOT_FOUND`: a typed error. */
  expect: 'terminal' | 'NOT_FOUND';
}

export type Action = DownloadAction | ReadAction | FixedSubscription;

/** Subscriptions to jobs the harness creates at the start of each round (`heldSubscriptions`). */
export interface HeldSubscriptions {
  /** One job per snapshot, created in the simulator when the round starts. */
  snapshots: SnapshotRef[];
  subscribers: { gateway: GatewayName; atMs: number; snapshot: number }[];
}

export interface WorkloadPlan {
  actions: Action[];
  held: HeldSubscriptions;
  /** Seeded jobs that ended long ago. */
  finishedJobs: JobRef[];
  /** Snapshots only `reuse` requests touch, each by one gateway. */
  reuseSnapshots: { snapshot: SnapshotRef; gateway: GatewayName }[];
}

/** A fault active in [atMs, untilMs) of a round; a rule for the simulator or a smaller rate-limit bucket. */
export interface FaultWindow {
  id: number;
  label: string;
  atMs: number;
  untilMs: number;
  rule?: FaultRule;
  rateLimit?: { capacity: number; refillPerSecond: number };
}

const seed = buildSeed();
const completed = (p: string, c: string) =>
  seed.snapshots.filter((s) => s.groupId === p && s.clusterName === c && s.status === 'COMPLETED');
const clustersWithSnapshots = seed.clusters.filter((c) => completed(c.groupId, c.name).length >= 6);

/**
 * Snapshot pools: per cluster, the first completed snapshots take keyed and unkeyed requests, the
 * next ones reuse requests (one gateway each). Disjoint, so per-snapshot job counts can be bounded.
 */
function pools() {
  const shared: SnapshotRef[] = [];
  const reuse: { snapshot: SnapshotRef; gateway: GatewayName }[] = [];
  clustersWithSnapshots.forEach((c, i) => {
    const list = completed(c.groupId, c.name);
    const ref = (k: number) => ({ projectId: c.groupId, clusterName: c.name, snapshotId: list[k]!.id });
    shared.push(ref(2), ref(3));
    reuse.push(
      { snapshot: ref(4), gateway: GATEWAYS[i % 2]! },
      { snapshot: ref(5), gateway: GATEWAYS[(i + 1) % 2]! },
    );
  });
  // The seed's fresh download (URL valid for hours): reuse requests must get it back, no new job.
  const fresh = seed.restoreJobs.find((j) => j.id === SEED.flex.freshDownloadJobId)!;
  reuse.push({
    snapshot: { projectId: fresh.groupId, clusterName: fresh.clusterName, snapshotId: fresh.snapshotId },
    gateway: 'oauth',
  });
  // Per cluster, a completed snapshot no download touches (the seed's fresh download is on the
  // first one of its cluster): jobs the harness makes on it count against no snapshot's job bound.
  const used = new Set([...shared, ...reuse.map((r) => r.snapshot)].map((s) => s.snapshotId));
  const held = clustersWithSnapshots.map((c) => {
    const s = completed(c.groupId, c.name).find((x) => !used.has(x.id))!;
    return { projectId: c.groupId, clusterName: c.name, snapshotId: s.id };
  });
  const notCompleted = seed.snapshots
    .filter((s) => s.status !== 'COMPLETED')
    .map((s) => ({ projectId: s.groupId, clusterName: s.clusterName, snapshotId: s.id }));
  return { shared, reuse, notCompleted, held };
}

function subscribersFor(rng: Prng, config: ChaosConfig): Subscriber[] {
  const n = rng.weighted(config.workload.subscribersPerJob);
  return Array.from({ length: n }, () => ({ gateway: rng.pick(GATEWAYS), delayMs: rng.int(0, 400) }));
}

/** The workload of one round; the same for every round of a run (keys are made unique when sent). */
export function planWorkload(config: ChaosConfig): WorkloadPlan {
  const rng = fork(config.seed, 'workload');
  const w = config.workload;
  const { shared, reuse, notCompleted, held } = pools();
  const actions: Action[] = [];
  let id = 0;
  const at = () => rng.int(0, config.spanMs);
  const gw = () => rng.pick(GATEWAYS);

  for (let i = 0; i < w.dashboards; i++) {
    actions.push({ kind: 'dashboard', id: id++, atMs: at(), gateway: gw(), variables: {} });
  }
  for (let i = 0; i < w.snapshotReads; i++) {
    const s = rng.pick([...shared, ...reuse.map((r) => r.snapshot)]);
    const kind = rng.weighted([
      [3, 'snapshot'],
      [2, 'clusterLists'],
    ] as const);
    actions.push({
      kind,
      id: id++,
      atMs: at(),
      gateway: gw(),
      variables:
        kind === 'snapshot'
          ? { p: s.projectId, c: s.clusterName, s: s.snapshotId }
          : { p: s.projectId, c: s.clusterName },
    });
  }
  const finishedJobs = seed.restoreJobs;
  for (let i = 0; i < 3; i++) {
    const j = rng.pick(finishedJobs);
    actions.push({
      kind: 'jobRead',
      id: id++,
      atMs: at(),
      gateway: gw(),
      variables: { p: j.groupId, c: j.clusterName, j: j.id },
    });
  }

  const download = (
    intent: DownloadIntent,
    snapshot: SnapshotRef,
    extra: Partial<DownloadAction> & { atMs: number; gateway: GatewayName },
  ) => {
    const a: DownloadAction = {
      kind: 'download',
      id: id++,
      intent,
      snapshot,
      key: undefined,
      reuseExisting: false,
      expect: undefined,
      subscribers: intent === 'invalid' ? [] : subscribersFor(rng, config),
      ...extra,
    };
    actions.push(a);
    return a;
  };

  // Keyed: some keys are sent twice or three times, together or a little later, on purpose.
  for (let k = 0; k < w.keyedDownloads; k++) {
    const snapshot = rng.pick(shared);
    const gateway = gw();
    const key = `k${k}`;
    const reuseExisting = rng.chance(0.25);
    const first = at();
    const copies = rng.weighted([
      [55, [0]],
      [25, [0, 0]],
      [12, [0, rng.int(150, 900)]],
      [8, [0, 0, rng.int(50, 400)]],
    ] as const);
    for (const offset of copies) {
      download('keyed', snapshot, { atMs: first + offset, gateway, key, reuseExisting });
    }
  }
  for (let k = 0; k < w.unkeyedDownloads; k++) {
    download('unkeyed', rng.pick(shared), { atMs: at(), gateway: gw() });
  }
  for (let k = 0; k < w.reuseDownloads; k++) {
    const r = rng.pick(reuse);
    // Reuse requests come in bursts too: identical ones arriving together share one job.
    const n = rng.weighted([
      [70, 1],
      [30, 3],
    ] as const);
    const t = at();
    for (let c = 0; c < n; c++) {
      download('reuse', r.snapshot, { atMs: t, gateway: r.gateway, reuseExisting: true });
    }
  }
  for (let k = 0; k < w.invalidDownloads; k++) {
    const kind = k % 3;
    if (kind === 0) {
      download('invalid', rng.pick(notCompleted), { atMs: at(), gateway: gw(), expect: 'CONFLICT' });
    } else if (kind === 1) {
      const s = rng.pick(shared);
      download(
        'invalid',
        { ...s, snapshotId: SEED.unknownId },
        { atMs: at(), gateway: gw(), expect: 'NOT_FOUND' },
      );
    } else {
      download(
        'invalid',
        { ...rng.pick(shared), snapshotId: 'not-a-hex-id' },
        {
          atMs: at(),
          gateway: gw(),
          expect: 'BAD_USER_INPUT',
        },
      );
    }
  }
  // A key sent again with another input: CONFLICT, and no job for it.
  const keyed = actions.filter((a): a is DownloadAction => a.kind === 'download' && a.intent === 'keyed');
  if (keyed.length > 0) {
    const base = keyed[keyed.length - 1]!;
    const other = shared.find((s) => s.snapshotId !== base.snapshot.snapshotId)!;
    download('invalid', other, {
      atMs: base.atMs + 1200,
      gateway: base.gateway,
      key: base.key,
      reuseExisting: base.reuseExisting,
      expect: 'CONFLICT',
    });
  }

  for (let i = 0; i < w.finishedJobSubscriptions; i++) {
    const j = finishedJobs[i % finishedJobs.length]!;
    actions.push({
      kind: 'subscribe',
      id: id++,
      atMs: at(),
      gateway: gw(),
      job: { projectId: j.groupId, clusterName: j.clusterName, jobId: j.id },
      expect: 'terminal',
    });
  }
  for (let i = 0; i < w.unknownJobSubscriptions; i++) {
    const s = rng.pick(shared);
    actions.push({
      kind: 'subscribe',
      id: id++,
      atMs: at(),
      gateway: gw(),
      job: { projectId: s.projectId, clusterName: s.clusterName, jobId: SEED.unknownId },
      expect: 'NOT_FOUND',
    });
  }
  actions.sort((a, b) => a.atMs - b.atMs || a.id - b.id);
  const heldSubscribers = Array.from({ length: w.heldSubscriptions }, () => ({
    gateway: gw(),
    atMs: rng.int(0, 300),
    snapshot: rng.int(0, held.length - 1),
  }));
  return {
    actions,
    held: { snapshots: held, subscribers: heldSubscribers },
    finishedJobs: finishedJobs.map((j) => ({
      projectId: j.groupId,
      clusterName: j.clusterName,
      jobId: j.id,
    })),
    reuseSnapshots: reuse,
  };
}

const POST_OPS = ['downloadGroupFlexClusterBackup', 'downloadGroupClusterBackupTenant'];
const READ_OPS = [
  'listGroups',
  'listGroupClusters',
  'listGroupFlexClusters',
  'listGroupFlexClusterBackupSnapshots',
  'listGroupClusterBackupTenantSnapshots',
  'getGroupFlexClusterBackupSnapshot',
  'getGroupClusterBackupTenantSnapshot',
  'listGroupFlexClusterBackupRestoreJobs',
  'listGroupClusterBackupTenantRestores',
  'getGroupFlexClusterBackupRestoreJob',
  'getGroupClusterBackupTenantRestore',
];

/**
 * The faults of one round: a background of rare random faults for the whole round, then bursts at
 * seeded times (each a few hundred ms): latency spikes (some beyond the upstream timeout), 5xx with and
 * without Retry-After, resets before and after the request was handled (the lost POST answer),
 * truncated and malformed bodies, slow bodies, a shrunken rate-limit bucket (429 with Retry-After),
 * and failures of the OAuth endpoints.
 */
export function planFaults(config: ChaosConfig, round: number): FaultWindow[] {
  if (!config.faults) return [];
  const rng = fork(config.seed, `faults:${round}`);
  const out: FaultWindow[] = [];
  let id = 0;
  const forever = Number.POSITIVE_INFINITY;
  const bg = (label: string, rule: FaultRule) =>
    out.push({ id: id++, label: `background ${label}`, atMs: 0, untilMs: forever, rule });

  // Lost answers of POSTs: the gateway must find the job it created, never POST again blindly.
  for (const op of POST_OPS) bg(`reset-after ${op}`, { operationId: op, reset: 'after', probability: 0.15 });
  bg('latency', { latencyMs: rng.int(20, 120), probability: 0.06 });
  bg('503+Retry-After', { status: 503, retryAfterSec: 1, probability: 0.012 });
  bg('502', { status: 502, probability: 0.01 });
  bg('504', { status: 504, probability: 0.006 });
  bg('500', { status: 500, probability: 0.006 });
  bg('reset-before', { reset: 'before', probability: 0.01 });
  bg('reset-after', { reset: 'after', probability: 0.006 });
  bg('truncated', { body: 'truncated', probability: 0.006 });
  bg('malformed', { body: 'malformed', probability: 0.004 });
  bg('slow-body', { slowBodyMs: rng.int(100, 400), probability: 0.01 });

  const horizon = config.spanMs + config.jobMs;
  const kinds = [
    [3, 'latency'],
    [1, 'timeout'],
    [3, 'status'],
    [2, 'status-retry-after'],
    [2, 'reset-before'],
    [2, 'reset-after'],
    [1, 'truncated'],
    [1, 'malformed'],
    [1, 'slow-body'],
    [3, 'rate-limit'],
    [1, 'oauth-token'],
    [1, 'oauth-revoke'],
  ] as const;
  // Every kind once per round, then more drawn by weight: one burst per ~350 ms of the round.
  const extra = Math.max(0, Math.round(horizon / 350) - kinds.length);
  const schedule = [...kinds.map(([, k]) => k), ...Array.from({ length: extra }, () => rng.weighted(kinds))];
  // The mandatory ones fall while requests are in flight (mutations, then the jobs' first half).
  const busy = config.spanMs + Math.round(config.jobMs / 2);
  for (const [n, kind] of schedule.entries()) {
    const atMs = rng.int(0, n < kinds.length ? busy : horizon);
    // Rate-limit windows last longer: a Retry-After burst just before can hold every caller back.
    const untilMs = atMs + (kind === 'rate-limit' ? rng.int(500, 900) : rng.int(150, 500));
    // Half the bursts hit one operation, the others every request.
    const op = rng.chance(0.5) ? { operationId: rng.pick([...READ_OPS, ...POST_OPS]) } : {};
    const probability = rng.pick([0.3, 0.6, 1]);
    const w = (label: string, rule?: FaultRule, rateLimit?: FaultWindow['rateLimit']) =>
      out.push({
        id: id++,
        label: `${label}${rule?.operationId ? ` on ${rule.operationId}` : ''}`,
        atMs,
        untilMs,
        ...(rule ? { rule } : {}),
        ...(rateLimit ? { rateLimit } : {}),
      });
    switch (kind) {
      case 'latency':
        w('latency spike', { ...op, latencyMs: rng.int(200, 1200), probability });
        break;
      case 'timeout':
        // Beyond the gateway's upstream timeout: ATLAS_TIMEOUT, retried for reads.
        w('latency beyond timeout', {
          ...op,
          latencyMs: config.upstreamTimeoutMs + 500,
          probability: 0.5,
          times: rng.int(1, 3),
        });
        break;
      case 'status':
        w('5xx burst', { ...op, status: rng.pick([500, 502, 503, 504] as const), probability });
        break;
      case 'status-retry-after':
        w('5xx+Retry-After burst', {
          ...op,
          status: rng.pick([503, 503, 502, 504] as const),
          retryAfterSec: rng.pick([1, 1, 2]),
          probability,
        });
        break;
      case 'reset-before':
        w('reset-before burst', { ...op, reset: 'before', probability });
        break;
      case 'reset-after':
        w('reset-after burst', { operationId: rng.pick(POST_OPS), reset: 'after', probability });
        break;
      case 'truncated':
        w('truncated bodies', { ...op, body: 'truncated', probability });
        break;
      case 'malformed':
        w('malformed bodies', { ...op, body: 'malformed', probability });
        break;
      case 'slow-body':
        w('slow bodies', { ...op, slowBodyMs: rng.int(300, 1500), probability });
        break;
      case 'rate-limit':
        w('rate-limit bucket shrunk', undefined, { capacity: rng.int(1, 3), refillPerSecond: rng.int(2, 5) });
        break;
      case 'oauth-token':
        w('token endpoint 503+Retry-After', {
          operationId: 'oauth.token',
          status: 503,
          retryAfterSec: 1,
          times: 2,
        });
        break;
      case 'oauth-revoke':
        w('revocation lost', { operationId: 'oauth.revoke', reset: 'before', times: 2 });
        break;
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs || a.id - b.id);
}

/** One line per fault window, for the report. */
export function describeFault(f: FaultWindow): string {
  const when = Number.isFinite(f.untilMs) ? `${f.atMs}-${f.untilMs}ms` : 'whole round';
  const what = f.rule ? JSON.stringify(f.rule) : JSON.stringify({ rateLimit: f.rateLimit });
  return `#${f.id} ${when} ${f.label} ${what}`;
}
