import type { Timers } from '../../src/time/timers.js';

/** Timers that fire only when the test says so, and remember every delay they were asked for. */
export class ManualTimers implements Timers {
  #next = 1;
  readonly #pending = new Map<number, { fn: () => void; ms: number }>();
  /** Every delay requested, in order. */
  readonly delays: number[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { fn, ms });
    this.delays.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Fires every timer pending now (not the ones they schedule); answers how many fired. */
  fire(): number {
    return this.fireUpTo(Infinity);
  }

  /**
   * Fires the timers pending now that were set for at most `ms` (one poll interval's timers, not the
   * ones set for several); answers how many fired.
   */
  fireUpTo(ms: number): number {
    const due = [...this.#pending].filter(([, t]) => t.ms <= ms);
    for (const [id] of due) this.#pending.delete(id);
    for (const [, t] of due) t.fn();
    return due.length;
  }

  get pending(): number {
    return this.#pending.size;
  }
}
