import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { treeRss } from '../proc-stats.js';

/**
 * Finding 5 of issue 15, measured against a gateway built as `npm start` builds it (API keys,
 * production mode, every GATEWAY_WS_* at its default unless set in this process's environment):
 *
 * 1. 4 unauthenticated sockets each stream one 90 MB message before `connection_init`, at once: the
 *    gateway's RSS before, at its peak (sampled every 20 ms from /proc) and after, how each socket
 *    ended and how many bytes it could write before the gateway closed it. The frames are written by
 *    hand on a TCP socket (masked with a zero key, which RFC 6455 allows), so the attacker is as fast
 *    as the loopback and not slowed by a client library masking 360 MB first.
 * 2. 3,000 sockets from one address open and stay idle (no `connection_init`): how many the upgrade
 *    accepted, how many it refused (429), and how many are still open after the init timeout.
 * 3. 200 sockets send `connection_init` without credentials: how each one ended.
 *
 * `npx tsx bench/security/ws-exhaustion.ts` prints one JSON object. Timing is only reported, never
 * asserted (the regression tests count instead: test/security/websocket-hardening.test.ts).
 */

const MESSAGE_BYTES = 90_000_000;
const BIG_MESSAGES = 4;
const IDLE_SOCKETS = 3000;
const NO_CREDENTIAL_SOCKETS = 200;
const INIT_TIMEOUT_MS = Number(process.env.GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS ?? 3000);

interface State {
  rss: number;
  connections: number;
}

async function startGateway() {
  const child = fork(fileURLToPath(new URL('./ws-exhaustion-gateway.ts', import.meta.url)), [], {
    execArgv: [...process.execArgv, '--expose-gc'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      GATEWAY_AUTH: 'apikey',
      GATEWAY_API_KEYS: JSON.stringify([
        { id: 'bench', hash: hashApiKey(generateApiKey()), projects: '*', rights: ['read'] },
      ]),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(type: string) =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`gateway exited (${code})`));
      const onMessage = (m: { type: string; message?: string }) => {
        if (m.type === 'error') reject(new Error(m.message));
        if (m.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(m as T);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const { url } = await next<{ url: string }>('ready');
  return {
    url: url.replace(/^http/, 'ws') + '/graphql',
    pid: child.pid!,
    /** RSS after a full GC, and open WebSocket connections, as the gateway sees them. */
    state: async () => {
      const answer = next<State>('state');
      child.send({ type: 'state' });
      const { rss, connections } = await answer;
      return { rss, connections };
    },
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.connected) child.send({ type: 'close' });
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    },
  };
}

type Ending = { opened: boolean; code?: number; status?: number; error?: string };

/**
 * Opens a socket; `act` runs once it is open; resolves with how the socket ended, or, at `deadline`
 * (ms), as still open (then closes it: a gateway that lets it idle must not hang the bench).
 */
function socket(
  url: string,
  act: (ws: WebSocket) => void,
  options: { keep?: (ws: WebSocket) => void; deadlineMs?: number } = {},
): Promise<Ending> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'graphql-transport-ws');
    let opened = false;
    let error: string | undefined;
    const timer = setTimeout(() => {
      resolve({ opened, code: -1 });
      ws.terminate();
    }, options.deadlineMs ?? 60_000);
    ws.on('open', () => {
      opened = true;
      options.keep?.(ws);
      act(ws);
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      clearTimeout(timer);
      resolve({ opened, status: res.statusCode ?? 0 });
    });
    ws.on('error', (err: Error & { code?: string }) => (error = err.code ?? err.message));
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ opened, code, ...(error ? { error } : {}) });
    });
  });
}

/**
 * One WebSocket upgrade by hand, then one text frame announcing `bytes` of payload, streamed until
 * it is all written or the gateway closes: how many payload bytes went out, and the close code the
 * gateway sent (read from its close frame), if any.
 */
function streamOneMessage(
  url: string,
  bytes: number,
): Promise<{ written: number; closeCode?: number; status?: number }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve) => {
    const tcp = connect(Number(port), hostname);
    let written = 0;
    let upgraded = false;
    let received = Buffer.alloc(0);
    let closeCode: number | undefined;
    let status: number | undefined;
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const pump = () => {
      while (written < bytes && !tcp.destroyed) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - written));
        written += part.length;
        if (!tcp.write(part)) return void tcp.once('drain', pump);
      }
    };
    tcp.on('connect', () => {
      tcp.write(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          'Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n',
      );
    });
    tcp.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(/^HTTP\/1\.1 (\d+)/.exec(received.subarray(0, end).toString('latin1'))?.[1]);
        received = received.subarray(end + 4);
        if (status !== 101) return void tcp.destroy();
        upgraded = true;
        // FIN + text; masked, 64-bit length; mask key 0 (the payload goes out as is).
        const header = Buffer.alloc(14);
        header[0] = 0x81;
        header[1] = 0x80 | 127;
        header.writeBigUInt64BE(BigInt(bytes), 2);
        tcp.write(header);
        pump();
      }
      // The gateway's close frame: 0x88, a length, then the 2-byte code.
      if (received.length >= 4 && received[0] === 0x88) closeCode = received.readUInt16BE(2);
    });
    tcp.on('error', () => undefined);
    tcp.on('close', () =>
      resolve({ written, ...(closeCode ? { closeCode } : {}), ...(status ? { status } : {}) }),
    );
  });
}

const tally = (endings: Ending[]) => {
  const counts: Record<string, number> = {};
  for (const e of endings) {
    const key =
      e.status !== undefined
        ? `HTTP ${e.status}`
        : e.code === -1
          ? 'still open at the deadline'
          : `close ${e.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
};
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

const gateway = await startGateway();
try {
  // 1. Big messages before authentication. RSS from /proc, before and after a full GC in the gateway.
  // Twice: a full GC itself grows RSS the first time (mark bitmaps); the baseline includes that.
  await gateway.state();
  await gateway.state();
  const before = treeRss(gateway.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(gateway.pid))), 20);
  const bigStarted = performance.now();
  const big = await Promise.all(
    Array.from({ length: BIG_MESSAGES }, () => streamOneMessage(gateway.url, MESSAGE_BYTES)),
  );
  const bigMs = performance.now() - bigStarted;
  clearInterval(sampler);
  await gateway.state();
  const after = treeRss(gateway.pid);

  // 2. Idle sockets that never authenticate.
  const open = new Set<WebSocket>();
  const idleStarted = performance.now();
  const idleEndings = Array.from({ length: IDLE_SOCKETS }, () =>
    socket(gateway.url, () => undefined, {
      deadlineMs: INIT_TIMEOUT_MS + 5000,
      keep: (ws) => {
        open.add(ws);
        ws.once('close', () => open.delete(ws));
      },
    }),
  );
  // The most connections the gateway held at once, sampled until the init timeout is well past.
  let mostOpen = 0;
  const deadline = performance.now() + INIT_TIMEOUT_MS + 2000;
  while (performance.now() < deadline) {
    mostOpen = Math.max(mostOpen, (await gateway.state()).connections);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const afterTimeout = await gateway.state();
  const clientOpenAfterTimeout = open.size;
  const idle = await Promise.all(idleEndings);
  const idleMs = performance.now() - idleStarted;

  // 3. connection_init without credentials, in waves of 50 (the per-address cap refuses the rest).
  const noCredential: Ending[] = [];
  for (let sent = 0; sent < NO_CREDENTIAL_SOCKETS; sent += 50) {
    const wave = Math.min(50, NO_CREDENTIAL_SOCKETS - sent);
    noCredential.push(
      ...(await Promise.all(
        Array.from({ length: wave }, () =>
          socket(gateway.url, (ws) => ws.send(JSON.stringify({ type: 'connection_init' })), {
            deadlineMs: INIT_TIMEOUT_MS + 2000,
          }),
        ),
      )),
    );
  }

  console.log(
    JSON.stringify(
      {
        node: process.version,
        gateway: {
          production: true,
          auth: 'apikey',
          maxPayloadBytes: Number(process.env.GATEWAY_WS_MAX_PAYLOAD_BYTES ?? 65_536),
          connectionInitTimeoutMs: INIT_TIMEOUT_MS,
        },
        bigMessagesBeforeAuth: {
          messages: BIG_MESSAGES,
          bytesEach: MESSAGE_BYTES,
          rssBeforeMB: mb(before),
          rssPeakMB: mb(peak),
          rssAfterMB: mb(after),
          rssGrowthMB: mb(after - before),
          rssPeakGrowthMB: mb(peak - before),
          closeCodes: big.map((b) => b.closeCode ?? null),
          payloadBytesWrittenBeforeClose: big.map((b) => b.written),
          allDoneMs: Math.round(bigMs),
        },
        idleUnauthenticatedSockets: {
          attempted: IDLE_SOCKETS,
          acceptedByUpgrade: idle.filter((e) => e.opened).length,
          mostOpenAtGateway: mostOpen,
          openAtGatewayAfterInitTimeout: afterTimeout.connections,
          openAtClientAfterInitTimeout: clientOpenAfterTimeout,
          endings: tally(idle),
          allDoneMs: Math.round(idleMs),
        },
        connectionInitWithoutCredentials: {
          sockets: NO_CREDENTIAL_SOCKETS,
          endings: tally(noCredential),
        },
      },
      null,
      2,
    ),
  );
} finally {
  await gateway.close();
}
