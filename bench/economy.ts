import { setTimeout as sleep } from 'node:timers/promises';
import { createGateway } from '../src/gateway.js';
import { SEED } from '../src/simulator/seed.js';
import { graphql } from './graphql-client.js';
import {
  CLUSTER_DETAIL,
  DASHBOARD,
  peer,
  REQUEST_DOWNLOAD,
  SNAPSHOT_DETAIL,
  WATCH_JOB,
} from './operations.js';
import type { SeedInfo, SimulatorProcess } from './simulator-process.js';
import { subscribeSse } from './sse-client.js';
import { OWNER } from './upstream.js';
import { openAccess } from '../src/callers/caller.js';

/** One operation's upstream calls: the minimum, and what each implementation made. */
export interface EconomyRow {
  operation: string;
  /** What a careful REST client needs, and why. */
  minimum: number;
  reasoning: string;
  /** A fresh gateway (no cluster family learned yet). */
  oursCold: number;
  /** The same gateway again: the steady state, compared with the minimum. */
  oursWarm: number;
  naive: number;
  /** null when the peer did not run. */
  peer: number | null;
  byOperation: { ours: Record<string, number>; naive: Record<string, number>; peer: Record<string, number> };
  note?: string;
  /** Why the peer has no count for this operation. */
  peerError?: string;
}

/** Where the economy runs: the simulator, the naive server, the peer (when it runs). */
export interface EconomyTargets {
  sim: SimulatorProcess;
  naiveUrl: string;
  peerUrl: string | undefined;
  pollIntervalMs: number;
  jobMs: number;
}

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const T = SEED.tenant.clusterName;

interface Measured {
  total: number;
  byOperation: Record<string, number>;
}

/** Upstream API calls made while `fn` ran (and in the 150 ms after, for calls still on the wire). */
async function count(sim: SimulatorProcess, fn: () => Promise<unknown>): Promise<Measured> {
  await sim.reset();
  await fn();
  await sleep(150);
  return sim.calls();
}

/** A mutation, then `watchers` SSE subscribers on the job until each saw COMPLETED and the end. */
async function downloadAndWatch(url: string, snapshotId: string, watchers: number, timeoutMs: number) {
  const data = await graphql<{ requestDownload: { job: { id: string } } }>(url, REQUEST_DOWNLOAD, {
    i: { projectId: P, clusterName: F, snapshotId },
  });
  const jobId = data.requestDownload.job.id;
  const subs = await Promise.all(
    Array.from({ length: watchers }, () => {
      let done!: () => void;
      let fail!: (err: Error) => void;
      const completed = new Promise<void>((resolve, reject) => {
        done = resolve;
        fail = reject;
      });
      return subscribeSse(url, WATCH_JOB, { p: P, c: F, j: jobId }, (e) => {
        if (e.error) fail(new Error(`subscription error: ${e.error}`));
        else if (e.status === 'COMPLETED') done();
      }).then((sub) => ({ sub, completed }));
    }),
  );
  try {
    await withTimeout(
      Promise.all(subs.map(async ({ sub, completed }) => Promise.all([completed, sub.ended]))),
      timeoutMs,
      `download ${jobId} not COMPLETED for all ${watchers} watchers`,
    );
  } finally {
    for (const { sub } of subs) sub.close();
  }
}

/** The peer's flow: the POST, then each watcher polls through the peer until COMPLETED. */
async function peerDownloadAndWatch(
  url: string,
  snapshotId: string,
  watchers: number,
  intervalMs: number,
  timeoutMs: number,
) {
  const data = await graphql<{ downloadGroupFlexClusterBackup: { id?: string; detail?: string } }>(
    url,
    peer.download(P, F, snapshotId),
  );
  const jobId = data.downloadGroupFlexClusterBackup.id;
  if (!jobId) throw new Error(`peer download failed: ${JSON.stringify(data)}`);
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    Array.from({ length: watchers }, async () => {
      for (;;) {
        // A REST-style client reads after each interval; the POST's answer was the first state.
        await sleep(intervalMs);
        const job = await graphql<{ getGroupFlexClusterBackupRestoreJob: { status?: string } }>(
          url,
          peer.job(P, F, jobId),
        );
        if (job.getGroupFlexClusterBackupRestoreJob.status === 'COMPLETED') return;
        if (Date.now() > deadline) throw new Error(`peer job ${jobId} not COMPLETED in time`);
      }
    }),
  );
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A COMPLETED snapshot no run has used yet (a reused download would make no POST): with `listed`, the
 * first of those ids still unused (the snapshot a client picks from what it just listed), else the
 * newest unused one.
 */
type SnapshotPicker = (listed?: readonly string[]) => string;

interface Operation {
  name: string;
  minimum: number;
  reasoning: string;
  /** Runs the operation against the gateway or the naive server (same documents). */
  run(url: string, snapshot: SnapshotPicker): Promise<unknown>;
  runPeer(url: string, snapshot: SnapshotPicker): Promise<unknown>;
  note?: string;
}

interface ListedSnapshots {
  cluster: { snapshots: { nodes: { id: string; status: string }[] } } | null;
}

/** The Flex cluster's page (its newest snapshots, as a client learns a snapshot id), then one of them. */
async function listedSnapshot(url: string, snapshot: SnapshotPicker): Promise<string> {
  const data = await graphql<ListedSnapshots>(url, CLUSTER_DETAIL, { p: P, c: F });
  const nodes = data.cluster?.snapshots.nodes ?? [];
  return snapshot(nodes.filter((n) => n.status === 'COMPLETED').map((n) => n.id));
}

function operations(t: EconomyTargets, seed: SeedInfo): Operation[] {
  const reads = Math.ceil(t.jobMs / t.pollIntervalMs);
  const flowTimeout = t.jobMs + 6 * t.pollIntervalMs + 10_000;
  const download = (watchers: number): Operation => ({
    name: watchers === 1 ? 'download flow' : `download flow, ${watchers} watchers`,
    minimum: 2 + reads,
    reasoning:
      `list the cluster's jobs (a still-useful download of the snapshot is returned instead of a new job), ` +
      `POST the download, then one read per ${t.pollIntervalMs} ms until COMPLETED: ` +
      `ceil(${t.jobMs} / ${t.pollIntervalMs}) = ${reads} reads` +
      (watchers > 1 ? `; ${watchers} watchers of one job in one process share those reads` : ''),
    run: (url, snapshot) => downloadAndWatch(url, snapshot(), watchers, flowTimeout),
    runPeer: (url, snapshot) =>
      peerDownloadAndWatch(url, snapshot(), watchers, t.pollIntervalMs, flowTimeout),
    note:
      'ours: +1 read of the snapshot, which this gateway has not seen (a typed CONFLICT before any POST ' +
      'when it is not COMPLETED; a snapshot it has read COMPLETED is not read again, see "snapshot listed ' +
      'first"); ' +
      "the subscription's first event is the mutation's answer (its poller is primed with it), so it " +
      'starts without a read; the naive and peer flows make no duplicate check',
  });
  // Atlas lists Flex snapshots oldest first (schema/atlas/recorded/): the newest `first` of a cluster
  // with more cost any client a first page (which says `totalCount`) and then the last page(s).
  const flexNewestEnd = (count: number, first: number) => (count > first ? 1 : 0);
  const dashboardExtra = seed.flexSnapshotCounts.reduce((n, c) => n + flexNewestEnd(c, 5), 0);
  const detailExtra = flexNewestEnd(seed.detailFlexSnapshots, 10);
  const flexDetailMinimum = 4 + detailExtra;
  // How a client learns a snapshot id: the cluster's page lists its newest snapshots (and their
  // statuses). Listed COMPLETED, the snapshot is not read again before the POST.
  const listedFirst: Operation = {
    name: 'download flow, snapshot listed first',
    minimum: flexDetailMinimum + 2 + reads,
    reasoning:
      `the Flex cluster detail (${flexDetailMinimum}, its 10 newest snapshots with their statuses), then the ` +
      `download flow of one of them: list the jobs, POST, ${reads} reads until COMPLETED`,
    run: async (url, snapshot) => downloadAndWatch(url, await listedSnapshot(url, snapshot), 1, flowTimeout),
    runPeer: async (url, snapshot) => {
      await graphql(url, peer.flexClusterDetail(P, F));
      // The peer lists the oldest page: any unused snapshot does (it makes no check anyway).
      return peerDownloadAndWatch(url, snapshot(), 1, t.pollIntervalMs, flowTimeout);
    },
    note:
      'ours: the listing read every listed snapshot COMPLETED (a final status), so the mutation reads ' +
      'the jobs and POSTs, with no snapshot read; a snapshot that is not COMPLETED is never skipped',
  };
  return [
    {
      name: 'dashboard',
      minimum: 1 + 2 * seed.projects + 2 * seed.clusters + dashboardExtra,
      reasoning:
        `listGroups; per project the tenant and the Flex cluster lists (${seed.projects} × 2); per cluster ` +
        `one snapshot page and one job list (${seed.clusters} × 2); a node's cluster is its parent, no call; ` +
        `+1 per Flex cluster with more than 5 snapshots (${dashboardExtra}): Atlas lists them oldest first, ` +
        `so the newest 5 are on the last page, found from the first page's totalCount`,
      run: (url) => graphql(url, DASHBOARD),
      runPeer: (url) => graphql(url, peer.dashboard),
    },
    {
      name: 'cluster detail (Flex)',
      minimum: flexDetailMinimum,
      reasoning:
        'the cluster, its project, one page of 10 snapshots, one page of jobs; ' +
        "the jobs' snapshots are in that page" +
        (detailExtra
          ? '; +1: the newest 10 of an oldest-first list of more than 10 need its totalCount first'
          : ''),
      run: (url) => graphql(url, CLUSTER_DETAIL, { p: P, c: F }),
      runPeer: (url) => graphql(url, peer.flexClusterDetail(P, F)),
    },
    {
      name: 'cluster detail (tenant)',
      minimum: 4,
      reasoning:
        'the cluster, its project, the snapshot list and the job list (tenant lists arrive whole), ' +
        'family known (any list teaches it; a first contact with an unknown cluster costs any client one probe)',
      run: (url) => graphql(url, CLUSTER_DETAIL, { p: P, c: T }),
      runPeer: (url) => graphql(url, peer.tenantClusterDetail(P, T)),
    },
    {
      name: 'snapshot detail',
      minimum: 3,
      reasoning: "the snapshot, its cluster, the cluster's job list (Atlas cannot list jobs by snapshot)",
      run: (url) => graphql(url, SNAPSHOT_DETAIL, { p: P, c: F, s: SEED.flex.completedSnapshotId }),
      runPeer: (url) => graphql(url, peer.snapshotDetail(P, F, SEED.flex.completedSnapshotId)),
    },
    download(1),
    // Its snapshots come from its own listing: in `small` the 10 newest hold 7 unused COMPLETED ones
    // (1 RUNNING, 1 FAILED, the seed's own), the flow above takes 4 of them, and ours needs 2 (cold,
    // warm). Were none left, the picker would fall back to an unlisted one: ours would show +1.
    listedFirst,
    download(10),
  ];
}

/**
 * Section 1: upstream calls per operation, from the simulator's answers, for the gateway (cold and
 * warm), the naive N+1 resolvers and the peer, against the minimum written down per operation.
 */
export async function runEconomy(t: EconomyTargets): Promise<EconomyRow[]> {
  const seed = await t.sim.seed();
  // Fresh COMPLETED snapshots for the download flows: a reused download would make no POST.
  const free = seed.completedFlexSnapshots.filter((id) => id !== SEED.flex.completedSnapshotId).reverse();
  const snapshot: SnapshotPicker = (listed) => {
    const at = listed ? free.findLastIndex((id) => listed.includes(id)) : free.length - 1;
    const pick = at >= 0 ? at : free.length - 1;
    const id = free.splice(pick, 1)[0];
    if (!id) throw new Error('no unused COMPLETED snapshot left for a download flow');
    return id;
  };

  const rows: EconomyRow[] = [];
  for (const op of operations(t, seed)) {
    // A gateway per operation: "cold" is its first request, before any cluster family is learned.
    const gateway = createGateway({
      // Open on purpose: the bench measures the gateway, not caller checks.
      authenticate: openAccess,
      atlas: {
        baseUrl: t.sim.url,
        auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
      },
      logging: false,
      graphiql: false,
      pollIntervalMs: t.pollIntervalMs,
    });
    try {
      const url = await gateway.listen(0, '127.0.0.1');
      const cold = await count(t.sim, () => op.run(url, snapshot));
      const warm = await count(t.sim, () => op.run(url, snapshot));
      const naive = await count(t.sim, () => op.run(t.naiveUrl, snapshot));
      let peerCalls: Measured | undefined;
      let peerError: string | undefined;
      if (t.peerUrl) {
        try {
          peerCalls = await count(t.sim, () => op.runPeer(t.peerUrl!, snapshot));
        } catch (err) {
          peerError = (err as Error).message;
        }
      }
      rows.push({
        operation: op.name,
        minimum: op.minimum,
        reasoning: op.reasoning,
        oursCold: cold.total,
        oursWarm: warm.total,
        naive: naive.total,
        peer: peerCalls?.total ?? null,
        byOperation: { ours: warm.byOperation, naive: naive.byOperation, peer: peerCalls?.byOperation ?? {} },
        ...(op.note ? { note: op.note } : {}),
        ...(peerError ? { peerError } : {}),
      });
      console.log(
        `  ${op.name}: minimum ${op.minimum}, ours ${cold.total} cold / ${warm.total} warm, naive ${naive.total}, peer ${peerCalls?.total ?? '—'}`,
      );
    } finally {
      await gateway.close();
    }
  }
  return rows;
}
