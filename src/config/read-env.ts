import { ConfigError } from './config-error.js';
import { trimmed, type EnvSchema } from './env-var.js';

/** The environment: name → value, as the process gets it (tests pass plain objects). */
export type Env = Readonly<Record<string, string | undefined>>;

export type EnvShape = Record<string, EnvSchema<unknown>>;

/** Each variable's parsed value; a refused one reads as unset (its default), and is reported. */
export type EnvValues<S extends EnvShape> = { [K in keyof S]: S[K] extends EnvSchema<infer T> ? T : never };

/** What the checks across variables need besides the values. */
export interface EnvReading {
  /** Whether the variable holds something after trimming, valid or not. */
  isSet(name: string): boolean;
  /** The value after trimming, as it arrived (for messages), or undefined. */
  raw(name: string): string | undefined;
  /** Set, but refused: checks that depend on it stay quiet rather than report a consequence. */
  refused(name: string): boolean;
  /** A problem line (it starts with the variable's name, or with a source naming it). */
  problem(name: string, line: string): void;
}

/**
 * Parses every variable of `shape`, then lets `build` check the variables against each other, and
 * throws one `ConfigError` with every problem, in declaration order, or returns what `build` made.
 */
export function readEnv<S extends EnvShape, R>(
  env: Env,
  shape: S,
  build: (values: EnvValues<S>, reading: EnvReading) => R,
): R {
  const problems: { name: string; line: string }[] = [];
  const refused = new Set<string>();
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(shape)) {
    const result = schema.safeParse(env[name]);
    if (result.success) {
      values[name] = result.data;
      continue;
    }
    refused.add(name);
    for (const issue of result.error.issues) problems.push({ name, line: `${name}: ${issue.message}` });
    values[name] = schema.parse(undefined);
  }
  const reading: EnvReading = {
    isSet: (name) => trimmed(env[name]) !== undefined,
    raw: (name) => trimmed(env[name]),
    refused: (name) => refused.has(name),
    problem: (name, line) => problems.push({ name, line }),
  };
  const result = build(values as EnvValues<S>, reading);
  if (problems.length > 0) {
    const order = Object.keys(shape);
    const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
    // Array.prototype.sort is stable: a variable's own lines keep the order they were found in.
    throw new ConfigError(problems.sort((a, b) => rank(a.name) - rank(b.name)).map((p) => p.line));
  }
  return result;
}
