import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createGatewayFromConfig } from '../../src/gateway-from-config.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import type { JobCloudEvent } from '../../src/webhooks/job-cloud-event.js';
import { verifyWebhook } from '../../src/webhooks/sign-webhook.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';
import { until } from '../support/private-redis.js';
import { OWNER, startStack } from '../support/stack.js';
import { newDownload } from '../support/new-download.js';
import { startTinyServer } from '../support/tiny-server.js';

// Two replicas built as `npm start` builds them, sharing the machine's Redis (127.0.0.1:6379, a key
// prefix of this test's own) and one spec-checked simulator, with the webhooks listening through the
// jobs feed's scope watcher (src/jobs/job-scope-watcher.ts): a download requested through the gateway
// completes in the simulator, both replicas see the change, the receiver gets one signed event.
// Poll intervals are manual timers; the simulator's jobs move on the shared manual clock.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const INTERVAL = 1000;
const REDIS_URL = 'redis://127.0.0.1:6379';
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const prefix = `test-webhooks-e2e-${randomUUID()}:`;
let admin: SharedRedis;

beforeAll(async () => {
  admin = track(connectRedis({ url: REDIS_URL, prefix: 'unused:' }), 'admin Redis');
  await until(() => admin.ready(), 'Redis on 127.0.0.1:6379');
});
afterAll(async () => {
  const keys = await admin.client.keys(`${prefix}*`);
  if (keys.length) await admin.client.del(...keys);
});

async function sharedRedis(): Promise<SharedRedis> {
  const redis = track(connectRedis({ url: REDIS_URL, prefix }), 'replica Redis');
  await until(() => redis.ready(), 'Redis ready');
  return redis;
}

describe('webhooks end to end', () => {
  it('sends one signed event for a download that completes, seen by two replicas', async () => {
    const rx = await startTinyServer((_req, res) => void res.writeHead(200).end());
    const file = join(mkdtempSync(join(tmpdir(), 'webhooks-e2e-')), 'hooks.json');
    writeFileSync(
      file,
      JSON.stringify([
        {
          id: 'downloads',
          url: `${rx.url}/events`,
          secret: SECRET,
          scope: { projectIds: [P], clusterNames: [F.clusterName], deliveryTypes: ['DOWNLOAD'] },
          events: ['job.completed'],
        },
      ]),
    );
    const env = { GATEWAY_WEBHOOKS_FILE: file };
    const polls = [new ManualTimers(), new ManualTimers()] as const;
    const a = await startStack({
      env,
      gateway: {
        redis: await sharedRedis(),
        timers: polls[0],
        pollIntervalMs: INTERVAL,
        webhooks: { timers: new ManualTimers() },
      },
    });
    const config = loadConfig(env);
    const b = track(
      createGatewayFromConfig(
        { ...config, upstream: { ...config.upstream, atlasBudget: false } },
        {
          clock: a.clock,
          logging: false,
          redis: await sharedRedis(),
          timers: polls[1],
          pollIntervalMs: INTERVAL,
          webhooks: { timers: new ManualTimers() },
          atlas: {
            baseUrl: a.sim.url,
            auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
            clock: a.clock,
            sleep: async () => {},
          },
        },
      ),
      'replica b',
    );
    const replicas = [a.gateway, b.gateway];
    // Each replica waits on its project's cluster list and on the cluster's jobs: the watch has started.
    await until(() => polls.every((t) => t.pending === 2), 'both replicas watching');

    const jobId = await newDownload(a);

    // While the job runs, the hook (completed only) hears nothing.
    for (const t of polls) t.fireUpTo(INTERVAL);
    await until(() => polls.every((t) => t.pending === 2), 'an interval read');
    expect(rx.seen).toHaveLength(0);
    a.clock.advance(a.sim.store.jobMs);
    for (const t of polls) t.fireUpTo(INTERVAL);
    const seen = () =>
      replicas.reduce((n, g) => n + g.webhooks!.stats().enqueued + g.webhooks!.stats().duplicates, 0);
    const total = (k: 'enqueued' | 'duplicates' | 'posts') =>
      replicas.reduce((n, g) => n + g.webhooks!.stats()[k], 0);
    // The worker counts its POST once the receiver's answer is back, a moment after the receiver saw it.
    await until(
      () => rx.seen.length === 1 && seen() === 2 && total('posts') === 1,
      'the event delivered, both replicas having seen it',
    );

    expect([total('enqueued'), total('duplicates'), total('posts')]).toEqual([1, 1, 1]);
    const [req] = rx.seen;
    expect(req!.url).toBe('/events');
    expect(
      verifyWebhook({ secret: SECRET, headers: req!.headers, body: req!.body, nowMs: a.clock.now() }),
    ).toMatchObject({ ok: true });
    const event = JSON.parse(req!.body) as JobCloudEvent;
    expect(event).toMatchObject({
      type: 'com.example.atlas-backup.job.completed',
      data: { id: jobId, status: 'COMPLETED', deliveryType: 'DOWNLOAD', clusterName: F.clusterName },
    });

    // Later intervals (and the other replica's outbox look) send nothing more.
    for (let i = 0; i < 3; i++) {
      for (const t of polls) t.fireUpTo(INTERVAL);
      await until(() => polls.every((t) => t.pending === 2), 'an interval read');
    }
    expect(rx.seen).toHaveLength(1);
    const [d] = (
      await a.query<{ webhookDeliveries: { status: string; attempts: number }[] }>(
        `{ webhookDeliveries(hookId: "downloads") { status attempts } }`,
      )
    ).data!.webhookDeliveries;
    expect(d).toEqual({ status: 'DELIVERED', attempts: 1 });
    expect(a.sim.violations).toEqual([]);
  });
});
