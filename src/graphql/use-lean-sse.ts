import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/** Options of `useLeanSse`. */
export interface LeanSseOptions {
  /**
   * Time between two keep-alive comments (`:`) on every open stream; one timer serves them all.
   * @default 12000 (yoga's own SSE ping interval)
   */
  pingIntervalMs?: number;
  /** Counts the streams this path served (tests prove the path ran). @default none */
  stats?: LeanSseStats;
}

/** Streams served by the lean path since start, and those open now. */
export class LeanSseStats {
  /** Streams the lean writer took over from yoga's SSE processor. */
  served = 0;
  /** Lean streams open now (until they complete or their client leaves). */
  open = 0;
}

// The headers yoga's SSE processor answers with (graphql-yoga plugins/result-processor/sse.js).
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  Connection: 'keep-alive',
  'Cache-Control': 'no-cache',
  'Content-Encoding': 'none',
};

// What yoga's `jsonStringifyResultWithoutInternals` sends (not exported by graphql-yoga): the result
// without the internal `http` extension of the result and of each error, nor an error's `unexpected`.
function stringifyEvent(result: ExecutionResult & { stringify?: (r: unknown) => string }): string {
  const stringify = result.stringify ?? JSON.stringify;
  if (!result.errors?.length && !result.extensions?.['http']) return stringify(result);
  const out: Record<string, unknown> = { ...result };
  if (result.errors) out['errors'] = result.errors.map(withoutInternals);
  if (result.extensions) {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { http, ...extensions } = result.extensions;
    out['extensions'] = Object.keys(extensions).length ? extensions : undefined;
  }
  return stringify(out);
}

function withoutInternals(err: GraphQLError): unknown {
  const json = typeof err.toJSON === 'function' ? err.toJSON() : err;
  if (!json.extensions) return json;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { http, unexpected, ...extensions } = json.extensions as Record<string, unknown>;
  const { extensions: _dropped, ...rest } = json;
  return Object.keys(extensions).length ? { ...rest, extensions } : rest;
}

/** The open lean streams, and the one keep-alive timer they share (running only while one is open). */
class OpenStreams {
  readonly #streams = new Set<SseEvents>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly pingIntervalMs: number) {}

  add(stream: SseEvents): void {
    this.#streams.add(stream);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const s of this.#streams) s.ping();
    }, this.pingIntervalMs);
    this.#timer.unref();
  }

  /** False when the stream had already left. */
  delete(stream: SseEvents): boolean {
    const had = this.#streams.delete(stream);
    if (this.#streams.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    return had;
  }
}

/**
 * One subscription's SSE stream. It is a Node `Readable` only so that whatwg-node, once every
 * `onResponse` hook has set the headers, hands it the `ServerResponse` (`body.pipe(res)`); from then
 * on it writes each event into the response itself, pulling the next one from the result iterator
 * when the socket has drained. Hand-written, not `Readable.from` + `pipe`: per open stream it keeps
 * no WHATWG ReadableStream, controller, TextEncoder, interval, nor the ten listeners of a pipe —
 * yoga's processor keeps all of them for the life of the stream.
 */
class SseEvents extends Readable {
  #iterator: AsyncIterator<ExecutionResult> | undefined;
  #out: ServerResponse | undefined;
  readonly #res: ServerResponse;
  readonly #streams: OpenStreams;
  readonly #stats: LeanSseStats | undefined;

  constructor(
    iterator: AsyncIterator<ExecutionResult>,
    res: ServerResponse,
    streams: OpenStreams,
    stats: LeanSseStats | undefined,
  ) {
    super();
    this.#iterator = iterator;
    this.#res = res;
    this.#streams = streams;
    this.#stats = stats;
    streams.add(this);
    if (stats) {
      stats.served += 1;
      stats.open += 1;
    }
  }

  // Once per stream, whether it completed or was cut.
  #settle(): void {
    if (this.#streams.delete(this) && this.#stats) this.#stats.open -= 1;
  }

  /** The keep-alive comment; and a stream whose response closed before it was handed over ends. */
  ping(): void {
    if (this.#out) {
      if (this.#out.writableLength === 0 && !this.#out.writableEnded) this.#out.write(':\n\n');
    } else if (this.#res.destroyed || this.#res.writableEnded) {
      this.destroy();
    }
  }

  // whatwg-node's `sendNodeResponse` calls this with the response once the head is set.
  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    if (this.destroyed || this.#out) return destination;
    this.#out = destination as unknown as ServerResponse;
    // As yoga does: a first comment, because some browsers wait for a byte before they open the stream.
    if (this.#out.write(':\n\n')) this.#pull();
    else this.#out.once('drain', () => this.#pull());
    return destination;
  }

  override _read(): void {
    // Nothing is read through the Readable side: `pipe` above writes into the response directly.
  }

  #pull(): void {
    const iterator = this.#iterator;
    const out = this.#out;
    if (!iterator || !out || this.destroyed) return;
    iterator.next().then(
      (r) => {
        if (this.destroyed || out.destroyed) return;
        let drained = true;
        if (r.value != null) drained = out.write(`event: next\ndata: ${stringifyEvent(r.value)}\n\n`);
        if (r.done) {
          this.#iterator = undefined;
          this.#settle();
          out.end('event: complete\ndata:\n\n');
          return;
        }
        if (drained) this.#pull();
        else out.once('drain', () => this.#pull());
      },
      (err: unknown) => {
        // The result stream failed outside GraphQL (its errors arrive as events): the response is cut.
        this.#iterator = undefined;
        this.destroy();
        out.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#settle();
    const iterator = this.#iterator;
    this.#iterator = undefined;
    // The client left (whatwg-node destroys the body when the response closes): the subscription
    // ends, and with its last subscriber the job's poller.
    void Promise.resolve(iterator?.return?.()).catch(() => undefined);
    callback(err);
  }
}

/**
 * A leaner SSE writer for subscriptions. Everything before the stream is yoga's, unchanged: every
 * plugin (authentication, CSRF, persisted operations, armor, rate and subscription limits, masking,
 * metrics, access log) has run when a subscription's result reaches `onResultProcess`; this plugin
 * then swaps yoga's SSE processor for `SseEvents`, with the same headers and the same bytes per event.
 * Only the node transport (`serverContext.res`) and only when yoga itself chose SSE for the request.
 */
export function useLeanSse(options: LeanSseOptions = {}): Plugin {
  const streams = new OpenStreams(options.pingIntervalMs ?? 12_000);
  const stats = options.stats;
  return {
    onResultProcess({ result, resultProcessor, setResultProcessor, serverContext }) {
      // yoga's SSE processor is chosen by yoga's own content negotiation; anything else stays as it is.
      if (resultProcessor?.name !== 'processSSEResult' || !isAsyncIterable(result)) return;
      const res = (serverContext as { res?: unknown }).res;
      if (!(res instanceof ServerResponse)) return;
      setResultProcessor((r, fetchAPI) => {
        const iterator = (r as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
        const body = new SseEvents(iterator, res, streams, stats);
        return new fetchAPI.Response(body as unknown as BodyInit, { status: 200, headers: SSE_HEADERS });
      }, 'text/event-stream');
    },
  };
}
