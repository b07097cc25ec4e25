import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** The open streams, and the one keep-alive timer they share (running only while one is open). */
export class OpenStreams {
  readonly #streams = new Set<SseStream>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly pingIntervalMs: number) {}

  add(stream: SseStream): void {
    this.#streams.add(stream);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const s of this.#streams) s.ping();
    }, this.pingIntervalMs);
    this.#timer.unref();
  }

  /** False when the stream had already left. */
  delete(stream: SseStream): boolean {
    const had = this.#streams.delete(stream);
    if (this.#streams.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    return had;
  }
}

/**
 * One client's SSE stream: the events its source sends (`send`, `end`, `fail`), written into the
 * client's response. It is a Node `Readable` only so that whatwg-node, once every `onResponse` hook
 * has set the headers, hands it the `ServerResponse` (`body.pipe(res)`); events that arrive before
 * that wait in order. Hand-written, not `Readable.from` + `pipe`: per open stream it keeps no WHATWG
 * ReadableStream, controller, TextEncoder, interval, nor the ten listeners of a pipe.
 */
export class SseStream extends Readable {
  #handedOver = false;
  #pending: string[] = [];
  #ending = false;
  #onLeave: ((stream: SseStream) => void) | undefined;
  readonly #res: ServerResponse;
  readonly #maxBufferedBytes: number;

  /** `onLeave` runs once, when the stream ends for any reason (completed, cut, client gone). */
  constructor(res: ServerResponse, maxBufferedBytes: number, onLeave: (stream: SseStream) => void) {
    super();
    this.#res = res;
    this.#maxBufferedBytes = maxBufferedBytes;
    this.#onLeave = onLeave;
  }

  /** One event's bytes. */
  send(chunk: string): void {
    if (this.destroyed || this.#ending) return;
    if (!this.#handedOver) {
      this.#pending.push(chunk);
      return;
    }
    const res = this.#res;
    if (res.destroyed) return;
    res.write(chunk);
    // Every client of a source gets each event when it happens, whatever the others read, so a client
    // that does not read is not waited for: past the bound it is cut (resubscribing gives it the
    // state as it is then). Job and snapshot events are a few hundred bytes, minutes apart.
    if (res.writableLength > this.#maxBufferedBytes) this.fail(new Error('SSE client too slow'));
  }

  /** The last bytes; the response ends after them. */
  end(last: string): void {
    if (this.destroyed || this.#ending) return;
    this.#ending = true;
    if (this.#handedOver) {
      this.#res.end(last);
      this.#leave();
    } else {
      this.#pending.push(last);
    }
  }

  /** The source failed outside GraphQL (its errors arrive as events): the response is cut. */
  fail(err: Error): void {
    this.destroy();
    this.#res.destroy(err);
  }

  /** The keep-alive comment; and a stream whose response closed before it was handed over ends. */
  ping(): void {
    const res = this.#res;
    if (this.#handedOver) {
      if (res.writableLength === 0 && !res.writableEnded) res.write(':\n\n');
    } else if (res.destroyed || res.writableEnded) {
      this.destroy();
    }
  }

  // whatwg-node's `sendNodeResponse` calls this with the response once the head is set.
  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    if (this.destroyed || this.#handedOver) return destination;
    this.#handedOver = true;
    // As yoga does: a first comment, because some browsers wait for a byte before they open the
    // stream; then what arrived meanwhile, in one write.
    const first = `:\n\n${this.#pending.join('')}`;
    this.#pending = [];
    if (this.#ending) {
      this.#res.end(first);
      this.#leave();
    } else {
      this.#res.write(first);
    }
    return destination;
  }

  override _read(): void {
    // Nothing is read through the Readable side: `pipe` above writes into the response directly.
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // The client left (whatwg-node destroys the body when the response closes), or the stream was cut.
    this.#leave();
    callback(err);
  }

  #leave(): void {
    const onLeave = this.#onLeave;
    this.#onLeave = undefined;
    onLeave?.(this);
  }
}
