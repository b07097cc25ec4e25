import type { Timers } from '../../src/time/timers.js';

/** Timers that fire only when the test says so, and remember every delay they were asked for. */
export class ManualTimers implements Timers {
  #next = 1;
  readonly #pending = new Map<number, () => void>();
  /** Every delay requested, in order. */
  readonly delays: number[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, fn);
    this.delays.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Fires every timer pending now (not the ones they schedule); answers how many fired. */
  fire(): number {
    const due = [...this.#pending.values()];
    this.#pending.clear();
    for (const fn of due) fn();
    return due.length;
  }

  get pending(): number {
    return this.#pending.size;
  }
}
