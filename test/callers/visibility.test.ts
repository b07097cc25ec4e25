import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Right } from '../../src/callers/caller.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { subscribeSse } from '../support/sse.js';
import { apiKeyCallers, keyCaller } from '../support/caller-requests.js';
import { startStack, type GraphQLAnswer, type Stack } from '../support/stack.js';

// Visibility comes before rights, on every root field, both mutations and the subscription: a project
// outside the caller's list answers exactly as a project that does not exist (null for lookups,
// NOT_FOUND otherwise), whatever rights the caller has, and costs no upstream call; only in a project
// the caller can see does a missing right answer FORBIDDEN.

/** Visible to the limited callers: Analytics, with the Flex cluster events-flex. */
const A = SEED.projects.analytics.id;
const A_CLUSTER = SEED.flex.other.clusterName;
/** Foreign to them, and full of data (clusters, snapshots, jobs) that another caller does see. */
const P = SEED.projects.payments.id;
/** Exists nowhere. */
const U = SEED.unknownId;
const F = SEED.flex;
const T = SEED.tenant;

const ALL_RIGHTS: Right[] = ['read', 'download', 'restore'];
const CALLERS = {
  /** Sees only A, with every right. */
  owner: keyCaller('a-owner', [A], ALL_RIGHTS),
  /** Sees only A, may only read. */
  reader: keyCaller('a-reader', [A], ['read']),
  /** Sees only A, may download but not read. */
  downloader: keyCaller('a-downloader', [A], ['download']),
  /** Sees everything: shows the foreign project's data exists. */
  everyone: keyCaller('everyone', '*', ALL_RIGHTS),
};
type CallerName = keyof typeof CALLERS;
const LIMITED: CallerName[] = ['owner', 'reader', 'downloader'];

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({
    gateway: {
      authenticate: apiKeyCallers(CALLERS),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

async function gql(caller: CallerName, query: string, variables: Record<string, unknown>) {
  const res = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
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

/** An answer with the project id replaced, so the answers for two projects can be compared whole. */
const about = (answer: unknown, projectId: string) =>
  JSON.parse(JSON.stringify(answer).replaceAll(projectId, '<project>')) as unknown;

/** The answer of `fn`, and the upstream calls it cost. */
async function measured<T>(fn: () => Promise<T>): Promise<{ answer: T; calls: string[] }> {
  let answer: T | undefined;
  const calls = await stack.upstreamCalls(async () => {
    answer = await fn();
  });
  return { answer: answer as T, calls: calls.map((c) => c.operationId) };
}

describe('lookups of a foreign project answer null, as for a project that does not exist', () => {
  const lookups: [field: string, query: string, vars: (project: string) => Record<string, unknown>][] = [
    ['project', 'query($p: ID!) { project(id: $p) { id name } }', (p) => ({ p })],
    [
      'cluster',
      'query($p: ID!, $c: String!) { cluster(projectId: $p, name: $c) { name family } }',
      (p) => ({ p, c: T.clusterName }),
    ],
    [
      'snapshot',
      'query($p: ID!, $c: String!, $s: ID!) { snapshot(projectId: $p, clusterName: $c, id: $s) { id status } }',
      (p) => ({ p, c: F.clusterName, s: F.completedSnapshotId }),
    ],
    [
      'restoreJob',
      'query($p: ID!, $c: String!, $j: ID!) { restoreJob(projectId: $p, clusterName: $c, id: $j) { id status } }',
      (p) => ({ p, c: T.clusterName, j: T.restoreJobId }),
    ],
  ];

  it.each(lookups)('%s', async (field, query, vars) => {
    // The data is there: a caller who sees P gets it.
    const seen = await gql('everyone', query, vars(P));
    expect(seen.errors).toBeUndefined();
    expect(seen.data?.[field]).not.toBeNull();
    expect(seen.data?.[field]).toBeDefined();
    // A project that does not exist answers null (after asking Atlas).
    const missing = await gql('everyone', query, vars(U));
    expect(missing).toEqual({ status: 200, data: { [field]: null } });

    for (const caller of LIMITED) {
      const foreign = await measured(() => gql(caller, query, vars(P)));
      expect(foreign.answer).toEqual({ status: 200, data: { [field]: null } });
      expect(foreign.calls).toEqual([]);
      const unknown = await measured(() => gql(caller, query, vars(U)));
      expect(unknown.answer).toEqual(foreign.answer);
      expect(unknown.calls).toEqual([]);
    }
  });

  it('projects lists only the visible ones, for every limited caller', async () => {
    for (const caller of LIMITED) {
      const res = await gql(caller, '{ projects { id name } }', {});
      expect(res).toEqual({ status: 200, data: { projects: [{ id: A, name: 'Analytics' }] } });
    }
    const all = await gql('everyone', '{ projects { id } }', {});
    expect((all.data?.projects as { id: string }[]).map((p) => p.id).sort()).toEqual(
      Object.values(SEED.projects)
        .map((p) => p.id)
        .sort(),
    );
  });
});

const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id } } }`;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id } } }`;

describe('mutations on a foreign project answer NOT_FOUND, never FORBIDDEN, with no upstream call', () => {
  const notFound = (projectId: string, path: string) => ({
    status: 200,
    data: null,
    errors: [
      {
        message: `No project with id ${projectId} exists.`,
        locations: [{ line: 1, column: path === 'requestDownload' ? 39 : 38 }],
        path: [path],
        extensions: { code: 'NOT_FOUND' },
      },
    ],
  });
  const mutations: [
    name: string,
    query: string,
    field: string,
    /** The input naming `project` as the foreign one. */
    input: (project: string) => Record<string, unknown>,
  ][] = [
    [
      'requestDownload',
      DOWNLOAD,
      'requestDownload',
      (p) => ({ projectId: p, clusterName: F.clusterName, snapshotId: F.completedSnapshotId }),
    ],
    [
      'requestRestore from a foreign project into a visible one',
      RESTORE,
      'requestRestore',
      (p) => ({
        projectId: p,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        targetProjectId: A,
        targetClusterName: A_CLUSTER,
      }),
    ],
    [
      'requestRestore from a foreign project into itself (no target project given)',
      RESTORE,
      'requestRestore',
      (p) => ({
        projectId: p,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        targetClusterName: 'x',
      }),
    ],
    [
      // Regression: a caller without `restore` got FORBIDDEN here, the right being checked before the
      // target's visibility.
      'requestRestore from a visible project into a foreign one (rights were checked before the target was found visible)',
      RESTORE,
      'requestRestore',
      (p) => ({
        projectId: A,
        clusterName: A_CLUSTER,
        snapshotId: F.completedSnapshotId,
        targetProjectId: p,
        targetClusterName: F.clusterName,
      }),
    ],
  ];

  it.each(mutations)('%s', async (_name, query, field, input) => {
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    for (const caller of LIMITED) {
      const foreign = await measured(() => gql(caller, query, { i: input(P) }));
      // Whatever the caller's rights: the project is not there for it.
      expect(foreign.answer).toEqual(notFound(P, field));
      expect(foreign.calls).toEqual([]);
      const unknown = await measured(() => gql(caller, query, { i: input(U) }));
      expect(unknown.answer).toEqual(notFound(U, field));
      expect(about(unknown.answer, U)).toEqual(about(foreign.answer, P));
      expect(unknown.calls).toEqual([]);
    }
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before);
  });

  it.each([
    ['requestDownload', DOWNLOAD, 'reader' as const, 'download'],
    ['requestRestore', RESTORE, 'downloader' as const, 'restore'],
  ])(
    '%s in a visible project without the right answers FORBIDDEN, with no upstream call',
    async (field, query, caller, right) => {
      const input = {
        projectId: A,
        clusterName: A_CLUSTER,
        snapshotId: F.completedSnapshotId,
        ...(field === 'requestRestore' ? { targetClusterName: A_CLUSTER } : {}),
      };
      const { answer, calls } = await measured(() => gql(caller, query, { i: input }));
      expect(answer).toEqual({
        status: 200,
        data: null,
        errors: [
          {
            message: `This caller may not ${right} in project ${A}.`,
            locations: [{ line: 1, column: field === 'requestDownload' ? 39 : 38 }],
            path: [field],
            extensions: { code: 'FORBIDDEN', right },
          },
        ],
      });
      expect(calls).toEqual([]);
    },
  );
});

const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;

interface SubscriptionError {
  message: string;
  extensions?: Record<string, unknown>;
}

/** The errors the first answer of a subscription carried (SSE). */
async function sseErrors(caller: CallerName, vars: Record<string, unknown>): Promise<SubscriptionError[]> {
  const sub = track(await subscribeSse(url, WATCH, vars, { 'x-api-key': CALLERS[caller].key }), 'sse');
  const first = await sub.next();
  await sub.close();
  expect(first?.event).toBe('next');
  return (first?.data as { errors?: SubscriptionError[] }).errors ?? [];
}

/** The errors the first answer of a subscription carried (graphql-ws, the key in connectionParams). */
async function wsErrors(caller: CallerName, vars: Record<string, unknown>): Promise<SubscriptionError[]> {
  const client = createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { 'x-api-key': CALLERS[caller].key },
  });
  track({ close: () => client.dispose() }, 'graphql-ws client');
  try {
    return await new Promise<SubscriptionError[]>((resolve, reject) => {
      client.subscribe(
        { query: WATCH, variables: vars },
        {
          next: (r) => resolve((r.errors ?? []) as SubscriptionError[]),
          error: (e) =>
            Array.isArray(e)
              ? resolve(e as SubscriptionError[])
              : reject(e instanceof Error ? e : new Error(String(e))),
          complete: () => resolve([]),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

describe.each([
  ['SSE', sseErrors],
  ['graphql-ws', wsErrors],
])('restoreJobStatus over %s', (_transport, errorsOf) => {
  const watch = (p: string) => ({ p, c: F.clusterName, j: F.freshDownloadJobId });

  it('answers NOT_FOUND for a foreign project as for one that does not exist, whatever the rights, with no upstream call', async () => {
    for (const caller of LIMITED) {
      const foreign = await measured(() => errorsOf(caller, watch(P)));
      expect(foreign.answer).toMatchObject([
        { message: `No project with id ${P} exists.`, extensions: { code: 'NOT_FOUND' } },
      ]);
      expect(foreign.answer).toHaveLength(1);
      expect(foreign.calls).toEqual([]);
      const unknown = await measured(() => errorsOf(caller, watch(U)));
      expect(about(unknown.answer, U)).toEqual(about(foreign.answer, P));
      expect(unknown.calls).toEqual([]);
    }
    // The job is there for a caller who sees P: the NOT_FOUND above is the caller's limit.
    expect(await errorsOf('everyone', watch(P))).toEqual([]);
  });

  it('answers FORBIDDEN in a visible project for a caller without read, with no upstream call', async () => {
    const { answer, calls } = await measured(() =>
      errorsOf('downloader', { p: A, c: A_CLUSTER, j: F.freshDownloadJobId }),
    );
    expect(answer).toMatchObject([
      {
        message: `This caller may not read in project ${A}.`,
        extensions: { code: 'FORBIDDEN', right: 'read' },
      },
    ]);
    expect(answer).toHaveLength(1);
    expect(calls).toEqual([]);
  });
});
