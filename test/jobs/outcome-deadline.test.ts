import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SEED } from '../../src/simulator/seed.js';
import { MUTATION_CUT_AFTER_MS, securityPlugins, useExecutionTimeout } from '../../src/security/index.js';
import { track } from '../support/disposer.js';
import { gate, hold as holdOn, postsOf } from '../support/held-calls.js';
import { ManualTimers } from '../support/manual-timers.js';
import { post, startSecureStack, type RawAnswer } from '../support/security-gateway.js';
import type { Stack } from '../support/stack.js';

// Issue #16, truthful outcomes and deadlines: a mutation answers by its execution deadline whatever
// Atlas does, and after its POST went out it never says "retryable" unless no job was made. Time is
// the test's: the deadline is a ManualTimers timer fired once the simulator holds the slow call (its
// latency waits on a gate the test opens), so nothing here races the wall clock.

const P = SEED.projects.payments.id;
const F = SEED.flex;
const TIMEOUT_MS = 500;

const DOWNLOAD = `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { reused job { id status } } }`;
const RESTORE = `mutation($i: RequestRestoreInput!) { requestRestore(input: $i) { reused job { id status targetDeploymentItemName } } }`;

interface Held {
  stack: Stack;
  timers: ManualTimers;
  /** Lets every held call go on. */
  release(): void;
}

/** A gateway with a 500 ms execution timeout on the test's timers, and a simulator with a gate. */
async function heldStack(): Promise<Held> {
  const timers = new ManualTimers();
  const { sleep, release } = gate();
  const stack = await startSecureStack(
    { executionTimeoutMs: 0 },
    { plugins: [...securityPlugins({ executionTimeoutMs: 0 }), useExecutionTimeout(TIMEOUT_MS, timers)] },
    { jobMs: 60_000, sleep },
  );
  return { stack, timers, release };
}

const hold = (stack: Stack, operationId: string) => holdOn(stack.sim, operationId);
const posts = (stack: Stack) => postsOf(stack.sim);
const ext = (a: RawAnswer) => a.json?.errors?.map((e) => e.extensions);
const downloadInput = (extra: Record<string, unknown> = {}) => ({
  projectId: P,
  clusterName: F.clusterName,
  snapshotId: F.completedSnapshotId,
  reuseExisting: false,
  ...extra,
});

describe('a mutation past its execution deadline tells the truth about its POST', () => {
  it('a keyed restore whose POST hangs answers OUTCOME_UNKNOWN with its key at the deadline, and the retry with the key gets the job the POST made', async () => {
    const { stack, timers, release } = await heldStack();
    const held = hold(stack, 'createGroupFlexClusterBackupRestoreJob');
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const i = {
      projectId: P,
      clusterName: F.clusterName,
      snapshotId: F.completedSnapshotId,
      targetClusterName: F.other.clusterName,
      targetProjectId: F.other.groupId,
      idempotencyKey: 'restore-hung',
    };
    const pending = post(stack, { query: RESTORE, variables: { i } });
    await expect.poll(held).toBe(1);
    expect(timers.delays).toEqual([TIMEOUT_MS]);
    expect(timers.fire()).toBe(1);
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.json?.data).toBeNull();
    expect(ext(answer)).toEqual([
      { code: 'OUTCOME_UNKNOWN', retryable: false, outcome: 'unknown', idempotencyKey: 'restore-hung' },
    ]);
    expect(answer.json?.errors?.[0]?.message).toContain('idempotencyKey "restore-hung"');
    // The executor's own cut (for resolvers that do not listen) was armed, then cleared with the answer.
    expect(timers.delays).toEqual([TIMEOUT_MS, MUTATION_CUT_AFTER_MS]);
    expect(timers.pending).toBe(0);

    release(); // Atlas creates the job; the gateway records it under the key in the background
    const retry = await post(stack, { query: RESTORE, variables: { i } });
    expect(retry.json?.errors).toBeUndefined();
    const job = stack.sim.store
      .listRestoreJobs(P, F.clusterName)
      .find((j) => j.targetDeploymentItemName === F.other.clusterName);
    expect(retry.json?.data).toEqual({
      requestRestore: {
        reused: true,
        job: { id: job!.id, status: 'QUEUED', targetDeploymentItemName: F.other.clusterName },
      },
    });
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
    expect(posts(stack)).toBe(1);
  });

  it('an unkeyed download whose POST hangs answers OUTCOME_UNKNOWN with a key the gateway made, and retrying with that key gets the job', async () => {
    const { stack, timers, release } = await heldStack();
    const held = hold(stack, 'downloadGroupFlexClusterBackup');
    const before = stack.sim.store.jobsCreatedFor(F.completedSnapshotId);
    const pending = post(stack, { query: DOWNLOAD, variables: { i: downloadInput() } });
    await expect.poll(held).toBe(1);
    expect(timers.fire()).toBe(1);
    const answer = await pending;
    const [e] = ext(answer) ?? [];
    expect(e).toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: false, outcome: 'unknown' });
    const key = e!.idempotencyKey as string;
    expect(key).toMatch(/^gw-[0-9a-f-]{36}$/);

    release();
    const retry = await post(stack, {
      query: DOWNLOAD,
      variables: { i: downloadInput({ idempotencyKey: key }) },
    });
    expect(retry.json?.errors).toBeUndefined();
    expect(retry.json?.data).toMatchObject({ requestDownload: { reused: true } });
    expect(stack.sim.store.jobsCreatedFor(F.completedSnapshotId)).toBe(before + 1);
    expect(posts(stack)).toBe(1);
  });

  it('a request waiting at its deadline on another request of its key answers OUTCOME_UNKNOWN with that key', async () => {
    const { stack, timers, release } = await heldStack();
    const held = hold(stack, 'downloadGroupFlexClusterBackup');
    const i = downloadInput({ idempotencyKey: 'two-waiting' });
    const first = post(stack, { query: DOWNLOAD, variables: { i } });
    await expect.poll(held).toBe(1);
    const second = post(stack, { query: DOWNLOAD, variables: { i } });
    await expect.poll(() => timers.pending).toBe(2);
    expect(timers.fire()).toBe(2);
    for (const answer of await Promise.all([first, second])) {
      expect(ext(answer)).toEqual([
        { code: 'OUTCOME_UNKNOWN', retryable: false, outcome: 'unknown', idempotencyKey: 'two-waiting' },
      ]);
    }
    release();
    const retry = await post(stack, { query: DOWNLOAD, variables: { i } });
    expect(retry.json?.data).toMatchObject({ requestDownload: { reused: true } });
    expect(posts(stack)).toBe(1);
  });

  it('a deadline before anything was sent answers the retryable timeout, and no POST follows it', async () => {
    const { stack, timers, release } = await heldStack();
    const held = hold(stack, 'getGroupFlexClusterBackupSnapshot');
    const i = downloadInput({ idempotencyKey: 'stopped-early' });
    const pending = post(stack, { query: DOWNLOAD, variables: { i } });
    await expect.poll(held).toBe(1);
    expect(timers.fire()).toBe(1);
    const answer = await pending;
    expect(ext(answer)).toEqual([{ code: 'UPSTREAM_UNAVAILABLE', retryable: true, timeoutMs: TIMEOUT_MS }]);
    release();
    // The stopped request frees its key without a POST: the retry holds the key only after that, and
    // makes the one job.
    const retry = await post(stack, { query: DOWNLOAD, variables: { i } });
    expect(retry.json?.data).toMatchObject({ requestDownload: { reused: false } });
    expect(posts(stack)).toBe(1);
  });

  it('a POST whose connection dies with no job to show answers OUTCOME_UNKNOWN (not retryable) with a key to retry with', async () => {
    const { stack } = await heldStack();
    stack.sim.faults.add({ operationId: 'downloadGroupFlexClusterBackup', reset: 'before', times: 1 });
    const answer = await post(stack, { query: DOWNLOAD, variables: { i: downloadInput() } });
    const [e] = ext(answer) ?? [];
    expect(e).toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: false, outcome: 'unknown' });
    expect(e!.idempotencyKey).toMatch(/^gw-/);
    expect(posts(stack)).toBe(1);
  });

  it('over graphql-ws too: a hung POST answers OUTCOME_UNKNOWN with the key at the deadline', async () => {
    const { stack, timers, release } = await heldStack();
    const url = await stack.gateway.listen(0);
    const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket });
    track({ close: () => client.dispose() }, 'graphql-ws client');
    const held = hold(stack, 'downloadGroupFlexClusterBackup');
    const i = downloadInput({ idempotencyKey: 'ws-hung' });
    const answer = new Promise<unknown>((resolve, reject) => {
      let last: unknown;
      client.subscribe(
        { query: DOWNLOAD, variables: { i } },
        { next: (r) => (last = r), error: reject, complete: () => resolve(last) },
      );
    });
    await expect.poll(held).toBe(1);
    expect(timers.fire()).toBe(1);
    expect(await answer).toMatchObject({
      data: null,
      errors: [
        {
          extensions: {
            code: 'OUTCOME_UNKNOWN',
            retryable: false,
            outcome: 'unknown',
            idempotencyKey: 'ws-hung',
          },
        },
      ],
    });
    release();
    const retry = await post(stack, { query: DOWNLOAD, variables: { i } });
    expect(retry.json?.data).toMatchObject({ requestDownload: { reused: true } });
    expect(posts(stack)).toBe(1);
  });
});
