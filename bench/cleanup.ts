/**
 * Everything the bench starts (servers, child processes, sockets, temp dirs) registers how to stop it
 * here, so a failure or Ctrl-C anywhere still closes it all, newest first.
 */
export class Cleanup {
  readonly #steps: { label: string; run: () => Promise<void> | void }[] = [];
  #running: Promise<void> | undefined;

  /** Registers a step; the returned function runs it now (once) and unregisters it. */
  defer(label: string, run: () => Promise<void> | void): () => Promise<void> {
    const step = { label, run };
    this.#steps.push(step);
    let done: Promise<void> | undefined;
    return () => {
      const i = this.#steps.indexOf(step);
      if (i >= 0) this.#steps.splice(i, 1);
      done ??= this.#runStep(step);
      return done;
    };
  }

  /** Runs every remaining step, newest first; a step that fails or hangs does not stop the others. */
  runAll(): Promise<void> {
    this.#running ??= (async () => {
      while (this.#steps.length > 0) {
        const step = this.#steps.pop()!;
        await this.#runStep(step);
      }
    })();
    return this.#running;
  }

  async #runStep(step: { label: string; run: () => Promise<void> | void }): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(step.run),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out after 15 s')), 15_000);
        }),
      ]);
    } catch (err) {
      console.error(`bench: cleanup "${step.label}" failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** On SIGINT/SIGTERM, closes everything and exits (130/143), so no child outlives the bench. */
export function exitCleanlyOnSignals(cleanup: Cleanup): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, closing everything it started…`);
      void cleanup.runAll().finally(() => process.exit(code));
    });
  }
}
