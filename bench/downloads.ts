import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startSimulator } from '../src/simulator/index.js';
import { SEED } from '../src/simulator/seed.js';
import { startGatewayProcess, type ChildMemory } from './gateway-process.js';

// Memory per concurrent streamed download (issue #20): the gateway alone in a child process streams
// a large archive to N slow readers; its heap and RSS with the downloads running, minus the same
// before them, divided by N. `npx tsx bench/downloads.ts [--readers 20] [--mb 64] [--kbps 512]`.

const { values } = parseArgs({
  options: {
    readers: { type: 'string', default: '20' },
    mb: { type: 'string', default: '64' },
    kbps: { type: 'string', default: '512' },
    seconds: { type: 'string', default: '8' },
  },
});
const readers = Number(values.readers);
const archiveMb = Number(values.mb);
const kbps = Number(values.kbps);
const seconds = Number(values.seconds);

const P = SEED.projects.payments.id;
const path = `/downloads/${P}/${SEED.flex.clusterName}/${SEED.flex.freshDownloadJobId}`;

/** A reader that takes `kbps` KiB per second: 16 KiB, then a pause. */
function slowSink(counter: { bytes: number }): Writable {
  const pauseMs = (16 / kbps) * 1000;
  return new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, done) {
      counter.bytes += chunk.length;
      setTimeout(done, pauseMs * (chunk.length / (16 * 1024)));
    },
  });
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(2);
const kb = (n: number) => (n / 1024).toFixed(0);

const sim = await startSimulator({ archiveExtraBytes: archiveMb * 1024 * 1024 });
const gateway = await startGatewayProcess({ baseUrl: sim.url });
try {
  // Warm: one whole download (the store builds and keeps its archive; the gateway's code paths are hot).
  const warm = await request(`${gateway.url}${path}`);
  const total = (await warm.body.arrayBuffer()).byteLength;
  await sleep(500);
  const before = await gateway.memory(true);

  const counters = Array.from({ length: readers }, () => ({ bytes: 0 }));
  const controllers = counters.map(() => new AbortController());
  const running = counters.map(async (counter, i) => {
    const res = await request(`${gateway.url}${path}`, { signal: controllers[i]!.signal });
    await pipeline(res.body, slowSink(counter)).catch(() => undefined);
  });
  const samples: ChildMemory[] = [];
  for (let s = 0; s < seconds * 2; s++) {
    await sleep(500);
    samples.push(await gateway.memory(s % 2 === 1));
  }
  const during = {
    rss: Math.max(...samples.map((m) => m.rss)),
    heapUsed: Math.max(...samples.map((m) => m.heapUsed)),
    heapUsedAfterGc: Math.max(...samples.filter((_m, i) => i % 2 === 1).map((m) => m.heapUsed)),
    external: Math.max(...samples.map((m) => m.external + m.arrayBuffers)),
  };
  const streamed = counters.reduce((n, c) => n + c.bytes, 0);
  for (const c of controllers) c.abort();
  await Promise.all(running);
  await sleep(500);
  const openUpstream = sim.downloads().open;
  const after = await gateway.memory(true);

  const per = (d: number) => d / readers;
  console.log(`archive ${mb(total)} MB, ${readers} readers at ${kbps} KiB/s each, ${seconds} s`);
  console.log(`streamed meanwhile: ${mb(streamed)} MB (${mb(streamed / readers)} MB per reader)`);
  console.log(`gateway before: rss ${mb(before.rss)} MB, heapUsed ${mb(before.heapUsed)} MB`);
  console.log(
    `gateway during (peak): rss ${mb(during.rss)} MB, heapUsed ${mb(during.heapUsed)} MB (after gc ${mb(during.heapUsedAfterGc)} MB), external+arrayBuffers ${mb(during.external)} MB`,
  );
  console.log(
    `per download: rss ${kb(per(during.rss - before.rss))} KiB, heap ${kb(per(during.heapUsed - before.heapUsed))} KiB (after gc ${kb(per(during.heapUsedAfterGc - before.heapUsed))} KiB)`,
  );
  console.log(
    `after the readers left: rss ${mb(after.rss)} MB, upstream streams still open: ${openUpstream}`,
  );
} finally {
  await gateway.close();
  await sim.close();
}
