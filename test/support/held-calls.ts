import { afterEach } from 'vitest';
import type { FaultRule, Simulator } from '../../src/simulator/index.js';

/** Latency faults of exactly this length wait on the gate instead of the clock. */
export const HELD_MS = 99_999;

// A test that fails while a call is held must still let it go, or closing the stack would wait for it.
const gates: (() => void)[] = [];
afterEach(() => {
  for (const release of gates.splice(0)) release();
});

/**
 * The simulator's `sleep` for a test that holds calls: a latency fault of `HELD_MS` waits until
 * `release` (every other wait is skipped), so the test decides when a slow call ends.
 */
export function gate(): { sleep: (ms: number) => Promise<void>; release(): void } {
  const waiting: (() => void)[] = [];
  let open = false;
  const release = () => {
    open = true;
    for (const go of waiting.splice(0)) go();
  };
  gates.push(release);
  return {
    sleep: (ms) => (ms === HELD_MS && !open ? new Promise<void>((r) => waiting.push(r)) : Promise.resolve()),
    release,
  };
}

/**
 * Holds the next `operationId` call in the simulator until the gate opens (`then`: what it answers
 * after, e.g. a 503 instead of handling it); answers a function of its hit count (the simulator records a request in its stats only once it has answered it).
 */
export function hold(sim: Simulator, operationId: string, then: Partial<FaultRule> = {}): () => number {
  const id = sim.faults.add({ operationId, latencyMs: HELD_MS, times: 1, ...then });
  return () => sim.faults.list().find((f) => f.id === id)?.hits ?? 1;
}

/** Atlas POSTs the simulator answered (token requests aside). */
export const postsOf = (sim: Simulator): number =>
  sim.stats().requests.filter((r) => r.method === 'POST' && !r.operationId.startsWith('oauth.')).length;
