/**
 * Where a sequential request's time goes (issue #19, docs/benchmarks.md "The latency floor"): the
 * built gateway and the simulator each in their own process, `--requests` single-snapshot queries
 * (or `{ __typename }`) sent one after the other, and per request: the async resources the gateway
 * created by type (setTimeout, setImmediate, nextTick, sockets…) and how busy its event loop was.
 * Not a load point: the hook costs time; the counts are what it is for.
 *
 *   npx tsx bench/trace-hops.ts [--requests 2000] [--typename] [--source: the TypeScript through tsx]
 *   BENCH_GATEWAY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npx tsx bench/trace-hops.ts --no-hooks
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { SEED } from '../src/simulator/seed.js';
import { startGatewayProcess } from './gateway-process.js';
import { GRAPHQL_HEADERS, graphqlBody } from './graphql-client.js';
import { singleSnapshot } from './operations.js';
import { startSimulatorProcess } from './simulator-process.js';
import { summarize } from './load.js';
import { treeCpuMs } from './proc-stats.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    typename: { type: 'boolean', default: false },
    'no-hooks': { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
  },
});
const n = Number(values.requests);
if (!values['no-hooks']) process.env.BENCH_TRACE_HOPS = '1';
const sim = await startSimulatorProcess();
const gateway = await startGatewayProcess({ baseUrl: sim.url, source: values.source });
const pool = new Pool(gateway.url, { connections: 1 });
const query = values.typename
  ? '{ __typename }'
  : singleSnapshot(SEED.projects.payments.id, SEED.flex.clusterName, SEED.flex.completedSnapshotId);
const body = graphqlBody(query);
const once = async () => {
  const res = await pool.request({ path: '/graphql', method: 'POST', headers: GRAPHQL_HEADERS, body });
  const text = await res.body.text();
  if (res.statusCode !== 200 || text.includes('"errors"')) throw new Error(`${res.statusCode}: ${text}`);
};
try {
  for (let i = 0; i < 200; i++) await once();
  await gateway.hops(true);
  await sim.reset();
  const samples = new Float64Array(n);
  const cpu0 = treeCpuMs(gateway.pid);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    samples[i] = performance.now() - t0;
  }
  const cpu = (treeCpuMs(gateway.pid) - cpu0) / n;
  const hops = await gateway.hops(false);
  const calls = (await sim.calls()).total;
  const s = summarize(samples, n);
  console.log(`${n} sequential requests: p50 ${s.p50.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`);
  console.log(`upstream calls per request: ${(calls / n).toFixed(2)}`);
  console.log(`gateway CPU per request: ${cpu.toFixed(3)} ms (${values.source ? 'source, tsx' : 'built'})`);
  console.log(`gateway event loop busy: ${(hops.utilization * 100).toFixed(1)} % of the time`);
  console.log('async resources per request (gateway):');
  for (const [type, count] of Object.entries(hops.byType).sort((a, b) => b[1] - a[1])) {
    console.log(`  ${type.padEnd(24)} ${(count / n).toFixed(2)}`);
  }
} finally {
  await pool.close();
  await gateway.close();
  await sim.close();
}
