import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startContractSimulator, type ContractSimulator } from '../support/contract.js';
import { subscribeSse } from '../support/sse.js';

// Three gateway processes (src/index.ts, as `npm start` runs it), one spec-checked simulator in this
// process (every answer the replicas get is validated; a violation fails the file), one Redis: the
// machine's on 127.0.0.1:6379 (.ci/run starts it when it is not running), each test under its own key
// prefix; the Redis-outage test runs a private redis-server on a free port so it can stop it.

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;
const P = SEED.projects.payments.id;
const F = SEED.flex;
const INTERVAL = 300;
const JOB_MS = 3000;

interface Replica {
  id: string;
  url: string;
  proc: ChildProcess;
  logs: string[];
}

let sim: ContractSimulator;
const children: ChildProcess[] = [];
const prefixes: string[] = [];
let redis: Redis;

beforeAll(async () => {
  sim = await startContractSimulator({ jobMs: JOB_MS });
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  }
  redis.disconnect();
  await sim.close();
});

async function startReplica(id: string, redisUrl: string, prefix: string): Promise<Replica> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      MONGODB_ATLAS_BASE_URL: sim.url,
      MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
      MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
      GATEWAY_AUTH: 'none',
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      GATEWAY_REPLICA_ID: id,
      GATEWAY_POLL_INTERVAL_MS: String(INTERVAL),
      GATEWAY_RATE_LIMIT: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  const logs: string[] = [];
  proc.stdout!.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
  // A deadline for a hang, not a speed limit: three `tsx` processes start slowly on a busy machine.
  for (let i = 0; i < 1200; i++) {
    const url = logs.map((l) => /Gateway on (http:\/\/[^/\s]+)\/graphql/.exec(l)?.[1]).find(Boolean);
    if (url) return { id, url, proc, logs };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`replica ${id} did not start:\n${logs.join('\n')}`);
}

const readiness = async (url: string) => {
  const res = await request(`${url}/readyz`);
  await res.body.dump();
  return res.statusCode;
};

/** Replicas as a load balancer would use them: only once `/readyz` says their Redis is connected. */
async function fleet(n: number, redisUrl = 'redis://127.0.0.1:6379') {
  const prefix = `test-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  const replicas = await Promise.all(
    Array.from({ length: n }, (_, i) => startReplica(`r${i + 1}`, redisUrl, prefix)),
  );
  for (const r of replicas) await expect.poll(() => readiness(r.url), { timeout: 10_000 }).toBe(200);
  return { prefix, replicas };
}

/** The replica's own count of upstream job reads by its pollers (`gateway_job_polls_total`). */
const pollsCounted = async (url: string) => {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  const line = /^gateway_job_polls_total(?:\{[^}]*\})? (\d+)$/m.exec(text);
  if (!line) throw new Error(`no gateway_job_polls_total in /metrics:\n${text.slice(0, 500)}`);
  return Number(line[1]);
};

const gql = async (url: string, query: string, variables: object = {}) => {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.body.json()) as {
    data?: Record<string, unknown>;
    errors?: { extensions?: { code?: string } }[];
  };
};

const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
const WATCH = (jobId: string) =>
  `subscription { restoreJobStatus(projectId: "${P}", clusterName: "${F.clusterName}", jobId: "${jobId}") { status } }`;

async function newJob(url: string) {
  const res = await gql(url, DOWNLOAD, {
    i: { projectId: P, clusterName: F.clusterName, snapshotId: F.completedSnapshotId, reuseExisting: false },
  });
  return (res.data!.requestDownload as { job: { id: string } }).job.id;
}

const pollsOf = (jobId: string) =>
  sim
    .stats()
    .requests.filter(
      (r) => r.operationId === 'getGroupFlexClusterBackupRestoreJob' && r.path.endsWith(jobId),
    );

/** Reads a subscription to its end; answers the statuses seen. */
async function drain(sub: Awaited<ReturnType<typeof subscribeSse>>) {
  const statuses: string[] = [];
  for (let e = await sub.next(); e && e.event === 'next'; e = await sub.next()) {
    statuses.push(
      (e.data as { data: { restoreJobStatus: { status: string } } }).data.restoreJobStatus.status,
    );
  }
  return statuses;
}

describe('three replicas sharing one Redis', { timeout: 90_000 }, () => {
  it('polls a job once per interval for the whole fleet, however many subscribers on whichever replica', async () => {
    const { replicas } = await fleet(3);
    const jobId = await newJob(replicas[0]!.url);
    const subs = await Promise.all(
      Array.from({ length: 50 }, (_, i) => subscribeSse(replicas[i % 3]!.url, WATCH(jobId))),
    );
    const ends = await Promise.all(subs.map(drain));
    for (const statuses of ends) expect(statuses.at(-1)).toBe('COMPLETED');
    const polls = pollsOf(jobId);
    // One poller for the fleet, counted: every read of the job the simulator saw is one the replicas'
    // pollers count (gateway_job_polls_total), and there are about as many as intervals in the job's life;
    // three replicas polling on their own would make about three times as many.
    const counted = await Promise.all(replicas.map((r) => pollsCounted(r.url)));
    expect(counted.reduce((a, b) => a + b, 0)).toBe(polls.length);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.length).toBeLessThanOrEqual(Math.ceil(JOB_MS / INTERVAL) + 3);
  });

  it('finishes every stream with the terminal event when the polling replica is killed mid-job', async () => {
    const { prefix, replicas } = await fleet(3);
    const jobId = await newJob(replicas[0]!.url);
    const subs = await Promise.all(replicas.map((r) => subscribeSse(r.url, WATCH(jobId))));
    for (const s of subs) expect((await s.next())?.event).toBe('next');
    const key = `${prefix}job:lease:${P}/${F.clusterName}/${jobId}`;
    let holder: string | null = null;
    for (let i = 0; i < 50 && !holder; i++) {
      holder = await redis.get(key);
      if (!holder) await new Promise((r) => setTimeout(r, 50));
    }
    const victim = replicas.find((r) => r.id === holder)!;
    expect(victim).toBeDefined();
    victim.proc.kill('SIGKILL');
    await once(victim.proc, 'exit');
    const survivors = replicas.map((r, i) => ({ r, s: subs[i]! })).filter(({ r }) => r !== victim);
    for (const { s } of survivors) {
      const statuses = await drain(s);
      expect(statuses.at(-1)).toBe('COMPLETED');
    }
    expect(await redis.get(key)).not.toBe(victim.id);
  });

  it('creates one job for the same idempotency key sent to two replicas at once', async () => {
    const { replicas } = await fleet(2);
    sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', latencyMs: 300, times: 1 });
    const before = sim.store.jobsCreatedFor(F.completedSnapshotId);
    const key = `same-${randomUUID()}`;
    const input = {
      i: {
        projectId: P,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        idempotencyKey: key,
        reuseExisting: false,
      },
    };
    const [a, b] = await Promise.all(replicas.map((r) => gql(r.url, DOWNLOAD, input)));
    const ja = a!.data!.requestDownload as { reused: boolean; job: { id: string } };
    const jb = b!.data!.requestDownload as { reused: boolean; job: { id: string } };
    expect(ja.job.id).toBe(jb.job.id);
    expect([ja.reused, jb.reused].sort()).toEqual([false, true]);
    expect(sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });
});

describe('Redis faults', { timeout: 90_000 }, () => {
  async function freePort(): Promise<number> {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    return port;
  }
  async function startRedis(port: number) {
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    children.push(proc);
    const probe = new Redis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
    });
    probe.on('error', () => undefined);
    for (let i = 0; i < 100 && probe.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
    probe.disconnect();
    return proc;
  }
  const ready = readiness;

  it('keeps answering without Redis, reports not ready and what is degraded, and recovers when Redis returns', async () => {
    const port = await freePort();
    let redisProc = await startRedis(port);
    const { replicas } = await fleet(2, `redis://127.0.0.1:${port}`);
    const [a, b] = replicas as [Replica, Replica];

    redisProc.kill('SIGKILL');
    await once(redisProc, 'exit');
    await expect.poll(() => ready(a.url), { timeout: 10_000 }).toBe(503);
    const res = await gql(a.url, `{ project(id: "${P}") { name } }`);
    expect(res.data).toEqual({ project: { name: 'Payments' } });
    expect(
      a.logs.some(
        (l) =>
          l.includes('Redis unreachable') && l.includes('keyed mutations are refused (STORE_UNAVAILABLE)'),
      ),
    ).toBe(true);
    // Without Redis a job still streams to its end (this replica polls it itself).
    const jobId = await newJob(a.url);
    expect((await drain(await subscribeSse(a.url, WATCH(jobId)))).at(-1)).toBe('COMPLETED');

    redisProc = await startRedis(port);
    await expect.poll(() => ready(a.url), { timeout: 15_000 }).toBe(200);
    await expect.poll(() => ready(b.url), { timeout: 15_000 }).toBe(200);
    // This Redis keeps nothing: the replicas see it lost its keys and refuse keyed requests
    // (STORE_UNAVAILABLE, nothing sent) while they write back what they know.
    const probe = (url: string) =>
      gql(url, DOWNLOAD, {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: SEED.unknownId,
          idempotencyKey: `probe-${randomUUID()}`,
        },
      });
    for (const r of [a, b]) {
      await expect
        .poll(async () => (await probe(r.url)).errors?.[0]?.extensions?.code, { timeout: 20_000 })
        .toBe('NOT_FOUND');
    }
    // Guarantees are back: one key on both replicas at once makes one job again.
    const before = sim.store.jobsCreatedFor(F.completedSnapshotId);
    sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', latencyMs: 300, times: 1 });
    const input = {
      i: {
        projectId: P,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        idempotencyKey: `after-${randomUUID()}`,
        reuseExisting: false,
      },
    };
    const both = await Promise.all([gql(a.url, DOWNLOAD, input), gql(b.url, DOWNLOAD, input)]);
    expect(new Set(both.map((r) => (r.data!.requestDownload as { job: { id: string } }).job.id)).size).toBe(
      1,
    );
    expect(sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
  });
});
