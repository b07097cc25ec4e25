import type { GraphQLFormattedError } from 'graphql';
import WebSocket from 'ws';
import { track } from './disposer.js';

/** A message of the graphql-transport-ws protocol as the server sent it. */
export interface WsMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/** How a socket ended. */
export interface WsClose {
  code: number;
  reason: string;
}

/** An upgrade the gateway answered with HTTP instead of the handshake. */
export interface WsRefusal {
  status: number;
  body: unknown;
}

/** What one operation on a socket came to: its `next` payloads and how it ended. */
export interface WsOperation {
  results: { data?: unknown; errors?: GraphQLFormattedError[] }[];
  /** `error` (with `errors`), `complete`, or the socket's close when it closed first. */
  end:
    { type: 'error'; errors: GraphQLFormattedError[] } | { type: 'complete' } | ({ type: 'close' } & WsClose);
}

/**
 * A raw graphql-transport-ws socket (the `ws` client, not graphql-ws's): the tests of the transport
 * send what a hostile client sends — anything, in any order — and read every message and the close.
 */
export class RawWs {
  private readonly queue: WsMessage[] = [];
  private readonly waiters: (() => void)[] = [];
  private closeInfo: WsClose | undefined;
  /** Settles when the socket is closed, by either side. */
  readonly closed: Promise<WsClose>;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      this.queue.push(JSON.parse(data.toString('utf8')) as WsMessage);
      this.wake();
    });
    // A write after the server closed (a test flooding on purpose) must not fail the test run.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        this.wake();
        resolve(this.closeInfo);
      });
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Sends a protocol message (an object) or raw text. */
  send(message: object | string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message, or the close if the socket closed first. */
  async next(): Promise<WsMessage | ({ type: 'close' } & WsClose)> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.closeInfo) return { type: 'close', ...this.closeInfo };
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** `connection_init` with `payload`; answers the ack, or the close that refused it. */
  async init(payload?: Record<string, unknown>): Promise<WsMessage | ({ type: 'close' } & WsClose)> {
    this.send({ type: 'connection_init', ...(payload ? { payload } : {}) });
    return this.next();
  }

  /**
   * Subscribes `payload` under `id` and reads until that operation ends (or the socket closes). Only
   * for one operation at a time: messages of other ids are dropped.
   */
  operation(id: string, payload: Record<string, unknown>): Promise<WsOperation> {
    this.send({ type: 'subscribe', id, payload });
    return this.outcome(id);
  }

  /** Reads until operation `id`, already sent, ends (or the socket closes); drops other messages. */
  async outcome(id: string): Promise<WsOperation> {
    const results: WsOperation['results'] = [];
    for (;;) {
      const m = await this.next();
      if (m.type === 'close') return { results, end: m as WsOperation['end'] };
      const { id: of, payload } = m as WsMessage;
      if (of !== id) continue;
      if (m.type === 'next') results.push(payload as WsOperation['results'][number]);
      else if (m.type === 'error') {
        return { results, end: { type: 'error', errors: payload as GraphQLFormattedError[] } };
      } else if (m.type === 'complete') return { results, end: { type: 'complete' } };
    }
  }

  close(): Promise<WsClose> {
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) {
      this.socket.close(1000);
    } else if (this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.terminate();
    }
    return this.closed;
  }
}

/**
 * Opens a graphql-transport-ws socket to `${url}/graphql` (`url` as `gateway.listen` answers it).
 * Answers the socket once open, or the HTTP refusal of the upgrade. Closed when the test ends.
 */
export async function openWs(
  url: string,
  options: { headers?: Record<string, string>; path?: string } = {},
): Promise<RawWs | WsRefusal> {
  const socket = new WebSocket(
    `${url.replace(/^http/, 'ws')}${options.path ?? '/graphql'}`,
    'graphql-transport-ws',
    {
      headers: options.headers ?? {},
    },
  );
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(track(new RawWs(socket), 'graphql-ws socket')));
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        socket.terminate();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    socket.once('error', reject);
  });
}

/** `openWs` for a test that expects the socket to open. */
export async function openedWs(url: string, options: Parameters<typeof openWs>[1] = {}): Promise<RawWs> {
  const ws = await openWs(url, options);
  if (!(ws instanceof RawWs)) throw new Error(`upgrade refused: ${ws.status} ${JSON.stringify(ws.body)}`);
  return ws;
}

/**
 * One operation over a fresh socket: open, `connection_init` with `connectionParams`, subscribe, read to
 * its end, close. Throws if the upgrade or the init is refused (tests of those use `RawWs`).
 */
export async function wsOperation(
  url: string,
  payload: Record<string, unknown>,
  connectionParams?: Record<string, unknown>,
): Promise<WsOperation> {
  const ws = await openedWs(url);
  try {
    const ack = await ws.init(connectionParams);
    if (ack.type !== 'connection_ack') throw new Error(`connection_init refused: ${JSON.stringify(ack)}`);
    return await ws.operation('1', payload);
  } finally {
    await ws.close();
  }
}
