import { onTestFinished } from 'vitest';

/** Anything a test opens: a server, a client, a timer, a process. */
export interface Closable {
  close(): unknown;
}

interface Entry {
  name: string;
  close: () => Promise<void>;
}

// Opened outside a test (beforeAll, module scope): closed when the file ends, by test/support/setup.ts.
const fileScoped: Entry[] = [];

/**
 * Registers something a test opened so that it is closed whatever the test does: opened inside a
 * test, when that test finishes (pass or fail); opened in `beforeAll`, when the file ends. Closing is
 * idempotent, so a test may still close it itself (to assert on the close) without a double close.
 * Every helper in test/support that opens a socket or a timer registers it here.
 */
export function track<T extends Closable>(resource: T, name = resource.constructor?.name ?? 'resource'): T {
  let closing: Promise<void> | undefined;
  const original = resource.close.bind(resource) as (...args: unknown[]) => unknown;
  const close = () => (closing ??= Promise.resolve(original()).then(() => undefined));
  // A call with arguments is the resource's own callback form (undici's promise form calls
  // `this.close(callback)`): it goes straight through.
  resource.close = ((...args: unknown[]) => (args.length > 0 ? original(...args) : close())) as T['close'];
  const entry: Entry = { name, close };
  try {
    onTestFinished(() => close());
  } catch {
    // Not inside a running test: the file's teardown closes it.
    fileScoped.push(entry);
  }
  return resource;
}

/** A timer that is cleared when the test (or file) ends, even if the test never clears it. */
export function trackTimer(handle: NodeJS.Timeout, name = 'timer'): NodeJS.Timeout {
  track({ close: () => clearTimeout(handle) }, name);
  return handle;
}

/** Closes every file-scoped resource, newest first; reports all failures together. */
export async function disposeFileScoped(): Promise<void> {
  const failures: string[] = [];
  for (const entry of fileScoped.splice(0).reverse()) {
    await entry.close().catch((err: unknown) => failures.push(`${entry.name}: ${String(err)}`));
  }
  if (failures.length > 0) throw new Error(`closing failed:\n${failures.join('\n')}`);
}
