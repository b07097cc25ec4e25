/** The `operationName` label of every operation not labelled by its own name. */
export const OTHER_OPERATION = 'other';

/** The `operationName` label of an operation without a name (`operationName()`'s answer). */
export const ANONYMOUS_OPERATION = 'anonymous';

// A label value is kept in memory for every series it names: a long made-up name must not be one.
const MAX_NAME_LENGTH = 100;

/** Which operation names the metrics may use as label values. */
export interface OperationNameLabelsOptions {
  /**
   * The only names ever labelled as themselves, fixed at start: a persisted-operations manifest's.
   * When given, nothing is learned.
   * @default undefined (learn the first `max` names)
   */
  known?: Iterable<string>;
  /**
   * Without `known`: how many names are learned, the first ones whose operations an accepted caller
   * ran without error; every other name is labelled `other`.
   * @default 50
   */
  max?: number;
}

/**
 * The bounded set of operation names the metrics label with. A caller picks its operation names (and
 * `operationName`) freely, so a label taking them as they come grows one set of series per request:
 * here a name becomes a label value only once an accepted caller's operation, past every limit, ran
 * without error under it (or when the manifest names it), and at most `max` names are learned. An
 * operation that was not admitted (refused: unauthenticated, over a limit, invalid) is `other`,
 * whatever its name.
 */
export class OperationNameLabels {
  readonly #names = new Set<string>([ANONYMOUS_OPERATION]);
  readonly #learning: boolean;
  readonly #max: number;
  // An admitted operation's context and request → its name (weak: they go with the request).
  readonly #admitted = new WeakMap<object, string>();

  constructor(options: OperationNameLabelsOptions = {}) {
    this.#learning = options.known === undefined;
    this.#max = options.max ?? 50;
    for (const name of options.known ?? []) this.#names.add(name);
  }

  /** The operation carried by `keys` (its context, its request) passed every check and runs as `name`. */
  admit(keys: readonly unknown[], name: string): void {
    for (const key of keys) if (typeof key === 'object' && key !== null) this.#admitted.set(key, name);
  }

  /** An admitted operation ran without error: its name becomes a label if there is room. */
  learn(name: string): void {
    if (!this.#learning || this.#names.has(name) || name.length > MAX_NAME_LENGTH) return;
    // `anonymous` is there from the start and does not count against `max`.
    if (this.#names.size - 1 < this.#max) this.#names.add(name);
  }

  /** The label of the operation `key` (its context or request) carries: its name, or `other`. */
  labelOf(key: unknown): string {
    const name = typeof key === 'object' && key !== null ? this.#admitted.get(key) : undefined;
    return name !== undefined && this.#names.has(name) ? name : OTHER_OPERATION;
  }

  /** The names labelled as themselves now. */
  names(): string[] {
    return [...this.#names];
  }
}
