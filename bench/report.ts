import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { throughputSvg } from './chart.js';
import type { EconomyRow } from './economy.js';
import type { Machine } from './machine.js';
import type { BenchOptions } from './options.js';
import type { LatencyFloorReport } from './latency-floor.js';
import type { OverheadReport } from './overhead.js';
import type { SubscriptionRun } from './subscriptions.js';
import type { MutationVolumeRow } from './mutation-volume.js';

/** Everything one run measured: what `bench/results/*.json` holds. */
import type { SharedDashboardsReport } from './shared-dashboards.js';

export interface BenchResults {
  startedAt: string;
  wallSec: number;
  machine: Machine;
  options: Omit<BenchOptions, 'sections'> & { sections: string[] };
  peer:
    | {
        status: 'ran';
        versions: Record<string, string>;
        installSec: number;
        composeSec: number;
        acceptFixed: number;
      }
    | { status: 'unavailable' | 'skipped'; reason: string };
  economy?: EconomyRow[];
  overhead?: OverheadReport;
  /** The latency floor at concurrency 1: direct, proxy, bare yoga, gateway (issue #19). */
  floor?: LatencyFloorReport;
  subscriptions?: SubscriptionRun[];
  /** Upstream calls and bytes per mutation on the 2,160-job cluster (issue #17). */
  mutationVolume?: MutationVolumeRow[];
  /** N dashboards refreshing on one gateway with the shared read cache (issue #19). */
  sharedDashboards?: SharedDashboardsReport;
  targets?: TargetCheck[];
  /**
   * One-minute load average at the start and end of each section. The machine may be shared (tests of
   * other work running): above about half the core count, the numbers of that section are skewed.
   */
  loadAverage: Record<string, { start: number; end: number }>;
  /** Sections that failed, with the reason; the others still ran. */
  errors: Record<string, string>;
}

/** One target of issue #8 and what was measured against it. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

const KB = 1024;
const MB = 1024 * 1024;
const f = (n: number | null | undefined, digits = 2) =>
  n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);
const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

/** A plain text table: left-aligned first column, the others right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

/** Checks the issue's targets against what this run measured (null: not measured in this run). */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  if (r.economy) {
    const off = r.economy.filter((e) => e.oursWarm !== e.minimum);
    out.push({
      target: 'upstream calls equal to the minimum for every operation',
      measured: off.length
        ? `${r.economy.length - off.length}/${r.economy.length} equal; ${off.map((e) => `${e.operation}: ${e.oursWarm} vs ${e.minimum}`).join('; ')}`
        : `${r.economy.length}/${r.economy.length} equal`,
      met: off.length === 0,
    });
  }
  if (r.overhead) {
    const c1 = r.overhead.overhead.filter((o) => o.connections === 1);
    if (c1.length) {
      out.push({
        target: 'p50 overhead under 1 ms at concurrency 1',
        measured: c1.map((o) => `${f(o.p50Ms)} ms at ${o.latencyMs} ms latency`).join('; '),
        met: c1.every((o) => o.p50Ms < 1),
      });
    }
    // Issue #19: same-run ratios, which hold on a busy machine where absolute times do not.
    const pts = r.overhead.points;
    const at = (target: string, latencyMs: number, connections: number) =>
      pts.find((p) => p.target === target && p.latencyMs === latencyMs && p.connections === connections);
    const floor = [...new Set(pts.map((p) => p.latencyMs))].flatMap((latencyMs) => {
      const ours = at('ours', latencyMs, 1);
      const direct = at('direct-undici', latencyMs, 1);
      return ours && direct ? [{ latencyMs, ratio: ours.p50 / direct.p50 }] : [];
    });
    // The floor section measures the same ratio with one client for both and interleaved rounds; it
    // decides when it ran, and this (autocannon against undici, points minutes apart) is shown beside.
    if (floor.length && !r.floor) {
      out.push({
        target: 'p50 at concurrency 1 within 4× of direct undici',
        measured: floor.map((x) => `${f(x.ratio)}× at ${x.latencyMs} ms latency`).join('; '),
        met: floor.every((x) => x.ratio <= 4),
      });
    }
    const tail = r.overhead.peerRatios.filter((x) => x.connections === 100);
    out.push({
      target: "p99 at concurrency 100 at or below the peer's",
      measured: tail.length
        ? tail.map((x) => `ours/peer ${f(x.p99)}× at ${x.latencyMs} ms latency`).join('; ')
        : `peer not measured at c=100 (${r.peer.status === 'ran' ? (r.overhead.peerError ?? 'no points') : r.peer.reason})`,
      met: tail.length ? tail.every((x) => x.p99 <= 1) : null,
    });
    const typename = at('ours-typename', 0, 1);
    const bareYoga = at('yoga-typename', 0, 1);
    if (typename && bareYoga) {
      out.push({
        target: '`{ __typename }` p50 at or below bare graphql-yoga',
        measured: `${f(typename.p50)} vs ${f(bareYoga.p50)} ms (${f(typename.p50 / bareYoga.p50)}×)`,
        met: typename.p50 <= bareYoga.p50,
      });
    }
    const ratios = r.overhead.peerRatios;
    out.push({
      target: "throughput ≥ 2× the peer's",
      measured: ratios.length
        ? ratios.map((x) => `${f(x.rps)}× (${x.latencyMs} ms, c=${x.connections})`).join('; ') +
          `; peer CPU per request / ours: ${ratios.map((x) => `${f(x.cpu)}×`).join(', ')}`
        : `peer not measured (${r.peer.status === 'ran' ? (r.overhead.peerError ?? 'no points') : r.peer.reason})`,
      met: ratios.length ? ratios.every((x) => x.rps >= 2) : null,
    });
  }
  // The target is read on the gateway as it ships (shared executions); results written before the
  // `shared` field existed had none.
  const largest = [...(r.subscriptions ?? [])]
    .filter((s) => s.shared !== false)
    .sort((a, b) => b.subscribers - a.subscribers)[0];
  if (largest) {
    const ok =
      !largest.error &&
      largest.polls !== undefined &&
      largest.memory !== undefined &&
      largest.polls.perJobPerInterval <= 1.05 &&
      largest.polls.maxPerJob <= Math.ceil(largest.polls.windowMs / largest.pollIntervalMs) &&
      largest.memory.rssPerSubscriber < 20 * KB;
    out.push({
      target: `${largest.subscribers.toLocaleString('en')} subscribers: one upstream poll per job per interval, < 20 KB gateway memory per subscriber`,
      measured: largest.error
        ? `failed: ${largest.error}`
        : `${f(largest.polls?.perJobPerInterval)} polls/job/interval; ` +
          `${f((largest.memory?.rssPerSubscriber ?? NaN) / KB, 1)} KB RSS, ${f((largest.memory?.heapPerSubscriber ?? NaN) / KB, 1)} KB heap per subscriber`,
      met: ok,
    });
    const alone = r.subscriptions?.find((s) => s.shared === false && s.subscribers === largest.subscribers);
    if (alone) {
      out.push({
        target: `${alone.subscribers.toLocaleString('en')} subscribers, one execution each (as many different callers): memory per subscriber`,
        measured: alone.error
          ? `failed: ${alone.error}`
          : `${f((alone.memory?.rssPerSubscriber ?? NaN) / KB, 1)} KB RSS, ${f((alone.memory?.heapPerSubscriber ?? NaN) / KB, 1)} KB heap per subscriber`,
        met: null,
      });
    }
  }
  const dashboards = r.sharedDashboards;
  if (dashboards && dashboards.ratio100to1 !== null) {
    const fixed = dashboards.ratio100to1Fixed ?? null;
    out.push({
      target: '100 dashboards refreshing every 5 s: upstream GETs per interval ≤ 1.2× one dashboard',
      measured:
        `${f(dashboards.ratio100to1)}× refreshing 5 s after each answer` +
        (fixed === null ? '' : `; ${f(fixed)}× on a fixed 5 s clock`),
      met: dashboards.ratio100to1 <= 1.2 && (fixed === null || fixed <= 1.2),
    });
  }
  if (r.floor) {
    const rung = (name: string) => r.floor!.rungs.find((x) => x.rung === name);
    const gateway = rung('gateway');
    const ac = r.overhead?.points.filter((p) => p.latencyMs === 0 && p.connections === 1);
    const acOurs = ac?.find((p) => p.target === 'ours');
    const acDirect = ac?.find((p) => p.target === 'direct-undici');
    if (gateway) {
      out.push({
        target: 'p50 at concurrency 1 within 4× of direct undici',
        measured:
          `${f(gateway.ratio)}× (${f(gateway.p50Ms, 3)} vs ${f(rung('direct')?.p50Ms, 3)} ms, one client, interleaved); ` +
          `same minute: node:http proxy ${f(rung('proxy')?.ratio)}×, bare yoga + 1 GET ${f(rung('yoga')?.ratio)}×` +
          (acOurs && acDirect
            ? `; overhead section (autocannon ÷ undici) ${f(acOurs.p50 / acDirect.p50)}×`
            : ''),
        met: gateway.ratio <= 4,
      });
    }
  }
  return out;
}

/** The human-readable summary on stdout. */
export function printReport(r: BenchResults): void {
  const m = r.machine;
  if (r.mutationVolume) {
    console.log('\n== Mutations on a Flex cluster with 2,160 jobs (upstream calls, list calls, bytes, ms)');
    for (const v of r.mutationVolume) {
      console.log(`  ${v.mutation}: ${v.calls} calls (${v.listCalls} job lists), ${v.bytes} B, ${v.ms} ms`);
    }
  }
  console.log(
    `\n== Results (${r.options.quick ? 'quick' : 'full'} run, ${f(r.wallSec, 0)} s) — ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ulimit -n ${m.openFiles}`,
  );
  const busy = Object.entries(r.loadAverage).filter(([, l]) => Math.max(l.start, l.end) > m.nproc / 2);
  if (busy.length) {
    console.log(
      `note: other work was running (load average ${busy
        .map(([s, l]) => `${s} ${l.start.toFixed(1)}→${l.end.toFixed(1)}`)
        .join(', ')} on ${m.nproc} cores): latency and throughput are skewed by it`,
    );
  }
  if (r.peer.status === 'ran') {
    console.log(
      `peer: ${Object.entries(r.peer.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; compose ${f(r.peer.composeSec, 1)} s`,
    );
  } else {
    console.log(`peer: ${r.peer.status}: ${r.peer.reason}`);
  }

  if (r.economy) {
    console.log('\n1. Upstream calls per operation (ours warm is the steady state; cold = fresh gateway)');
    console.log(
      table(
        ['operation', 'minimum', 'ours cold', 'ours warm', 'naive N+1', 'peer'],
        r.economy.map((e) => [e.operation, e.minimum, e.oursCold, e.oursWarm, e.naive, e.peer ?? '—']),
      ),
    );
  }

  if (r.overhead) {
    const o = r.overhead;
    console.log(
      '\n2./3. Single-snapshot query: req/s, p50 / p99 ms (autocannon; direct-undici: undici Pool)',
    );
    const keys = [...new Set(o.points.map((p) => `${p.latencyMs}|${p.connections}`))];
    const targets = [...new Set(o.points.map((p) => p.target))];
    console.log(
      table(
        ['latency, conns', ...targets],
        keys.map((k) => {
          const [latency, conns] = k.split('|');
          return [
            `${latency} ms, c=${conns}`,
            ...targets.map((t) => {
              const p = o.points.find((x) => x.target === t && `${x.latencyMs}|${x.connections}` === k);
              return p ? `${f(p.rps, 0)}  ${f(p.p50)} / ${f(p.p99)}` : '—';
            }),
          ];
        }),
      ),
    );
    console.log('\nOverhead ours − direct, ours / peer, CPU ms per request of the serving process');
    console.log(
      table(
        [
          'latency, conns',
          'p50 overhead ms',
          'p99 overhead ms',
          'rps ours/peer',
          'p99 ours/peer',
          'cpu/req ours',
          'cpu/req peer',
          'cpu/req sim',
          'upstream/req ours',
          'upstream/req peer',
        ],
        o.overhead.map((x) => {
          const ratio = o.peerRatios.find(
            (p) => p.latencyMs === x.latencyMs && p.connections === x.connections,
          );
          const per = (t: string) =>
            o.points.find(
              (p) => p.target === t && p.latencyMs === x.latencyMs && p.connections === x.connections,
            )?.upstreamPerRequest;
          const cpu = (t: string) =>
            o.points.find(
              (p) => p.target === t && p.latencyMs === x.latencyMs && p.connections === x.connections,
            )?.cpuMsPerRequest;
          return [
            `${x.latencyMs} ms, c=${x.connections}`,
            f(x.p50Ms),
            f(x.p99Ms),
            f(ratio?.rps),
            f(ratio?.p99),
            f(cpu('ours')),
            f(cpu('peer')),
            f(cpu('direct')),
            f(per('ours')),
            f(per('peer')),
          ];
        }),
      ),
    );
    if (o.peerError) console.log(`peer left out of the load: ${o.peerError}`);
  }

  if (r.subscriptions?.length) {
    console.log('\n4. SSE subscribers (gateway in its own process)');
    console.log(
      table(
        [
          'subscribers',
          'executions',
          'connect s',
          'polls/job/interval',
          'min gap ms',
          'RSS/sub KB',
          'heap/sub KB',
          'RSS MB',
          'RUNNING p50/p99 ms',
          'COMPLETED p50/p99 ms',
          'completed',
        ],
        r.subscriptions.map((s) =>
          s.error && !s.polls
            ? [
                s.subscribers,
                s.shared === false ? 'one each' : 'shared',
                `error: ${s.error}`,
                '',
                '',
                '',
                '',
                '',
                '',
                '',
                '',
              ]
            : [
                s.subscribers,
                s.shared === false ? 'one each' : 'shared',
                f((s.connectMs ?? NaN) / 1000, 1),
                f(s.polls?.perJobPerInterval),
                f(s.polls?.minGapMs, 0),
                f((s.memory?.rssPerSubscriber ?? NaN) / KB, 1),
                f((s.memory?.heapPerSubscriber ?? NaN) / KB, 1),
                f((s.memory?.rssBeforeGc ?? NaN) / MB, 0),
                `${f(s.delivery?.RUNNING.p50, 0)} / ${f(s.delivery?.RUNNING.p99, 0)}`,
                `${f(s.delivery?.COMPLETED.p50, 0)} / ${f(s.delivery?.COMPLETED.p99, 0)}`,
                `${s.completedStreams ?? 0}/${s.subscribers}`,
              ],
        ),
      ),
    );
    for (const s of r.subscriptions) if (s.error) console.log(`  ${s.subscribers}: ${s.error}`);
  }

  if (r.overhead) {
    const mem = r.overhead.memory;
    console.log('\n5. Memory (RSS of the process tree)');
    console.log(
      table(
        ['process', 'idle', 'under load (max)', 'heap idle → after load (GC)'],
        [
          [
            'ours',
            mb(mem.ours.idleTreeRss),
            mb(mem.ours.loadRssMax),
            `${mb(mem.ours.idle.heapUsed)} → ${mb(mem.ours.afterLoad.heapUsed)}`,
          ],
          ...(mem.peer ? [['peer', mb(mem.peer.idleTreeRss), mb(mem.peer.loadRssMax), '—']] : []),
        ],
      ),
    );
  }

  if (r.targets?.length) {
    console.log('\nTargets');
    console.log(
      table(
        ['target', 'met', 'measured'],
        r.targets.map((t) => [t.target, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO', t.measured]),
      ),
    );
  }
  for (const [section, message] of Object.entries(r.errors)) console.log(`\n${section} FAILED: ${message}`);
}

/**
 * Writes `latest.json` and a dated copy; a quick run (a smoke test, not a measurement) writes
 * `tmp/quick.json` only, which git ignores. Answers the paths.
 */
export function writeResults(r: BenchResults, outDir: string): string[] {
  const json = `${JSON.stringify(r, null, 2)}\n`;
  if (r.options.quick) {
    mkdirSync(join(outDir, 'tmp'), { recursive: true });
    const path = join(outDir, 'tmp', 'quick.json');
    writeFileSync(path, json);
    return [path];
  }
  mkdirSync(outDir, { recursive: true });
  const latest = join(outDir, 'latest.json');
  const dated = join(outDir, `${r.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  writeFileSync(latest, json);
  copyFileSync(latest, dated);
  if (!r.overhead) return [latest, dated];
  const svg = join(outDir, 'throughput.svg');
  writeFileSync(
    svg,
    throughputSvg(
      r.overhead,
      `Single-snapshot query, ${r.machine.nproc} cores, ${r.startedAt.slice(0, 16)}Z`,
    ),
  );
  return [latest, dated, svg];
}
