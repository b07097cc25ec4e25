import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { Repeater } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupServices } from '../../src/backup/backup-service.js';
import type { RestoreJobSource } from '../../src/backup/model.js';
import type { Caller } from '../../src/callers/caller.js';
import { connectRedis, type SharedRedis } from '../../src/replicas/redis.js';
import { SEED } from '../../src/simulator/seed.js';
import type { JobChangeSource } from '../../src/webhooks/job-change-source.js';
import { verifyWebhook } from '../../src/webhooks/sign-webhook.js';
import type { JobCloudEvent } from '../../src/webhooks/job-cloud-event.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';
import { until } from '../support/private-redis.js';
import { startStack, type Stack } from '../support/stack.js';
import { startTinyServer, type SeenRequest } from '../support/tiny-server.js';

// A gateway built as `npm start` builds it (hooks from GATEWAY_WEBHOOKS_FILE) in front of the
// spec-checked simulator; the outbox in the machine's Redis on 127.0.0.1:6379 under a key prefix of
// each test's own; receivers on real sockets (port 0). Time moves only when a test moves it (the
// stack's manual clock, manual timers), so backoffs are asserted exactly and nothing sleeps. The job
// changes come from an injected source fed with jobs read from the simulator, so each test decides
// when a job "changes"; test/webhooks/webhook-end-to-end.test.ts uses the gateway's own source.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const REDIS_URL = 'redis://127.0.0.1:6379';
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'webhooks-'));
const prefixes: string[] = [];
let admin: SharedRedis;

beforeAll(async () => {
  admin = track(connectRedis({ url: REDIS_URL, prefix: 'unused:' }), 'admin Redis');
  await until(() => admin.ready(), 'Redis on 127.0.0.1:6379');
});
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await admin.client.keys(`${prefix}*`);
    if (keys.length) await admin.client.del(...keys);
  }
});

/** A job change source the test feeds by hand. */
function manualSource() {
  const listeners = new Set<(job: RestoreJobSource) => void>();
  const source: JobChangeSource = (_scope, signal) =>
    new Repeater<RestoreJobSource>(async (push, stop) => {
      const listener = (job: RestoreJobSource) => void push(job);
      listeners.add(listener);
      signal.addEventListener('abort', () => stop(), { once: true });
      await stop;
      listeners.delete(listener);
    });
  return {
    source,
    listening: () => listeners.size,
    emit: (job: RestoreJobSource) => {
      for (const l of listeners) l(job);
    },
  };
}

interface Delivery {
  eventId: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deadLettered: boolean;
}

const DELIVERIES = `query($h: ID!, $s: [DeliveryStatus!]) {
  webhookDeliveries(hookId: $h, status: $s) {
    eventId status attempts lastStatusCode lastError nextAttemptAt deadLettered
  }
}`;

interface HookSpec {
  id?: string;
  url: string;
  includeSnapshotUrl?: boolean;
}

function hooksFile(hooks: HookSpec[]): string {
  const file = join(dir, `${randomUUID()}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      hooks.map((h) => ({
        id: h.id ?? 'ops',
        url: h.url,
        secret: SECRET,
        scope: { projectIds: [P] },
        ...(h.includeSnapshotUrl ? { includeSnapshotUrl: true } : {}),
      })),
    ),
  );
  return file;
}

interface Setup {
  stack: Stack;
  timers: ManualTimers;
  changes: ReturnType<typeof manualSource>;
  redis: SharedRedis | undefined;
  deliveries(statuses?: string[], hookId?: string): Promise<Delivery[]>;
}

async function setup(
  hooks: HookSpec[],
  o: {
    env?: Record<string, string>;
    redis?: boolean | string;
    authenticate?: (r: Request) => Promise<Caller>;
  } = {},
): Promise<Setup> {
  const timers = new ManualTimers();
  const changes = manualSource();
  let redis: SharedRedis | undefined;
  if (o.redis !== false) {
    const prefix = typeof o.redis === 'string' ? o.redis : `test-webhooks-${randomUUID()}:`;
    if (!prefixes.includes(prefix)) prefixes.push(prefix);
    redis = track(connectRedis({ url: REDIS_URL, prefix }), 'gateway Redis');
    await until(() => redis!.ready(), 'Redis ready');
  }
  const stack = await startStack({
    env: { GATEWAY_WEBHOOKS_FILE: hooksFile(hooks), ...o.env },
    gateway: {
      ...(redis ? { redis } : {}),
      ...(o.authenticate ? { authenticate: o.authenticate } : {}),
      webhooks: { source: changes.source, timers, random: () => 0.5 },
    },
  });
  await until(() => changes.listening() === hooks.length, 'the webhooks listening');
  return {
    stack,
    timers,
    changes,
    redis,
    async deliveries(statuses, hookId = 'ops') {
      const res = await stack.query<{ webhookDeliveries: Delivery[] }>(DELIVERIES, {
        h: hookId,
        s: statuses ?? null,
      });
      expect(res.errors).toBeUndefined();
      return res.data!.webhookDeliveries;
    },
  };
}

/** A job as Atlas describes it now, read from the simulator through the gateway's own Atlas client. */
async function jobOf(stack: Stack, jobId: string): Promise<RestoreJobSource> {
  const service = backupServices({ atlas: stack.gateway.atlas, families: stack.gateway.families })({
    use: 'poll',
  });
  return service.getJob({ projectId: P, clusterName: F.clusterName }, jobId);
}

/** Waits (on state, not time) until `test` holds, re-reading what it reads. */
async function eventually(test: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await test()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} never held`);
}

/** Moves the clock to the next attempt of the hook's newest delivery and fires the worker's timer. */
async function nextAttempt(s: Setup): Promise<void> {
  await until(() => s.timers.pending > 0, 'the worker waiting');
  const [d] = await s.deliveries();
  s.stack.clock.set(d!.nextAttemptAt!);
  s.timers.fire();
}

/** A receiver answering each request with the next status of `script` (the last one repeats). */
async function receiver(script: { status: number; headers?: Record<string, string> }[]) {
  let i = 0;
  return startTinyServer((_req, res) => {
    const step = script[Math.min(i++, script.length - 1)]!;
    res.writeHead(step.status, step.headers ?? {});
    res.end();
  });
}

describe('webhook delivery (Redis outbox)', () => {
  it('delivers exactly once to a receiver that fails twice, retrying with backoff and honouring Retry-After', async () => {
    const rx = await receiver([
      { status: 500 },
      { status: 503, headers: { 'retry-after': '120' } },
      { status: 200 },
    ]);
    const s = await setup([{ url: `${rx.url}/hook` }]);
    const job = await jobOf(s.stack, F.freshDownloadJobId);
    expect(job.dto.status).toBe('COMPLETED');
    const t0 = s.stack.clock.now();

    // The same change seen twice (a second watcher, another replica): one event.
    s.changes.emit(job);
    s.changes.emit(job);
    await eventually(async () => (await s.deliveries())[0]?.status === 'RETRYING', 'first failure recorded');
    expect(rx.seen).toHaveLength(1);
    let [d] = await s.deliveries();
    expect(d).toMatchObject({ attempts: 1, lastStatusCode: 500, lastError: 'HTTP 500', deadLettered: false });
    // 1 s base, equal jitter at 0.5: 750 ms.
    expect(Date.parse(d!.nextAttemptAt!) - t0).toBe(750);

    // Nothing before it is due, however often the worker looks.
    s.timers.fire();
    await until(() => s.timers.pending > 0, 'the worker waiting');
    expect(rx.seen).toHaveLength(1);

    await nextAttempt(s);
    await eventually(async () => (await s.deliveries())[0]?.attempts === 2, 'second failure recorded');
    [d] = await s.deliveries();
    // The receiver asked for 120 s, more than the 1.5 s backoff.
    expect(d).toMatchObject({ status: 'RETRYING', lastStatusCode: 503 });
    expect(Date.parse(d!.nextAttemptAt!) - s.stack.clock.now()).toBe(120_000);

    await nextAttempt(s);
    await eventually(async () => (await s.deliveries())[0]?.status === 'DELIVERED', 'delivered');
    [d] = await s.deliveries();
    expect(d).toMatchObject({ attempts: 3, lastStatusCode: 200, nextAttemptAt: null });

    // Later looks, much later, send nothing more.
    s.stack.clock.advance(86_400_000);
    s.timers.fire();
    await until(() => s.timers.pending > 0, 'the worker waiting');
    s.changes.emit(job);
    await eventually(async () => s.stack.gateway.webhooks!.stats().duplicates === 2, 'the repeat refused');
    expect(rx.seen).toHaveLength(3);
    expect(new Set(rx.seen.map((r) => r.headers['webhook-id']))).toEqual(new Set([d!.eventId]));
    expect(new Set(rx.seen.map((r) => r.body)).size).toBe(1);
    expect(s.stack.gateway.webhooks!.stats()).toMatchObject({ enqueued: 1, posts: 3, inflight: 0 });
    // The same counts on /metrics, for alerts on a receiver that keeps failing.
    const metrics = await s.stack.gateway.registry.metrics();
    expect(metrics).toMatch(/^gateway_webhook_events_total 1$/m);
    expect(metrics).toMatch(/^gateway_webhook_duplicates_total 2$/m);
    expect(metrics).toMatch(/^gateway_webhook_posts_total 3$/m);
    expect(metrics).toMatch(/^gateway_webhook_posts_in_flight 0$/m);
  });

  it('sends a signed CloudEvent the receiver verifies, and refuses it tampered or replayed late', async () => {
    const rx = await receiver([{ status: 204 }]);
    const withUrl = await receiver([{ status: 204 }]);
    const s = await setup([
      { id: 'ops', url: rx.url },
      { id: 'archiver', url: withUrl.url, includeSnapshotUrl: true },
    ]);
    const job = await jobOf(s.stack, F.freshDownloadJobId);
    expect(job.dto.snapshotUrl).toMatch(/^https?:\/\//);
    s.changes.emit(job);
    await until(() => rx.seen.length === 1 && withUrl.seen.length === 1, 'both hooks called');
    const [req] = rx.seen as [SeenRequest];

    expect(req.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    const now = s.stack.clock.now();
    expect(verifyWebhook({ secret: SECRET, headers: req.headers, body: req.body, nowMs: now })).toEqual({
      ok: true,
      id: req.headers['webhook-id'],
    });
    const tampered = req.body.replace('COMPLETED', 'FAILED');
    expect(verifyWebhook({ secret: SECRET, headers: req.headers, body: tampered, nowMs: now })).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(
      verifyWebhook({ secret: SECRET, headers: req.headers, body: req.body, nowMs: now + 301_000 }),
    ).toEqual({
      ok: false,
      reason: 'too-old',
    });

    const event = JSON.parse(req.body) as JobCloudEvent;
    expect(event).toMatchObject({
      specversion: '1.0',
      id: req.headers['webhook-id'],
      type: 'com.example.atlas-backup.job.completed',
      source: `/atlas-backup-gateway/projects/${P}/clusters/${F.clusterName}`,
      subject: F.freshDownloadJobId,
      datacontenttype: 'application/json',
      data: {
        id: F.freshDownloadJobId,
        projectId: P,
        clusterName: F.clusterName,
        family: 'FLEX',
        status: 'COMPLETED',
        deliveryType: 'DOWNLOAD',
        snapshotId: job.dto.snapshotId,
        expirationDate: job.dto.expirationDate,
        isTerminal: true,
      },
    });
    expect(Date.parse(event.time)).toBe(Date.parse(job.dto.restoreFinishedDate!));
    // The signed link is a bearer secret: only the hook configured for it gets it.
    expect(event.data).not.toHaveProperty('snapshotUrl');
    expect(req.body).not.toContain(job.dto.snapshotUrl!);
    const archived = JSON.parse(withUrl.seen[0]!.body) as JobCloudEvent;
    expect(archived.data.snapshotUrl).toBe(job.dto.snapshotUrl);
    // Events are per hook: their ids differ, so one receiver's dedupe never swallows another's.
    expect(withUrl.seen[0]!.headers['webhook-id']).not.toBe(req.headers['webhook-id']);
  });

  it('dead-letters after GATEWAY_WEBHOOK_MAX_ATTEMPTS failures, visible in webhookDeliveries', async () => {
    const rx = await receiver([{ status: 500 }]);
    const s = await setup([{ url: rx.url }], { env: { GATEWAY_WEBHOOK_MAX_ATTEMPTS: '3' } });
    s.changes.emit(await jobOf(s.stack, F.failedJobId));
    await eventually(async () => (await s.deliveries())[0]?.attempts === 1, 'first attempt');
    await nextAttempt(s);
    await eventually(async () => (await s.deliveries())[0]?.attempts === 2, 'second attempt');
    await nextAttempt(s);
    await eventually(async () => (await s.deliveries())[0]?.status === 'DEAD_LETTERED', 'dead-lettered');

    const [dead] = await s.deliveries(['DEAD_LETTERED']);
    expect(dead).toMatchObject({
      attempts: 3,
      lastStatusCode: 500,
      lastError: 'HTTP 500',
      nextAttemptAt: null,
      deadLettered: true,
    });
    expect(await s.deliveries(['DELIVERED', 'RETRYING', 'PENDING'])).toEqual([]);
    expect(JSON.parse(rx.seen[0]!.body)).toMatchObject({ type: 'com.example.atlas-backup.job.failed' });
    // Not retried any more.
    s.stack.clock.advance(86_400_000);
    s.timers.fire();
    await until(() => s.timers.pending > 0, 'the worker waiting');
    expect(rx.seen).toHaveLength(3);
    expect(await s.stack.gateway.webhooks!.backlog('ops')).toBe(0);
  });

  it('delivers an event after a restart: the first gateway closed mid-POST, a new one on the same Redis sends it', async () => {
    const held: ServerResponse[] = [];
    let answer = false;
    const rx = await startTinyServer((_req, res) => {
      if (answer) res.writeHead(200).end();
      else held.push(res);
    });
    const prefix = `test-webhooks-${randomUUID()}:`;
    const a = await setup([{ url: rx.url }], { redis: prefix });
    a.changes.emit(await jobOf(a.stack, F.freshDownloadJobId));
    await until(
      () => rx.seen.length === 1 && a.stack.gateway.webhooks!.stats().inflight === 1,
      'POST in flight',
    );
    const at = a.stack.clock.now();
    await a.stack.close();
    expect(await a.redis!.client.exists(`${prefix}wh:ops:retry`)).toBe(1);
    await a.redis!.close();

    answer = true;
    const b = await setup([{ url: rx.url }], { redis: prefix });
    b.stack.clock.set(at);
    b.timers.fire();
    await eventually(
      async () => (await b.deliveries())[0]?.status === 'DELIVERED',
      'delivered by the new gateway',
    );
    const [d] = await b.deliveries();
    // The cut-off POST was no attempt the receiver answered: handed back, not counted.
    expect(d).toMatchObject({ attempts: 1, lastStatusCode: 200 });
    expect(rx.seen).toHaveLength(2);
    expect(rx.seen[1]!.headers['webhook-id']).toBe(rx.seen[0]!.headers['webhook-id']);
    expect(rx.seen[1]!.body).toBe(rx.seen[0]!.body);
    expect(b.stack.gateway.webhooks!.stats()).toMatchObject({ enqueued: 0, posts: 1 });
  });

  it('holds at most `concurrency` events in memory for a receiver that never answers; the rest wait in Redis', async () => {
    const rx = await startTinyServer(() => undefined);
    const s = await setup([{ url: rx.url }], { env: { GATEWAY_WEBHOOK_CONCURRENCY: '2' } });
    const job = await jobOf(s.stack, F.freshDownloadJobId);
    for (let i = 0; i < 50; i++)
      s.changes.emit({ ...job, dto: { ...job.dto, id: `${i}`.padStart(24, 'a') } });
    const webhooks = s.stack.gateway.webhooks!;
    await eventually(async () => webhooks.stats().enqueued === 50, 'all 50 enqueued');
    await until(() => rx.seen.length === 2, 'two POSTs open');
    // However often the worker looks, no third POST while two are open.
    for (let i = 0; i < 5; i++) {
      s.timers.fire();
      await until(() => s.timers.pending > 0, 'the worker waiting');
    }
    expect(rx.seen).toHaveLength(2);
    expect(webhooks.stats()).toMatchObject({ inflight: 2, unsaved: 0, dropped: 0 });
    expect(await webhooks.backlog('ops')).toBe(50);
    expect(await s.deliveries(['PENDING'])).toHaveLength(20);
  });

  it('answers webhookDeliveries only to a caller who sees every project of the hook, with the right', async () => {
    const rx = await receiver([{ status: 200 }]);
    const A = SEED.projects.analytics.id;
    const callers: Record<string, Caller> = {
      all: { id: 'all', kind: 'apiKey', projects: new Set([P, A]), rights: new Set(['read']) },
      other: { id: 'other', kind: 'apiKey', projects: new Set([A]), rights: new Set(['read', 'download']) },
      noRead: { id: 'noRead', kind: 'apiKey', projects: new Set([P]), rights: new Set(['download']) },
      readOnly: { id: 'readOnly', kind: 'apiKey', projects: new Set([P]), rights: new Set(['read']) },
      passThrough: { id: 'pt', kind: 'passThrough', projects: 'all', rights: new Set(['read', 'download']) },
    };
    const s = await setup(
      [
        { id: 'ops', url: rx.url },
        { id: 'archiver', url: rx.url, includeSnapshotUrl: true },
      ],
      { authenticate: async (r) => callers[r.headers.get('x-test-caller') ?? 'all']! },
    );
    const ask = async (who: string, hookId: string) => {
      const res = await s.stack.gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-test-caller': who },
        body: JSON.stringify({ query: DELIVERIES, variables: { h: hookId } }),
      });
      const body = (await res.json()) as { errors?: { extensions: { code: string } }[]; data?: unknown };
      return body.errors?.[0]?.extensions.code ?? 'OK';
    };
    expect(await ask('all', 'ops')).toBe('OK');
    expect(await ask('readOnly', 'ops')).toBe('OK');
    expect(await ask('all', 'nope')).toBe('NOT_FOUND');
    // Not seeing the hook's project is not seeing the hook.
    expect(await ask('other', 'ops')).toBe('NOT_FOUND');
    expect(await ask('noRead', 'ops')).toBe('FORBIDDEN');
    // Events with the snapshot URL need the download right too.
    expect(await ask('readOnly', 'archiver')).toBe('FORBIDDEN');
    expect(await ask('passThrough', 'ops')).toBe('FORBIDDEN');
    // …and an unknown hook answers a pass-through caller the same: it cannot probe which ids exist.
    expect(await ask('passThrough', 'nope')).toBe('FORBIDDEN');
  });
});

describe('webhook delivery without Redis (memory outbox)', () => {
  it('bounds the outbox: events past GATEWAY_WEBHOOK_MEMORY_OUTBOX_MAX are dropped and counted', async () => {
    const rx = await startTinyServer(() => undefined);
    const s = await setup([{ url: rx.url }], {
      redis: false,
      env: { GATEWAY_WEBHOOK_MEMORY_OUTBOX_MAX: '10', GATEWAY_WEBHOOK_CONCURRENCY: '1' },
    });
    const job = await jobOf(s.stack, F.freshDownloadJobId);
    for (let i = 0; i < 50; i++)
      s.changes.emit({ ...job, dto: { ...job.dto, id: `${i}`.padStart(24, 'b') } });
    const webhooks = s.stack.gateway.webhooks!;
    await until(() => webhooks.stats().enqueued + webhooks.stats().dropped === 50, 'all 50 offered');
    await until(() => rx.seen.length === 1, 'one POST open');
    expect(webhooks.stats()).toMatchObject({ enqueued: 10, dropped: 40, inflight: 1 });
    expect(await webhooks.backlog('ops')).toBe(10);
  });

  it('retries and delivers in memory as with Redis', async () => {
    const rx = await receiver([{ status: 500 }, { status: 200 }]);
    const s = await setup([{ url: rx.url }], { redis: false });
    s.changes.emit(await jobOf(s.stack, F.freshDownloadJobId));
    await eventually(async () => (await s.deliveries())[0]?.status === 'RETRYING', 'first failure');
    await nextAttempt(s);
    await eventually(async () => (await s.deliveries())[0]?.status === 'DELIVERED', 'delivered');
    expect(rx.seen).toHaveLength(2);
  });
});
