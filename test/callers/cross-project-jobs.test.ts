import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';
import { subscribeSse } from '../support/sse.js';

// A key for the Sandbox project only, with every right, and one for Payments that may only read.
const SANDBOX_KEY = generateApiKey();
const READER_KEY = generateApiKey();
const P = SEED.projects.payments.id;
const F = SEED.flex;

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({
    gateway: {
      authenticate: authenticateWith([
        apiKeyAuth({
          keys: [
            {
              id: 'sandbox',
              hash: hashApiKey(SANDBOX_KEY),
              projects: [SEED.projects.sandbox.id],
              rights: ['read', 'download', 'restore'],
            },
            { id: 'reader', hash: hashApiKey(READER_KEY), projects: [P], rights: ['read'] },
          ],
        }),
      ]),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  await stack.close();
});

const gql = async (key: string, query: string, variables: object) => {
  const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: unknown; errors?: { extensions: { code: string } }[] };
};

const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { job { id } } }`;

describe('cross-project attempts on mutations and the subscription', () => {
  it('answers NOT_FOUND for a project outside the key, like a nonexistent one, with no upstream call', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const d = await gql(SANDBOX_KEY, DOWNLOAD, {
        i: { projectId: P, clusterName: F.clusterName, snapshotId: F.completedSnapshotId },
      });
      const missing = await gql(SANDBOX_KEY, DOWNLOAD, {
        i: { projectId: SEED.unknownId, clusterName: F.clusterName, snapshotId: F.completedSnapshotId },
      });
      expect(d.errors![0]!.extensions.code).toBe('NOT_FOUND');
      expect(missing.errors![0]!.extensions.code).toBe('NOT_FOUND');
      const r = await gql(SANDBOX_KEY, RESTORE, {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          targetClusterName: F.clusterName,
        },
      });
      expect(r.errors![0]!.extensions.code).toBe('NOT_FOUND');
    });
    expect(calls).toEqual([]);
  });

  it('refuses a restore into another project’s cluster', async () => {
    const r = await gql(SANDBOX_KEY, RESTORE, {
      i: {
        projectId: SEED.projects.sandbox.id,
        clusterName: 'sandbox-flex',
        snapshotId: F.completedSnapshotId,
        targetClusterName: F.clusterName,
        targetProjectId: P,
      },
    });
    expect(r.errors![0]!.extensions.code).toBe('NOT_FOUND');
  });

  it('answers FORBIDDEN to a key that may only read', async () => {
    const d = await gql(READER_KEY, DOWNLOAD, {
      i: { projectId: P, clusterName: F.clusterName, snapshotId: F.completedSnapshotId },
    });
    expect(d.errors![0]!.extensions.code).toBe('FORBIDDEN');
  });

  it('ends a subscription to another project’s job with NOT_FOUND before any upstream call', async () => {
    const calls = await stack.upstreamCalls(async () => {
      const sub = await subscribeSse(
        url,
        `subscription { restoreJobStatus(projectId: "${P}", clusterName: "${F.clusterName}", jobId: "${F.downloadJobId}") { status } }`,
        {},
        { 'x-api-key': SANDBOX_KEY },
      );
      expect(JSON.stringify((await sub.next())?.data)).toContain('NOT_FOUND');
      await sub.close();
    });
    expect(calls).toEqual([]);
    expect(stack.gateway.pollers.stats().pollers).toBe(0);
  });
});
