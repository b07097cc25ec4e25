/**
 * What a subscription holds for its client (a subscription-limit slot) and gives back when its stream
 * ends. Usually the stream and its execution end together, and the execution's end gives it back. When
 * `useLeanSse` shares one execution among identical streams, they no longer do: a client that joins has
 * its own execution closed at once, and the first client's execution goes on after it left if others
 * still read it. The writer adopts the holds of each of those clients and gives them back when that
 * client's stream ends. Without this, the cap would count a joined client not at all, and a first client
 * that left for as long as the others stayed.
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
