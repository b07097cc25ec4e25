import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import type { Registry } from 'prom-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import type { Env } from '../../src/config/index.js';
import { OperationNameLabels } from '../../src/observability/operation-name-labels.js';
import { sha256Hex } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { OWNER, startStack, type Stack } from '../support/stack.js';

const P = SEED.projects.payments.id;
const KEY = generateApiKey();
const SECURED: Env = {
  // Not demo mode: Atlas credentials (startStack points them at the simulator) and API-key callers.
  MONGODB_ATLAS_BASE_URL: 'http://127.0.0.1:9',
  MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
  MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
  GATEWAY_AUTH: 'apikey',
  GATEWAY_API_KEYS: JSON.stringify([{ id: 'svc', hash: hashApiKey(KEY), projects: [P], rights: ['read'] }]),
};
const WATCH = (name: string) =>
  `subscription ${name} { restoreJobStatus(projectId: "${P}", clusterName: "${SEED.flex.clusterName}", jobId: "${SEED.flex.downloadJobId}") { status } }`;

/** Series of yoga's GraphQL metrics (`graphql_*`): one per label set, buckets included. */
async function graphqlSeries(registry: Registry): Promise<number> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics.filter((m) => m.name.startsWith('graphql_')).reduce((n, m) => n + m.values.length, 0);
}

/** Every value of `label` in the GraphQL metrics. */
async function labelValues(registry: Registry, label: string): Promise<Set<string>> {
  const values = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('graphql_')) continue;
    for (const v of m.values) {
      const value = (v.labels as Record<string, unknown>)[label];
      if (value !== undefined) values.add(String(value));
    }
  }
  return values;
}

/** `graphql_envelop_request` by operation name. */
async function requestsByName(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('graphql_envelop_request')?.get();
  const counts: Record<string, number> = {};
  for (const v of metric?.values ?? []) {
    const name = String(v.labels.operationName);
    counts[name] = (counts[name] ?? 0) + v.value;
  }
  return counts;
}

async function httpPost(
  url: string,
  name: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; code: unknown }> {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query: `query ${name} { __typename }`, operationName: name }),
  });
  const body = (await res.body.json()) as { errors?: { extensions?: { code?: unknown } }[] };
  return { status: res.statusCode, code: body.errors?.[0]?.extensions?.code };
}

/** Runs `task(i)` for i < n, `width` at a time. */
async function inBatches<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => task(i + j)))));
  }
  return out;
}

/** One unauthenticated graphql-ws operation: how it was refused (an error's code, or the close code). */
function wsRefusal(url: string, name: string): Promise<string> {
  return new Promise((resolve) => {
    const client = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      on: { closed: (e) => resolve(`close ${(e as { code: number }).code}`) },
    });
    track({ close: () => client.dispose() }, 'graphql-ws client');
    client.subscribe(
      { query: WATCH(name), operationName: name },
      {
        next: () => resolve('next'),
        error: (err) => {
          const code = (err as { extensions?: { code?: unknown } }[])[0]?.extensions?.code;
          resolve(code !== undefined ? String(code) : `error ${String(err)}`);
          void client.dispose();
        },
        complete: () => resolve('complete'),
      },
    );
  });
}

async function sseRefusal(url: string, name: string, host: string): Promise<string> {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', host },
    body: JSON.stringify({ query: WATCH(name), operationName: name }),
  });
  const text = await res.body.text();
  return `${res.statusCode} ${/"code":"([A-Z_]+)"/.exec(text)?.[1] ?? text.slice(0, 80)}`;
}

describe('bounded telemetry', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bounded-telemetry-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('finding 2: thousands of unauthenticated operations with made-up names and Host headers (HTTP, SSE, graphql-ws) add no metric series and cost no upstream call', async () => {
    const stack = await startStack({ env: SECURED });
    const { registry } = stack.gateway;
    const url = await stack.gateway.listen(0);
    // One of each first: the series of a refused request exist from the first one on.
    const warmUp = async (i: number) => {
      expect(await httpPost(url, `Warm${i}`, { host: `warm-${i}.example` })).toEqual({
        status: 401,
        code: 'UNAUTHENTICATED',
      });
      expect(await sseRefusal(url, `WarmSse${i}`, `warm-${i}.example`)).toMatch(
        /^(401|200) UNAUTHENTICATED$/,
      );
      expect(await wsRefusal(url, `WarmWs${i}`)).toMatch(/^(UNAUTHENTICATED|close 4403)$/);
    };
    await warmUp(0);
    await warmUp(1);
    const before = await graphqlSeries(registry);

    const outcomes = new Map<string, number>();
    const count = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    const calls = await stack.upstreamCalls(async () => {
      await inBatches(2000, 50, async (i) => {
        const r = await httpPost(url, `Made_up_${i}_${'x'.repeat(i % 200)}`, {
          host: `h${i}.attacker.example`,
        });
        count(`http ${r.status} ${String(r.code)}`);
      });
      await inBatches(200, 25, async (i) =>
        count(`sse ${await sseRefusal(url, `Sse_${i}`, `s${i}.example`)}`),
      );
      await inBatches(200, 25, async (i) => count(`ws ${await wsRefusal(url, `Ws_${i}`)}`));
    });
    expect(calls).toEqual([]);
    const sse = [...outcomes.keys()].find((k) => k.startsWith('sse '))!;
    const ws = [...outcomes.keys()].find((k) => k.startsWith('ws '))!;
    expect(Object.fromEntries(outcomes)).toEqual({
      'http 401 UNAUTHENTICATED': 2000,
      [sse]: 200,
      [ws]: 200,
    });
    expect(sse).toMatch(/^sse (401|200) UNAUTHENTICATED$/);
    expect(ws).toMatch(/^ws (UNAUTHENTICATED|close 4403)$/);

    expect(await graphqlSeries(registry)).toBe(before);
    expect(await labelValues(registry, 'operationName')).toEqual(new Set(['other']));
    expect(await labelValues(registry, 'url')).toEqual(new Set());
    // The whole exposition stays small: the process metrics, the gateway's, yoga's refused series.
    const text = await (await request(`${url}/metrics`)).body.text();
    const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    expect(series).toBeLessThan(600);
    expect(text).not.toContain('attacker');
    expect(text).not.toContain('Made_up');
    // Thousands of requests over real sockets on a shared two-core machine.
  }, 90_000);

  it('finding 2: accepted callers teach at most N operation names; the rest, and refused operations whatever their name, are labelled other', async () => {
    const stack = await startStack({
      env: { ...SECURED, GATEWAY_METRICS_OPERATION_NAMES: '5', GATEWAY_RATE_LIMIT: '40' },
    });
    const { registry } = stack.gateway;
    const url = await stack.gateway.listen(0);
    const key = { 'x-api-key': KEY };
    const statuses: number[] = [];
    const calls = await stack.upstreamCalls(async () => {
      // 40 accepted (5 names learned, 35 not), then 20 over the rate limit.
      for (let i = 0; i < 60; i++) statuses.push((await httpPost(url, `Op${i}`, key)).status);
    });
    expect(calls).toEqual([]);
    expect(statuses).toEqual([...Array<number>(40).fill(200), ...Array<number>(20).fill(429)]);
    expect(await requestsByName(registry)).toEqual({ Op0: 1, Op1: 1, Op2: 1, Op3: 1, Op4: 1, other: 55 });

    // A known name does not lift a refusal out of `other`.
    expect(await httpPost(url, 'Op0', key)).toEqual({ status: 429, code: 'RATE_LIMITED' });
    expect(await requestsByName(registry)).toMatchObject({ Op0: 1, other: 56 });
    expect(await labelValues(registry, 'operationName')).toEqual(
      new Set(['Op0', 'Op1', 'Op2', 'Op3', 'Op4', 'other']),
    );
  });

  it('with a persisted-operations manifest, only its operation names are labels', async () => {
    const listed = 'query Listed { __typename }';
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ [sha256Hex(listed)]: listed }));
    const stack: Stack = await startStack({
      env: {
        ...SECURED,
        GATEWAY_PERSISTED_OPERATIONS: 'allow',
        GATEWAY_PERSISTED_OPERATIONS_FILE: manifest,
      },
    });
    const url = await stack.gateway.listen(0);
    for (const name of ['Listed', 'Unlisted', 'Listed']) {
      expect((await httpPost(url, name, { 'x-api-key': KEY })).status).toBe(200);
    }
    expect(await requestsByName(stack.gateway.registry)).toEqual({ Listed: 2, other: 1 });
  });

  it('learns a name only from an admitted operation that ran without error, at most max, never a very long one', () => {
    const names = new OperationNameLabels({ max: 2 });
    const [a, b, c, d] = [{}, {}, {}, {}];
    expect(names.labelOf(a)).toBe('other');
    names.admit([a], 'One');
    expect(names.labelOf(a)).toBe('other');
    names.learn('One');
    expect(names.labelOf(a)).toBe('One');
    names.learn('x'.repeat(101));
    names.admit([b], 'Two');
    names.learn('Two');
    names.admit([c], 'Three');
    names.learn('Three');
    names.admit([d], 'anonymous');
    expect([names.labelOf(b), names.labelOf(c), names.labelOf(d)]).toEqual(['Two', 'other', 'anonymous']);
    expect(names.names()).toEqual(['anonymous', 'One', 'Two']);
    const fixed = new OperationNameLabels({ known: ['Listed'] });
    fixed.learn('Other');
    expect(fixed.names()).toEqual(['anonymous', 'Listed']);
  });
});
