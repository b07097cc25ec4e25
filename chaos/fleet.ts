import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { DEFAULT_SIM_CREDENTIALS, startSimulator, type Simulator } from '../src/simulator/index.js';
import { SEED } from '../src/simulator/seed.js';
import { startPrivateRedis, type PrivateRedis } from './redis-server.js';

/** Latency faults of exactly this length wait on the fleet's gate instead of the clock. */
export const HELD_MS = 99_999;

/** The fleet's timings: short, so a scenario takes seconds, in the same proportions as production. */
export interface FleetConfig {
  /** Gateway processes (2 or 3). */
  replicas: number;
  /** GATEWAY_EXECUTION_TIMEOUT_MS of each replica: every mutation answers by it. */
  executionTimeoutMs: number;
  /** GATEWAY_IDEMPOTENCY_LEASE_MS: how soon a killed replica's claims are orphans. */
  leaseMs: number;
  /** GATEWAY_POST_SETTLE_MS: how long a lost POST's job may still appear. */
  postSettleMs: number;
  /** The replicas' upstream timeouts: a hung POST fails (sent, outcome unknown) after this. */
  upstreamTimeoutMs: number;
  /** The simulator's job duration. */
  jobMs: number;
}

export const FLEET_DEFAULTS: FleetConfig = {
  replicas: 3,
  executionTimeoutMs: 2000,
  leaseMs: 600,
  postSettleMs: 4000,
  upstreamTimeoutMs: 3000,
  jobMs: 1500,
};

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const REPLICA_ENTRY = fileURLToPath(new URL('./replica.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** One gateway process of the fleet. */
export interface Replica {
  id: string;
  url: string;
  proc: ChildProcess;
  logs: string[];
}

/** A GraphQL answer as the harness saw it. */
export interface FleetAnswer {
  replica: string;
  requestId: string;
  /** The idempotency key sent, if any. */
  key: string | undefined;
  httpStatus: number | undefined;
  data: Record<string, unknown> | null | undefined;
  errors: { message: string; extensions?: Record<string, unknown> }[];
  /** No answer before the harness's own deadline (4 execution timeouts). */
  hung: boolean;
  ms: number;
}

/**
 * A simulator on the real clock (its slow calls held on a gate the harness opens), a `redis-server`
 * of the harness's own, and 2-3 gateway processes (chaos/replica.ts, built as `npm start` builds
 * them) sharing both. Replicas are killed with SIGKILL and respawned; Redis is stopped, restarted
 * with and without its append-only file, and emptied.
 */
export class Fleet {
  readonly replicas: Replica[] = [];
  #seq = 0;
  #prefix = `chaos-${process.pid}:`;

  private constructor(
    readonly config: FleetConfig,
    readonly sim: Simulator,
    readonly redis: PrivateRedis,
    readonly runId: string,
    /** Held calls wait here while it is shut. */
    readonly gate: { open: boolean; waiting: (() => void)[] },
  ) {}

  static async start(config: FleetConfig, runId: string): Promise<Fleet> {
    const gate = { open: true, waiting: [] as (() => void)[] };
    const sim = await startSimulator({
      port: 0,
      jobMs: config.jobMs,
      sleep: (ms) =>
        ms === HELD_MS && !gate.open ? new Promise<void>((r) => gate.waiting.push(r)) : delay(ms),
    });
    const redis = await startPrivateRedis('aof-always').catch(async (err: unknown) => {
      await sim.close();
      throw err;
    });
    const fleet = new Fleet(config, sim, redis, runId, gate);
    try {
      await Promise.all(Array.from({ length: config.replicas }, (_, i) => fleet.spawn(`r${i + 1}`)));
    } catch (err) {
      await fleet.close();
      throw err;
    }
    return fleet;
  }

  /** Starts (or restarts) replica `id`; answers once it listens and its Redis is connected. */
  async spawn(id: string): Promise<Replica> {
    const c = this.config;
    const proc = spawn(process.execPath, ['--import', 'tsx', REPLICA_ENTRY], {
      cwd: ROOT,
      env: {
        ...process.env,
        MONGODB_ATLAS_BASE_URL: this.sim.url,
        MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
        MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
        GATEWAY_AUTH: 'none',
        REDIS_URL: this.redis.url,
        REDIS_PREFIX: this.#prefix,
        GATEWAY_REPLICA_ID: id,
        GATEWAY_RATE_LIMIT: '0',
        GATEWAY_EXECUTION_TIMEOUT_MS: String(c.executionTimeoutMs),
        GATEWAY_IDEMPOTENCY_LEASE_MS: String(c.leaseMs),
        GATEWAY_POST_SETTLE_MS: String(c.postSettleMs),
        GATEWAY_POLL_INTERVAL_MS: '500',
        CHAOS_UPSTREAM_TIMEOUT_MS: String(c.upstreamTimeoutMs),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    proc.stdout!.on('data', (b: Buffer) => logs.push(...b.toString().split('\n').filter(Boolean)));
    proc.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
    let url: string | undefined;
    // A deadline for a hang, not a speed limit: tsx processes start slowly on a busy machine.
    for (let i = 0; i < 1200 && !url; i++) {
      url = logs.map((l) => /^listening (http:\/\/\S+)/.exec(l)?.[1]).find(Boolean);
      if (proc.exitCode !== null) break;
      if (!url) await delay(50);
    }
    if (!url) {
      proc.kill('SIGKILL');
      throw new Error(`replica ${id} did not start:\n${logs.join('\n')}`);
    }
    const replica: Replica = { id, url, proc, logs };
    const at = this.replicas.findIndex((r) => r.id === id);
    if (at >= 0) this.replicas[at] = replica;
    else this.replicas.push(replica);
    await this.untilReady([replica]);
    return replica;
  }

  /** SIGKILL: the replica dies mid-whatever, as on a node failure. */
  async kill(replica: Replica): Promise<void> {
    if (replica.proc.exitCode !== null || replica.proc.signalCode !== null) return;
    const exited = once(replica.proc, 'exit');
    replica.proc.kill('SIGKILL');
    await exited;
  }

  /** Until every replica (or those given) says ready: listening, Atlas answering, Redis connected. */
  async untilReady(replicas: readonly Replica[] = this.replicas, want = 200): Promise<void> {
    for (const r of replicas) {
      for (let i = 0; ; i++) {
        const status = await request(`${r.url}/readyz`)
          .then(async (res) => {
            await res.body.dump();
            return res.statusCode;
          })
          .catch(() => 0);
        if (status === want) break;
        if (i > 600) throw new Error(`replica ${r.id} never answered /readyz ${want}`);
        await delay(50);
      }
    }
  }

  /** Holds the next `operationId` call in the simulator until `release` (then answers `then`). */
  hold(operationId: string, then: { status?: 503 } = {}): () => boolean {
    this.gate.open = false;
    const id = this.sim.faults.add({ operationId, latencyMs: HELD_MS, times: 1, ...then });
    return () => !this.sim.faults.list().some((f) => f.id === id);
  }

  /** Lets every held call go on. */
  release(): void {
    this.gate.open = true;
    for (const go of this.gate.waiting.splice(0)) go();
  }

  /** A mutation to `replica`, with a request id of its own (the gateway passes it to Atlas). */
  async ask(replica: Replica, query: string, input: Record<string, unknown>): Promise<FleetAnswer> {
    const requestId = `fleet-${this.runId}-${++this.#seq}`;
    const started = performance.now();
    const base = {
      replica: replica.id,
      requestId,
      key: typeof input.idempotencyKey === 'string' ? input.idempotencyKey : undefined,
    };
    const deadline = 4 * this.config.executionTimeoutMs;
    try {
      const res = await request(`${replica.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ query, variables: { i: input } }),
        signal: AbortSignal.timeout(deadline),
      });
      const body = (await res.body.json()) as Pick<FleetAnswer, 'data' | 'errors'>;
      return {
        ...base,
        httpStatus: res.statusCode,
        data: body.data,
        errors: body.errors ?? [],
        hung: false,
        ms: Math.round(performance.now() - started),
      };
    } catch (err) {
      const hung = (err as Error).name === 'TimeoutError';
      return {
        ...base,
        httpStatus: undefined,
        data: undefined,
        errors: hung ? [] : [{ message: `no answer: ${(err as Error).message}` }],
        hung,
        ms: Math.round(performance.now() - started),
      };
    }
  }

  /** Atlas POSTs (answered 2xx) sent with `requestId`: what one GraphQL request created upstream. */
  postsOf(requestId: string): number {
    return this.sim
      .stats()
      .requests.filter((r) => r.method === 'POST' && r.requestId === requestId && r.status < 300).length;
  }

  async close(): Promise<void> {
    this.release();
    await Promise.all(this.replicas.map((r) => this.kill(r)));
    await this.redis.close();
    await this.sim.close();
  }
}

/** The payments-flex snapshots the fleet scenarios use, one per scenario run (fresh counts). */
export function fleetSnapshots(sim: Simulator): string[] {
  return sim.store
    .listSnapshots(SEED.flex.groupId, SEED.flex.clusterName)
    .filter((s) => s.status === 'COMPLETED' && s.id !== SEED.flex.completedSnapshotId)
    .map((s) => s.id);
}
