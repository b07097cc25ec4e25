import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GatewayOptions } from '../src/gateway.js';
import { OWNER } from './upstream.js';

/** What the parent sends the gateway child. */
export type ToChild = { type: 'memory'; gc: boolean } | { type: 'close' };

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
}

/** Options of `startGatewayProcess`. */
export interface GatewayProcessOptions {
  /** The simulator's base URL. */
  baseUrl: string;
  /** @default 4000 (the gateway's own default) */
  pollIntervalMs?: number;
  /** The shared read cache (docs/caching.md). @default off, as `createGateway` */
  readCache?: GatewayOptions['readCache'];
}

/** The gateway in its own process: its memory is its own, and it does not share a thread with the load. */
export interface GatewayProcess {
  url: string;
  pid: number;
  /** Memory as the child sees it; `gc: true` collects first (the child runs with --expose-gc). */
  memory(gc: boolean): Promise<ChildMemory>;
  close(): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./gateway-child.ts', import.meta.url));

/**
 * Forks `gateway-child.ts` with the parent's exec arguments (the tsx loader, as `npm start` runs the
 * gateway) plus `--expose-gc`, and waits until it listens.
 */
export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const config: ChildConfig = {
    baseUrl: options.baseUrl,
    clientId: OWNER.clientId,
    clientSecret: OWNER.clientSecret,
    pollIntervalMs: options.pollIntervalMs ?? 4000,
    ...(options.readCache ? { readCache: options.readCache } : {}),
  };
  const child: ChildProcess = fork(CHILD, [], {
    execArgv: [...process.execArgv, '--expose-gc'],
    env: { ...process.env, BENCH_GATEWAY: JSON.stringify(config) },
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
    close: async () => {
      if (child.connected) child.send({ type: 'close' } satisfies ToChild);
      // A clean close ends the SSE streams and revokes the token; a stuck one is killed.
      const timer = setTimeout(() => void kill(), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
