import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { createAtlasClient } from '../src/atlas/index.js';
import type { GatewayOptions } from '../src/gateway.js';
import { SEED } from '../src/simulator/seed.js';
import type { Cleanup } from './cleanup.js';
import { startGatewayProcess } from './gateway-process.js';
import { graphql } from './graphql-client.js';
import { DASHBOARD } from './operations.js';
import { startSimulatorProcess, type SimulatorProcess } from './simulator-process.js';
import { OWNER } from './upstream.js';

// "N dashboards for the price of one" (issue #19): 1, 10 and 100 clients refresh the dashboard on one
// gateway (its own process) over the simulator (its own process), with the shared read cache at its
// defaults and without it. Each client refreshes `intervalMs` after its previous answer arrived (a
// dashboard's poll timer, as Apollo's `pollInterval`), the clients' first refreshes spread evenly over
// one interval; the `fixed` runs refresh on a fixed clock instead (`setInterval`: every `intervalMs`
// from the client's start, whenever the previous answer came). Meanwhile the bench makes a download job on Payments / payments-flex straight in the
// simulator every `changeEveryMs` (another tool, the Atlas UI: nothing the gateway could know of), and
// each client notes when it first sees each job in its dashboard: the staleness it observed.

/** The production defaults of `GATEWAY_CACHE_TTL_*_MS` (src/config/cache-env.ts). */
export const DEFAULT_TTLS = { projects: 60_000, clusters: 30_000, snapshots: 15_000, jobs: 5_000 };

export interface SharedDashboardsRun {
  clients: number;
  cache: 'on' | 'off';
  /** `after-answer`: `intervalMs` after the previous answer; `fixed`: every `intervalMs` from the start. */
  cadence: Cadence;
  durationMs: number;
  intervalMs: number;
  refreshes: number;
  errors: number;
  /** Upstream GETs (the bench's own job POSTs excluded) per refresh interval, all clients together. */
  upstreamPerInterval: number;
  /** Upstream GETs per dashboard answer. */
  upstreamPerRefresh: number;
  byOperation: Record<string, number>;
  /** Jobs made behind the gateway's back during the run. */
  changes: number;
  /**
   * From a job's creation (its POST answered) to a client's first dashboard answer that shows it, over
   * every (client, job) pair seen, in ms. Without a cache it is only the refresh cadence (0 to one
   * interval plus a request); with it, at most the jobs bound more.
   */
  staleness: { seen: number; meanMs: number; p50Ms: number; p95Ms: number; maxMs: number };
}

type Cadence = 'after-answer' | 'fixed';

export interface SharedDashboardsReport {
  ttlMs: typeof DEFAULT_TTLS;
  runs: SharedDashboardsRun[];
  /** upstreamPerInterval of 100 clients / of 1 client, cache on (target ≤ 1.2). */
  ratio100to1: number | null;
  /** The same on a fixed refresh clock (not in quick runs). */
  ratio100to1Fixed: number | null;
}

export interface SharedDashboardsOptions {
  quick: boolean;
  cleanup: Cleanup;
  /** @default [1, 10, 100] (quick: [1, 10]) */
  clients?: number[];
  /** @default 60000 (quick: 15000) */
  durationMs?: number;
  /** @default 5000 */
  intervalMs?: number;
  /** @default 7000: not a multiple of the interval, so changes fall at every phase of it */
  changeEveryMs?: number;
}

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;

type Dashboard = {
  projects: { clusters: { name: string; restoreJobs: { nodes: { id: string }[] } }[] }[];
};

export async function runSharedDashboards(options: SharedDashboardsOptions): Promise<SharedDashboardsReport> {
  const clients = options.clients ?? (options.quick ? [1, 10] : [1, 10, 100]);
  const durationMs = options.durationMs ?? (options.quick ? 15_000 : 60_000);
  const intervalMs = options.intervalMs ?? 5_000;
  const changeEveryMs = options.changeEveryMs ?? 7_000;
  const sim = await startSimulatorProcess({ jobMs: 600_000 });
  const closeSim = options.cleanup.defer('shared-dashboards simulator', () => sim.close());
  const runs: SharedDashboardsRun[] = [];
  try {
    const ends = [clients[0]!, clients.at(-1)!];
    const plan: { clients: number; cache: 'on' | 'off'; cadence: Cadence }[] = [
      ...clients.map((n) => ({ clients: n, cache: 'on' as const, cadence: 'after-answer' as const })),
      // Without the cache only the ends: the cost is linear, one dashboard's calls per client.
      ...ends.map((n) => ({ clients: n, cache: 'off' as const, cadence: 'after-answer' as const })),
      ...(options.quick
        ? []
        : ends.map((n) => ({ clients: n, cache: 'on' as const, cadence: 'fixed' as const }))),
    ];
    for (const p of plan) {
      console.log(
        `  ${p.clients} dashboard client(s), cache ${p.cache}, refresh ${p.cadence}, ${durationMs / 1000} s…`,
      );
      runs.push(
        await oneRun(sim, options.cleanup, {
          ...p,
          durationMs,
          intervalMs,
          changeEveryMs,
          readCache: p.cache === 'on' ? { ttlMs: DEFAULT_TTLS } : false,
        }),
      );
    }
  } finally {
    await closeSim();
  }
  const ratio = (cadence: Cadence) => {
    const on = (n: number) => runs.find((r) => r.cache === 'on' && r.clients === n && r.cadence === cadence);
    const [one, hundred] = [on(1), on(100)];
    return one && hundred ? round(hundred.upstreamPerInterval / one.upstreamPerInterval, 2) : null;
  };
  return {
    ttlMs: DEFAULT_TTLS,
    runs,
    ratio100to1: ratio('after-answer'),
    ratio100to1Fixed: ratio('fixed'),
  };
}

async function oneRun(
  sim: SimulatorProcess,
  cleanup: Cleanup,
  run: {
    clients: number;
    cache: 'on' | 'off';
    cadence: Cadence;
    durationMs: number;
    intervalMs: number;
    changeEveryMs: number;
    readCache: GatewayOptions['readCache'];
  },
): Promise<SharedDashboardsRun> {
  const gateway = await startGatewayProcess({ baseUrl: sim.url, readCache: run.readCache });
  const closeGateway = cleanup.defer('shared-dashboards gateway', () => gateway.close());
  // The bench's own client of the simulator, for the changes: not through the gateway.
  const atlas = createAtlasClient({
    baseUrl: sim.url,
    auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
  });
  const closeAtlas = cleanup.defer('shared-dashboards atlas client', () => atlas.close());
  try {
    const snapshots = (await sim.seed()).completedFlexSnapshots;
    // One dashboard first: the gateway learns the cluster families, as a running one has.
    await graphql(gateway.url, DASHBOARD);
    await sim.reset();

    const start = performance.now();
    const end = start + run.durationMs;
    const created = new Map<string, number>();
    let changes = 0;
    const changer = (async () => {
      for (let next = start + run.changeEveryMs / 2; next < end; next += run.changeEveryMs) {
        await sleep(Math.max(0, next - performance.now()));
        if (performance.now() >= end) break;
        const job = await atlas.flexBackup.download({
          groupId: P,
          name: F,
          snapshotId: snapshots[changes % snapshots.length]!,
        });
        created.set(job.id!, performance.now());
        changes++;
      }
    })();

    let refreshes = 0;
    let errors = 0;
    const delays: number[] = [];
    const client = async (i: number) => {
      const seen = new Set<string>();
      await sleep((i * run.intervalMs) / run.clients);
      let due = performance.now();
      while (performance.now() < end) {
        try {
          const data = await graphql<Dashboard>(gateway.url, DASHBOARD);
          const at = performance.now();
          refreshes++;
          const ids = data.projects
            .flatMap((p) => p.clusters)
            .filter((c) => c.name === F)
            .flatMap((c) => c.restoreJobs.nodes.map((n) => n.id));
          for (const id of ids) {
            const made = created.get(id);
            if (made === undefined || seen.has(id)) continue;
            seen.add(id);
            delays.push(at - made);
          }
        } catch {
          errors++;
        }
        due += run.intervalMs;
        // A fixed clock does not wait for the answer: a late one makes the next refresh start at once.
        await sleep(run.cadence === 'fixed' ? Math.max(0, due - performance.now()) : run.intervalMs);
      }
    };
    await Promise.all([changer, ...Array.from({ length: run.clients }, (_, i) => client(i))]);
    const elapsed = performance.now() - start;
    // Answers still on the wire when the last client stopped.
    await sleep(150);
    const calls = await sim.calls();
    const posts = calls.byOperation.downloadGroupFlexClusterBackup ?? 0;
    const gets = calls.total - posts;
    const byOperation = Object.fromEntries(
      Object.entries(calls.byOperation).filter(([op]) => op !== 'downloadGroupFlexClusterBackup'),
    );
    delays.sort((a, b) => a - b);
    const at = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? 0;
    return {
      clients: run.clients,
      cache: run.cache,
      cadence: run.cadence,
      durationMs: Math.round(elapsed),
      intervalMs: run.intervalMs,
      refreshes,
      errors,
      upstreamPerInterval: round(gets / (elapsed / run.intervalMs), 1),
      upstreamPerRefresh: round(gets / Math.max(1, refreshes), 2),
      byOperation,
      changes,
      staleness: {
        seen: delays.length,
        meanMs: Math.round(delays.reduce((a, b) => a + b, 0) / Math.max(1, delays.length)),
        p50Ms: Math.round(at(0.5)),
        p95Ms: Math.round(at(0.95)),
        maxMs: Math.round(delays.at(-1) ?? 0),
      },
    };
  } finally {
    await closeAtlas();
    await closeGateway();
  }
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

export function printSharedDashboards(report: SharedDashboardsReport): void {
  console.log(
    '\nshared dashboards (refresh every 5 s after the previous answer, or on a fixed 5 s clock; jobs made elsewhere every 7 s)',
  );
  console.log(
    'clients | cache | refresh      | refreshes | upstream GETs / interval | per refresh | staleness mean / p95 / max ms',
  );
  for (const r of report.runs) {
    console.log(
      `${String(r.clients).padStart(7)} | ${r.cache.padEnd(5)} | ${(r.cadence ?? 'after-answer').padEnd(12)} | ${String(r.refreshes).padStart(9)} | ` +
        `${String(r.upstreamPerInterval).padStart(24)} | ${String(r.upstreamPerRefresh).padStart(11)} | ` +
        `${r.staleness.meanMs} / ${r.staleness.p95Ms} / ${r.staleness.maxMs} (${r.staleness.seen} seen, ${r.errors} errors)`,
    );
  }
  console.log(`100 clients / 1 client, cache on: ${report.ratio100to1 ?? 'n/a'} (target ≤ 1.2)`);
  console.log(`the same on a fixed refresh clock: ${report.ratio100to1Fixed ?? 'n/a'}`);
}
