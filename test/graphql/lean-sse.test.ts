import { request, type IncomingHttpHeaders } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Plugin } from 'graphql-yoga';
import { describe, expect, it, vi } from 'vitest';
import { hashApiKey, generateApiKey } from '../../src/callers/api-keys.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';
import { startStack, type Stack } from '../support/stack.js';
import { newDownload } from '../support/new-download.js';

// The gateway writes subscriptions over SSE itself (src/graphql/use-lean-sse.ts) instead of yoga's SSE
// processor: these tests hold it to yoga's bytes, headers and refusals, on two gateways side by side.

// Streams and events arrive over real sockets: under a loaded CI machine that can take more than
// vi.waitFor's default second.
const EVENTUALLY = { timeout: 10_000 };
const P = SEED.projects.payments.id;
const F = SEED.flex;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status snapshotUrl expirationDate isTerminal }
}`;

interface RawStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Everything received so far. */
  text(): string;
  /** Settles when the server ends the response. */
  ended: Promise<void>;
  close(): void;
}

/** An SSE subscription read as raw bytes from a real socket. */
function rawSse(url: string, body: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/graphql`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<void>((r) => res.once('close', r));
      resolve(
        track(
          {
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: () => text,
            ended,
            close: () => req.destroy(),
          },
          'sse client',
        ),
      );
    });
    req.end(body);
  });
}

const watch = (jobId: string) =>
  JSON.stringify({ query: WATCH, variables: { p: P, c: F.clusterName, j: jobId } });
// yoga pings every 300 ms under NODE_ENV=test, the lean writer every 12 s: keep-alive comments are
// not events. Each gateway has its own simulator, whose signed download URLs name its own port.
const events = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => block !== ':')
    .join('\n\n')
    .replaceAll(/"snapshotUrl":"[^"]*"/g, '"snapshotUrl":"URL"');

async function gateways(
  timers?: ManualTimers,
): Promise<{ lean: Stack; yoga: Stack; urls: [string, string] }> {
  const gateway = { pollIntervalMs: 10, ...(timers ? { timers } : {}) };
  const lean = await startStack({ gateway });
  const yoga = await startStack({ gateway: { ...gateway, leanSse: false } });
  return { lean, yoga, urls: [await lean.gateway.listen(0), await yoga.gateway.listen(0)] };
}

describe('SSE subscriptions through the lean writer', () => {
  it.each([
    ['a finished job: one event, then complete', F.downloadJobId, 'COMPLETED'],
    ['a job Atlas does not have: the NOT_FOUND event', SEED.unknownId, 'NOT_FOUND'],
  ])('sends the bytes and headers yoga’s SSE processor sends: %s', async (_name, jobId, marker) => {
    const { lean, yoga, urls } = await gateways();
    const [a, b] = await Promise.all(urls.map((u) => rawSse(u, watch(jobId))));
    await Promise.all([a!.ended, b!.ended]);
    expect(a!.status).toBe(200);
    expect(events(a!.text())).toContain(marker);
    expect(events(a!.text())).toBe(events(b!.text()));
    for (const h of ['content-type', 'cache-control', 'connection', 'content-encoding']) {
      expect([h, a!.headers[h]]).toEqual([h, b!.headers[h]]);
    }
    // The first bytes are the keep-alive comment, as yoga sends them (browsers wait for a first byte).
    expect(a!.text().startsWith(':\n\n')).toBe(true);
    expect(lean.gateway.leanSse).toEqual({ served: 1, open: 0, joined: 0, executions: 0 });
    expect(yoga.gateway.leanSse).toEqual({ served: 0, open: 0, joined: 0, executions: 0 });
  });

  it('ends a watched job with the same SHUTTING_DOWN event and complete when the gateway closes', async () => {
    const { lean, yoga, urls } = await gateways(new ManualTimers());
    const ids = [await newDownload(lean), await newDownload(yoga)];
    const streams = await Promise.all(urls.map((u, i) => rawSse(u, watch(ids[i]!))));
    // The first event (QUEUED) is there before the close, on both.
    await vi.waitFor(() => streams.forEach((s) => expect(s.text()).toContain('QUEUED')), EVENTUALLY);
    // A second client of the same job on the lean gateway shares the first one's execution.
    const joined = await rawSse(urls[0], watch(ids[0]!));
    await vi.waitFor(() => expect(joined.text()).toContain('QUEUED'), EVENTUALLY);
    expect(lean.gateway.leanSse).toMatchObject({ open: 2, joined: 1, executions: 1 });
    await Promise.all([lean.gateway.close(), yoga.gateway.close()]);
    await Promise.all([...streams, joined].map((s) => s.ended));
    const [a, b, c] = [...streams, joined].map((s, i) => events(s.text()).replaceAll(ids[i % 2]!, 'JOB'));
    expect(a).toContain('SHUTTING_DOWN');
    expect(a).toMatch(/event: complete\ndata:\n\n$/);
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect(lean.gateway.leanSse).toEqual({ served: 2, open: 0, joined: 1, executions: 0 });
  });

  it.each([
    ['a malformed job id (BAD_USER_INPUT)', watch('nope')],
    ['a syntax error', JSON.stringify({ query: 'subscription { restoreJobStatus(' })],
    ['an unknown field', JSON.stringify({ query: 'subscription { nope }' })],
  ])('leaves refusals to yoga, unchanged: %s', async (_name, body) => {
    const { lean, urls } = await gateways();
    const [a, b] = await Promise.all(urls.map((u) => rawSse(u, body)));
    await Promise.all([a!.ended, b!.ended]);
    expect(a!.status).toBe(b!.status);
    expect(events(a!.text())).toBe(events(b!.text()));
    expect(events(a!.text())).toContain('errors');
    expect(lean.gateway.leanSse.served).toBe(0);
  });

  it('ends the subscription, and the job’s poller, when the last client leaves', async () => {
    const { lean, urls } = await gateways(new ManualTimers());
    const ids = [await newDownload(lean), await newDownload(lean)];
    const streams = await Promise.all(ids.map((id) => rawSse(urls[0], watch(id))));
    await vi.waitFor(() => streams.forEach((s) => expect(s.text()).toContain('QUEUED')), EVENTUALLY);
    expect(lean.gateway.pollers.stats()).toMatchObject({ pollers: 2, subscribers: 2 });
    expect(lean.gateway.leanSse).toMatchObject({ open: 2, executions: 2, joined: 0 });
    streams[0]!.close();
    await vi.waitFor(
      () => expect(lean.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 }),
      EVENTUALLY,
    );
    streams[1]!.close();
    await vi.waitFor(
      () => expect(lean.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 }),
      EVENTUALLY,
    );
    expect(lean.gateway.leanSse).toEqual({ served: 2, open: 0, joined: 0, executions: 0 });
  });

  it('keeps an idle stream alive with comments from the one shared timer', async () => {
    const lean = await startStack({
      gateway: { pollIntervalMs: 10, timers: new ManualTimers(), leanSse: { pingIntervalMs: 5 } },
    });
    const url = await lean.gateway.listen(0);
    const id = await newDownload(lean);
    const streams = await Promise.all([0, 1].map(() => rawSse(url, watch(id))));
    // The first comment, the QUEUED event, then comments only (the poller's timers never fire).
    await vi.waitFor(
      () => streams.forEach((s) => expect(s.text().split(':\n\n').length).toBeGreaterThan(3)),
      EVENTUALLY,
    );
    for (const s of streams) expect(s.text().match(/event: next/g)).toHaveLength(1);
  });
});

const KEYS = { alice: generateApiKey(), bob: generateApiKey() };
const as = (who: keyof typeof KEYS) => ({ 'x-api-key': KEYS[who] });

describe('identical SSE subscriptions share one execution', () => {
  // alice may download, bob may only read: the same subscription shows bob no snapshotUrl.
  const env = {
    GATEWAY_AUTH: 'apikey',
    GATEWAY_API_KEYS: JSON.stringify([
      { id: 'alice', hash: hashApiKey(KEYS.alice), projects: '*', rights: ['read', 'download'] },
      { id: 'bob', hash: hashApiKey(KEYS.bob), projects: '*', rights: ['read'] },
    ]),
  };
  const start = async () => {
    const timers = new ManualTimers();
    const stack = await startStack({ env, gateway: { pollIntervalMs: 10, timers } });
    const url = await stack.gateway.listen(0);
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...as('alice') },
      body: JSON.stringify({
        query: `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
        variables: {
          i: {
            projectId: P,
            clusterName: F.clusterName,
            snapshotId: F.completedSnapshotId,
            reuseExisting: false,
          },
        },
      }),
    });
    const job = ((await res.json()) as { data: { requestDownload: { job: { id: string } } } }).data
      .requestDownload.job.id;
    return { stack, url, timers, job };
  };
  const dataEvents = (text: string) => text.split('\n\n').filter((b) => b.startsWith('event: next'));

  it('a client that joins gets the state as it is now, and keeps streaming after the first client left', async () => {
    const { stack, url, timers, job } = await start();
    const first = await rawSse(url, watch(job), as('alice'));
    await vi.waitFor(() => expect(first.text()).toContain('QUEUED'), EVENTUALLY);
    // The same subscription with its variables in another order: the same key.
    const reordered = JSON.stringify({ query: WATCH, variables: { j: job, c: F.clusterName, p: P } });
    const joined = await rawSse(url, reordered, as('alice'));
    await vi.waitFor(() => expect(joined.text()).toContain('QUEUED'), EVENTUALLY);
    expect(dataEvents(joined.text())).toEqual(dataEvents(first.text()));
    expect(stack.gateway.leanSse).toMatchObject({ open: 2, joined: 1, executions: 1 });
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 1, subscribers: 1 });

    first.close();
    await first.ended;
    await vi.waitFor(() => expect(stack.gateway.leanSse.open).toBe(1), EVENTUALLY);
    // The execution goes on for the joiner: the job runs to COMPLETED, then the stream completes.
    stack.clock.advance(3_600_000);
    timers.fire();
    await joined.ended;
    expect(joined.text()).toMatch(/"status":"COMPLETED".*\n\nevent: complete\ndata:\n\n$/s);
    expect(stack.gateway.leanSse).toMatchObject({ open: 0, executions: 0 });
    expect(stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
  });

  it.each<[string, Record<string, string>]>([
    ['another caller with other rights (bob sees no snapshotUrl)', as('bob')],
    [
      'the same caller on another origin (downloadUrl is built on it)',
      { ...as('alice'), host: 'other.test' },
    ],
  ])('never shares with %s', async (_name, headers) => {
    const { stack, url, timers, job } = await start();
    const query = `subscription($p: ID!, $c: String!, $j: ID!) {
      restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status snapshotUrl downloadUrl }
    }`;
    const body = JSON.stringify({ query, variables: { p: P, c: F.clusterName, j: job } });
    const a = await rawSse(url, body, as('alice'));
    await vi.waitFor(() => expect(a.text()).toContain('QUEUED'), EVENTUALLY);
    const b = await rawSse(url, body, headers);
    await vi.waitFor(() => expect(b.text()).toContain('QUEUED'), EVENTUALLY);
    expect(stack.gateway.leanSse).toMatchObject({ open: 2, joined: 0, executions: 2 });
    stack.clock.advance(3_600_000);
    timers.fire();
    await Promise.all([a.ended, b.ended]);
    const completed = (text: string) =>
      JSON.parse(dataEvents(text).at(-1)!.replace('event: next\ndata: ', '')) as {
        data: { restoreJobStatus: { snapshotUrl: string | null; downloadUrl: string | null } };
      };
    const [ja, jb] = [completed(a.text()), completed(b.text())].map((e) => e.data.restoreJobStatus);
    expect(ja!.snapshotUrl).toMatch(/^http/);
    expect(ja!.downloadUrl).toContain(new URL(url).host);
    if (headers['host']) expect(jb!.downloadUrl).toContain('other.test');
    else expect(jb!.snapshotUrl).toBeNull();
  });

  it('finding: a joined stream kept its whole request context alive (share key, loaders, caller) while it was open', async () => {
    // What a client that joins a running execution costs is its socket and response; its request
    // context was kept by a WeakMap entry keyed by its request (which lives as long as the stream) and
    // by the leave callbacks' scope: ~0.5 KB more per subscriber (bench/subscriber-heap.ts).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const contexts: WeakRef<object>[] = [];
    const probe: Plugin = { onSubscribe: ({ args }) => void contexts.push(new WeakRef(args.contextValue)) };
    const timers = new ManualTimers();
    const stack = await startStack({ gateway: { pollIntervalMs: 10, timers, plugins: [probe] } });
    const url = await stack.gateway.listen(0);
    const job = await newDownload(stack);
    const first = await rawSse(url, watch(job));
    await vi.waitFor(() => expect(first.text()).toContain('QUEUED'), EVENTUALLY);
    const joined = await rawSse(url, watch(job));
    await vi.waitFor(() => expect(joined.text()).toContain('QUEUED'), EVENTUALLY);
    expect(stack.gateway.leanSse).toMatchObject({ open: 2, joined: 1, executions: 1 });
    expect(contexts).toHaveLength(2);
    // A WeakRef's target survives until the job that made it ends: collect after a macrotask.
    await vi.waitFor(async () => {
      await new Promise((r) => setImmediate(r));
      gc();
      expect(contexts[1]!.deref()).toBeUndefined();
    }, EVENTUALLY);
    // The running execution's own context is in use, and the joined client still streams.
    expect(contexts[0]!.deref()).toBeDefined();
    stack.clock.advance(3_600_000);
    timers.fire();
    await Promise.all([first.ended, joined.ended]);
    expect(joined.text()).toMatch(/"status":"COMPLETED".*\n\nevent: complete\ndata:\n\n$/s);
  });
});
