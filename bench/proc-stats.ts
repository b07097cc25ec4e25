import { readdirSync, readFileSync } from 'node:fs';

function children(): Map<number, number[]> {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name (2nd field) may hold spaces and parentheses: read after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = byParent.get(ppid) ?? [];
      list.push(Number(name));
      byParent.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  return byParent;
}

function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resident memory in bytes of a process and all its descendants (a gateway that forks workers counts
 * whole), read from /proc. 0 when the process is gone.
 */
export function treeRss(pid: number): number {
  const byParent = children();
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += rssOf(p);
    stack.push(...(byParent.get(p) ?? []));
  }
  return total;
}

/** Linux reports process CPU time in USER_HZ ticks, 100 per second on every mainstream architecture. */
const TICK_MS = 10;

function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5); f starts at field 3.
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/**
 * CPU time in ms (user + system) used so far by a process and its live descendants. Unlike latency
 * and throughput, CPU per request barely changes when other work shares the machine.
 */
export function treeCpuMs(pid: number): number {
  const byParent = children();
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += cpuOf(p);
    stack.push(...(byParent.get(p) ?? []));
  }
  return total;
}

/** Samples `treeRss(pid)` every `everyMs` until `stop()`, which answers the largest value seen. */
export function sampleRss(pid: number, everyMs = 250): { stop(): number } {
  let max = treeRss(pid);
  const timer = setInterval(() => {
    max = Math.max(max, treeRss(pid));
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, treeRss(pid));
    },
  };
}
