import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A request from the parent to the simulator child; every one is answered with the same `id`. */
export type SimRequestMessage = { id: number } & (
  | { type: 'calls' }
  | { type: 'reset' }
  | { type: 'latency'; ms: number }
  | { type: 'seed' }
  | { type: 'close' }
);

/** What the economy needs to know of the simulator's data. */
export interface SeedInfo {
  projects: number;
  clusters: number;
  /** COMPLETED snapshots of Payments / payments-flex, newest first: fresh ones for download flows. */
  completedFlexSnapshots: string[];
  /** Snapshots per Flex cluster (Atlas lists them oldest first: reading the newest end costs more). */
  flexSnapshotCounts: number[];
  /** Snapshots of Payments / payments-flex (the cluster detail's). */
  detailFlexSnapshots: number;
}

/** The child's answers: `ready` once, then one per request. */
export type SimAnswerMessage =
  | { type: 'ready'; url: string }
  | {
      type: 'answer';
      id: number;
      calls?: { total: number; byOperation: Record<string, number> };
      seed?: SeedInfo;
    }
  | { type: 'error'; message: string };

/**
 * The simulator in its own process, for the load points: a client calling Atlas crosses a process
 * boundary (here: a wake-up of another process), and so must the direct baseline, or it would be
 * measured inside the load generator's own event loop while the gateway pays two crossings per hop.
 */
export interface SimulatorProcess {
  url: string;
  pid: number;
  /** API calls (token requests excluded) since the last `reset`. */
  calls(): Promise<{ total: number; byOperation: Record<string, number> }>;
  reset(): Promise<void>;
  /** Latency added to every answer from now on (0: none). */
  setLatency(ms: number): Promise<void>;
  seed(): Promise<SeedInfo>;
  close(): Promise<void>;
}

/** Omit over each member of a union (plain Omit merges the members first). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const CHILD = fileURLToPath(new URL('./simulator-child.ts', import.meta.url));

/** Options of `startSimulatorProcess`. */
export interface SimulatorProcessOptions {
  /** Simulator time from a download request to COMPLETED. @default 3000 */
  jobMs?: number;
}

/** Forks `simulator-child.ts` (with the tsx loader of this process) and waits until it listens. */
export async function startSimulatorProcess(
  options: SimulatorProcessOptions = {},
): Promise<SimulatorProcess> {
  const child = fork(CHILD, [], {
    execArgv: process.execArgv,
    env: {
      ...process.env,
      ...(options.jobMs !== undefined ? { BENCH_SIM_JOB_MS: String(options.jobMs) } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, (m: Extract<SimAnswerMessage, { type: 'answer' }>) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('simulator child: not ready within 30 s')), 30_000);
    child.on('message', (m: SimAnswerMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.url);
      } else if (m.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`simulator child: ${m.message}`));
      } else {
        pending.get(m.id)?.(m);
        pending.delete(m.id);
      }
    });
    child.once('exit', (code) => reject(new Error(`simulator child exited (${code})`)));
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  const ask = (m: WithoutId<SimRequestMessage>) =>
    new Promise<Extract<SimAnswerMessage, { type: 'answer' }>>((resolve, reject) => {
      if (!child.connected) return reject(new Error('simulator child is gone'));
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ ...m, id } as SimRequestMessage);
    });
  return {
    url,
    pid: child.pid!,
    calls: async () => (await ask({ type: 'calls' })).calls ?? { total: 0, byOperation: {} },
    reset: async () => void (await ask({ type: 'reset' })),
    setLatency: async (ms) => void (await ask({ type: 'latency', ms })),
    seed: async () => {
      const seed = (await ask({ type: 'seed' })).seed;
      if (!seed) throw new Error('simulator child answered no seed info');
      return seed;
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'close', id: 0 } satisfies SimRequestMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
