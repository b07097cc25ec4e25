import { Counter, Gauge, type Registry } from 'prom-client';
import type { DownloadCounts } from './download-route.js';

/**
 * The download route's counts on `/metrics`: copied at scrape time from the object that counts them
 * (the pattern of src/observability/metrics.ts), so `rate()` works on the `*_total` counters.
 */
export function registerDownloadMetrics(registry: Registry, counts: DownloadCounts): void {
  const registers = [registry];
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  counter(
    'gateway_downloads_total',
    'Archive streams started by /downloads since start.',
    () => counts.streams,
  );
  counter('gateway_download_bytes_total', 'Archive bytes sent to download clients.', () => counts.bytes);
  counter(
    'gateway_download_renewals_total',
    'Fresh download links asked of Atlas because a link had expired or was about to.',
    () => counts.renewals,
  );
  counter(
    'gateway_download_resumes_total',
    'Archive streams continued with Range after the store cut them.',
    () => counts.resumes,
  );
  counter(
    'gateway_download_abandoned_total',
    'Archive streams whose client went away first (their upstream request was aborted).',
    () => counts.abandoned,
  );
  new Gauge({
    name: 'gateway_downloads_active',
    help: 'Download requests being answered now.',
    registers,
    collect() {
      this.set(counts.active);
    },
  });
}
