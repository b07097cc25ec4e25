import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits `ms` between retries. Injected so tests record the delays instead of waiting. Must reject when
 * `signal` aborts, so an abort also ends a backoff.
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = async (ms, signal) => {
  await delay(ms, undefined, signal ? { signal } : undefined);
};
