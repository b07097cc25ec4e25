// Issue 15, findings 2 and 8, measured: the /metrics series and the process's memory before and after
// N distinct unauthenticated requests (each its own operation name and Host header), and how long
// slow-body connections without credentials survive, with the gateway's default limits.
//
//   node --expose-gc --import tsx bench/security/telemetry-and-slowloris.ts [flags]   (JSON on stdout)
//   npx tsx bench/security/telemetry-and-slowloris.ts [flags]                          (same, without a forced GC)
//
//   --requests <n>        distinct unauthenticated requests per round (default 10000)
//   --rounds <n>          rounds of them, measured after each: growth that stops is no leak (default 2)
//   --concurrency <n>     requests in flight (default 50)
//   --slow <n>            slow-body connections from 127.0.0.1 (default 600, as in the finding)
//   --cap-s <s>           stop watching the slow connections after this long (default 120)
//   --root <dir>          a checkout to measure instead of this one (e.g. /work/main, for before/after)
//
// Everything runs in this process on 127.0.0.1: the simulator (it gets no call: every request is
// refused before one), the gateway as `npm start` builds it (createGatewayFromConfig, API-key
// callers), and the clients. Memory is this process's, after a GC when --expose-gc is given.
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';

import type * as ApiKeysModule from '../../src/callers/api-keys.js';
import type * as ConfigModule from '../../src/config/index.js';
import type * as FromConfigModule from '../../src/gateway-from-config.js';
import type * as SimulatorModule from '../../src/simulator/index.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    slow: { type: 'string', default: '600' },
    'cap-s': { type: 'string', default: '120' },
    rounds: { type: 'string', default: '2' },
    root: { type: 'string' },
  },
});
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const SLOW = Number(values.slow);
const CAP_MS = Number(values['cap-s']) * 1000;
const ROUNDS = Number(values.rounds);
const root = resolve(values.root ?? new URL('../..', import.meta.url).pathname);
const load = <T>(path: string) => import(pathToFileURL(resolve(root, path)).href) as Promise<T>;

const { loadConfig } = await load<typeof ConfigModule>('src/config/index.ts');
const { createGatewayFromConfig } = await load<typeof FromConfigModule>('src/gateway-from-config.ts');
const { startSimulator, DEFAULT_SIM_CREDENTIALS } =
  await load<typeof SimulatorModule>('src/simulator/index.ts');
const { generateApiKey, hashApiKey } = await load<typeof ApiKeysModule>('src/callers/api-keys.ts');

const gc = (globalThis as { gc?: () => void }).gc;
const memory = () => {
  gc?.();
  const m = process.memoryUsage();
  return { rssMB: round1(m.rss / 2 ** 20), heapUsedMB: round1(m.heapUsed / 2 ** 20) };
};
const round1 = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

const sim = await startSimulator({ port: 0 });
const owner = DEFAULT_SIM_CREDENTIALS[0]!;
const config = loadConfig({
  MONGODB_ATLAS_BASE_URL: sim.url,
  MONGODB_ATLAS_CLIENT_ID: owner.clientId,
  MONGODB_ATLAS_CLIENT_SECRET: owner.clientSecret,
  GATEWAY_AUTH: 'apikey',
  GATEWAY_API_KEYS: JSON.stringify([
    { id: 'svc', hash: hashApiKey(generateApiKey()), projects: '*', rights: ['read'] },
  ]),
});
const built = createGatewayFromConfig(config, { logging: false });
const url = await built.gateway.listen(0);
const port = Number(new URL(url).port);
const agent = new Agent({ connections: CONCURRENCY });

async function scrape() {
  const res = await request(`${url}/metrics`, { dispatcher: agent });
  const text = await res.body.text();
  return {
    series: text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length,
    graphqlSeries: text.split('\n').filter((l) => l.startsWith('graphql_')).length,
    bytes: Buffer.byteLength(text),
  };
}

async function unauthenticated(i: number): Promise<number> {
  const name = `Probe_${i}_${Math.random().toString(36).slice(2)}`;
  const res = await request(`${url}/graphql`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json', host: `h${i}.attacker.example` },
    body: JSON.stringify({ query: `query ${name} { __typename }`, operationName: name }),
  });
  await res.body.dump();
  return res.statusCode;
}

// A few first, so that "before" already holds the series every refused request shares.
for (let i = 0; i < 20; i++) await unauthenticated(ROUNDS * REQUESTS + i);
const before = { metrics: await scrape(), memory: memory() };
const statuses: Record<number, number> = {};
const rounds: {
  seconds: number;
  metrics: Awaited<ReturnType<typeof scrape>>;
  memory: ReturnType<typeof memory>;
}[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i += CONCURRENCY) {
    const batch = Array.from({ length: Math.min(CONCURRENCY, REQUESTS - i) }, (_, j) =>
      unauthenticated(round * REQUESTS + i + j),
    );
    for (const status of await Promise.all(batch)) statuses[status] = (statuses[status] ?? 0) + 1;
  }
  const seconds = round1((performance.now() - t0) / 1000);
  rounds.push({ seconds, metrics: await scrape(), memory: memory() });
}
// The client's keep-alive connections would count against the per-address cap below.
await agent.close();

/** One slow-body client: headers at once, then a byte a second, forever. */
interface Slow {
  socket: Socket;
  openedAt: number;
  closedAt?: number;
  firstLine?: string;
}
function slowClient(): Slow {
  const socket = connect(port, '127.0.0.1');
  const slow: Slow = { socket, openedAt: performance.now() };
  let data = '';
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.once('connect', () => {
    socket.write(
      'POST /graphql HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: 50000\r\n\r\n{"query":"',
    );
    const tick = setInterval(() => socket.write('a'), 1000);
    socket.once('close', () => clearInterval(tick));
  });
  socket.once('close', () => {
    slow.closedAt = performance.now();
    slow.firstLine = data.split('\r\n')[0] ?? '';
  });
  return slow;
}

const slow = Array.from({ length: SLOW }, () => slowClient());
const deadline = performance.now() + CAP_MS;
while (slow.some((s) => s.closedAt === undefined) && performance.now() < deadline) {
  await new Promise((r) => setTimeout(r, 250));
}
const stillOpen = slow.filter((s) => s.closedAt === undefined).length;
for (const s of slow) s.socket.destroy();
const lived = (s: Slow) => ((s.closedAt ?? performance.now()) - s.openedAt) / 1000;
// Refused on accept: closed with nothing said; the others waited out the request timeout.
const refused = slow.filter((s) => s.closedAt !== undefined && s.firstLine === '');
const answered = slow.filter((s) => s.firstLine !== undefined && s.firstLine !== '');
const survival = answered.map(lived).sort((a, b) => a - b);
const lines: Record<string, number> = {};
for (const s of answered) lines[s.firstLine!] = (lines[s.firstLine!] ?? 0) + 1;

console.log(
  JSON.stringify(
    {
      root,
      node: process.version,
      forcedGc: gc !== undefined,
      connections: config.server.connections ?? 'not configurable in this checkout',
      unauthenticated: {
        requestsPerRound: REQUESTS,
        concurrency: CONCURRENCY,
        statuses,
        before,
        afterEachRound: rounds,
        upstreamCalls: sim.stats().requests.filter((r) => !r.operationId.startsWith('oauth.')).length,
      },
      slowloris: {
        connections: SLOW,
        refusedOnAccept: refused.length,
        answered: lines,
        stillOpenAtCap: stillOpen,
        capSeconds: CAP_MS / 1000,
        survivedSeconds:
          survival.length > 0
            ? {
                min: round1(survival[0]!),
                median: round1(survival[Math.floor(survival.length / 2)]!),
                max: round1(survival.at(-1)!),
              }
            : null,
      },
    },
    null,
    2,
  ),
);
await built.close({ graceMs: 1000 });
await sim.close();
