import { createHook } from 'node:async_hooks';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { createGateway } from '../src/gateway.js';
import type { ChildConfig, ChildHops, ChildMemory, FromChild, ToChild } from './gateway-process.js';
import { openAccess } from '../src/callers/caller.js';

// The gateway alone in a process, started by gateway-process.ts: its RSS is the gateway's, not the
// load generator's or the simulator's.
const send = (m: FromChild) => process.send?.(m);
const config = JSON.parse(process.env.BENCH_GATEWAY ?? '{}') as ChildConfig;

const gateway = createGateway({
  // Open on purpose: the bench measures the gateway, not caller checks.
  authenticate: openAccess,
  atlas: {
    baseUrl: config.baseUrl,
    auth: { type: 'oauth', clientId: config.clientId, clientSecret: config.clientSecret },
  },
  logging: false,
  graphiql: false,
  pollIntervalMs: config.pollIntervalMs,
  ...(config.readCache ? { readCache: config.readCache } : {}),
  ...(config.leanSse !== undefined ? { leanSse: config.leanSse } : {}),
  // The load generator is one address holding up to 10,000 subscribers: the caps would refuse it.
  connections: { maxConnections: 0, maxConnectionsPerAddress: 0 },
});

// bench/trace-hops.ts: which async resources (timers, immediates, ticks, sockets) a request creates.
const hopCounts = new Map<string, number>();
let eluStart: EventLoopUtilization = performance.eventLoopUtilization();
if (process.env.BENCH_TRACE_HOPS === '1') {
  createHook({
    init(_id, type) {
      if (type !== 'PROMISE') hopCounts.set(type, (hopCounts.get(type) ?? 0) + 1);
    },
  }).enable();
}

let closing = false;
const close = async (code: number) => {
  if (closing) return;
  closing = true;
  try {
    await gateway.close();
  } finally {
    process.exit(code);
  }
};

// Never outlive the bench: the IPC channel closes when the parent dies, however it dies.
process.on('disconnect', () => void close(0));
process.on('SIGTERM', () => void close(0));
process.on('SIGINT', () => void close(0));

process.on('message', (m: ToChild) => {
  if (m.type === 'close') void close(0);
  else if (m.type === 'hops') {
    const hops: ChildHops = {
      byType: Object.fromEntries(hopCounts),
      utilization: performance.eventLoopUtilization(eluStart).utilization,
    };
    if (m.reset) {
      hopCounts.clear();
      eluStart = performance.eventLoopUtilization();
    }
    send({ type: 'hops', hops });
  } else if (m.type === 'memory') {
    if (m.gc && typeof global.gc === 'function') {
      // Twice: the first pass may only queue finalizers that free more on the second.
      global.gc();
      global.gc();
    }
    const u = process.memoryUsage();
    const memory: ChildMemory = {
      rss: u.rss,
      heapUsed: u.heapUsed,
      heapTotal: u.heapTotal,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
      pollers: gateway.pollers.stats(),
    };
    send({ type: 'memory', memory });
  }
});

try {
  const url = await gateway.listen(0, '127.0.0.1');
  send({ type: 'ready', url });
} catch (err) {
  send({ type: 'error', message: (err as Error).message });
  await close(1);
}
