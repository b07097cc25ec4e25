import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { track } from './disposer.js';
import { subscribeSse } from './sse.js';

/** A GraphQL error as a client receives it. */
export interface ClientError {
  message: string;
  extensions?: Record<string, unknown>;
}

/** One payload of a subscription: data, or the errors it ended with. */
export interface Payload {
  data?: Record<string, unknown> | null;
  errors?: ClientError[];
}

/** A subscription followed to its end: its payloads, and the HTTP status (SSE only). */
export interface Followed {
  status?: number;
  payloads: Payload[];
}

/** The first error code of a followed subscription, or `data` when it delivered data only. */
export const outcome = (f: Followed): string =>
  String(f.payloads.flatMap((p) => p.errors ?? [])[0]?.extensions?.code ?? 'data');

/**
 * A subscription over SSE, read until the server ends it (`open` returns once the first payload
 * arrived, with `close` to end it early and `rest` for the remainder).
 */
export async function sseSubscription(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const sub = track(await subscribeSse(url, query, variables, headers), 'sse subscription');
  const payloads: Payload[] = [];
  const pull = async (): Promise<boolean> => {
    const e = await sub.next();
    if (!e || e.event === 'complete') return false;
    payloads.push(e.data as Payload);
    return true;
  };
  return {
    status: sub.status,
    payloads,
    /** Waits for the next payload; false once the stream ended. */
    pull,
    /** Reads to the end of the stream. */
    async rest(): Promise<Followed> {
      while (await pull());
      return { status: sub.status, payloads };
    },
    close: () => sub.close(),
  };
}

/** A subscription over SSE followed to its end. */
export async function overSse(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Followed> {
  return (await sseSubscription(url, query, variables, headers)).rest();
}

/** One graphql-ws socket (`connectionParams` carry the credentials), with the closes it saw. */
export function wsClient(url: string, connectionParams: Record<string, string> = {}) {
  const closes: number[] = [];
  const client: Client = createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams,
    onNonLazyError: () => undefined,
    on: { closed: (e) => closes.push((e as { code: number }).code) },
  });
  track({ close: () => client.dispose() }, 'graphql-ws client');
  /** Starts a subscription: its payloads so far, `ended` once it completed or failed, and `stop`. */
  const start = (query: string, variables: Record<string, unknown>) => {
    const payloads: Payload[] = [];
    let stop = () => {};
    const ended = new Promise<Followed>((resolve) => {
      stop = client.subscribe(
        { query, variables },
        {
          next: (r) => payloads.push(r as Payload),
          // A failing stream ends with `error` (the errors), not with `complete`.
          error: (e) => {
            payloads.push({ errors: Array.isArray(e) ? (e as ClientError[]) : [{ message: String(e) }] });
            resolve({ payloads });
          },
          complete: () => resolve({ payloads }),
        },
      );
    });
    return { payloads, ended, stop: () => stop() };
  };
  return {
    closes,
    start,
    /** A subscription followed to its end. */
    follow: (query: string, variables: Record<string, unknown>) => start(query, variables).ended,
  };
}
