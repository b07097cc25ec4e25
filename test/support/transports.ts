import { request } from 'undici';
import { wsOperation } from './graphql-ws.js';

/** Every transport a GraphQL operation can take to the gateway. */
export const TRANSPORTS = ['HTTP', 'SSE', 'graphql-ws'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** One operation's answer, whatever carried it. */
export interface TransportAnswer {
  /**
   * How it came back: `HTTP <status>`, `SSE <status>`, or over graphql-ws `ws error` (an `error`
   * message: refused before execution), `ws next` (`next` then `complete`) or `ws close <code>`.
   */
  how: string;
  data?: unknown;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

// Credentials a test sends as headers travel in connectionParams over graphql-ws (browsers cannot set
// WebSocket headers).
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'x-atlas-access-token'];

/**
 * Sends one operation (`body` as an HTTP POST body: query, variables, extensions, documentId) over
 * `transport` to the gateway listening at `url`, on a real socket, and reads its whole answer (the
 * first event of a stream).
 */
export async function operationOver(
  transport: Transport,
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<TransportAnswer> {
  if (transport === 'graphql-ws') {
    const params = Object.fromEntries(
      Object.entries(headers).filter(([k]) => CREDENTIAL_HEADERS.includes(k.toLowerCase())),
    );
    // graphql-ws requires a query string; a persisted operation sends an empty one.
    const op = await wsOperation(url, { query: '', ...body }, params);
    const first = op.results[0];
    if (op.end.type === 'error') {
      return { how: 'ws error', errors: op.end.errors as NonNullable<TransportAnswer['errors']> };
    }
    if (op.end.type === 'close') return { how: `ws close ${op.end.code}` };
    return {
      how: 'ws next',
      ...(first?.data !== undefined ? { data: first.data } : {}),
      ...(first?.errors ? { errors: first.errors as NonNullable<TransportAnswer['errors']> } : {}),
    };
  }
  const sse = transport === 'SSE';
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: sse ? 'text/event-stream' : 'application/graphql-response+json',
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  const how = `${transport} ${res.statusCode}`;
  let answer: Omit<TransportAnswer, 'how'> = {};
  if (sse && /text\/event-stream/.test(String(res.headers['content-type']))) {
    const data = /^event: next\r?\ndata: ?(.*)$/m.exec(text)?.[1];
    if (data) answer = JSON.parse(data) as typeof answer;
  } else if (text) {
    answer = JSON.parse(text) as typeof answer;
  }
  return { how, ...answer };
}
