import { createClient, type ExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import type { Right } from '../../src/callers/caller.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { subscribeSse } from '../support/sse.js';
import { startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

// Finding 1 (issue #15): a key with only `read` was refused `requestDownload`, yet read the signed
// `snapshotUrl` of existing downloads from `restoreJobs`, `restoreJob` and `restoreJobStatus`, and with it
// the `.tgz`. `RestoreJob.snapshotUrl` carries `@requiresRight(right: DOWNLOAD)` (schema/schema.graphql),
// enforced once for the whole schema (src/graphql/requires-right.ts): wherever the field is selected, a
// caller without `download` gets null and a FORBIDDEN error on that field's path, and it costs no
// upstream call beyond what the rest of the operation needs.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const T = SEED.tenant;
const JOB_MS = 10_000;

const keyOf = (id: string, rights: Right[]) => ({ id, key: generateApiKey(), rights });
const CALLERS = {
  reader: keyOf('reader', ['read']),
  restorer: keyOf('restorer', ['read', 'restore']),
  downloader: keyOf('downloader', ['read', 'download']),
};
type CallerName = keyof typeof CALLERS;

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({
    sim: { jobMs: JOB_MS },
    gateway: {
      pollIntervalMs: 10,
      authenticate: authenticateWith([
        apiKeyAuth({
          keys: Object.values(CALLERS).map((c) => ({
            id: c.id,
            hash: hashApiKey(c.key),
            projects: [P],
            rights: c.rights,
          })),
        }),
      ]),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

/** A query or mutation over HTTP, on the gateway's socket. */
async function http(caller: CallerName, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      'x-api-key': CALLERS[caller].key,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer, 'status'>) };
}

/** The answer of `fn`, and the upstream operations it cost. */
async function measured<T>(fn: () => Promise<T>): Promise<{ answer: T; calls: string[] }> {
  let answer: T | undefined;
  const calls = await stack.upstreamCalls(async () => {
    answer = await fn();
  });
  return { answer: answer as T, calls: calls.map((c) => c.operationId) };
}

/** The FORBIDDEN error of a refused `snapshotUrl`, at `path`. */
const forbidden = (path: (string | number)[]) => ({
  message: `This caller may not download in project ${P}.`,
  locations: [expect.any(Object)],
  path,
  extensions: { code: 'FORBIDDEN', right: 'download' },
});

const LIST = `query($p: ID!, $c: String!) {
  cluster(projectId: $p, name: $c) {
    restoreJobs(deliveryType: DOWNLOAD) { nodes { id status snapshotUrl } }
  }
}`;
const ONE = `query($p: ID!, $c: String!, $j: ID!) {
  restoreJob(projectId: $p, clusterName: $c, id: $j) { id status snapshotUrl }
}`;
const NESTED = `query($p: ID!) {
  project(id: $p) {
    clusters {
      name
      snapshots(first: 2) { nodes { id restoreJobs { nodes { id url: snapshotUrl } } } }
      restoreJobs(first: 500) { nodes { id ...Url } }
    }
  }
}
fragment Url on RestoreJob { snapshotUrl }`;

describe('finding 1: snapshotUrl needs the download right, over HTTP', () => {
  it('finding 1: a read-only caller gets no snapshotUrl from restoreJobs', async () => {
    const vars = { p: P, c: F.clusterName };
    const allowed = await measured(() => http('downloader', LIST, vars));
    const refused = await measured(() => http('reader', LIST, vars));

    type Jobs = { cluster: { restoreJobs: { nodes: { id: string; snapshotUrl: string | null }[] } } };
    const nodes = (allowed.answer.data as Jobs).cluster.restoreJobs.nodes;
    expect(nodes.map((n) => n.id)).toEqual(
      expect.arrayContaining([F.downloadJobId, F.freshDownloadJobId, F.failedJobId]),
    );
    // The data is there for a downloader: the fresh download's URL works for hours yet.
    expect(allowed.answer.errors).toBeUndefined();
    expect(nodes.find((n) => n.id === F.freshDownloadJobId)?.snapshotUrl).toMatch(/^https?:\/\//);

    expect(refused.answer).toEqual({
      status: 200,
      data: {
        cluster: { restoreJobs: { nodes: nodes.map((n) => ({ ...n, snapshotUrl: null })) } },
      },
      errors: nodes.map((_n, i) => forbidden(['cluster', 'restoreJobs', 'nodes', i, 'snapshotUrl'])),
    });
    // The refusal costs nothing: the same reads as for the caller who got the URLs.
    expect(refused.calls).toEqual(allowed.calls);
  });

  it('finding 1: a read-only caller gets no snapshotUrl from restoreJob', async () => {
    const vars = { p: P, c: F.clusterName, j: F.freshDownloadJobId };
    const allowed = await measured(() => http('downloader', ONE, vars));
    const refused = await measured(() => http('reader', ONE, vars));
    const job = (allowed.answer.data as { restoreJob: { snapshotUrl: string } }).restoreJob;
    expect(job.snapshotUrl).toMatch(/^https?:\/\//);
    expect(refused.answer).toEqual({
      status: 200,
      data: { restoreJob: { id: F.freshDownloadJobId, status: 'COMPLETED', snapshotUrl: null } },
      errors: [forbidden(['restoreJob', 'snapshotUrl'])],
    });
    expect(refused.calls).toEqual(allowed.calls);
  });

  it('finding 1: a read-only caller gets no snapshotUrl from nested lists, aliases or fragments', async () => {
    const allowed = await measured(() => http('downloader', NESTED, { p: P }));
    const refused = await measured(() => http('reader', NESTED, { p: P }));
    expect(allowed.answer.errors).toBeUndefined();
    expect(JSON.stringify(allowed.answer.data)).toContain('snapshotUrl');

    // Every snapshotUrl and `url` of the downloader's answer is null for the reader, with its error.
    const paths: (string | number)[][] = [];
    const expected = JSON.parse(JSON.stringify(allowed.answer.data), function (key, value: unknown) {
      return key === 'snapshotUrl' || key === 'url' ? null : value;
    }) as unknown;
    const walk = (v: unknown, path: (string | number)[]) => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          if (k === 'snapshotUrl' || k === 'url') paths.push([...path, k]);
          else walk(x, [...path, k]);
        }
    };
    walk(allowed.answer.data, []);
    expect(paths.length).toBeGreaterThan(T.restoreJobCount + F.restoreJobCount);
    expect(refused.answer.status).toBe(200);
    expect(refused.answer.data).toEqual(expected);
    expect(refused.answer.errors?.map((e) => e.path)).toEqual(expect.arrayContaining(paths));
    expect(refused.answer.errors).toHaveLength(paths.length);
    for (const e of refused.answer.errors ?? []) expect(e).toEqual(forbidden(e.path ?? []));
    // (Sorted: the lists of sibling clusters are read concurrently.)
    expect([...refused.calls].sort()).toEqual([...allowed.calls].sort());
  });

  it("finding 1: a restore-only caller gets no snapshotUrl in a mutation's payload; the restore itself is made", async () => {
    const RESTORE = `mutation($i: RequestRestoreInput!) {
      requestRestore(input: $i) { reused job { id deliveryType snapshotUrl } }
    }`;
    const input = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      targetClusterName: F.clusterName,
    };
    const { answer, calls } = await measured(() => http('restorer', RESTORE, { i: input }));
    const job = (answer.data as { requestRestore: { job: { id: string } } }).requestRestore.job;
    expect(answer).toEqual({
      status: 200,
      data: {
        requestRestore: { reused: false, job: { id: job.id, deliveryType: 'RESTORE', snapshotUrl: null } },
      },
      errors: [forbidden(['requestRestore', 'job', 'snapshotUrl'])],
    });
    // The restore is made (one POST) as before: only the field is refused. (Its snapshot is read
    // first unless an earlier test of this file read it as COMPLETED: the gateway's memo.)
    expect(calls.filter((c) => c !== 'getGroupFlexClusterBackupSnapshot')).toEqual([
      'listGroupFlexClusterBackupRestoreJobs',
      'createGroupFlexClusterBackupRestoreJob',
    ]);
  });
});

const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status snapshotUrl }
}`;
type Event = ExecutionResult<{
  restoreJobStatus: { id: string; status: string; snapshotUrl: string | null };
}>;

/** A subscription over SSE: its events, until the stream completes. */
async function sseEvents(caller: CallerName, vars: Record<string, unknown>, onEvent?: (n: number) => void) {
  const sub = track(await subscribeSse(url, WATCH, vars, { 'x-api-key': CALLERS[caller].key }), 'sse');
  const events: Event[] = [];
  for (let e = await sub.next(); e?.event === 'next'; e = await sub.next()) {
    events.push(e.data as Event);
    onEvent?.(events.length);
  }
  await sub.close();
  return { status: sub.status, events };
}

/** A subscription over graphql-ws (the key in connectionParams): its events, until it completes. */
async function wsEvents(caller: CallerName, vars: Record<string, unknown>, onEvent?: (n: number) => void) {
  const client = createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { 'x-api-key': CALLERS[caller].key },
  });
  track({ close: () => client.dispose() }, 'graphql-ws client');
  const events: Event[] = [];
  await new Promise<void>((resolve, reject) => {
    client.subscribe(
      { query: WATCH, variables: vars },
      {
        next: (r) => {
          events.push(r as Event);
          onEvent?.(events.length);
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => resolve(),
      },
    );
  });
  await client.dispose();
  return { status: 101, events };
}

describe.each([
  ['SSE', sseEvents],
  ['graphql-ws', wsEvents],
])('finding 1: restoreJobStatus over %s', (transport, eventsOf) => {
  it(`finding 1: a read-only caller gets no snapshotUrl from the restoreJobStatus subscription (${transport})`, async () => {
    const vars = { p: P, c: F.clusterName, j: F.freshDownloadJobId };
    const allowed = await measured(() => eventsOf('downloader', vars));
    const refused = await measured(() => eventsOf('reader', vars));
    expect(allowed.answer.events).toEqual([
      {
        data: {
          restoreJobStatus: {
            id: F.freshDownloadJobId,
            status: 'COMPLETED',
            snapshotUrl: expect.stringMatching(/^https?:\/\//),
          },
        },
      },
    ]);
    expect(refused.answer.status).toBe(transport === 'SSE' ? 200 : 101);
    expect(refused.answer.events).toEqual([
      {
        data: { restoreJobStatus: { id: F.freshDownloadJobId, status: 'COMPLETED', snapshotUrl: null } },
        errors: [forbidden(['restoreJobStatus', 'snapshotUrl'])],
      },
    ]);
    // One read of the job, as for the caller who got the URL.
    expect(refused.calls).toEqual(allowed.calls);
    expect(refused.calls).toHaveLength(1);
  });

  it(`finding 1: every event of a running download hides snapshotUrl from a read-only caller (${transport})`, async () => {
    const made = await http(
      'downloader',
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
      {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    );
    const jobId = (made.data as { requestDownload: { job: { id: string } } }).requestDownload.job.id;
    const vars = { p: P, c: F.clusterName, j: jobId };
    // Both watch the same job (one poller); the clock moves the job on once both saw each state.
    const seen = { reader: 0, downloader: 0 };
    let step = 0;
    const advance = (who: 'reader' | 'downloader') => (n: number) => {
      seen[who] = n;
      if (Math.min(seen.reader, seen.downloader) > step) {
        step += 1;
        stack.clock.advance(JOB_MS / 2);
      }
    };
    const [reader, downloader] = await Promise.all([
      eventsOf('reader', vars, advance('reader')),
      eventsOf('downloader', vars, advance('downloader')),
    ]);
    const statuses = downloader.events.map((e) => e.data?.restoreJobStatus.status);
    expect(statuses).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    expect(downloader.events.at(-1)?.data?.restoreJobStatus.snapshotUrl).toMatch(/^https?:\/\//);
    expect(reader.events).toEqual(
      downloader.events.map((e) => ({
        data: { restoreJobStatus: { ...e.data!.restoreJobStatus, snapshotUrl: null } },
        errors: [forbidden(['restoreJobStatus', 'snapshotUrl'])],
      })),
    );
  });
});
