import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { track } from './disposer.js';

/** `npm start`'s process (`src/index.ts`) as a test drives it. */
export interface EntryPoint {
  /** `http://127.0.0.1:port` once it listens; undefined when it exited first. */
  url: string | undefined;
  /** Its exit code, when it exited before listening (a refused configuration: 2). */
  exitCode: number | null | undefined;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  close(): Promise<void>;
}

const ROOT = new URL('../../', import.meta.url);

/**
 * Starts the real entry point with exactly `env` (plus PATH; the machine's own variables must not
 * add or hide anything) on a free port, and waits until it listens or exits. Closed when the test
 * ends (test/support/disposer.ts).
 */
export async function startEntryPoint(env: Record<string, string>): Promise<EntryPoint> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const listening = new Promise<string>((resolve) => {
    const check = () => {
      const url = /Gateway on (http:\/\/[^/\s]+)\/graphql/.exec(out)?.[1];
      // The health line closes the start-up lines.
      if (url && /\n {2}health: /.test(out)) {
        child.stdout.off('data', check);
        resolve(url);
      }
    };
    child.stdout.on('data', check);
  });
  const first = await Promise.race([listening, exited.then(([code]) => ({ code }))]);
  const entry: EntryPoint = {
    url: typeof first === 'string' ? first : undefined,
    exitCode: typeof first === 'string' ? undefined : first.code,
    stdout: () => out,
    stderr: () => err,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    },
  };
  return track(entry, 'entry point');
}
