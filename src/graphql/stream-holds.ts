/**
 * What a subscription holds for its client (a subscription-limit slot) and gives back when its stream
 * ends. Usually the stream and its execution end together, and the execution's end gives it back. A
 * writer that serves the client from another execution (`useLeanSse` joining identical streams) ends
 * the client's own execution early: it adopts the holds first, and gives them back when the client's
 * stream ends instead. Without this, closing a joined execution would free the caller's slot while its
 * client still streams, and the subscription cap would count nothing.
 */
export class StreamHolds {
  // Only holds not given back yet: one context may serve many subscriptions (a graphql-ws connection).
  readonly #pending = new Set<() => void>();
  #adopted = false;

  /**
   * Registers `release` for this stream; returns what the execution's end calls: `release`, unless a
   * writer adopted the stream meanwhile (then the writer calls it when the client leaves).
   */
  hold(release: () => void): () => void {
    this.#pending.add(release);
    return () => {
      if (this.#adopted) return;
      this.#pending.delete(release);
      release();
    };
  }

  /** From now on the client's stream, not its execution, ends the holds: call the answer then, once. */
  adopt(): () => void {
    this.#adopted = true;
    const releases = [...this.#pending];
    this.#pending.clear();
    return () => releases.forEach((release) => release());
  }
}

const HOLDS = new WeakMap<object, StreamHolds>();

/** The holds of the subscription run with `contextValue` (one per request context). */
export function streamHolds(contextValue: object): StreamHolds {
  let holds = HOLDS.get(contextValue);
  if (!holds) {
    holds = new StreamHolds();
    HOLDS.set(contextValue, holds);
  }
  return holds;
}
