import type { Registry } from 'prom-client';
import { scrapedCounter, scrapedGauge } from '../observability/scraped-metrics.js';
import type { Webhooks } from './webhooks.js';

/**
 * The webhooks' counts on `/metrics`, copied at scrape time from `Webhooks.stats()` (the pattern of
 * src/observability/metrics.ts), so `rate()` works on the `*_total` counters. Per replica: with Redis,
 * each replica counts the events it enqueued and the POSTs it made.
 */
export function registerWebhookMetrics(registry: Registry, webhooks: Webhooks): void {
  type Stats = ReturnType<Webhooks['stats']>;
  const counter = (name: string, help: string, read: (s: Stats) => number) =>
    scrapedCounter(registry, name, help, () => read(webhooks.stats()));
  const gauge = (name: string, help: string, read: (s: Stats) => number) =>
    scrapedGauge(registry, name, help, () => read(webhooks.stats()));
  counter(
    'gateway_webhook_events_total',
    'Job events this replica added to the webhook outbox.',
    (s) => s.enqueued,
  );
  counter(
    'gateway_webhook_duplicates_total',
    'Job events already in the outbox (another replica, or this one, saw the change first).',
    (s) => s.duplicates,
  );
  counter(
    'gateway_webhook_dropped_total',
    'Job events lost: the in-process outbox (no Redis) or the unsaved buffer was full.',
    (s) => s.dropped,
  );
  counter(
    'gateway_webhook_posts_total',
    'Webhook POSTs this replica made, retries included.',
    (s) => s.posts,
  );
  gauge(
    'gateway_webhook_posts_in_flight',
    'Webhook POSTs waiting for their receiver now.',
    (s) => s.inflight,
  );
  gauge(
    'gateway_webhook_unsaved',
    'Job events waiting in memory for the outbox (Redis) to answer.',
    (s) => s.unsaved,
  );
}
