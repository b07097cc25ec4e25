import { request } from 'undici';

export interface SseEvent {
  event: string;
  data: unknown;
}

/**
 * A GraphQL subscription over SSE (yoga's default transport), read from a real socket. `next()`
 * answers the next event; `closed` settles when the server ends the stream.
 */
export async function subscribeSse(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const controller = new AbortController();
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const queue: SseEvent[] = [];
  const waiters: ((e: SseEvent | undefined) => void)[] = [];
  let ended = false;
  const deliver = (e: SseEvent | undefined) => {
    const w = waiters.shift();
    if (w) w(e);
    else if (e) queue.push(e);
  };
  const closed = (async () => {
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString('utf8');
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: ?(.*)$/m.exec(block)?.[1];
          if (!event) continue; // keep-alive comments
          deliver({ event, data: data ? (JSON.parse(data) as unknown) : undefined });
        }
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true;
      while (waiters.length) deliver(undefined);
    }
  })();
  return {
    status: res.statusCode,
    /** The next event, or undefined once the stream ended. */
    next: (): Promise<SseEvent | undefined> =>
      queue.length
        ? Promise.resolve(queue.shift())
        : ended
          ? Promise.resolve(undefined)
          : new Promise((r) => waiters.push(r)),
    close: async () => {
      controller.abort();
      await closed;
    },
    closed,
  };
}
