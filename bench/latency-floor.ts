import { performance } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';
import { SEED } from '../src/simulator/seed.js';
import { forkServer, type ForkedServer } from './fork-server.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { GRAPHQL_HEADERS, graphqlBody } from './graphql-client.js';
import { summarize } from './load.js';
import { table } from './report.js';
import { singleSnapshot } from './operations.js';
import { treeCpuMs } from './proc-stats.js';
import type { SimulatorProcess } from './simulator-process.js';

/**
 * One rung of the ladder, each adding one layer, each in its own process:
 * - `direct`: the REST GET straight to the simulator (`direct-undici` of the overhead section);
 * - `proxy`: node:http and one undici GET, no GraphQL (`floor-child.ts`): any Node hop's floor;
 * - `yoga`: graphql-yoga with no plugin and one resolver making that GET (`floor-child.ts`);
 * - `gateway`: the built gateway, the single-snapshot query;
 * - `typename`: the built gateway, `{ __typename }` (no upstream call).
 */
export type Rung = 'direct' | 'proxy' | 'yoga' | 'gateway' | 'typename';

/** What one rung measured: the median over the rounds. */
export interface RungResult {
  rung: Rung;
  /** Median over rounds of each round's p50, ms. */
  p50Ms: number;
  /** `p50Ms` ÷ the direct rung's. */
  ratio: number;
  /** Median over rounds of the serving process tree's CPU ms per request. */
  cpuMsPerRequest: number;
  /** Each round's p50, ms, in round order. */
  p50sByRound: number[];
}

/** The `floor` section: the latency floor at concurrency 1 (issue #19). */
export interface LatencyFloorReport {
  requestsPerRound: number;
  rounds: number;
  rungs: RungResult[];
}

/** What `runLatencyFloor` runs against and how long. */
export interface LatencyFloorOptions {
  sim: SimulatorProcess;
  /** Bearer token for the direct GET and the floor children. */
  token: string;
  /** Sequential requests per rung per round. @default 2000 */
  requests?: number;
  /** Rounds; each rung is measured once per round, in ladder order. @default 5 */
  rounds?: number;
}

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const S = SEED.flex.completedSnapshotId;
const PATH = `/api/atlas/v2/groups/${P}/flexClusters/${F}/backup/snapshots/${S}`;
/** Requests to each server before the first round: past V8's baseline tiers (see overhead.ts). */
const JIT_WARMUP_REQUESTS = 5000;
const ROUND_WARMUP_REQUESTS = 200;

/**
 * p50 at concurrency 1 of each rung, asked by one sequential undici client (the client of
 * `direct-undici`), the rungs measured in turn in every round so that a machine that speeds up or
 * slows down moves them all alike; the median round is reported. At concurrency 1 on a 2-core VM
 * the time is mostly process wake-ups and syscalls, whose cost moves 3× over a day (docs/benchmarks.md):
 * the rungs under the gateway say what part of its ratio to `direct` any Node server, or graphql-yoga
 * itself, would pay on the same machine at the same minute.
 */
export async function runLatencyFloor(o: LatencyFloorOptions): Promise<LatencyFloorReport> {
  const n = o.requests ?? 2000;
  const rounds = o.rounds ?? 5;
  // NODE_ENV=production as the gateway child runs it (the image's environment).
  const env = { NODE_ENV: 'production', FLOOR_SIM_URL: o.sim.url, FLOOR_TOKEN: o.token, FLOOR_PATH: PATH };
  const servers: (ForkedServer | GatewayProcess)[] = [];
  try {
    const proxy = await forkServer('./floor-child.ts', { ...env, FLOOR_MODE: 'proxy' });
    servers.push(proxy);
    const yoga = await forkServer('./floor-child.ts', { ...env, FLOOR_MODE: 'yoga' });
    servers.push(yoga);
    const gateway = await startGatewayProcess({ baseUrl: o.sim.url });
    servers.push(gateway);
    const post = (query: string): Dispatcher.RequestOptions => ({
      path: '/graphql',
      method: 'POST',
      headers: GRAPHQL_HEADERS,
      body: graphqlBody(query),
    });
    const snapshot = post(singleSnapshot(P, F, S));
    const rungs: { rung: Rung; url: string; pid: number; req: Dispatcher.RequestOptions }[] = [
      {
        rung: 'direct',
        url: o.sim.url,
        pid: o.sim.pid,
        req: {
          path: PATH,
          method: 'GET',
          headers: { authorization: `Bearer ${o.token}`, accept: 'application/vnd.atlas.2024-11-13+json' },
        },
      },
      { rung: 'proxy', url: proxy.url, pid: proxy.pid, req: snapshot },
      { rung: 'yoga', url: yoga.url, pid: yoga.pid, req: snapshot },
      { rung: 'gateway', url: gateway.url, pid: gateway.pid, req: snapshot },
      { rung: 'typename', url: gateway.url, pid: gateway.pid, req: post('{ __typename }') },
    ];
    const sequential = async (rung: (typeof rungs)[number], warmup: number, measured: number) => {
      const pool = new Pool(rung.url, { connections: 1 });
      const once = async () => {
        const res = await pool.request(rung.req);
        const text = await res.body.text();
        if (res.statusCode !== 200 || text.includes('"errors"')) {
          throw new Error(`latency floor, ${rung.rung}: ${res.statusCode} ${text.slice(0, 300)}`);
        }
      };
      try {
        for (let i = 0; i < warmup; i++) await once();
        if (measured === 0) return { p50: NaN, cpu: NaN };
        const samples = new Float64Array(measured);
        const cpu0 = treeCpuMs(rung.pid);
        for (let i = 0; i < measured; i++) {
          const t0 = performance.now();
          await once();
          samples[i] = performance.now() - t0;
        }
        return { p50: summarize(samples, measured).p50, cpu: (treeCpuMs(rung.pid) - cpu0) / measured };
      } finally {
        await pool.close();
      }
    };
    for (const rung of rungs) await sequential(rung, JIT_WARMUP_REQUESTS, 0);
    const p50s = new Map<Rung, number[]>(rungs.map((r) => [r.rung, []]));
    const cpus = new Map<Rung, number[]>(rungs.map((r) => [r.rung, []]));
    for (let round = 0; round < rounds; round++) {
      for (const rung of rungs) {
        const m = await sequential(rung, ROUND_WARMUP_REQUESTS, n);
        p50s.get(rung.rung)!.push(m.p50);
        cpus.get(rung.rung)!.push(m.cpu);
      }
    }
    const direct = median(p50s.get('direct')!);
    return {
      requestsPerRound: n,
      rounds,
      rungs: rungs.map(({ rung }) => ({
        rung,
        p50Ms: median(p50s.get(rung)!),
        ratio: median(p50s.get(rung)!) / direct,
        cpuMsPerRequest: median(cpus.get(rung)!),
        p50sByRound: p50s.get(rung)!,
      })),
    };
  } finally {
    for (const s of servers.reverse()) await s.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The ladder as a table, with each rung's p50 per round (they move together when the machine does). */
export function printLatencyFloor(r: LatencyFloorReport): void {
  console.log(
    `\n  latency floor, c=1: ${r.rounds} rounds × ${r.requestsPerRound} sequential requests per rung (one undici client)`,
  );
  console.log(
    table(
      ['rung', 'p50 ms', '× direct', 'CPU ms/req', 'p50 per round'],
      r.rungs.map((x) => [
        x.rung,
        x.p50Ms.toFixed(3),
        `${x.ratio.toFixed(2)}×`,
        x.cpuMsPerRequest.toFixed(3),
        x.p50sByRound.map((p) => p.toFixed(3)).join(' '),
      ]),
    )
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
}
