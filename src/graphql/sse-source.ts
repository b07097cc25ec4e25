import type { ExecutionResult, GraphQLError } from 'graphql';
import type { SseStream } from './sse-stream.js';

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

const COMPLETE = 'event: complete\ndata:\n\n';

/**
 * One subscription execution written to one or more client streams: each event is serialized once
 * and sent to every stream. With `replayLatest` (a stream of states, each the whole thing as it is
 * then), a stream that joins first gets the latest event: what its own execution would have started
 * with. The execution ends (`return()`) when its last stream leaves; when it completes or fails, every
 * stream does too. `onClosed` runs once, either way.
 */
export class SseSource {
  readonly #streams = new Set<SseStream>();
  #iterator: AsyncIterator<ExecutionResult> | undefined;
  #latest: string | undefined;
  #onClosed: (() => void) | undefined;
  readonly #replayLatest: boolean;

  constructor(iterator: AsyncIterator<ExecutionResult>, replayLatest: boolean, onClosed: () => void) {
    this.#iterator = iterator;
    this.#replayLatest = replayLatest;
    this.#onClosed = onClosed;
    this.#pull(iterator);
  }

  /** False once the execution ended: a new client then needs an execution of its own. */
  get running(): boolean {
    return this.#iterator !== undefined;
  }

  /** Clients this execution writes to now. */
  get size(): number {
    return this.#streams.size;
  }

  add(stream: SseStream): void {
    this.#streams.add(stream);
    if (this.#replayLatest && this.#latest !== undefined) stream.send(this.#latest);
  }

  remove(stream: SseStream): void {
    if (!this.#streams.delete(stream) || this.#streams.size > 0) return;
    const iterator = this.#stop();
    // The last client left: the execution ends, and with its last subscriber the job's poller.
    if (iterator) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }

  #stop(): AsyncIterator<ExecutionResult> | undefined {
    const iterator = this.#iterator;
    this.#iterator = undefined;
    const onClosed = this.#onClosed;
    this.#onClosed = undefined;
    onClosed?.();
    return iterator;
  }

  #pull(iterator: AsyncIterator<ExecutionResult>): void {
    iterator.next().then(
      (r) => {
        if (this.#iterator !== iterator) return;
        if (r.value != null) {
          const chunk = `event: next\ndata: ${stringifyEvent(r.value)}\n\n`;
          this.#latest = chunk;
          for (const s of this.#streams) s.send(chunk);
        }
        if (!r.done) return this.#pull(iterator);
        this.#stop();
        const streams = [...this.#streams];
        this.#streams.clear();
        for (const s of streams) s.end(COMPLETE);
      },
      (err: unknown) => {
        if (this.#iterator !== iterator) return;
        this.#stop();
        const streams = [...this.#streams];
        this.#streams.clear();
        const error = err instanceof Error ? err : new Error(String(err));
        for (const s of streams) s.fail(error);
      },
    );
  }
}
