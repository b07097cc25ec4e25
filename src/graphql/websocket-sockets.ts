import { CloseCode, MessageType, type Server } from 'graphql-ws';
import type { Extra } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import type { RawData, WebSocket, WebSocketServer } from 'ws';

/** Message types a graphql-transport-ws client may send; the others are the server's. */
const CLIENT_MESSAGES: ReadonlySet<string> = new Set<string>([
  MessageType.ConnectionInit,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Subscribe,
  MessageType.Complete,
]);

/** Options of `serveSockets`. */
export interface ServeSocketsOptions {
  /** Client protocol errors at `info`, internal errors at `error`. @default none */
  logger?: Logger | undefined;
  /** A ping this often; a socket that has not answered the previous one by then is cut. @default 12000 */
  keepAliveMs?: number;
}

/**
 * Runs graphql-ws's protocol server on every socket `wss` accepts: graphql-ws's `useServer` for ws
 * (`graphql-ws/use/ws`), rewritten as its docs invite ("a basic starter, feel free to copy the code
 * over and adjust it") because of how it reports errors. useServer prints every error with a stack
 * on `console.error`, past the gateway's logger and its redaction, and answers a client's protocol
 * violation (a `next` message, which only servers send) as an internal error (4500) in the client's
 * power to repeat at will. Here what the client broke is one `info` line and the close code that says
 * so (4400, or ws's own 1009/1002/1007); only the gateway's own failures are errors (4500).
 */
export function serveSockets(
  wss: WebSocketServer,
  server: Server<Extra>,
  options: ServeSocketsOptions = {},
): void {
  const { logger, keepAliveMs = 12_000 } = options;
  wss.on('connection', (socket: WebSocket, request: Extra['request']) => {
    const address = request.socket.remoteAddress;
    // ws emits errors only for what the client sent (a message over maxPayload, a bad frame or
    // UTF-8), after sending the close code that says so.
    socket.on('error', (err: Error & { code?: string }) => {
      logger?.info({ code: err.code, address }, 'WebSocket closed: the client broke the protocol');
    });

    let pongWait: NodeJS.Timeout | undefined;
    const pings =
      keepAliveMs > 0 && Number.isFinite(keepAliveMs)
        ? setInterval(() => {
            if (socket.readyState !== socket.OPEN) return;
            pongWait = setTimeout(() => socket.terminate(), keepAliveMs);
            socket.once('pong', () => clearTimeout(pongWait));
            socket.ping();
          }, keepAliveMs)
        : undefined;

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) => {
          socket.on('message', (data: RawData) => {
            const text = textOf(data);
            handle(text).catch((err: unknown) => {
              if (serverOnlyType(text)) {
                logger?.info({ address }, 'WebSocket closed: the client sent a server message');
                socket.close(CloseCode.BadRequest, 'Invalid message received');
              } else {
                logger?.error({ err }, 'WebSocket message handling failed');
                socket.close(CloseCode.InternalServerError, 'Internal server error');
              }
            });
          });
        },
      },
      { socket, request },
    );

    socket.once('close', (code: number, reason: Buffer) => {
      clearTimeout(pongWait);
      clearInterval(pings);
      closed(code, reason.toString('utf8')).catch((err: unknown) => {
        logger?.error({ err }, 'WebSocket close handling failed');
      });
    });
  });
}

function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}

// graphql-ws closes unreadable and malformed messages itself (4400) and throws only for a
// well-formed message of a type a server sends, or for a failure of its own: only on that rare path
// is the message read a second time, to tell which.
function serverOnlyType(text: string): boolean {
  try {
    const type = (JSON.parse(text) as { type?: unknown }).type;
    return typeof type === 'string' && !CLIENT_MESSAGES.has(type);
  } catch {
    return false;
  }
}
