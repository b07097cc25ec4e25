import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * A counter whose value lives in the object that counts (a number since start), copied in at scrape
 * time: a monotonic source read when Prometheus asks, so `rate()` works on it like on any counter.
 */
export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge read from the object that holds the current value, at scrape time. */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
