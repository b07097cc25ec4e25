import { setTimeout as sleep } from 'node:timers/promises';
import { SEED } from '../src/simulator/seed.js';
import type { GatewayProcess, ChildMemory } from './gateway-process.js';
import { GRAPHQL_HEADERS, graphqlBody } from './graphql-client.js';
import { autocannonRun, undiciRun, type LoadRequest, type LoadResult } from './load.js';
import { peer as peerOps, singleSnapshot } from './operations.js';
import { sampleRss, treeCpuMs, treeRss } from './proc-stats.js';
import type { SimulatorProcess } from './simulator-process.js';

/**
 * `direct`: the REST GET straight to the simulator (autocannon); `direct-undici`: the same with an
 * undici Pool, as a Node REST client; `ours` / `peer`: the GraphQL query through each gateway;
 * `ours-typename` / `yoga-typename`: `{ __typename }` (no upstream call) through the gateway and
 * through a bare graphql-yoga, which splits the gateway's own cost (c=1, no latency only).
 */
export type Target = 'direct' | 'direct-undici' | 'ours' | 'peer' | 'ours-typename' | 'yoga-typename';

/** One measured load point. */
export interface LoadPoint extends LoadResult {
  target: Target;
  latencyMs: number;
  /** Upstream API calls per sent request (null where the target makes none or is the upstream). */
  upstreamPerRequest: number | null;
  /** Largest RSS of the target's process tree during the point (null for the direct targets). */
  rssMax: number | null;
  /**
   * CPU ms per answered request of the process that serves it: the gateway, the peer, or (direct
   * targets) the simulator. Robust to other work on the machine, unlike req/s.
   */
  cpuMsPerRequest: number | null;
}

/** Section 2 and 3 results, plus the memory of section 5. */
export interface OverheadReport {
  points: LoadPoint[];
  /** ours − direct (both autocannon), per latency and concurrency. */
  overhead: { latencyMs: number; connections: number; p50Ms: number; p99Ms: number }[];
  /** ours / peer, per latency and concurrency; `cpu` is peer CPU per request / ours (capacity ratio). */
  peerRatios: { latencyMs: number; connections: number; rps: number; p99: number; cpu: number }[];
  /** Why the peer was left out of the load, when it answered the check wrongly. */
  peerError?: string;
  memory: {
    ours: { idle: ChildMemory; idleTreeRss: number; loadRssMax: number; afterLoad: ChildMemory };
    peer: { idleTreeRss: number; loadRssMax: number } | null;
  };
}

/** What the overhead section runs against. */
export interface OverheadTargets {
  sim: SimulatorProcess;
  gateway: GatewayProcess;
  peer: { url: string; pid: number } | undefined;
  /** A bare graphql-yoga server (bare-yoga-child.ts), for the `{ __typename }` floor. */
  bareYoga: { url: string; pid: number } | undefined;
  /** Bearer token for the direct REST requests. */
  token: string;
  durationSec: number;
  warmupSec: number;
  concurrency: number[];
  latencyMs: number[];
}

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const S = SEED.flex.completedSnapshotId;
/** Long enough for requests still in flight when autocannon stops to reach the simulator. */
const DRAIN_MS = 300;
/** The JIT warm-up of each server before the first point, in per-point warm-ups (`--warmup`). */
const JIT_WARMUP_FACTOR = 5;

async function check(name: string, req: LoadRequest, expect: string): Promise<void> {
  const res = await fetch(req.url, {
    method: req.method,
    headers: req.headers,
    ...(req.body !== undefined ? { body: req.body } : {}),
  });
  const text = await res.text();
  if (!res.ok || !text.includes(expect) || text.includes('"errors"')) {
    throw new Error(`${name}: the check request answered ${res.status}: ${text.slice(0, 400)}`);
  }
}

const graphqlPost = (url: string, query: string): LoadRequest => ({
  url: `${url}/graphql`,
  method: 'POST',
  headers: { ...GRAPHQL_HEADERS },
  body: graphqlBody(query),
});

/**
 * Sections 2, 3 and 5: the single-snapshot query through the gateway, through the peer and straight
 * from the simulator, per simulator latency and concurrency, each process on its own; RSS of the
 * gateway and the peer at idle and under that load.
 */
export async function runOverhead(t: OverheadTargets): Promise<OverheadReport> {
  const requests: Partial<Record<Target, LoadRequest>> = {
    direct: {
      url: `${t.sim.url}/api/atlas/v2/groups/${P}/flexClusters/${F}/backup/snapshots/${S}`,
      method: 'GET',
      headers: { authorization: `Bearer ${t.token}`, accept: 'application/vnd.atlas.2024-11-13+json' },
    },
    ours: graphqlPost(t.gateway.url, singleSnapshot(P, F, S)),
    'ours-typename': graphqlPost(t.gateway.url, '{ __typename }'),
  };
  requests['direct-undici'] = requests.direct!;
  if (t.peer) requests.peer = graphqlPost(t.peer.url, peerOps.singleSnapshot(P, F, S));
  if (t.bareYoga) requests['yoga-typename'] = graphqlPost(t.bareYoga.url, '{ __typename }');
  let peerError: string | undefined;
  for (const [name, req] of Object.entries(requests)) {
    try {
      await check(name, req, name.endsWith('typename') ? 'Query' : S);
    } catch (err) {
      // A peer that answers wrongly is left out and reported; the gateway and direct points still run.
      if (name !== 'peer') throw err;
      peerError = (err as Error).message;
      delete requests.peer;
    }
  }

  const idle = await t.gateway.memory(true);
  const idleTreeRss = treeRss(t.gateway.pid);
  const peerIdle = requests.peer && t.peer ? treeRss(t.peer.pid) : 0;

  const pidOf = (target: Target) =>
    target === 'ours' || target === 'ours-typename'
      ? t.gateway.pid
      : target === 'peer'
        ? t.peer?.pid
        : target === 'yoga-typename'
          ? t.bareYoga?.pid
          : undefined;
  const points: LoadPoint[] = [];
  const measure = async (target: Target, latencyMs: number, connections: number) => {
    const req = requests[target];
    if (!req) return;
    const runner = target === 'direct-undici' ? undiciRun : autocannonRun;
    if (t.warmupSec > 0) await runner(req, connections, t.warmupSec);
    await sleep(DRAIN_MS);
    await t.sim.reset();
    const pid = pidOf(target);
    const servedBy = pid ?? (target.startsWith('direct') ? t.sim.pid : undefined);
    const sampler = pid !== undefined ? sampleRss(pid) : undefined;
    const cpu0 = servedBy !== undefined ? treeCpuMs(servedBy) : 0;
    const result = await runner(req, connections, t.durationSec);
    const cpu1 = servedBy !== undefined ? treeCpuMs(servedBy) : 0;
    const rssMax = sampler ? sampler.stop() : null;
    await sleep(DRAIN_MS);
    const calls = (await t.sim.calls()).total;
    const counted = target === 'ours' || target === 'peer';
    points.push({
      target,
      latencyMs,
      ...result,
      upstreamPerRequest: counted && result.sent > 0 ? calls / result.sent : null,
      rssMax,
      cpuMsPerRequest: servedBy !== undefined && result.requests > 0 ? (cpu1 - cpu0) / result.requests : null,
    });
    console.log(
      `  ${target.padEnd(13)} latency ${String(latencyMs).padStart(2)} ms  c=${String(connections).padEnd(3)} ` +
        `${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms` +
        (servedBy !== undefined
          ? `  cpu ${((cpu1 - cpu0) / Math.max(1, result.requests)).toFixed(2)} ms/req`
          : '') +
        (result.non2xx || result.errors ? `  non2xx ${result.non2xx} errors ${result.errors}` : ''),
    );
  };

  // A fresh process runs its first thousands of requests in V8's baseline tiers: the first point
  // (c=1, no latency) measured the JIT warming up, not the server (2026-11-30: the gateway's first
  // c=1 point cost 1.28 ms of CPU per request, 0.6 ms once warm). Every server is warmed at c=10
  // first, the peer and the bare yoga alike, before the per-point warm-up.
  if (t.warmupSec > 0) {
    for (const target of ['ours', 'ours-typename', 'peer', 'yoga-typename'] as const) {
      const req = requests[target];
      if (req) await autocannonRun(req, 10, JIT_WARMUP_FACTOR * t.warmupSec);
    }
    await sleep(DRAIN_MS);
  }
  for (const latencyMs of t.latencyMs) {
    await t.sim.setLatency(latencyMs);
    for (const connections of t.concurrency) {
      for (const target of ['direct', 'direct-undici', 'ours', 'peer'] as const) {
        await measure(target, latencyMs, connections);
      }
    }
  }
  await t.sim.setLatency(0);
  // Where a single request's time goes in the gateway: GraphQL over HTTP alone, with and without
  // the gateway's plugins (logging, metrics, tracing, limits).
  for (const target of ['ours-typename', 'yoga-typename'] as const) await measure(target, 0, 1);
  const afterLoad = await t.gateway.memory(true);

  const find = (target: Target, latencyMs: number, connections: number) =>
    points.find((p) => p.target === target && p.latencyMs === latencyMs && p.connections === connections);
  const overhead: OverheadReport['overhead'] = [];
  const peerRatios: OverheadReport['peerRatios'] = [];
  for (const latencyMs of t.latencyMs) {
    for (const connections of t.concurrency) {
      const ours = find('ours', latencyMs, connections);
      const direct = find('direct', latencyMs, connections);
      const peer = find('peer', latencyMs, connections);
      if (ours && direct) {
        overhead.push({ latencyMs, connections, p50Ms: ours.p50 - direct.p50, p99Ms: ours.p99 - direct.p99 });
      }
      if (ours && peer) {
        peerRatios.push({
          latencyMs,
          connections,
          rps: ours.rps / peer.rps,
          p99: ours.p99 / peer.p99,
          cpu: (peer.cpuMsPerRequest ?? NaN) / (ours.cpuMsPerRequest ?? NaN),
        });
      }
    }
  }
  const maxRss = (target: Target) =>
    Math.max(0, ...points.filter((p) => p.target === target).map((p) => p.rssMax ?? 0));
  return {
    points,
    overhead,
    peerRatios,
    ...(peerError ? { peerError } : {}),
    memory: {
      ours: { idle, idleTreeRss, loadRssMax: maxRss('ours'), afterLoad },
      peer: requests.peer ? { idleTreeRss: peerIdle, loadRssMax: maxRss('peer') } : null,
    },
  };
}
