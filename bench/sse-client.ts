import { request, type ClientRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

/** One `next` event of a restoreJobStatus subscription, as the client received it. */
export interface JobEvent {
  /** `performance.now()` when the chunk holding the event was read. */
  at: number;
  id: string | undefined;
  status: string | undefined;
  /** GraphQL errors of the event, if any (the stream ends after them). */
  error?: string;
}

/** A live SSE subscription. */
export interface SseSubscription {
  /** Settles when the server ends the stream (after `complete`), or the socket closes. */
  ended: Promise<void>;
  /** Whether the server sent `event: complete`. */
  completed(): boolean;
  close(): void;
}

/**
 * A GraphQL subscription over SSE (yoga's default transport) on its own socket (`agent: false`), light
 * enough for 10,000 at once: no buffering beyond one partial event, one callback per `next` event.
 */
export function subscribeSse(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  onEvent: (e: JobEvent) => void,
): Promise<SseSubscription> {
  return new Promise((resolve, reject) => {
    let complete = false;
    let req: ClientRequest | undefined;
    let settleEnded: () => void = () => {};
    const ended = new Promise<void>((r) => (settleEnded = r));
    const body = JSON.stringify({ query, variables });
    req = request(`${url}/graphql`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'content-length': Buffer.byteLength(body),
      },
    });
    req.on('error', (err) => {
      settleEnded();
      reject(err);
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        settleEnded();
        reject(new Error(`subscription answered ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith('event: complete')) {
            complete = true;
            continue;
          }
          if (!block.startsWith('event: next')) continue; // keep-alive comments
          const data = /^data: ?(.*)$/m.exec(block)?.[1];
          if (!data) continue;
          const parsed = JSON.parse(data) as {
            data?: { restoreJobStatus?: { id?: string; status?: string } } | null;
            errors?: { message: string }[];
          };
          const job = parsed.data?.restoreJobStatus;
          onEvent({
            at,
            id: job?.id,
            status: job?.status,
            ...(parsed.errors?.length ? { error: parsed.errors.map((e) => e.message).join('; ') } : {}),
          });
        }
      });
      res.on('end', settleEnded);
      res.on('close', settleEnded);
      resolve({
        ended,
        completed: () => complete,
        close: () => {
          req?.destroy();
          req = undefined;
          settleEnded();
        },
      });
    });
    req.end(body);
  });
}

/** Runs `fn` over `items` with at most `limit` at once (opening thousands of sockets in waves). */
export async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
