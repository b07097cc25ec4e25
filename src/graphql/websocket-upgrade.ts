import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { addressKey } from '../callers/client-address.js';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import { httpStatusOf, type GatewayErrorCode } from '../errors/index.js';
import { clientAddress, type ConnectionSlots, type WebSocketLimits } from './websocket-limits.js';

/** What `upgradeGate` checks an upgrade against. */
export interface UpgradeGateOptions {
  wss: WebSocketServer;
  slots: ConnectionSlots;
  limits: Pick<WebSocketLimits, 'maxConnections' | 'maxConnectionsPerAddress'>;
  /** Whether a browser page of `origin` may open a socket to `host`. */
  allowOrigin: (origin: string, host: string | undefined) => boolean;
  trustProxy: boolean;
  /** True once the gateway is shutting down: new sockets are refused (503). */
  closing: () => boolean;
  logger?: Logger | undefined;
}

/**
 * The HTTP server's `upgrade` listener: checks what can be checked before the handshake, from the
 * request line and headers only, and answers a refusal as HTTP with a GraphQL error body (browsers
 * see a failed connection; other clients can read why). In order: the path (404), shutdown (503),
 * the `Origin` (403), the connection caps in all and per client address (429). A connection that
 * passes holds its slot until its TCP connection closes, handshake failed or socket ended.
 */
export function upgradeGate(
  options: UpgradeGateOptions,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { wss, slots, limits, allowOrigin, trustProxy, closing, logger } = options;
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const refuse = (code: GatewayErrorCode, message: string) => {
      logger?.info({ code, url: req.url, address: req.socket.remoteAddress }, 'WebSocket upgrade refused');
      refuseUpgrade(socket, httpStatusOf(code), code, message);
    };
    if (!wss.shouldHandle(req)) {
      return refuse('NOT_FOUND', `WebSockets are served on ${wss.options.path ?? '/'}.`);
    }
    if (closing()) return refuse('SHUTTING_DOWN', 'The gateway is shutting down.');
    const origin = req.headers.origin;
    if (origin !== undefined && !allowOrigin(origin, req.headers.host)) {
      return refuse('FORBIDDEN', `Origin ${JSON.stringify(origin)} may not open a WebSocket here.`);
    }
    // Keyed as the HTTP connection cap keys it (an IPv6 client counts by its /64).
    const address = addressKey(clientAddress(req, trustProxy));
    const slot = slots.take(address);
    if (slot !== 'taken') {
      return refuse(
        'RATE_LIMITED',
        slot === 'total'
          ? `The gateway holds its maximum of ${limits.maxConnections} WebSocket connections; retry later.`
          : `At most ${limits.maxConnectionsPerAddress} WebSocket connections per client address.`,
      );
    }
    socket.once('close', () => slots.release(address));
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
}

/** Answers an upgrade with an HTTP error instead of the handshake (what ws does, with a body). */
function refuseUpgrade(socket: Duplex, status: number, code: GatewayErrorCode, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
