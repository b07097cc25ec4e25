import type { Simulator } from '../src/simulator/index.js';
import type { FaultWindow } from './plan.js';

/** A fault that hit one request, as the simulator's injector chose it. */
export interface FaultHit {
  atMs: number;
  operationId: string;
  window: number;
  label: string;
}

/**
 * Plays a round's fault schedule on the simulator: adds each rule when its window opens and removes it
 * when it closes, shrinks the rate-limit bucket during rate-limit windows, and logs every request a
 * fault hit (by wrapping the injector's `take`).
 */
export class FaultDriver {
  readonly hits: FaultHit[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #ruleWindow = new Map<number, FaultWindow>();
  readonly #restoreTake: () => void;
  #start = 0;
  #limitDepth = 0;
  readonly #baseLimit: { capacity: number; refillPerSecond: number } | undefined;

  constructor(readonly sim: Simulator) {
    const faults = sim.faults;
    const original = faults.take.bind(faults);
    faults.take = (operationId: string) => {
      const hit = original(operationId);
      if (hit) {
        const w = this.#ruleWindow.get(hit.id);
        this.hits.push({
          atMs: Math.round(performance.now() - this.#start),
          operationId,
          window: w?.id ?? -1,
          label: w?.label ?? 'unknown',
        });
      }
      return hit;
    };
    this.#restoreTake = () => {
      faults.take = original;
    };
    const o = sim.rateLimiter?.options;
    this.#baseLimit = o ? { capacity: o.capacity, refillPerSecond: o.refillPerSecond } : undefined;
  }

  /** Starts the round's schedule now. */
  play(windows: readonly FaultWindow[]): void {
    this.#start = performance.now();
    for (const w of windows) {
      const open = () => {
        if (w.rule) {
          const id = this.sim.faults.add(w.rule);
          this.#ruleWindow.set(id, w);
          if (Number.isFinite(w.untilMs)) this.#later(w.untilMs - w.atMs, () => this.sim.faults.remove(id));
        }
        if (w.rateLimit && this.sim.rateLimiter) {
          const o = this.sim.rateLimiter.options;
          this.#limitDepth++;
          o.capacity = Math.min(o.capacity, w.rateLimit.capacity);
          o.refillPerSecond = Math.min(o.refillPerSecond, w.rateLimit.refillPerSecond);
          this.#later(w.untilMs - w.atMs, () => this.#releaseLimit());
        }
      };
      if (w.atMs <= 0) open();
      else this.#later(w.atMs, open);
    }
  }

  #releaseLimit(): void {
    this.#limitDepth--;
    if (this.#limitDepth === 0 && this.#baseLimit && this.sim.rateLimiter) {
      Object.assign(this.sim.rateLimiter.options, this.#baseLimit);
    }
  }

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  /** Ends the round's faults: pending windows never open, open ones close, the bucket is restored. */
  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.sim.faults.clear();
    this.#ruleWindow.clear();
    this.#limitDepth = 0;
    if (this.#baseLimit && this.sim.rateLimiter) {
      Object.assign(this.sim.rateLimiter.options, this.#baseLimit);
      this.sim.rateLimiter.reset();
    }
  }

  dispose(): void {
    this.stop();
    this.#restoreTake();
  }
}
