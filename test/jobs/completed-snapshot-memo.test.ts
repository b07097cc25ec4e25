import { afterEach, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { apiKeyCallers, keyCaller } from '../support/caller-requests.js';
import { subscribeSse } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';
import { operationOver } from '../support/transports.js';

// Issue #19, "download flow at the minimum": a snapshot the gateway has read as COMPLETED (a final
// status) is not read again before a job request's POST; one never seen still is, so a snapshot that
// is not COMPLETED still gets a typed CONFLICT before any POST. Counted on the simulator's request log.

const P = SEED.projects.payments.id;
const A = SEED.projects.analytics.id;

const SNAPSHOTS = `query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { snapshots(first: 10) { nodes { id status expiration } } } }`;
const SNAPSHOT = `query($p: ID!, $c: String!, $s: ID!) { snapshot(projectId: $p, clusterName: $c, id: $s) { id status } }`;
const LATEST = `query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { latestCompletedSnapshot { id } } }`;
const WATCH_SNAPSHOT = `subscription($p: ID!, $c: String!, $s: ID!) { snapshotStatus(projectId: $p, clusterName: $c, snapshotId: $s) { id status } }`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
const ENSURE = `mutation($i: EnsureDownloadInput!) { ensureDownload(input: $i) { reused job { id } } }`;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id } } }`;

interface Listed {
  cluster: { snapshots: { nodes: { id: string; status: string; expiration: string }[] } };
}
interface Downloaded {
  requestDownload: { reused: boolean; job: { id: string } };
}

const FAMILIES = [
  {
    family: 'FLEX',
    cluster: SEED.flex.clusterName,
    seeded: SEED.flex.completedSnapshotId,
    read: 'getGroupFlexClusterBackupSnapshot',
    jobs: 'listGroupFlexClusterBackupRestoreJobs',
    post: 'downloadGroupFlexClusterBackup',
  },
  {
    family: 'TENANT',
    cluster: SEED.tenant.clusterName,
    seeded: SEED.tenant.completedSnapshotId,
    read: 'getGroupClusterBackupTenantSnapshot',
    jobs: 'listGroupClusterBackupTenantRestores',
    post: 'downloadGroupClusterBackupTenant',
  },
] as const;
const FLEX = FAMILIES[0];

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    expect(s.sim.violations).toEqual([]);
    await s.close();
  }
});

async function setup(opts: Parameters<typeof startStack>[0] = {}) {
  const stack = await startStack(opts);
  stacks.push(stack);
  return stack;
}

/** The cluster's newest snapshots, as a client learns a snapshot id. */
async function listed(stack: Stack, cluster: string) {
  const answer = await stack.query<Listed>(SNAPSHOTS, { p: P, c: cluster });
  expect(answer.errors).toBeUndefined();
  return answer.data!.cluster.snapshots.nodes;
}

/** A COMPLETED snapshot of the listing with no seeded job (the seeded one has downloads). */
async function listedCompleted(stack: Stack, f: (typeof FAMILIES)[number]) {
  const node = (await listed(stack, f.cluster)).find((n) => n.status === 'COMPLETED' && n.id !== f.seeded);
  if (!node) throw new Error('no COMPLETED snapshot listed');
  return node;
}

const download = (stack: Stack, cluster: string, snapshotId: string) =>
  stack.query<Downloaded>(DOWNLOAD, {
    i: { projectId: P, clusterName: cluster, snapshotId, reuseExisting: false },
  });

const operations = (calls: { operationId: string }[]) => calls.map((c) => c.operationId);

describe.each(FAMILIES)('a download of a snapshot the gateway has read as COMPLETED ($family)', (f) => {
  it('after the cluster’s snapshots were listed: Atlas calls are the jobs list and the POST only', async () => {
    const stack = await setup();
    const snapshot = await listedCompleted(stack, f);
    let answer: Awaited<ReturnType<typeof download>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      answer = await download(stack, f.cluster, snapshot.id);
    });
    expect(answer?.errors).toBeUndefined();
    expect(answer?.data?.requestDownload.reused).toBe(false);
    expect(operations(calls)).toEqual([f.jobs, f.post]);
  });
});

describe('the memo of COMPLETED snapshots', () => {
  const S = SEED.flex.completedSnapshotId;
  it.each([
    ['a single snapshot read', (stack: Stack) => stack.query(SNAPSHOT, { p: P, c: FLEX.cluster, s: S })],
    ['latestCompletedSnapshot', (stack: Stack) => stack.query(LATEST, { p: P, c: FLEX.cluster })],
    [
      'the snapshotStatus subscription',
      async (stack: Stack) => {
        const sub = await subscribeSse(await stack.gateway.listen(0), WATCH_SNAPSHOT, {
          p: P,
          c: FLEX.cluster,
          s: S,
        });
        // A COMPLETED snapshot: one event, then the end.
        expect((await sub.next())?.event).toBe('next');
        expect((await sub.next())?.event).toBe('complete');
        return { errors: undefined };
      },
    ],
  ] as const)('is fed by %s too', async (_name, read) => {
    const stack = await setup();
    expect((await read(stack)).errors).toBeUndefined();
    const calls = await stack.upstreamCalls(() => download(stack, FLEX.cluster, S));
    expect(operations(calls)).toEqual([FLEX.jobs, FLEX.post]);
  });

  it('skips the read of a restore’s snapshot too', async () => {
    const stack = await setup();
    const snapshot = await listedCompleted(stack, FLEX);
    const calls = await stack.upstreamCalls(async () => {
      const answer = await stack.query(RESTORE, {
        i: {
          projectId: P,
          clusterName: FLEX.cluster,
          snapshotId: snapshot.id,
          targetClusterName: SEED.flex.other.clusterName,
          targetProjectId: A,
        },
      });
      expect(answer.errors).toBeUndefined();
    });
    expect(operations(calls)).toEqual([FLEX.jobs, 'createGroupFlexClusterBackupRestoreJob']);
  });

  it('never seen: the snapshot is read first, and that read feeds the memo', async () => {
    const stack = await setup();
    const id = (await listedCompleted(await setup(), FLEX)).id;
    const first = await stack.upstreamCalls(() => download(stack, FLEX.cluster, id));
    expect(operations(first)).toEqual([FLEX.read, FLEX.jobs, FLEX.post]);
    const again = await stack.upstreamCalls(() => download(stack, FLEX.cluster, id));
    expect(operations(again)).toEqual([FLEX.jobs, FLEX.post]);
  });

  it('a listed snapshot that is not COMPLETED is still read, and is a CONFLICT with no POST', async () => {
    const stack = await setup();
    const running = (await listed(stack, FLEX.cluster)).find((n) => n.status === 'RUNNING');
    expect(running?.id).toBe(SEED.flex.runningSnapshotId);
    let answer: Awaited<ReturnType<typeof download>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      answer = await download(stack, FLEX.cluster, running!.id);
    });
    expect(answer?.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', snapshotStatus: 'RUNNING' });
    expect(operations(calls)).toEqual([FLEX.read]);
  });

  it('an entry past the snapshot’s expiration is not used: the snapshot is read again', async () => {
    const stack = await setup();
    const snapshot = await listedCompleted(stack, FLEX);
    // The simulator keeps serving it: only the gateway's clock decides here.
    stack.clock.set(snapshot.expiration);
    const calls = await stack.upstreamCalls(() => download(stack, FLEX.cluster, snapshot.id));
    expect(operations(calls)).toEqual([FLEX.read, FLEX.jobs, FLEX.post]);
  });

  it('a snapshot deleted after it was memoized: the POST’s 404 is NOT_FOUND, and the next request reads it again', async () => {
    const stack = await setup();
    const { id } = await listedCompleted(stack, FLEX);
    expect(
      stack.gateway.completedSnapshots.get({ projectId: P, clusterName: FLEX.cluster }, id),
    ).toBeDefined();
    expect(stack.sim.store.deleteSnapshot(P, FLEX.cluster, id)).toBe(true);

    let answer: Awaited<ReturnType<typeof download>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      answer = await download(stack, FLEX.cluster, id);
    });
    expect(operations(calls)).toEqual([FLEX.jobs, FLEX.post]);
    expect(answer?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(
      stack.gateway.completedSnapshots.get({ projectId: P, clusterName: FLEX.cluster }, id),
    ).toBeUndefined();

    const next = await stack.upstreamCalls(async () => {
      answer = await download(stack, FLEX.cluster, id);
    });
    expect(operations(next)).toEqual([FLEX.read]);
    expect(answer?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('the memo fed by one caller, for another caller (security)', () => {
  const CALLERS = {
    downloader: keyCaller('downloader', [P], ['read', 'download', 'restore']),
    reader: keyCaller('reader', [P], ['read']),
    elsewhere: keyCaller('elsewhere', [A], ['read', 'download', 'restore']),
  };
  const headersOf = (caller: keyof typeof CALLERS) => ({ 'x-api-key': CALLERS[caller].key });

  it('never lets a caller skip its rights check: FORBIDDEN and NOT_FOUND before any upstream call, over HTTP', async () => {
    const stack = await setup({ gateway: { authenticate: apiKeyCallers(CALLERS) } });
    const url = await stack.gateway.listen(0);
    const listing = await operationOver(
      'HTTP',
      url,
      { query: SNAPSHOTS, variables: { p: P, c: FLEX.cluster } },
      headersOf('downloader'),
    );
    const node = (listing.data as Listed).cluster.snapshots.nodes.find(
      (n) => n.status === 'COMPLETED' && n.id !== FLEX.seeded,
    )!;
    const ref = { projectId: P, clusterName: FLEX.cluster };
    expect(stack.gateway.completedSnapshots.get(ref, node.id)).toBeDefined();

    const attempts = [
      { query: DOWNLOAD, input: { ...ref, snapshotId: node.id, reuseExisting: false } },
      { query: ENSURE, input: { ...ref, snapshotId: node.id, minValidityMinutes: 30 } },
      {
        query: RESTORE,
        input: { ...ref, snapshotId: node.id, targetClusterName: FLEX.cluster },
      },
    ];
    for (const [caller, code] of [
      ['reader', 'FORBIDDEN'],
      ['elsewhere', 'NOT_FOUND'],
    ] as const) {
      for (const { query, input } of attempts) {
        let answer: Awaited<ReturnType<typeof operationOver>> | undefined;
        const calls = await stack.upstreamCalls(async () => {
          answer = await operationOver('HTTP', url, { query, variables: { i: input } }, headersOf(caller));
        });
        expect({ caller, code: answer?.errors?.[0]?.extensions?.code, calls }).toEqual({
          caller,
          code,
          calls: [],
        });
      }
    }
    expect(stack.sim.store.jobsCreatedFor(node.id)).toBe(0);
  });
});
