import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { openFileLimit } from './subscriptions.js';

/** The machine a run measured, written with its results. */
export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** Soft `ulimit -n`: bounds the subscriber counts. */
  openFiles: number | 'unlimited';
}

export function describeMachine(): Machine {
  const limit = openFileLimit();
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    openFiles: Number.isFinite(limit) ? limit : 'unlimited',
  };
}
