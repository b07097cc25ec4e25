import { EXAMPLE_QUERY } from '../src/gateway.js';
import type { Answer, ChaosClient, SseResult } from './client.js';
import type { ChaosConfig } from './config.js';
import type { Action, DownloadAction, GatewayName, JobRef, WorkloadPlan } from './plan.js';
import { fork } from './prng.js';
import type { ChaosStack } from './stack.js';

export const QUERIES = {
  dashboard: EXAMPLE_QUERY,
  snapshot: `query Snapshot($p: ID!, $c: String!, $s: ID!) {
    snapshot(projectId: $p, clusterName: $c, id: $s) {
      id status finishTime cluster { name family }
      restoreJobs(first: 2) { totalCount nodes { id status } }
    }
  }`,
  clusterLists: `query ClusterLists($p: ID!, $c: String!) {
    cluster(projectId: $p, name: $c) {
      name family
      snapshots(first: 5, status: [COMPLETED]) { totalCount nodes { id } }
      restoreJobs(first: 5, deliveryType: DOWNLOAD) { totalCount nodes { id status } }
    }
  }`,
  jobRead: `query JobRead($p: ID!, $c: String!, $j: ID!) {
    restoreJob(projectId: $p, clusterName: $c, id: $j) { id status deliveryType snapshotUrl isTerminal }
  }`,
  download: `mutation Download($i: RequestDownloadInput!) {
    requestDownload(input: $i) { reused job { id status deliveryType snapshotId } }
  }`,
  watch: `subscription Watch($p: ID!, $c: String!, $j: ID!) {
    restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status snapshotUrl isTerminal }
  }`,
} as const;

export interface DownloadOutcome {
  action: DownloadAction;
  /** The key as sent (unique per run and round), if any. */
  key: string | undefined;
  answer: Answer;
  jobId: string | undefined;
  reused: boolean | undefined;
}

export interface ReadOutcome {
  action: Action;
  answer: Answer;
}

export interface SubscriptionOutcome {
  /** The action it came from (a download's subscriber or a fixed subscription); -1 for a held one. */
  source: number;
  gateway: GatewayName;
  job: JobRef;
  /** `job`: a job that exists (must end with its terminal state); `NOT_FOUND`: a job that does not. */
  expect: 'job' | 'NOT_FOUND';
  /** The download failed, so it follows another job of the round instead. */
  fallback: boolean;
  result: SseResult;
}

export interface RoundOutcome {
  round: number;
  startedAt: number;
  durationMs: number;
  reads: ReadOutcome[];
  downloads: DownloadOutcome[];
  subscriptions: SubscriptionOutcome[];
  /** Subscribers planned for a download that failed when no other job of the round existed yet. */
  subscriptionsSkipped: number;
  peakLiveSubscriptions: number;
}

/** Runs one round of the plan: every action at its time, subscribers once their job is known. */
export async function runRound(
  stack: ChaosStack,
  client: ChaosClient,
  plan: WorkloadPlan,
  config: ChaosConfig,
  round: number,
  runTag: string,
): Promise<RoundOutcome> {
  const rng = fork(config.seed, `round:${round}:fallback`);
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const timers = new Set<NodeJS.Timeout>();
  const at = (ms: number, fn: () => Promise<void>) =>
    track(
      new Promise<void>((resolve) => {
        const t = setTimeout(
          () => {
            timers.delete(t);
            fn().then(resolve, resolve);
          },
          Math.max(0, ms),
        );
        timers.add(t);
      }),
    );

  const out: RoundOutcome = {
    round,
    startedAt: Date.now(),
    durationMs: 0,
    reads: [],
    downloads: [],
    subscriptions: [],
    subscriptionsSkipped: 0,
    peakLiveSubscriptions: 0,
  };
  const createdJobs: JobRef[] = [];
  let live = 0;
  const url = (g: GatewayName) => stack.gateways[g].url;

  const subscribe = async (
    source: number,
    gateway: GatewayName,
    job: JobRef,
    expect: 'job' | 'NOT_FOUND',
    fallback: boolean,
  ) => {
    live++;
    out.peakLiveSubscriptions = Math.max(out.peakLiveSubscriptions, live);
    try {
      const result = await client.subscribe(
        url(gateway),
        QUERIES.watch,
        { p: job.projectId, c: job.clusterName, j: job.jobId },
        config.subscriptionDeadlineMs,
      );
      out.subscriptions.push({ source, gateway, job, expect, fallback, result });
    } finally {
      live--;
    }
  };

  // Held subscriptions: their jobs are made here, straight in the simulator, so faults cannot keep them
  // from existing; they end `jobMs` from now, after every held subscription has opened.
  const heldJobs = plan.held.snapshots.map((s) => {
    const job = stack.sim.store.createRestoreJob({
      groupId: s.projectId,
      clusterName: s.clusterName,
      snapshotId: s.snapshotId,
      deliveryType: 'DOWNLOAD',
      targetProjectId: s.projectId,
      targetDeploymentItemName: s.clusterName,
    });
    return { projectId: s.projectId, clusterName: s.clusterName, jobId: job.id };
  });
  for (const h of plan.held.subscribers) {
    at(h.atMs, () => subscribe(-1, h.gateway, heldJobs[h.snapshot]!, 'job', false));
  }

  for (const action of plan.actions) {
    at(action.atMs, async () => {
      switch (action.kind) {
        case 'subscribe':
          await subscribe(
            action.id,
            action.gateway,
            action.job,
            action.expect === 'NOT_FOUND' ? 'NOT_FOUND' : 'job',
            false,
          );
          return;
        case 'download': {
          const key =
            action.key === undefined ? undefined : `${runTag}-r${round}-${action.gateway}-${action.key}`;
          const answer = await client.query(
            url(action.gateway),
            QUERIES.download,
            {
              i: {
                projectId: action.snapshot.projectId,
                clusterName: action.snapshot.clusterName,
                snapshotId: action.snapshot.snapshotId,
                reuseExisting: action.reuseExisting,
                ...(key !== undefined ? { idempotencyKey: key } : {}),
              },
            },
            config.requestDeadlineMs,
          );
          const payload = (answer.data?.requestDownload ?? undefined) as
            { reused: boolean; job: { id: string } } | undefined;
          const jobId = payload?.job.id;
          out.downloads.push({ action, key, answer, jobId, reused: payload?.reused });
          let job: JobRef | undefined;
          let fallback = false;
          if (jobId) {
            job = { projectId: action.snapshot.projectId, clusterName: action.snapshot.clusterName, jobId };
            createdJobs.push(job);
          } else {
            // The download failed: its subscribers follow another job of the round (or a finished one).
            job = rng.pick(createdJobs.length > 0 ? createdJobs : plan.finishedJobs);
            fallback = true;
          }
          for (const s of action.subscribers) {
            if (!job) {
              out.subscriptionsSkipped++;
              continue;
            }
            const j = job;
            at(s.delayMs, () => subscribe(action.id, s.gateway, j, 'job', fallback));
          }
          return;
        }
        default: {
          const answer = await client.query(
            url(action.gateway),
            QUERIES[action.kind],
            action.variables,
            config.requestDeadlineMs,
          );
          out.reads.push({ action, answer });
        }
      }
    });
  }
  while (pending.size > 0) await Promise.all([...pending]);
  out.durationMs = Math.round(performance.now() - started);
  return out;
}
