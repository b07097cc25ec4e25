import { createClient, type Client, type ExecutionResult } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { subscribeSse } from '../support/sse.js';
import { startStack } from '../support/stack.js';
import { newDownload } from '../support/new-download.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;
const JOB_MS = 10_000;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;
const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id status } } }`;

type Status = { restoreJobStatus: { id: string; status: string } };

async function setup() {
  const stack = await startStack({ sim: { jobMs: JOB_MS }, gateway: { pollIntervalMs: 10 } });
  const url = await stack.gateway.listen(0);
  const closes: { code: number; reason: string }[] = [];
  const client = createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    // The test asserts the closes itself (below); graphql-ws would print them.
    onNonLazyError: () => undefined,
    on: { closed: (e) => closes.push(e as { code: number; reason: string }) },
  });
  track({ close: () => client.dispose() }, 'graphql-ws client');
  return { stack, url, client, closes };
}

/** One operation on the socket: its results, and how it ended (complete, or the error message). */
function run(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const results: ExecutionResult<Record<string, unknown>>[] = [];
  const ended = new Promise<{ complete: true } | { error: unknown }>((resolve) => {
    client.subscribe(
      { query, variables },
      {
        next: (r) => results.push(r as ExecutionResult<Record<string, unknown>>),
        error: (error) => resolve({ error }),
        complete: () => resolve({ complete: true }),
      },
    );
  });
  return { results, ended };
}

describe('graphql-ws: one socket for queries, mutations and subscriptions', () => {
  it('a mutation, a syntax error and a validation error on the socket of a running subscription leave it delivering to COMPLETED', async () => {
    const { stack, client, closes } = await setup();
    const jobId = await newDownload(stack);
    const watch = run(client, WATCH, { p: P, c: F.clusterName, j: jobId });
    await expect.poll(() => watch.results.length).toBe(1);
    expect(watch.results[0]).toEqual({ data: { restoreJobStatus: { id: jobId, status: 'QUEUED' } } });

    const mutation = run(client, DOWNLOAD, {
      i: {
        projectId: P,
        clusterName: F.clusterName,
        snapshotId: F.completedSnapshotId,
        reuseExisting: false,
      },
    });
    expect(await mutation.ended).toEqual({ complete: true });
    const made = mutation.results[0]?.data?.requestDownload as { reused: boolean; job: { status: string } };
    expect(made).toMatchObject({ reused: false, job: { status: 'QUEUED' } });

    const syntax = run(client, '{ projects { name ');
    const syntaxEnd = (await syntax.ended) as { error: { message: string }[] };
    expect(syntaxEnd.error.map((e) => e.message)).toEqual([
      expect.stringMatching(/^Syntax Error: Expected Name, found <EOF>/),
    ]);

    const invalid = run(client, '{ projects { nope } }');
    const invalidEnd = (await invalid.ended) as { error: { message: string }[] };
    // (Suggestions are hidden in production mode, over every transport.)
    expect(invalidEnd.error.map((e) => e.message)).toEqual([
      'Cannot query field "nope" on type "Project". Did you mean "name"?',
    ]);

    const query = run(client, '{ project(id: $id) { id } }'.replace('$id', JSON.stringify(P)));
    expect(await query.ended).toEqual({ complete: true });
    expect(query.results).toEqual([{ data: { project: { id: P } } }]);

    // The subscription lived through all of it.
    stack.clock.advance(JOB_MS * 2);
    expect(await watch.ended).toEqual({ complete: true });
    expect(watch.results.map((r) => (r.data as Status).restoreJobStatus.status)).toEqual([
      'QUEUED',
      'COMPLETED',
    ]);
    expect(closes).toEqual([]);
  });
});

describe('graceful shutdown: the same last message on every transport', () => {
  it('SSE and graphql-ws subscribers of a QUEUED job get SHUTTING_DOWN (retryable), then complete; the socket closes 1001; readiness turns 503 first', async () => {
    const { stack, url, client, closes } = await setup();
    const jobId = await newDownload(stack);
    const ws = run(client, WATCH, { p: P, c: F.clusterName, j: jobId });
    const sse = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
    expect((await sse.next())?.data).toEqual({ data: { restoreJobStatus: { id: jobId, status: 'QUEUED' } } });
    await expect.poll(() => ws.results.length).toBe(1);

    const closing = stack.gateway.close({ graceMs: 5_000 });
    const ready = await stack.gateway.yoga.fetch('http://gateway.test/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: 'not ready',
      checks: { shutdown: { ok: false, reason: 'the gateway is shutting down' } },
    });

    const last = {
      data: null,
      errors: [
        expect.objectContaining({
          path: ['restoreJobStatus'],
          extensions: expect.objectContaining({ code: 'SHUTTING_DOWN', retryable: true }),
        }),
      ],
    };
    expect(await sse.next()).toEqual({ event: 'next', data: last });
    expect(await sse.next()).toEqual({ event: 'complete', data: undefined });
    expect(await sse.next()).toBeUndefined();

    expect(await ws.ended).toEqual({ complete: true });
    expect(ws.results).toEqual([{ data: { restoreJobStatus: { id: jobId, status: 'QUEUED' } } }, last]);
    await closing;
    await expect
      .poll(() => closes)
      .toEqual([expect.objectContaining({ code: 1001, reason: 'the gateway is shutting down' })]);
    // The job itself goes on in Atlas: shutting down is not its end.
    expect(stack.sim.store.jobState(stack.sim.store.getRestoreJob(P, F.clusterName, jobId)!).status).toBe(
      'QUEUED',
    );
  });
});
