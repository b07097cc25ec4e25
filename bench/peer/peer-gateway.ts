import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { fixSupergraph } from './fix-supergraph.js';

const PEER_DIR = fileURLToPath(new URL('.', import.meta.url));
const SPEC = fileURLToPath(new URL('../../schema/atlas/openapi.json', import.meta.url));
const bin = (pkg: string, file: string) => join(PEER_DIR, 'node_modules', pkg, file);
const PACKAGES = ['@graphql-hive/gateway', '@graphql-mesh/compose-cli', '@omnigraph/openapi'] as const;

/** Why the peer could not be built or run; the bench records it and goes on. */
export class PeerUnavailable extends Error {}

/** Options of `startPeer`. */
export interface PeerOptions {
  /** The simulator's base URL (the peer's `{env.ATLAS_BASE_URL}`). */
  simUrl: string;
  /** A static bearer token: the peer speaks neither Digest nor OAuth client credentials. */
  token: string;
  /** A directory of this run for the composed supergraph (each instance gets its own copy). */
  tmpDir: string;
}

/** A running Hive Gateway over the Mesh-composed supergraph. */
export interface PeerGateway {
  url: string;
  pid: number;
  versions: Record<string, string>;
  /** How long `npm ci` took when it had to run, else 0. */
  installMs: number;
  composeMs: number;
  /** Operations whose `accept` header the compose-time fix rewrote. */
  acceptFixed: number;
  close(): Promise<void>;
}

/** Keeps the last lines a child printed, for the reason when it fails. */
function tail(child: ChildProcess, lines: string[]): void {
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) lines.push(stripVTControlCharacters(line));
    }
    lines.splice(0, Math.max(0, lines.length - 30));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }) {
  return new Promise<void>((resolve, reject) => {
    const lines: string[] = [];
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    tail(child, lines);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new PeerUnavailable(`${cmd} could not start: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new PeerUnavailable(
            `${cmd} ${args.join(' ')} ended with ${signal ?? `code ${code}`}: ${lines.slice(-8).join(' | ')}`,
          ),
        );
    });
  });
}

/**
 * Installs the peer's packages (`npm ci --prefix bench/peer`) when `bench/peer/node_modules` is
 * missing: they are big (hundreds of MB) and only the bench needs them, so they stay out of the root
 * package.json.
 */
export async function ensurePeerInstalled(): Promise<number> {
  if (PACKAGES.every((p) => existsSync(join(PEER_DIR, 'node_modules', p, 'package.json')))) return 0;
  const t0 = performance.now();
  console.log('bench: installing the peer gateway (npm ci --prefix bench/peer, a few minutes once)…');
  await run('npm', ['ci', '--prefix', PEER_DIR, '--no-audit', '--no-fund'], {
    cwd: PEER_DIR,
    timeoutMs: 8 * 60_000,
  });
  return performance.now() - t0;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/**
 * Composes the supergraph with Mesh (to a temp file, then the compose-time fixes), and serves it with
 * `hive-gateway supergraph` as a child process on a free port of 127.0.0.1.
 */
export async function startPeer(options: PeerOptions): Promise<PeerGateway> {
  const installMs = await ensurePeerInstalled();
  const versions = Object.fromEntries(
    PACKAGES.map((p) => [
      p,
      (
        JSON.parse(readFileSync(join(PEER_DIR, 'node_modules', p, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version,
    ]),
  );

  const t0 = performance.now();
  const raw = join(options.tmpDir, 'supergraph.mesh.graphql');
  await run(process.execPath, [bin('@graphql-mesh/compose-cli', 'esm/bin.js'), '-o', raw], {
    cwd: PEER_DIR,
    env: { ...process.env, BENCH_PEER_SPEC: SPEC },
    timeoutMs: 120_000,
  });
  const spec = JSON.parse(readFileSync(SPEC, 'utf8')) as Parameters<typeof fixSupergraph>[1];
  const fixed = fixSupergraph(readFileSync(raw, 'utf8'), spec);
  const supergraph = join(options.tmpDir, 'supergraph.graphql');
  writeFileSync(supergraph, fixed.sdl);
  const composeMs = performance.now() - t0;

  const port = await freePort();
  const lines: string[] = [];
  const child = fork(
    bin('@graphql-hive/gateway', 'dist/bin.js'),
    ['supergraph', supergraph, '--host', '127.0.0.1', '--port', String(port)],
    {
      // Its own directory: without a gateway config there, Hive Gateway would pick up a mesh config.
      cwd: options.tmpDir,
      // The IPC channel closes when the bench dies however it dies; the peer exits with it.
      execArgv: ['--import', 'data:text/javascript,process.on("disconnect",()=>process.exit(0))'],
      env: { ...process.env, ATLAS_BASE_URL: options.simUrl, ATLAS_TOKEN: options.token },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  tail(child, lines);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new PeerUnavailable(`hive-gateway exited (${child.exitCode}): ${lines.slice(-8).join(' | ')}`);
    }
    try {
      const res = await fetch(`${url}/healthcheck`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await close();
      throw new PeerUnavailable(`hive-gateway not healthy within 60 s: ${lines.slice(-8).join(' | ')}`);
    }
    await sleep(200);
  }
  return { url, pid: child.pid!, versions, installMs, composeMs, acceptFixed: fixed.acceptFixed, close };
}
