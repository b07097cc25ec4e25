import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What the process holds at one moment: handles by type (sockets, servers, timers) and memory. */
export interface ResourceSnapshot {
  /** `process.getActiveResourcesInfo()` counted by type (`TCPSocketWrap`, `TCPServerWrap`, `Timeout`…). */
  resources: Record<string, number>;
  heapUsedMb: number;
  rssMb: number;
}

let gcFn: (() => void) | undefined;

/** A full GC when it can be had (`--expose-gc` or switched on here), so heap numbers compare. */
export function collectGarbage(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gcFn = g;
    else {
      try {
        setFlagsFromString('--expose-gc');
        gcFn = runInNewContext('gc') as () => void;
      } catch {
        gcFn = () => undefined;
      }
    }
  }
  gcFn();
  gcFn();
}

const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

export function snapshotResources(gc = true): ResourceSnapshot {
  if (gc) collectGarbage();
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const m = process.memoryUsage();
  return { resources, heapUsedMb: mb(m.heapUsed), rssMb: mb(m.rss) };
}

/** Resource types whose count grew from `before` to `after`. */
export function grownResources(before: ResourceSnapshot, after: ResourceSnapshot): Record<string, string> {
  const grown: Record<string, string> = {};
  for (const [type, n] of Object.entries(after.resources)) {
    const was = before.resources[type] ?? 0;
    if (n > was) grown[type] = `${was} → ${n}`;
  }
  return grown;
}

/** Waits until `done()` holds (polling), or the time is up; answers whether it held. */
export async function settle(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}
