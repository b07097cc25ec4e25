// Finding 3 of issue #15, measured: how many Atlas requests do 2,000 `subscribe` messages for made-up
// job ids on one WebSocket cause, and does another caller still get an answer afterwards?
//
//   npx tsx bench/security/hostile-subscribes.ts [--subscribes 2000] [--mode burst|sequential]
//                                                [--wait-ms 60000] [--out file.json]
//
// The gateway is built as `npm start` builds it (`createGatewayFromConfig`, every limit at its
// default) with two API-key callers, mallory and bob, in front of the simulator with demo mode's
// Atlas rate limit (a bucket of 1,000 per project, 100 a second), all on 127.0.0.1. Mallory sends
// the subscribes on one socket (`burst`: all at once, as an attacker would; `sequential`: each after
// the previous ended); bob asks for one project once half of them ended, and again after all of
// them. Prints one JSON object; no assertion: the
// regression tests in test/security/ pin the exact counts.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { createGatewayFromConfig } from '../../src/gateway-from-config.js';
import { DEFAULT_SIM_CREDENTIALS, startSimulator } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';

const { values } = parseArgs({
  options: {
    subscribes: { type: 'string', default: '2000' },
    mode: { type: 'string', default: 'burst' },
    'wait-ms': { type: 'string', default: '60000' },
    out: { type: 'string' },
  },
});
const subscribes = Number(values.subscribes);
const mode = values.mode === 'sequential' ? 'sequential' : 'burst';
const waitMs = Number(values['wait-ms']);

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const P = SEED.projects.payments.id;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const madeUp = (i: number) => i.toString(16).padStart(24, '0');

const keys = { mallory: generateApiKey(), bob: generateApiKey() };
const apiKeys = Object.entries(keys).map(([id, key]) => ({
  id,
  hash: hashApiKey(key),
  projects: '*',
  rights: ['read', 'download', 'restore'],
}));

const upstream = {
  total: 0,
  byStatus: {} as Record<string, number>,
  byOperation: {} as Record<string, number>,
};
const sim = await startSimulator({
  rateLimit: { capacity: 1000, refillPerSecond: 100 },
  onResponse: (info) => {
    if (info.operationId.startsWith('oauth')) return;
    upstream.total += 1;
    upstream.byStatus[info.status] = (upstream.byStatus[info.status] ?? 0) + 1;
    upstream.byOperation[info.operationId] = (upstream.byOperation[info.operationId] ?? 0) + 1;
  },
});
const configured = createGatewayFromConfig(
  loadConfig({ GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: JSON.stringify(apiKeys) }),
  {
    logging: false,
    atlas: {
      baseUrl: sim.url,
      auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
    },
  },
);
const url = await configured.gateway.listen(0);

const client = createClient({
  url: `${url.replace('http', 'ws')}/graphql`,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  connectionParams: { 'x-api-key': keys.mallory },
});
const outcomes: Record<string, number> = {};
let ended = 0;
const subscribe = (i: number) =>
  new Promise<void>((resolve) => {
    const done = (code: string) => {
      outcomes[code] = (outcomes[code] ?? 0) + 1;
      ended += 1;
      resolve();
    };
    client.subscribe(
      { query: WATCH, variables: { p: P, c: SEED.flex.clusterName, j: madeUp(i) } },
      {
        next: (r) => {
          const code = (r.errors?.[0]?.extensions as { code?: string } | undefined)?.code;
          if (code) done(code);
        },
        error: (e) => {
          const first = Array.isArray(e) ? (e[0] as { extensions?: { code?: string } }) : undefined;
          done(first?.extensions?.code ?? 'socket error');
        },
        complete: () => resolve(),
      },
    );
  });

/** Bob's ordinary query: `data`, or the error code he got. */
const bobQuery = async (): Promise<string> => {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': keys.bob },
    body: JSON.stringify({ query: `{ project(id: "${P}") { name } }` }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
  return body.errors?.[0]?.extensions?.code ?? (body.data ? 'data' : 'none');
};

const started = performance.now();
const all =
  mode === 'burst'
    ? Promise.all(Array.from({ length: subscribes }, (_, i) => subscribe(i)))
    : (async () => {
        for (let i = 0; i < subscribes; i++) await subscribe(i);
      })();
let during = 'not asked';
const halfway = (async () => {
  while (ended < subscribes / 2 && performance.now() - started < waitMs) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  during = await bobQuery();
})();
let timer: NodeJS.Timeout | undefined;
await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
await halfway;
clearTimeout(timer);
const subscribeMs = Math.round(performance.now() - started);
const duringSubscribes = {
  total: upstream.total,
  byStatus: { ...upstream.byStatus },
  byOperation: { ...upstream.byOperation },
};

const after = await bobQuery();

const result = {
  finding: 'issue #15 finding 3: hostile subscribes on one WebSocket',
  node: process.version,
  mode,
  subscribes,
  ended,
  unfinishedAfterWaitMs: subscribes - ended,
  subscribeMs,
  outcomes,
  upstreamCalls: duringSubscribes.total,
  upstreamByStatus: duringSubscribes.byStatus,
  // Bob's halfway query is the one getGroup.
  upstreamByOperation: duringSubscribes.byOperation,
  refusedFromMemory: (configured.gateway.pollers as { refusedFromMemory?: number }).refusedFromMemory ?? null,
  otherCallerQueryHalfway: during,
  otherCallerQueryAfter: after,
  pollersLeft: configured.gateway.pollers.stats().pollers,
};
console.log(JSON.stringify(result, null, 2));
if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);

await client.dispose();
await configured.close({ graceMs: 1000 });
await sim.close();
