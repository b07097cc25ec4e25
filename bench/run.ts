import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cleanup, exitCleanlyOnSignals } from './cleanup.js';
import { runEconomy } from './economy.js';
import { runMutationVolume } from './mutation-volume.js';
import { forkServer } from './fork-server.js';
import { printLatencyFloor, runLatencyFloor } from './latency-floor.js';
import { startGatewayProcess } from './gateway-process.js';
import { describeMachine } from './machine.js';
import { startNaiveServer } from './naive/server.js';
import { parseOptions, type BenchOptions } from './options.js';
import { runOverhead } from './overhead.js';
import { PeerUnavailable, startPeer, type PeerGateway } from './peer/peer-gateway.js';
import { checkTargets, printReport, writeResults, type BenchResults } from './report.js';
import { startSimulatorProcess } from './simulator-process.js';
import { printSharedDashboards, runSharedDashboards } from './shared-dashboards.js';
import { runSubscriptions } from './subscriptions.js';
import { fetchToken } from './upstream.js';

// `npm run bench`: every server and child process of the run is started here and closed here, also
// on failure or Ctrl-C (Cleanup); all traffic stays on 127.0.0.1.

let options: BenchOptions | undefined;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
if (!options) process.exit(0);
const opts = options;

const cleanup = new Cleanup();
exitCleanlyOnSignals(cleanup);
const started = performance.now();
const results: BenchResults = {
  startedAt: new Date().toISOString(),
  wallSec: 0,
  machine: describeMachine(),
  options: { ...opts, sections: [...opts.sections] },
  peer: { status: 'skipped', reason: opts.peer ? 'no section needed it' : '--no-peer' },
  loadAverage: {},
  errors: {},
};

/** Runs one section; a failure is recorded and the next section still runs. */
async function section(name: string, fn: () => Promise<void>): Promise<void> {
  // Other work on the machine skews every number: the load average says how much there was.
  const start = loadavg()[0]!;
  console.log(`\n[${name}] (load average ${start.toFixed(2)})`);
  try {
    await fn();
  } catch (err) {
    results.errors[name] = (err as Error).stack ?? String(err);
    console.error(`bench: ${name} failed: ${(err as Error).message}`);
  } finally {
    results.loadAverage[name] = { start, end: loadavg()[0]! };
  }
}

try {
  const tmp = mkdtempSync(join(tmpdir(), 'atlas-bench-'));
  cleanup.defer('temp dir', () => rmSync(tmp, { recursive: true, force: true }));

  if (opts.sections.has('economy') || opts.sections.has('overhead') || opts.sections.has('floor')) {
    // Every server of these sections runs in its own process, the simulator too: the load generator
    // (this process) never answers its own requests.
    const sim = await startSimulatorProcess({ jobMs: opts.jobMs });
    const closeSim = cleanup.defer('simulator process', () => sim.close());
    const token = await fetchToken(sim.url);

    let peer: PeerGateway | undefined;
    let closePeer = async () => {};
    if (opts.peer) {
      await section('peer', async () => {
        try {
          peer = await startPeer({ simUrl: sim.url, token, tmpDir: tmp });
          const p = peer;
          closePeer = cleanup.defer('peer gateway', () => p.close());
          results.peer = {
            status: 'ran',
            versions: p.versions,
            installSec: p.installMs / 1000,
            composeSec: p.composeMs / 1000,
            acceptFixed: p.acceptFixed,
          };
          console.log(
            `  hive-gateway on ${p.url} (pid ${p.pid}), composed in ${(p.composeMs / 1000).toFixed(1)} s`,
          );
        } catch (err) {
          // The rest of the bench runs without the peer; the reason goes into the results.
          if (!(err instanceof PeerUnavailable)) throw err;
          results.peer = { status: 'unavailable', reason: err.message };
          console.error(`bench: peer unavailable: ${err.message}`);
        }
      });
    }

    if (opts.sections.has('economy')) {
      await section('economy', async () => {
        const naive = await startNaiveServer({
          baseUrl: sim.url,
          token,
          pollIntervalMs: opts.pollIntervalMs,
        });
        const closeNaive = cleanup.defer('naive server', () => naive.close());
        try {
          results.economy = await runEconomy({
            sim,
            naiveUrl: naive.url,
            peerUrl: peer?.url,
            pollIntervalMs: opts.pollIntervalMs,
            jobMs: opts.jobMs,
          });
        } finally {
          await closeNaive();
        }
      });
    }

    if (opts.sections.has('overhead')) {
      await section('overhead', async () => {
        const gateway = await startGatewayProcess({ baseUrl: sim.url, pollIntervalMs: opts.pollIntervalMs });
        const closeGateway = cleanup.defer('gateway process', () => gateway.close());
        const bareYoga = await forkServer('./bare-yoga-child.ts');
        const closeBareYoga = cleanup.defer('bare yoga process', () => bareYoga.close());
        try {
          results.overhead = await runOverhead({
            sim,
            gateway,
            peer: peer ? { url: peer.url, pid: peer.pid } : undefined,
            bareYoga: { url: bareYoga.url, pid: bareYoga.pid },
            token,
            durationSec: opts.durationSec,
            warmupSec: opts.warmupSec,
            concurrency: opts.concurrency,
            latencyMs: opts.latencyMs,
          });
        } finally {
          await closeBareYoga();
          await closeGateway();
        }
      });
    }
    if (opts.sections.has('floor')) {
      await section('floor', async () => {
        results.floor = await runLatencyFloor({
          sim,
          token,
          ...(opts.quick ? { requests: 500, rounds: 3 } : {}),
        });
        printLatencyFloor(results.floor);
      });
    }
    // The peer and this simulator are done: close them before the subscription runs start their own.
    await closePeer();
    await closeSim();
  }

  if (opts.sections.has('mutation-volume')) {
    await section('mutation-volume', async () => {
      results.mutationVolume = await runMutationVolume();
    });
  }

  if (opts.sections.has('shared-dashboards')) {
    await section('shared-dashboards', async () => {
      results.sharedDashboards = await runSharedDashboards({ quick: opts.quick, cleanup });
      printSharedDashboards(results.sharedDashboards);
    });
  }

  if (opts.sections.has('subscriptions')) {
    await section('subscriptions', async () => {
      results.subscriptions = [];
      // Every count with shared executions (one caller's identical subscriptions: the default), and the
      // largest again with one execution per subscriber (as many different callers would cost).
      const largest = Math.max(...opts.subscribers);
      const runs = [
        ...opts.subscribers.map((subscribers) => ({ subscribers, shared: true })),
        { subscribers: largest, shared: false },
      ];
      for (const { subscribers, shared } of runs) {
        console.log(
          `  ${subscribers} subscribers over ${opts.jobs} jobs${shared ? '' : ', one execution each'}…`,
        );
        const run = await runSubscriptions({
          subscribers,
          jobs: opts.jobs,
          pollIntervalMs: opts.pollIntervalMs,
          windowIntervals: opts.quick ? 3 : 5,
          shared,
          cleanup,
        });
        results.subscriptions.push(run);
        if (run.error) console.error(`bench: ${subscribers} subscribers: ${run.error}`);
      }
    });
  }
} catch (err) {
  results.errors.run = (err as Error).stack ?? String(err);
  console.error(`bench: ${(err as Error).message}`);
} finally {
  await cleanup.runAll();
}

results.wallSec = (performance.now() - started) / 1000;
results.targets = checkTargets(results);
printReport(results);
const written = writeResults(results, opts.outDir);
console.log(`\nwritten: ${written.join(', ')}`);
process.exit(Object.keys(results.errors).length > 0 ? 1 : 0);
