import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { apiKeyAuth, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { SEED } from '../../src/simulator/seed.js';
import { snapshotArchive } from '../../src/simulator/tgz.js';
import { apiKeyCallers, keyCaller } from '../support/caller-requests.js';
import { startStack, type Stack } from '../support/stack.js';
import { operationOver } from '../support/transports.js';

// Downloads through the gateway (issue #20): GET /downloads/{projectId}/{clusterName}/{jobId} streams
// the simulator's `.tgz` (an S3-like pre-signed object: Range, ETag, 403 once expired) over real
// sockets, with the caller's own credentials and the `download` right.

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const FRESH = SEED.flex.freshDownloadJobId;
const JOB_MS = 10_000;
const HOUR = 3_600_000;
const EXTRA = 1024 * 1024;

const CALLERS = {
  downloader: keyCaller('downloader', [P], ['read', 'download']),
  reader: keyCaller('reader', [P], ['read']),
  elsewhere: keyCaller('elsewhere', [SEED.projects.analytics.id], ['read', 'download']),
};
type CallerName = keyof typeof CALLERS;

let stack: Stack;
let url: string;
// The simulator's waits (latency faults): a test decides what happens while one runs.
let onSimSleep: (ms: number) => Promise<void> = async () => {};

beforeAll(async () => {
  stack = await startStack({
    // 1 MiB of noise in each archive, so a cut comes in the middle of the body, not before its headers.
    sim: { jobMs: JOB_MS, sleep: (ms) => onSimSleep(ms), archiveExtraBytes: EXTRA },
    gateway: {
      pollIntervalMs: 10,
      authenticate: apiKeyCallers(CALLERS),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});
beforeEach(() => {
  stack.sim.faults.clear();
  onSimSleep = async () => {};
});

const path = (jobId: string, project = P, cluster = F) => `/downloads/${project}/${cluster}/${jobId}`;

async function get(caller: CallerName, target: string, headers: Record<string, string> = {}) {
  const res = await request(`${url}${target}`, { headers: { 'x-api-key': CALLERS[caller].key, ...headers } });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

async function gql<T>(caller: CallerName, query: string, variables: Record<string, unknown> = {}) {
  const answer = await operationOver('HTTP', url, { query, variables }, { 'x-api-key': CALLERS[caller].key });
  return answer as { data?: T; errors?: { extensions?: Record<string, unknown> }[] };
}

/** The archive exactly as the simulator serves it at the job's snapshotUrl (read directly). */
async function archiveOf(jobId: string): Promise<{ body: Buffer; etag: string }> {
  const job = stack.sim.store.getRestoreJob(P, F, jobId)!;
  const link = stack.sim.store.snapshotUrl(job, stack.sim.url)!;
  const res = await request(link);
  expect(res.statusCode).toBe(200);
  return { body: Buffer.from(await res.body.arrayBuffer()), etag: String(res.headers.etag) };
}

describe('the simulator serves archives as an object store', () => {
  it('answers Range with 206 and Content-Range, past the end with 416, and the same ETag', async () => {
    const whole = await archiveOf(FRESH);
    const job = stack.sim.store.getRestoreJob(P, F, FRESH)!;
    const link = stack.sim.store.snapshotUrl(job, stack.sim.url)!;
    const part = await request(link, { headers: { range: 'bytes=10-19' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${whole.body.length}`);
    expect(part.headers.etag).toBe(whole.etag);
    expect(Buffer.from(await part.body.arrayBuffer())).toEqual(whole.body.subarray(10, 20));
    const past = await request(link, { headers: { range: `bytes=${whole.body.length}-` } });
    expect(past.statusCode).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${whole.body.length}`);
    await past.body.dump();
  });
});

describe('GET /downloads/…', () => {
  it('streams the archive byte-identical to the simulator’s, with its length, ETag and Last-Modified', async () => {
    const direct = await archiveOf(FRESH);
    const before = stack.gateway.downloads.renewals;
    const res = await get('downloader', path(FRESH));
    expect(res.status).toBe(200);
    expect(res.body.equals(direct.body)).toBe(true);
    expect(res.headers['content-length']).toBe(String(direct.body.length));
    expect(res.headers.etag).toBe(direct.etag);
    expect(res.headers['last-modified']).toMatch(/GMT$/);
    expect(res.headers['content-type']).toBe('application/gzip');
    expect(stack.gateway.downloads.renewals).toBe(before);
  });

  it('answers a Range request with 206, and 416 past the end', async () => {
    const direct = await archiveOf(FRESH);
    const tail = await get('downloader', path(FRESH), { range: 'bytes=100-' });
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes 100-${direct.body.length - 1}/${direct.body.length}`);
    expect(tail.body.equals(direct.body.subarray(100))).toBe(true);
    const past = await get('downloader', path(FRESH), { range: `bytes=${direct.body.length + 5}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${direct.body.length}`);
  });

  it('continues with Range from the byte reached when the store cuts the stream', async () => {
    const direct = await archiveOf(FRESH);
    const resumes = stack.gateway.downloads.resumes;
    stack.sim.faults.add({ operationId: 'download', body: 'truncated', times: 1 });
    const calls = await stack.upstreamCalls(async () => {
      const res = await get('downloader', path(FRESH));
      expect(res.status).toBe(200);
      expect(res.body.equals(direct.body)).toBe(true);
    });
    expect(stack.gateway.downloads.resumes).toBe(resumes + 1);
    const gets = calls.filter((c) => c.operationId === 'download');
    expect(gets).toHaveLength(2);
    const statuses = stack.sim
      .stats()
      .requests.filter((r) => r.operationId === 'download')
      .slice(-2)
      .map((r) => r.status);
    // The cut whole answer, then the rest from the byte reached.
    expect(statuses).toEqual([200, 206]);
  });

  it('refuses a caller without the download right (403) and hides an invisible project (404), before any upstream call', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const forbidden = await get('reader', path(FRESH));
      expect(forbidden.status).toBe(403);
      expect(JSON.parse(forbidden.body.toString()).errors[0].extensions.code).toBe('FORBIDDEN');
      const hidden = await get('elsewhere', path(FRESH));
      expect(hidden.status).toBe(404);
      expect(JSON.parse(hidden.body.toString()).errors[0].extensions.code).toBe('NOT_FOUND');
      // A reader asking for a project it cannot see learns it does not exist, not that it lacks the right.
      const readerHidden = await get('reader', path(FRESH, SEED.projects.analytics.id));
      expect(readerHidden.status).toBe(404);
    });
    expect(calls).toEqual([]);
    const anonymous = await request(`${url}${path(FRESH)}`);
    expect(anonymous.statusCode).toBe(401);
    await anonymous.body.dump();
  });
});

describe('a client that goes away', () => {
  let big: Stack;
  let bigUrl: string;
  beforeAll(async () => {
    // Large enough that the socket buffers between the store and the client cannot hold it all: the
    // store's stream stays open only as long as the client does not read (backpressure end to end).
    big = await startStack({
      sim: { archiveExtraBytes: 16 * 1024 * 1024 },
      gateway: {
        authenticate: authenticateWith([
          apiKeyAuth({
            keys: [
              {
                id: 'd',
                hash: hashApiKey(CALLERS.downloader.key),
                projects: [P],
                rights: ['read', 'download'],
              },
            ],
          }),
        ]),
      },
    });
    bigUrl = await big.gateway.listen(0);
  });
  afterAll(async () => {
    await big.close();
  });

  it('holds the store’s stream open while it does not read, and closes it when it leaves', async () => {
    const res = await request(`${bigUrl}${path(FRESH)}`, {
      headers: { 'x-api-key': CALLERS.downloader.key },
    });
    expect(res.statusCode).toBe(200);
    const first = await new Promise<Buffer>((resolve) => res.body.once('data', resolve));
    res.body.pause();
    expect(first.length).toBeGreaterThan(0);
    await vi.waitFor(() => expect(big.sim.downloads().open).toBe(1));
    expect(big.sim.downloads().finished).toBe(0);
    res.body.destroy();
    await vi.waitFor(() => expect(big.sim.downloads()).toMatchObject({ open: 0, abandoned: 1, finished: 0 }));
    await vi.waitFor(() => expect(big.gateway.downloads.abandoned).toBe(1));
    expect(big.gateway.downloads.active).toBe(0);
  });
});

describe('an expired link', () => {
  it('is served through exactly one renewal, however many clients ask at once', async () => {
    // A fresh download of a snapshot nobody downloaded yet, completed, then left to expire.
    const snapshotId = SEED.flex.completedSnapshotId;
    const made = await gql<{ requestDownload: { job: { id: string } } }>(
      'downloader',
      'mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }',
      { i: { projectId: P, clusterName: F, snapshotId, reuseExisting: false } },
    );
    const jobId = made.data!.requestDownload.job.id;
    stack.clock.advance(JOB_MS + 5 * HOUR);
    const direct = archiveOfSnapshot(snapshotId);
    const createdBefore = stack.sim.store.jobsCreatedFor(snapshotId);
    const renewalsBefore = stack.gateway.downloads.renewals;
    const downloads = Promise.all([get('downloader', path(jobId)), get('downloader', path(jobId))]);
    // The renewal's job exists once: let it complete.
    await vi.waitFor(() => expect(stack.sim.store.jobsCreatedFor(snapshotId)).toBe(createdBefore + 1));
    stack.clock.advance(JOB_MS);
    const [a, b] = await downloads;
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.equals(direct)).toBe(true);
    expect(b.body.equals(direct)).toBe(true);
    expect(stack.sim.store.jobsCreatedFor(snapshotId)).toBe(createdBefore + 1);
    expect(stack.gateway.downloads.renewals - renewalsBefore).toBe(2); // both asked; one job
    const metrics = await (await request(`${url}/metrics`)).body.text();
    expect(metrics).toMatch(/^gateway_download_renewals_total \d+$/m);
  });

  it('expiring mid-download: the cut stream continues from the byte reached on a renewed link', async () => {
    const snapshotId = SEED.flex.completedSnapshotId;
    // The newest download of the snapshot, valid now (made by the previous test's renewal, or a new one).
    const ensured = await gql<{ ensureDownload: { job: { id: string; status: string } } }>(
      'downloader',
      'mutation($i: EnsureDownloadInput!) { ensureDownload(input: $i) { job { id status } } }',
      { i: { projectId: P, clusterName: F, snapshotId, minValidityMinutes: 60 } },
    );
    expect(ensured.errors).toBeUndefined();
    const jobId = ensured.data!.ensureDownload.job.id;
    if (ensured.data!.ensureDownload.job.status !== 'COMPLETED') stack.clock.advance(JOB_MS);
    const direct = archiveOfSnapshot(snapshotId);
    const createdBefore = stack.sim.store.jobsCreatedFor(snapshotId);
    // First GET: half the archive, then the store cuts. The resume waits in the store (a latency
    // fault) while the link expires, so the store answers it 403.
    stack.sim.faults.add({ operationId: 'download', body: 'truncated', times: 1 });
    stack.sim.faults.add({ operationId: 'download', latencyMs: 1, times: 1 });
    onSimSleep = async () => stack.clock.advance(5 * HOUR);
    const pending = get('downloader', path(jobId));
    await vi.waitFor(() => expect(stack.sim.store.jobsCreatedFor(snapshotId)).toBe(createdBefore + 1));
    stack.clock.advance(JOB_MS);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.equals(direct)).toBe(true);
    const ranges = stack.sim
      .stats()
      .requests.filter((r) => r.operationId === 'download')
      .slice(-3)
      .map((r) => r.status);
    // cut 200, refused 403 (expired), then 206 from the byte reached on the renewed link.
    expect(ranges).toEqual([200, 403, 206]);
  });
});

/** What the simulator serves for any download of the snapshot (built as its store builds it). */
function archiveOfSnapshot(snapshotId: string): Buffer {
  return snapshotArchive(
    stack.sim.store.getSnapshot(P, F, snapshotId)!,
    stack.sim.store.getCluster(P, F)!,
    EXTRA,
  );
}
