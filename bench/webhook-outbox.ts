import { randomUUID } from 'node:crypto';
import { connectRedis } from '../src/replicas/redis.js';
import { RedisWebhookOutbox } from '../src/webhooks/redis-webhook-outbox.js';

// Issue #20: what the Redis webhook outbox costs per event: Redis memory while events wait (stream entry,
// record with its body, index) and after delivery (the record without its body, kept 7 days), and the
// time of enqueue and of claim + settle, sequentially on one connection. Uses the Redis on
// 127.0.0.1:6379 (REDIS_URL overrides) under a prefix of its own, removed at the end.
// Run: npx tsx bench/webhook-outbox.ts [events] (prints one JSON row).

const N = Number(process.argv[2] ?? 5000);
const redis = connectRedis({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix: `bench-wh-${randomUUID()}:`,
});
while (!redis.ready()) await new Promise((r) => setTimeout(r, 10));
const outbox = new RedisWebhookOutbox(redis);
// A CloudEvent body of the size the gateway sends for a download job (about 800 bytes).
const body = JSON.stringify({ specversion: '1.0', pad: 'x'.repeat(700) });
const used = async () => Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))![1]);

const before = await used();
let t = performance.now();
for (let i = 0; i < N; i++) {
  await outbox.enqueue(
    'bench',
    {
      eventId: `evt_${i}`,
      type: 'com.example.atlas-backup.job.completed',
      jobId: `${i}`,
      projectId: 'p',
      clusterName: 'c',
    },
    body,
    Date.now(),
  );
}
const enqueueMs = performance.now() - t;
const waiting = await used();
t = performance.now();
for (;;) {
  const claimed = await outbox.claim('bench', 'r1', 100, Date.now());
  if (claimed.length === 0) break;
  for (const c of claimed)
    await outbox.settle('bench', c, { kind: 'delivered', statusCode: 204 }, Date.now());
}
const deliverMs = performance.now() - t;
const delivered = await used();
const keys = await redis.client.keys(`${redis.prefix}*`);
for (let i = 0; i < keys.length; i += 500) await redis.client.del(...keys.slice(i, i + 500));
await redis.close();
console.log(
  JSON.stringify({
    events: N,
    bodyBytes: body.length,
    waitingBytesPerEvent: Math.round((waiting - before) / N),
    deliveredBytesPerEvent: Math.round((delivered - before) / N),
    enqueueMsPerEvent: +(enqueueMs / N).toFixed(3),
    claimAndSettleMsPerEvent: +(deliverMs / N).toFixed(3),
  }),
);
