import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ManualClock } from '../src/simulator/index.js';
import { SEED } from '../src/simulator/seed.js';
import { startGatewayProcess } from './gateway-process.js';
import { graphql } from './graphql-client.js';
import { REQUEST_DOWNLOAD, WATCH_JOB } from './operations.js';
import { inBatches, subscribeSse, type SseSubscription } from './sse-client.js';
import { startUpstream } from './upstream.js';

// What one SSE subscriber keeps alive in the gateway, by constructor: two heap snapshots of the built
// gateway child (before and with N subscribers), their self sizes summed per node type and name, the
// difference divided by N. The tool behind the "SSE memory" rows of docs/benchmarks.md.
// `npx tsx bench/subscriber-heap.ts [--subscribers 2000] [--dir /tmp/heap] [--top 40] [--one-each]`

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '2000' },
    jobs: { type: 'string', default: '10' },
    dir: { type: 'string', default: '/tmp/subscriber-heap' },
    top: { type: 'string', default: '40' },
    // One execution per subscriber (as many different callers cost), instead of shared executions.
    'one-each': { type: 'boolean', default: false },
  },
});
const n = Number(values.subscribers);
const jobs = Number(values.jobs);
const dir = values.dir!;
const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;

process.env.BENCH_GATEWAY_NODE_FLAGS = `${process.env.BENCH_GATEWAY_NODE_FLAGS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

async function snapshot(pid: number): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await sleep(200);
    const added = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    // The child writes the file while it runs: it is complete once it parses.
    if (added.length) {
      const file = join(dir, added[0]!);
      let last = -1;
      for (;;) {
        const size = readFileSync(file).length;
        if (size === last && size > 0) {
          try {
            JSON.parse(readFileSync(file, 'utf8'));
            return file;
          } catch {
            /* still being written */
          }
        }
        last = size;
        await sleep(300);
      }
    }
  }
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function bySelfSize(file: string): Map<string, { size: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    let name = s.strings[s.nodes[i + nameAt]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(strings)';
    if (type === 'code' || type === 'hidden') name = name.slice(0, 40);
    const key = `${type}:${name.slice(0, 60)}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += s.nodes[i + sizeAt]!;
    e.count += 1;
    out.set(key, e);
  }
  return out;
}

const clock = new ManualClock();
const upstream = await startUpstream({ clock, jobMs: 600_000 });
const gateway = await startGatewayProcess({
  baseUrl: upstream.url,
  pollIntervalMs: 4000,
  ...(values['one-each'] ? { leanSse: { sharedFields: [] } } : {}),
});
const subs: SseSubscription[] = [];
try {
  const snapshots = upstream.sim.store
    .listSnapshots(P, F)
    .filter((s) => s.status === 'COMPLETED')
    .slice(0, jobs);
  const jobIds: string[] = [];
  for (const s of snapshots) {
    const d = await graphql<{ requestDownload: { job: { id: string } } }>(gateway.url, REQUEST_DOWNLOAD, {
      i: { projectId: P, clusterName: F, snapshotId: s.id, reuseExisting: false },
    });
    jobIds.push(d.requestDownload.job.id);
  }
  const open = async (i: number) => {
    let seen!: () => void;
    const first = new Promise<void>((r) => (seen = r));
    const sub = await subscribeSse(gateway.url, WATCH_JOB, { p: P, c: F, j: jobIds[i % jobIds.length] }, () =>
      seen(),
    );
    await first;
    return sub;
  };
  // Warm-up, as bench/subscriptions.ts: what every later subscription reuses is not counted.
  const warm = await Promise.all(jobIds.flatMap((_, i) => [open(i), open(i)]));
  warm.forEach((s) => s.close());
  for (let i = 0; i < 200 && (await gateway.memory(false)).pollers.pollers > 0; i++) await sleep(50);
  // Pollers that stay alive across the snapshots: one subscriber per job before the baseline.
  subs.push(...(await Promise.all(jobIds.map((_, i) => open(i)))));
  const m0 = await gateway.memory(true);
  const before = bySelfSize(await snapshot(gateway.pid));
  subs.push(
    ...(await inBatches(
      Array.from({ length: n }, (_, i) => i),
      200,
      open,
    )),
  );
  const m1 = await gateway.memory(true);
  const after = bySelfSize(await snapshot(gateway.pid));
  const rows = [...new Set([...before.keys(), ...after.keys()])]
    .map((k) => {
      const a = before.get(k) ?? { size: 0, count: 0 };
      const b = after.get(k) ?? { size: 0, count: 0 };
      return { k, size: (b.size - a.size) / n, count: (b.count - a.count) / n };
    })
    .sort((x, y) => y.size - x.size);
  const total = rows.reduce((t, r) => t + r.size, 0);
  console.log(
    `${n} subscribers: heapUsed ${((m1.heapUsed - m0.heapUsed) / n / 1024).toFixed(1)} KB, rss ${((m1.rss - m0.rss) / n / 1024).toFixed(1)} KB, snapshot self sizes ${(total / 1024).toFixed(1)} KB per subscriber`,
  );
  for (const r of rows.slice(0, Number(values.top))) {
    console.log(`${r.size.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(6)}×  ${r.k}`);
  }
} finally {
  subs.forEach((s) => s.close());
  await gateway.close();
  await upstream.close();
}
