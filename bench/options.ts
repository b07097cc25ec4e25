import { parseArgs } from 'node:util';

export type Section =
  'economy' | 'overhead' | 'floor' | 'subscriptions' | 'mutation-volume' | 'shared-dashboards';
export const SECTIONS: readonly Section[] = [
  'economy',
  'overhead',
  'floor',
  'subscriptions',
  'mutation-volume',
  'shared-dashboards',
];

/** What `npm run bench -- [flags]` runs. Every field has a flag; `--quick` changes the defaults. */
export interface BenchOptions {
  /** Smoke test: short points and fewer subscribers; results go to `tmp/quick.json`, not `latest.json`. */
  quick: boolean;
  /** Seconds measured per load point (`--duration`). @default 5 (quick: 1) */
  durationSec: number;
  /** Seconds of load before each point that are not recorded (`--warmup`). @default 1 (quick: 0.3) */
  warmupSec: number;
  /** Client connections per load point (`--concurrency 1,10,100`). @default [1, 10, 100] */
  concurrency: number[];
  /** Simulator latency per upstream answer, one series each (`--latency 0,20`). @default [0, 20] */
  latencyMs: number[];
  /** Concurrent SSE subscribers, one run each (`--subscribers`). @default [1000, 10000] (quick: [200, 1000]) */
  subscribers: number[];
  /** Jobs the subscribers are spread over (`--jobs`). @default 10 */
  jobs: number;
  /** The gateway's poll interval for watched jobs (`--poll-interval`). @default 1000 */
  pollIntervalMs: number;
  /** Simulator time from a download request to COMPLETED in the download flows (`--job-ms`). @default 2500 */
  jobMs: number;
  /** Run the peer gateway (`--no-peer` skips it). @default true */
  peer: boolean;
  /** Which sections run (`--only economy,overhead`). @default all */
  sections: Set<Section>;
  /** Where results are written (`--out`). @default bench/results */
  outDir: string;
}

const HELP = `npm run bench -- [flags]
  --quick                 smoke test (1 s points, 200/1000 subscribers), writes bench/results/tmp/quick.json
  --duration <s>          seconds per load point (default 5)
  --warmup <s>            unrecorded seconds before each point (default 1)
  --concurrency <list>    connections per point (default 1,10,100)
  --latency <list>        simulator latency in ms, one series each (default 0,20)
  --subscribers <list>    SSE subscriber counts (default 1000,10000)
  --jobs <n>              jobs the subscribers watch (default 10)
  --poll-interval <ms>    gateway poll interval for watched jobs (default 1000)
  --job-ms <ms>           simulator job duration in the download flows (default 2500)
  --no-peer               skip the peer gateway (Mesh + Hive Gateway)
  --only <list>           sections: ${SECTIONS.join(',')} (default all)
  --out <dir>             results directory (default bench/results)`;

function numbers(flag: string, raw: string, min: number): number[] {
  const list = raw.split(',').map((s) => s.trim());
  const out = list.map(Number);
  if (list.length === 0 || out.some((n) => !Number.isFinite(n) || n < min)) {
    throw new Error(`--${flag}: expected numbers ≥ ${min} separated by commas, got "${raw}"`);
  }
  return out;
}

function one(flag: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const [n] = numbers(flag, raw, min);
  return n ?? fallback;
}

/** Parses the flags; throws an Error naming the flag and what arrived. `undefined` means `--help`. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      latency: { type: 'string' },
      subscribers: { type: 'string' },
      jobs: { type: 'string' },
      'poll-interval': { type: 'string' },
      'job-ms': { type: 'string' },
      'no-peer': { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: 'bench/results' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const quick = values.quick ?? false;
  const sections = new Set<Section>();
  for (const s of (values.only ?? SECTIONS.join(',')).split(',')) {
    const name = s.trim() as Section;
    if (!SECTIONS.includes(name)) {
      throw new Error(`--only: expected some of ${SECTIONS.join(', ')}, got "${s}"`);
    }
    sections.add(name);
  }
  return {
    quick,
    durationSec: one('duration', values.duration, quick ? 1 : 5, 0.1),
    warmupSec: one('warmup', values.warmup, quick ? 0.3 : 1, 0),
    concurrency: values.concurrency ? numbers('concurrency', values.concurrency, 1) : [1, 10, 100],
    latencyMs: values.latency ? numbers('latency', values.latency, 0) : [0, 20],
    subscribers: values.subscribers
      ? numbers('subscribers', values.subscribers, 1)
      : quick
        ? [200, 1000]
        : [1000, 10000],
    jobs: one('jobs', values.jobs, 10, 1),
    pollIntervalMs: one('poll-interval', values['poll-interval'], 1000, 50),
    jobMs: one('job-ms', values['job-ms'], 2500, 100),
    peer: !values['no-peer'],
    sections,
    outDir: values.out ?? 'bench/results',
  };
}
