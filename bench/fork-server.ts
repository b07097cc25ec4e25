import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A child process serving HTTP on 127.0.0.1 that announced `{ type: 'ready', url }`. */
export interface ForkedServer {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/**
 * Forks a bench child (a path relative to bench/, run with this process's tsx loader) and waits for
 * its `ready` message; `env` is added to this process's environment. The child is killed if it does
 * not announce itself within 30 s.
 */
export async function forkServer(file: string, env: NodeJS.ProcessEnv = {}): Promise<ForkedServer> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), [], {
    execArgv: process.execArgv,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file}: not ready within 30 s`)), 30_000);
      child.on('message', (m: { type?: string; url?: string }) => {
        if (m.type === 'ready' && m.url) {
          clearTimeout(timer);
          resolve(m.url);
        }
      });
      child.once('exit', (code) => reject(new Error(`${file} exited (${code})`)));
    });
    return { url, pid: child.pid!, close };
  } catch (err) {
    await close();
    throw err;
  }
}
