import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { apiKeyCallers, keyCaller } from '../support/caller-requests.js';
import { startStack, type Stack } from '../support/stack.js';
import { operationOver, TRANSPORTS } from '../support/transports.js';

// RestoreJob.downloadUrl, ensureDownload and GATEWAY_EXPOSE_SNAPSHOT_URL (issue #20), over every
// transport a GraphQL operation can take.

const P = SEED.projects.payments.id;
const A = SEED.projects.analytics.id;
const F = SEED.flex.clusterName;
const FRESH = SEED.flex.freshDownloadJobId;
const JOB_MS = 10_000;

const CALLERS = {
  downloader: keyCaller('downloader', [P], ['read', 'download']),
  reader: keyCaller('reader', [P], ['read']),
  elsewhere: keyCaller('elsewhere', [A], ['read', 'download']),
};
type CallerName = keyof typeof CALLERS;
const auth = apiKeyCallers(CALLERS);

const JOB_LINKS = `query($p: ID!, $c: String!, $j: ID!) { restoreJob(projectId: $p, clusterName: $c, id: $j) { id downloadUrl snapshotUrl } }`;
const WATCH_LINKS = `subscription($p: ID!, $c: String!, $j: ID!) { restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id downloadUrl } }`;
const ENSURE = `mutation($i: EnsureDownloadInput!) { ensureDownload(input: $i) { reused job { id status expirationDate } } }`;

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({ sim: { jobMs: JOB_MS }, gateway: { pollIntervalMs: 10, authenticate: auth } });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

const headersOf = (caller: CallerName) => ({ 'x-api-key': CALLERS[caller].key });

describe('RestoreJob.downloadUrl', () => {
  it('is a gateway URL on the request’s origin that downloads the archive', async () => {
    const answer = await operationOver(
      'HTTP',
      url,
      { query: JOB_LINKS, variables: { p: P, c: F, j: FRESH } },
      headersOf('downloader'),
    );
    const job = (answer.data as { restoreJob: { downloadUrl: string; snapshotUrl: string } }).restoreJob;
    expect(job.downloadUrl).toBe(`${url}/downloads/${P}/${F}/${FRESH}`);
    expect(job.snapshotUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/backup\/download\//);
    const res = await request(job.downloadUrl, { headers: headersOf('downloader') });
    expect(res.statusCode).toBe(200);
    const direct = await request(job.snapshotUrl);
    expect(Buffer.from(await res.body.arrayBuffer())).toEqual(Buffer.from(await direct.body.arrayBuffer()));
  });

  it('is null for a restore job and for a download not COMPLETED', async () => {
    const answer = await operationOver(
      'HTTP',
      url,
      { query: JOB_LINKS, variables: { p: P, c: F, j: SEED.flex.restoreJobId } },
      headersOf('downloader'),
    );
    expect((answer.data as { restoreJob: { downloadUrl: unknown } }).restoreJob.downloadUrl).toBeNull();
  });

  it.each(TRANSPORTS)(
    'is refused to a caller without the download right over %s, as snapshotUrl',
    async (t) => {
      const query = t === 'HTTP' ? JOB_LINKS : WATCH_LINKS;
      const answer = await operationOver(
        t,
        url,
        { query, variables: { p: P, c: F, j: FRESH } },
        headersOf('reader'),
      );
      const forbidden = (answer.errors ?? []).filter((e) => e.extensions?.code === 'FORBIDDEN');
      expect(forbidden.length).toBeGreaterThanOrEqual(1);
      expect(forbidden.every((e) => e.extensions?.right === 'download')).toBe(true);
      const data = answer.data as Record<string, { downloadUrl: unknown } | null> | null | undefined;
      const job = data && (data.restoreJob ?? data.restoreJobStatus);
      expect(job?.downloadUrl ?? null).toBeNull();
    },
  );
});

describe('ensureDownload', () => {
  it.each(TRANSPORTS)(
    'refuses a caller without the right (FORBIDDEN) and an invisible project (NOT_FOUND) over %s',
    async (t) => {
      const input = {
        projectId: P,
        clusterName: F,
        snapshotId: SEED.flex.completedSnapshotId,
        minValidityMinutes: 30,
      };
      const calls = await stack.upstreamCalls(async () => {
        const forbidden = await operationOver(
          t,
          url,
          { query: ENSURE, variables: { i: input } },
          headersOf('reader'),
        );
        expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
        const hidden = await operationOver(
          t,
          url,
          { query: ENSURE, variables: { i: input } },
          headersOf('elsewhere'),
        );
        expect(hidden.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      });
      expect(calls).toEqual([]);
    },
  );

  it('names the field when minValidityMinutes is out of 1..240', async () => {
    for (const minutes of [0, 241]) {
      const answer = await operationOver(
        'HTTP',
        url,
        {
          query: ENSURE,
          variables: {
            i: {
              projectId: P,
              clusterName: F,
              snapshotId: SEED.flex.completedSnapshotId,
              minValidityMinutes: minutes,
            },
          },
        },
        headersOf('downloader'),
      );
      expect(answer.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        argumentName: 'input.minValidityMinutes',
        received: minutes,
      });
    }
  });

  it('reuses a COMPLETED download that lasts long enough, and asks for one when it does not (once)', async () => {
    // The fresh seed download (snapshot 1 of the Flex cluster) expires in about three hours.
    const fresh = stack.sim.store.getRestoreJob(P, F, FRESH)!;
    const input = (minutes: number, key?: string) => ({
      i: {
        projectId: P,
        clusterName: F,
        snapshotId: fresh.snapshotId,
        minValidityMinutes: minutes,
        ...(key ? { idempotencyKey: key } : {}),
      },
    });
    const created = stack.sim.store.jobsCreatedFor(fresh.snapshotId);
    const reused = await operationOver(
      'HTTP',
      url,
      { query: ENSURE, variables: input(60) },
      headersOf('downloader'),
    );
    expect(reused.data).toMatchObject({
      ensureDownload: { reused: true, job: { id: FRESH, status: 'COMPLETED' } },
    });
    expect(stack.sim.store.jobsCreatedFor(fresh.snapshotId)).toBe(created);

    // Four hours is longer than that link lasts: a new job, the same one for two concurrent callers of one key.
    const [a, b] = await Promise.all([
      operationOver('HTTP', url, { query: ENSURE, variables: input(230, 'k1') }, headersOf('downloader')),
      operationOver('HTTP', url, { query: ENSURE, variables: input(230, 'k1') }, headersOf('downloader')),
    ]);
    const idA = (a.data as { ensureDownload: { job: { id: string } } }).ensureDownload.job.id;
    const idB = (b.data as { ensureDownload: { job: { id: string } } }).ensureDownload.job.id;
    expect(idA).not.toBe(FRESH);
    expect(idB).toBe(idA);
    expect(stack.sim.store.jobsCreatedFor(fresh.snapshotId)).toBe(created + 1);
    // In progress counts as valid: asked again, the same job, nothing new.
    const again = await operationOver(
      'HTTP',
      url,
      { query: ENSURE, variables: input(230) },
      headersOf('downloader'),
    );
    expect((again.data as { ensureDownload: { job: { id: string } } }).ensureDownload.job.id).toBe(idA);
    expect(stack.sim.store.jobsCreatedFor(fresh.snapshotId)).toBe(created + 1);
  });
});

describe('GATEWAY_EXPOSE_SNAPSHOT_URL=false', () => {
  it('answers snapshotUrl null for every caller; downloadUrl still works', async () => {
    const hidden = await startStack({
      env: { GATEWAY_EXPOSE_SNAPSHOT_URL: 'false' },
      gateway: { authenticate: auth },
    });
    try {
      const hiddenUrl = await hidden.gateway.listen(0);
      const answer = await operationOver(
        'HTTP',
        hiddenUrl,
        { query: JOB_LINKS, variables: { p: P, c: F, j: FRESH } },
        headersOf('downloader'),
      );
      expect(answer.errors).toBeUndefined();
      const job = (answer.data as { restoreJob: { downloadUrl: string; snapshotUrl: unknown } }).restoreJob;
      expect(job.snapshotUrl).toBeNull();
      const res = await request(job.downloadUrl, { headers: headersOf('downloader') });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    } finally {
      await hidden.close();
    }
  });
});
