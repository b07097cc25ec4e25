import { Writable } from 'node:stream';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { setupTracing, type TracingSetup } from '../../src/observability/tracing.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n'))
      if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});

const exporter = new InMemorySpanExporter();
let tracing: TracingSetup | undefined;
let stack: Stack;
let url: string;
beforeAll(async () => {
  tracing = setupTracing({ exporter: 'none' }, exporter);
  stack = await startStack({ gateway: { logger: createLogger({ level: 'debug', destination: sink }) } });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  await stack.close();
  await tracing?.shutdown();
});

const DASHBOARD =
  'query Dashboard { projects { id clusters { name snapshots(first: 1) { nodes { id } } } } }';
const post = (query: string, headers: Record<string, string> = {}) =>
  request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });

describe('logs', () => {
  it('logs each operation with a request id that is sent upstream, answered to the client, and on Atlas’s answers', async () => {
    lines.length = 0;
    stack.sim.resetStats();
    const res = await post(DASHBOARD, { 'x-request-id': 'req-test-123' });
    await res.body.json();
    expect(res.headers['x-request-id']).toBe('req-test-123');
    const op = lines.find((l) => l.msg === 'graphql operation');
    expect(op).toMatchObject({
      requestId: 'req-test-123',
      operation: 'Dashboard',
      errors: [],
      caller: 'anonymous',
    });
    const upstream = stack.sim.stats().requests.filter((r) => !r.operationId.startsWith('oauth.'));
    expect(upstream.length).toBeGreaterThan(1);
    expect(upstream.every((r) => r.requestId === 'req-test-123')).toBe(true);
    const calls = lines.filter((l) => l.msg === 'atlas call' && l.operation !== 'oauthToken');
    expect(calls.length).toBe(upstream.length);
    expect(calls[0]).toMatchObject({
      requestId: 'req-test-123',
      operation: 'listGroups',
      status: 200,
      level: 20,
    });
  });

  it('makes up a request id when the caller sends none or a strange one', async () => {
    const res = await post('{ projects { id } }', { 'x-request-id': 'bad id with spaces' });
    await res.body.dump();
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs upstream failures as warnings with their error code', async () => {
    lines.length = 0;
    stack.sim.faults.add({ operationId: 'getGroup', status: 500, times: 1 });
    const res = await post(`{ project(id: "${SEED.projects.payments.id}") { name } }`);
    await res.body.dump();
    expect(lines.find((l) => l.msg === 'atlas call failed')).toMatchObject({
      operation: 'getGroup',
      status: 500,
      level: 40,
    });
    expect(lines.find((l) => l.msg === 'graphql operation')).toMatchObject({
      errors: ['UPSTREAM_UNAVAILABLE'],
    });
  });

  it('redacts secrets whoever logs them', () => {
    const out: string[] = [];
    const logger = createLogger({
      destination: new Writable({
        write(c: Buffer, _e, done) {
          out.push(c.toString());
          done();
        },
      }),
    });
    logger.info(
      {
        snapshotUrl: 'https://restore.example/x.tgz?signature=s3cr3t',
        headers: { authorization: 'Bearer tok3n', 'x-api-key': 'k3y' },
        auth: { clientSecret: 'cl13nt', privateKey: 'pr1v' },
      },
      'test',
    );
    const text = out.join('');
    for (const secret of ['s3cr3t', 'tok3n', 'k3y', 'cl13nt', 'pr1v']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });
});

describe('metrics', () => {
  it('exposes operations, upstream calls by operation and outcome, auth, caches and subscriptions', async () => {
    await (await post(DASHBOARD)).body.dump();
    const res = await request(`${url}/metrics`);
    const text = await res.body.text();
    expect(text).toMatch(/graphql_envelop_request_duration_bucket\{[^}]*operationName="Dashboard"/);
    expect(text).toMatch(/atlas_upstream_requests_total\{operation="listGroups",outcome="200"\} \d+/);
    expect(text).toMatch(/atlas_upstream_request_duration_seconds_count\{operation="listGroups"\} \d+/);
    expect(text).toMatch(/^atlas_oauth_token_fetches_total 1$/m);
    expect(text).toMatch(/^gateway_family_cache_hits_total \d+$/m);
    expect(text).toMatch(/^gateway_loader_item_loads_total \d+$/m);
    expect(text).toMatch(/^gateway_active_subscriptions 0$/m);
    expect(text).toMatch(/^gateway_job_pollers 0$/m);
  });

  it('types counts since start as counters named *_total, current values as gauges', async () => {
    const text = await (await request(`${url}/metrics`)).body.text();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const counters = [
      'atlas_upstream_requests_total',
      'atlas_upstream_retries_total',
      'atlas_oauth_token_fetches_total',
      'atlas_digest_challenges_total',
      'gateway_family_cache_hits_total',
      'gateway_family_cache_misses_total',
      'gateway_loader_requests_total',
      'gateway_loader_list_hits_total',
      'gateway_loader_item_loads_total',
      'gateway_job_polls_total',
      'gateway_upstream_shed_total',
    ];
    for (const name of counters) expect(types.get(name), name).toBe('counter');
    for (const name of ['gateway_active_subscriptions', 'gateway_job_pollers', 'gateway_upstream_in_flight'])
      expect(types.get(name), name).toBe('gauge');
    // The convention both ways: every counter of the gateway's own ends in _total, no gauge does.
    for (const [name, type] of types) {
      if (!/^(atlas|gateway)_/.test(name)) continue;
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'gauge') expect(name).not.toMatch(/_total$/);
    }
  });

  it('a counter follows its source between scrapes', async () => {
    const read = async () =>
      Number(
        /^gateway_loader_requests_total (\d+)$/m.exec(
          await (await request(`${url}/metrics`)).body.text(),
        )?.[1],
      );
    const before = await read();
    await (await post('{ projects { id } }')).body.dump();
    await (await post('{ projects { id } }')).body.dump();
    expect(await read()).toBe(before + 2);
  });

  it('exposes Node’s process metrics (process_*, nodejs_*)', async () => {
    const text = await (await request(`${url}/metrics`)).body.text();
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^process_start_time_seconds \d+/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
    expect(text).toMatch(/^nodejs_version_info\{/m);
  });
});

describe('tracing', () => {
  it('makes a span per GraphQL operation with the upstream calls nested under it', async () => {
    exporter.reset();
    await (await post(DASHBOARD)).body.dump();
    const spans = exporter.getFinishedSpans();
    const op = spans.find((s) => s.name === 'graphql Dashboard');
    expect(op).toBeDefined();
    const upstream = spans.filter((s) => s.name.startsWith('atlas '));
    expect(upstream.map((s) => s.name)).toContain('atlas listGroups');
    for (const s of upstream) {
      expect(s.parentSpanContext?.spanId).toBe(op!.spanContext().spanId);
      expect(s.attributes['http.response.status_code']).toBe(200);
    }
  });
});
