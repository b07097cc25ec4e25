import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { scrapedCounter, scrapedGauge } from './scraped-metrics.js';

// Observability sits below every other layer, so it names what it reads as small shapes of its own;
// the Atlas client, the family cache, the job pollers and the loader counters satisfy them as they are.

/** One round trip to Atlas as the metrics count it (the Atlas client's `AtlasExchange` is one). */
export interface ExchangeSample {
  operation: string;
  /** HTTP status, or undefined when no answer arrived. */
  status: number | undefined;
  /** The coded error of a round trip that got no answer. */
  errorCode: string | undefined;
  durationMs: number;
}

export interface MetricSources {
  /** The Atlas client's counters since start. */
  atlas: { stats(): { retries: number; tokenFetches: number; digestChallenges: number } };
  /** The cluster family cache's lookups since start. */
  families: { readonly hits: number; readonly misses: number };
  /** The job pollers of this replica. */
  pollers: { stats(): { pollers: number; subscribers: number; polls: number } };
  /** How the per-request loaders answered, across requests. */
  loaderStats: { readonly requests: number; readonly listHits: number; readonly itemLoads: number };
  /** The shared upstream read cache's counters since start. @default none (the cache is off) */
  readCache?: { readonly stats: object } | undefined;
  /** Atlas calls in flight and shed by admission control (`UpstreamAdmission`). @default none (off) */
  upstream?: { inFlight(): number; shed(): number };
  /** Enum values from Atlas the gateway did not know, by kind, since start. @default none counted */
  unknownValues?: { readonly counts: Readonly<Record<string, number>> };
}

/**
 * The gateway's own metrics next to yoga's GraphQL ones (`graphql_envelop_*`: operations by name,
 * outcome and duration). Totals that live in other objects are read when Prometheus scrapes.
 */
export function registerGatewayMetrics(
  registry: Registry,
  s: MetricSources,
): { onExchange(e: ExchangeSample): void } {
  const registers = [registry];
  const requests = new Counter({
    name: 'atlas_upstream_requests_total',
    help: 'Round trips to Atlas by operation and outcome (HTTP status, or the error code when none came back).',
    labelNames: ['operation', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'atlas_upstream_request_duration_seconds',
    help: 'Duration of round trips to Atlas by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  // Counts since start live in the objects that count them; a scrape copies them into counters (a
  // monotonic source read at scrape time, so `rate()` works), and current values into gauges.
  const counter = (name: string, help: string, read: () => number) =>
    scrapedCounter(registry, name, help, read);
  const gauge = (name: string, help: string, read: () => number) => scrapedGauge(registry, name, help, read);
  counter(
    'atlas_upstream_retries_total',
    'Retries of upstream requests since start.',
    () => s.atlas.stats().retries,
  );
  counter(
    'atlas_oauth_token_fetches_total',
    'OAuth tokens fetched since start.',
    () => s.atlas.stats().tokenFetches,
  );
  counter(
    'atlas_digest_challenges_total',
    'Digest challenges answered since start.',
    () => s.atlas.stats().digestChallenges,
  );
  counter(
    'gateway_family_cache_hits_total',
    'Cluster family lookups answered from the cache.',
    () => s.families.hits,
  );
  counter(
    'gateway_family_cache_misses_total',
    'Cluster family lookups the cache could not answer.',
    () => s.families.misses,
  );
  counter(
    'gateway_loader_list_hits_total',
    'Items answered from a list read in the same request.',
    () => s.loaderStats.listHits,
  );
  counter(
    'gateway_loader_requests_total',
    'GraphQL requests that read Atlas through their DataLoaders (subscriptions and refusals do not).',
    () => s.loaderStats.requests,
  );
  counter(
    'gateway_loader_item_loads_total',
    'Items read from Atlas one by one.',
    () => s.loaderStats.itemLoads,
  );
  counter(
    'gateway_job_polls_total',
    'Upstream job reads by the pollers since start.',
    () => s.pollers.stats().polls,
  );
  gauge(
    'gateway_active_subscriptions',
    'Open restoreJobStatus subscriptions.',
    () => s.pollers.stats().subscribers,
  );
  const readCache = s.readCache;
  if (readCache) {
    new Counter({
      name: 'gateway_read_cache_total',
      help: 'Atlas reads by how the shared read cache answered them (hits, misses, coalesced, refreshes, bypassed), answers not stored, invalidations, and Redis fallbacks (sharedFallbacks).',
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        this.reset();
        for (const [outcome, n] of Object.entries(readCache.stats)) {
          if (typeof n === 'number') this.inc({ outcome }, n);
        }
      },
    });
  }
  const unknown = s.unknownValues;
  if (unknown) {
    new Counter({
      name: 'gateway_unknown_enum_values_total',
      help: 'Enum values from Atlas the gateway does not know (answered as UNKNOWN), by kind.',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(unknown.counts)) this.inc({ kind }, n);
      },
    });
  }
  gauge('gateway_job_pollers', 'Jobs being polled (one poller per job).', () => s.pollers.stats().pollers);
  const upstream = s.upstream;
  if (upstream) {
    gauge(
      'gateway_upstream_in_flight',
      'Atlas calls admitted and not yet answered (on a socket or waiting for one).',
      () => upstream.inFlight(),
    );
    counter(
      'gateway_upstream_shed_total',
      'Atlas calls refused unsent with OVERLOADED since start (GATEWAY_UPSTREAM_MAX_QUEUED).',
      () => upstream.shed(),
    );
  }
  return {
    onExchange(e) {
      requests.inc({
        operation: e.operation,
        outcome: e.status !== undefined ? String(e.status) : (e.errorCode ?? 'error'),
      });
      duration.observe({ operation: e.operation }, e.durationMs / 1000);
    },
  };
}

/** What the connection caps count (`limitConnections`'s stats are one). */
export interface ConnectionCounts {
  open(): number;
  readonly refusedPerAddress: number;
  readonly refusedTotal: number;
}

/** Open connections, and those refused by the per-address and total caps (`reason` is one of two). */
export function registerConnectionMetrics(registry: Registry, connections: ConnectionCounts): void {
  new Gauge({
    name: 'gateway_open_connections',
    help: 'Client connections open now (HTTP, SSE and WebSocket).',
    registers: [registry],
    collect() {
      this.set(connections.open());
    },
  });
  new Counter({
    name: 'gateway_connections_refused_total',
    help: 'Client connections closed on accept: per_address (GATEWAY_MAX_CONNECTIONS_PER_ADDRESS) or total (GATEWAY_MAX_CONNECTIONS).',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'per_address' }, connections.refusedPerAddress);
      this.inc({ reason: 'total' }, connections.refusedTotal);
    },
  });
}

// Node's own metrics describe the process, not a gateway: one collector per process, whatever the
// number of gateways in it (tests build hundreds). Each collector would otherwise leave behind an
// event-loop-delay monitor (a libuv timer sampling every 10 ms) and a GC observer, neither of which
// prom-client can stop.
let processMetrics: Registry | undefined;

/**
 * prom-client's default metrics (`process_*`: CPU, memory, file descriptors, start time; `nodejs_*`:
 * event-loop lag, heap, GC, handles, version) on `registry` too. They are collected when scraped.
 */
export function registerProcessMetrics(registry: Registry): void {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  for (const { name } of processMetrics.getMetricsAsArray()) {
    const metric = processMetrics.getSingleMetric(name);
    if (metric) registry.registerMetric(metric);
  }
}
