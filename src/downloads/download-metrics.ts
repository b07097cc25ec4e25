import type { Registry } from 'prom-client';
import { scrapedCounter, scrapedGauge } from '../observability/scraped-metrics.js';
import type { DownloadCounts } from './download-route.js';

/**
 * The download route's counts on `/metrics`: copied at scrape time from the object that counts them
 * (`scrapedCounter`, src/observability/scraped-metrics.ts), so `rate()` works on the `*_total` counters.
 */
export function registerDownloadMetrics(registry: Registry, counts: DownloadCounts): void {
  const counter = (name: string, help: string, read: () => number) =>
    scrapedCounter(registry, name, help, read);
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
  scrapedGauge(
    registry,
    'gateway_downloads_active',
    'Download requests being answered now.',
    () => counts.active,
  );
}
