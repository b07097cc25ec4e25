import { connect, type Socket } from 'node:net';
import { createClient } from 'graphql-ws';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';
import { addressKey, resolveConnectionLimits } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { track, trackTimer } from '../support/disposer.js';
import { subscribeSse, type SseEvent } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';
import { newDownload } from '../support/new-download.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;
const JOB_MS = 10_000;
const WATCH = `subscription($p: ID!, $c: String!, $j: ID!) {
  restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status }
}`;

async function listening(env: Env): Promise<{ stack: Stack; url: string; port: number }> {
  const stack = await startStack({ env, sim: { jobMs: JOB_MS }, gateway: { pollIntervalMs: 10 } });
  const url = await stack.gateway.listen(0);
  return { stack, url, port: Number(new URL(url).port) };
}

/** A raw TCP client: everything the server sent, and whether it closed the connection. */
interface RawSocket {
  socket: Socket;
  /** Resolves once connected. */
  connected: Promise<void>;
  /** Resolves with everything received when the connection closes. */
  closed: Promise<string>;
  received(): string;
}

function rawSocket(port: number): RawSocket {
  const socket = connect(port, '127.0.0.1');
  track({ close: () => socket.destroy() }, 'raw socket');
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  // A reset (the server destroying a refused connection) is a close like any other here.
  socket.on('error', () => undefined);
  return {
    socket,
    connected: new Promise((resolve) => socket.once('connect', () => resolve())),
    closed: new Promise((resolve) => socket.once('close', () => resolve(data))),
    received: () => data,
  };
}

/** Writes `head` at once, then one byte of `trickle` every 10 ms until the connection closes. */
function slowly(s: RawSocket, head: string, trickle = 'a'): void {
  void s.connected.then(() => {
    s.socket.write(head);
    const tick = trackTimer(
      setInterval(() => {
        if (!s.socket.destroyed) s.socket.write(trickle);
      }, 10),
      'trickle',
    );
    s.socket.once('close', () => clearInterval(tick));
  });
}

const statusOf = (e: SseEvent | undefined) =>
  (e?.data as { data?: { restoreJobStatus?: { status: string } } } | undefined)?.data?.restoreJobStatus
    ?.status;

async function refusedConnections(stack: Stack, reason: 'per_address' | 'total'): Promise<number> {
  const metric = await stack.gateway.registry.getSingleMetric('gateway_connections_refused_total')?.get();
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? -1;
}

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\n';

describe('connection hygiene', () => {
  it('finding 8: slow requests without credentials (HTTP body, SSE body, WebSocket upgrade headers, silence) are answered 408 and closed once the request timeout passes, with no upstream call; running streams live on', async () => {
    const { stack, url, port } = await listening({
      GATEWAY_HEADERS_TIMEOUT_MS: '100',
      GATEWAY_REQUEST_TIMEOUT_MS: '200',
    });
    // A stream opened before the slow clients: the timeouts limit receiving requests, not answering.
    const jobId = await newDownload(stack);
    const sse = await subscribeSse(url, WATCH, { p: P, c: F.clusterName, j: jobId });
    track(sse, 'sse');
    expect(statusOf(await sse.next())).toBe('QUEUED');

    let answers: string[] = [];
    const calls = await stack.upstreamCalls(async () => {
      const body = (accept: string) =>
        `POST /graphql HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\naccept: ${accept}\r\ncontent-length: 100000\r\n\r\n{"query":"`;
      const httpBody = rawSocket(port);
      slowly(httpBody, body('application/json'));
      const sseBody = rawSocket(port);
      slowly(sseBody, body('text/event-stream'));
      const upgradeHeaders = rawSocket(port);
      slowly(
        upgradeHeaders,
        'GET /graphql HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
        'x',
      );
      const silent = rawSocket(port);
      answers = await Promise.all([httpBody.closed, sseBody.closed, upgradeHeaders.closed, silent.closed]);
    });
    expect(answers.map((a) => a.slice(0, REQUEST_TIMEOUT.length))).toEqual([
      REQUEST_TIMEOUT,
      REQUEST_TIMEOUT,
      REQUEST_TIMEOUT,
      REQUEST_TIMEOUT,
    ]);
    // Only the running subscription's poller read Atlas meanwhile (its job); the slow clients nothing.
    expect(calls.filter((c) => !c.target.endsWith(`/restoreJobs/${jobId}`))).toEqual([]);

    // The SSE stream opened before outlived them all and still delivers.
    stack.clock.advance(JOB_MS / 2);
    expect(statusOf(await sse.next())).toBe('RUNNING');
  });

  it('finding 8: a connection over the per-address cap is closed on accept, HTTP and graphql-ws alike, and a freed slot is usable again', async () => {
    const { stack, url, port } = await listening({ GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: '3' });
    // Two keep-alive HTTP connections and one WebSocket hold the address's three slots.
    const held = [rawSocket(port), rawSocket(port)];
    for (const s of held) {
      await s.connected;
      s.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    }
    await expect
      .poll(() => held.map((s) => s.received().slice(0, 15)))
      .toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    const wsUrl = `${url.replace('http', 'ws')}/graphql`;
    const acked = new Promise<void>((resolve, reject) => {
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: reject,
        on: { connected: () => resolve() },
      });
      track({ close: () => client.dispose() }, 'graphql-ws client');
    });
    await acked;
    expect(stack.gateway.connections.open()).toBe(3);

    let extra = '';
    let wsRefused: unknown;
    const calls = await stack.upstreamCalls(async () => {
      const fourth = rawSocket(port);
      fourth.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
      extra = await fourth.closed;
      wsRefused = await new Promise((resolve) => {
        const ws = new WebSocket(wsUrl, 'graphql-transport-ws');
        track({ close: () => ws.terminate() }, 'websocket');
        ws.on('open', () => resolve('open'));
        ws.on('error', (err) => resolve(err));
      });
    });
    expect(extra).toBe('');
    expect(wsRefused).toBeInstanceOf(Error);
    expect(calls).toEqual([]);
    expect(await refusedConnections(stack, 'per_address')).toBe(2);
    expect(stack.gateway.connections.open()).toBe(3);

    held[0]!.socket.destroy();
    await expect.poll(() => stack.gateway.connections.open()).toBe(2);
    const res = await request(`${url}/healthz`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('finding 8: a connection over the total cap is closed on accept', async () => {
    const { stack, port } = await listening({
      GATEWAY_MAX_CONNECTIONS: '2',
      GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: '0',
    });
    const held = [rawSocket(port), rawSocket(port)];
    for (const s of held) {
      await s.connected;
      s.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    }
    await expect.poll(() => stack.gateway.connections.open()).toBe(2);
    const third = rawSocket(port);
    third.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(await third.closed).toBe('');
    expect(await refusedConnections(stack, 'total')).toBe(1);
    expect(await refusedConnections(stack, 'per_address')).toBe(0);
  });

  it('has documented defaults well under Node’s 300 s request timeout, and refuses a headers timeout above the request timeout', () => {
    expect(resolveConnectionLimits()).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
      maxConnections: 10_000,
      maxConnectionsPerAddress: 128,
    });
    expect(loadConfig({}).server.connections).toEqual(resolveConnectionLimits());
    let error: unknown;
    try {
      loadConfig({ GATEWAY_HEADERS_TIMEOUT_MS: '40000', GATEWAY_REQUEST_TIMEOUT_MS: '30000' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'GATEWAY_HEADERS_TIMEOUT_MS: expected at most GATEWAY_REQUEST_TIMEOUT_MS (30000), got 40000',
    ]);
  });

  it('counts an IPv4 client per address and an IPv6 client per /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});
