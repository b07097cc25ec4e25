import { fork, type ChildProcess } from 'node:child_process';
import type { GatewayOptions } from '../src/gateway.js';
import { fileURLToPath } from 'node:url';
import { BUILT_GATEWAY_CHILD, ensureBuilt, IMAGE_NODE_ENV } from './built-gateway.js';
import { OWNER } from './upstream.js';

/** What the parent sends the gateway child. */
export type ToChild = { type: 'memory'; gc: boolean } | { type: 'hops'; reset: boolean } | { type: 'close' };

/**
 * Async resources the child created since the last reset, by type (Timeout, Immediate, TickObject,
 * TCPWRAP…, promises left out), and its event-loop utilization over the same span. Only when the
 * child runs with `BENCH_TRACE_HOPS=1` (bench/trace-hops.ts): the hook costs time.
 */
export interface ChildHops {
  byType: Record<string, number>;
  /** Fraction of the span the event loop was busy (performance.eventLoopUtilization). */
  utilization: number;
}

/** Memory of the gateway child, and its job pollers. */
export interface ChildMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  pollers: { pollers: number; subscribers: number; polls: number };
}

/** What the gateway child sends back. */
export type FromChild =
  | { type: 'ready'; url: string }
  | { type: 'memory'; memory: ChildMemory }
  | { type: 'hops'; hops: ChildHops }
  | { type: 'error'; message: string };

/** The settings the child reads from its `BENCH_GATEWAY` environment variable (JSON). */
export interface ChildConfig {
  /** The simulator's base URL. */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** Time between two upstream reads of a watched job. */
  pollIntervalMs: number;
  /** The shared read cache (`createGateway`'s `readCache`). @default off */
  readCache?: GatewayOptions['readCache'];
  /** `createGateway`'s `leanSse` (e.g. `{ sharedFields: [] }`: no shared executions). @default its default */
  leanSse?: GatewayOptions['leanSse'];
}

/** Options of `startGatewayProcess`. */
export interface GatewayProcessOptions {
  /** The simulator's base URL. */
  baseUrl: string;
  /** @default 4000 (the gateway's own default) */
  pollIntervalMs?: number;
  /** The shared read cache (docs/caching.md). @default off, as `createGateway` */
  readCache?: GatewayOptions['readCache'];
  /** `createGateway`'s `leanSse`. @default its default (identical subscriptions share an execution) */
  leanSse?: GatewayOptions['leanSse'];
  /** Run `gateway-child.ts` from source through tsx, not the build. @default false */
  source?: boolean;
}

/** The gateway in its own process: its memory is its own, and it does not share a thread with the load. */
export interface GatewayProcess {
  url: string;
  pid: number;
  /** Memory as the child sees it; `gc: true` collects first (the child runs with --expose-gc). */
  memory(gc: boolean): Promise<ChildMemory>;
  /** Async resources since the last reset (needs `BENCH_TRACE_HOPS=1`); `reset` starts a new span. */
  hops(reset: boolean): Promise<ChildHops>;
  close(): Promise<void>;
}

const SOURCE_GATEWAY_CHILD = fileURLToPath(new URL('./gateway-child.ts', import.meta.url));

/**
 * Forks `gateway-child.ts` as compiled by `npm run build` (built first when stale), with plain node
 * and the image's environment (NODE_ENV=production), as production runs the gateway; `--expose-gc`
 * for the memory rows, and `BENCH_GATEWAY_NODE_FLAGS` (space-separated, e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof`) to profile it. Waits until it listens.
 */
export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const config: ChildConfig = {
    baseUrl: options.baseUrl,
    clientId: OWNER.clientId,
    clientSecret: OWNER.clientSecret,
    pollIntervalMs: options.pollIntervalMs ?? 4000,
    ...(options.readCache ? { readCache: options.readCache } : {}),
    ...(options.leanSse !== undefined ? { leanSse: options.leanSse } : {}),
  };
  const extra = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  // `source`: the TypeScript through this process's tsx loader, as the bench ran before issue #19
  // (for a before/after in one run); otherwise what ships.
  const source = options.source === true;
  if (!source) ensureBuilt();
  const child: ChildProcess = fork(source ? SOURCE_GATEWAY_CHILD : BUILT_GATEWAY_CHILD, [], {
    execArgv: [...(source ? process.execArgv : []), '--expose-gc', ...extra],
    env: { ...process.env, ...(source ? {} : IMAGE_NODE_ENV), BENCH_GATEWAY: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = <T extends FromChild['type']>(type: T, timeoutMs: number) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`gateway child: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (m: FromChild) => {
        if (m.type === 'error') {
          cleanup();
          reject(new Error(`gateway child: ${m.message}`));
        } else if (m.type === type) {
          cleanup();
          resolve(m as Extract<FromChild, { type: T }>);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`gateway child exited (${code}) while waiting for "${type}"`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  let ready: { url: string };
  try {
    ready = await next('ready', 30_000);
  } catch (err) {
    await kill();
    throw err;
  }
  return {
    url: ready.url,
    pid: child.pid!,
    memory: async (gc) => {
      const answer = next('memory', 10_000);
      child.send({ type: 'memory', gc } satisfies ToChild);
      return (await answer).memory;
    },
    hops: async (reset) => {
      const answer = next('hops', 10_000);
      child.send({ type: 'hops', reset } satisfies ToChild);
      return (await answer).hops;
    },
    close: async () => {
      if (child.connected) child.send({ type: 'close' } satisfies ToChild);
      // A clean close ends the SSE streams and revokes the token; a stuck one is killed.
      const timer = setTimeout(() => void kill(), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
