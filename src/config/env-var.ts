import { z } from 'zod';

/** Where a variable belongs: its part of `GatewayConfig` and its section of the docs table. */
export type EnvGroup =
  | 'server'
  | 'atlas'
  | 'upstream'
  | 'callers'
  | 'security'
  | 'redis'
  | 'webhooks'
  | 'simulator'
  | 'tracing'
  | 'logging';

/** What the docs table (and the tests) know of a variable. */
export interface EnvVarMeta {
  group: EnvGroup;
  /** One sentence. */
  description: string;
  /** The default as the docs show it; undefined when unset means "none". */
  default: string | undefined;
  /** A valid value, for tests that walk every variable. */
  example: string;
  /** Never echoed in a message: only its length is. */
  secret: boolean;
}

/** Every declared variable's schema → its metadata (zod 4 registry). */
export const envRegistry = z.registry<EnvVarMeta>();

/**
 * The one trimming policy: surrounding whitespace is dropped and an empty value is unset. `.env` files
 * and YAML leave stray spaces and empty assignments, which must not read as values.
 */
export function trimmed(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const value = raw.trim();
  return value === '' ? undefined : value;
}

/** A refused value: what was expected and, when the raw value must not be shown as is, what to show. */
export class Invalid {
  constructor(
    readonly expected: string,
    readonly got?: string,
  ) {}
}

export const invalid = (expected: string, got?: string) => new Invalid(expected, got);

/** A variable's schema: unknown in (the raw environment value), its parsed value out. */
export type EnvSchema<T> = z.ZodType<T, unknown>;

interface Declaration<T> {
  group: EnvGroup;
  description: string;
  example: string;
  /** Applied when the variable is unset, and shown in the docs. */
  default?: T;
  /** Shown in the docs instead of `default` (a derived default, or one applied elsewhere). */
  defaultText?: string;
  secret?: boolean;
}

/**
 * Declares a variable: the trimming policy, then `parse` on what is left. A refusal becomes an issue
 * `expected …, got …` (the value quoted, or described when secret).
 */
export function envVar<T>(
  declaration: Declaration<T> & { default: T },
  parse: (value: string) => T | Invalid,
): EnvSchema<T>;
export function envVar<T>(
  declaration: Declaration<T>,
  parse: (value: string) => T | Invalid,
): EnvSchema<T | undefined>;
export function envVar<T>(
  declaration: Declaration<T>,
  parse: (value: string) => T | Invalid,
): EnvSchema<T | undefined> {
  const secret = declaration.secret ?? false;
  const schema = z.preprocess(trimmed, z.string().optional()).transform((value, ctx) => {
    if (value === undefined) return declaration.default;
    const parsed = parse(value);
    if (!(parsed instanceof Invalid)) return parsed;
    const got = parsed.got ?? (secret ? `${value.length} characters` : JSON.stringify(value));
    ctx.issues.push({ code: 'custom', input: value, message: `expected ${parsed.expected}, got ${got}` });
    return z.NEVER;
  });
  schema.register(envRegistry, {
    group: declaration.group,
    description: declaration.description,
    default:
      declaration.defaultText ??
      (declaration.default === undefined ? undefined : `\`${String(declaration.default)}\``),
    example: declaration.example,
    secret,
  });
  return schema;
}

// The value parsers every group shares, so one kind of value reads and complains the same everywhere.

export const text = (value: string): string => value;

export const integer =
  (min: number, max: number) =>
  (value: string): number | Invalid =>
    /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max
      ? Number(value)
      : invalid(`an integer from ${min} to ${max}`);

/** An integer with only a lower bound (the simulator's knobs). */
export const atLeast =
  (min: number) =>
  (value: string): number | Invalid =>
    /^\d+$/.test(value) && Number.isSafeInteger(Number(value)) && Number(value) >= min
      ? Number(value)
      : invalid(`an integer ≥ ${min}`);

export const boolean = (value: string): boolean | Invalid =>
  value === 'true' || value === 'false' ? value === 'true' : invalid('"true" or "false"');

/** One of `values`, case-sensitive; `expected` words the message as the variable's docs do. */
export const oneOf =
  <const V extends string>(values: readonly V[], expected: string) =>
  (value: string): V | Invalid =>
    (values as readonly string[]).includes(value) ? (value as V) : invalid(expected);

/** A comma list, each item trimmed, empty items dropped. */
export const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

export const httpUrl = (value: string): URL | undefined => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
};
