import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** How a private Redis keeps its data: nothing (`none`), or an append-only file synced as said. */
export type RedisPersistence = 'none' | 'aof-everysec' | 'aof-always';

/**
 * A `redis-server` of the harness's own, on a free port of 127.0.0.1 with its own directory: stopped,
 * restarted (with or without its data) and flushed at will, never the machine's shared Redis.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  persistence: RedisPersistence;
  /** Whether the process runs now. */
  running(): boolean;
  /** Stops it: `SIGTERM` shuts down cleanly (the AOF is synced), `SIGKILL` is a crash. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /**
   * Starts it again on the same port and directory; `persistence` may change (a restart without AOF).
   * `wipe` empties the directory first (a new, empty instance).
   */
  start(persistence?: RedisPersistence, wipe?: boolean): Promise<void>;
  /** Removes every key. */
  flush(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const ARGS: Record<RedisPersistence, string[]> = {
  none: ['--appendonly', 'no'],
  'aof-everysec': ['--appendonly', 'yes', '--appendfsync', 'everysec'],
  'aof-always': ['--appendonly', 'yes', '--appendfsync', 'always'],
};

/** Starts a private `redis-server` (`/usr/bin/redis-server` or the one on PATH). */
export async function startPrivateRedis(persistence: RedisPersistence = 'aof-always'): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'atlas-gw-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;
  let mode = persistence;

  const waitUp = async () => {
    const probe = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => 20, lazyConnect: true });
    probe.on('error', () => undefined);
    try {
      for (let i = 0; i < 500; i++) {
        if (proc?.exitCode !== null) throw new Error(`redis-server on port ${port} exited at start`);
        try {
          if (probe.status !== 'ready') await probe.connect();
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      throw new Error(`redis-server on port ${port} did not start`);
    } finally {
      probe.disconnect();
    }
  };
  const start = async (p: RedisPersistence = mode, wipe = false) => {
    mode = p;
    if (wipe) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
    }
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        ...ARGS[p],
      ],
      { stdio: 'ignore' },
    );
    await waitUp();
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGKILL') => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill(signal);
    await exited;
  };
  await start();
  return {
    url,
    port,
    get persistence() {
      return mode;
    },
    running: () => !!proc && proc.exitCode === null && proc.signalCode === null,
    stop,
    start,
    async flush() {
      const c = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await c.flushall();
      } finally {
        c.disconnect();
      }
    },
    async close() {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
