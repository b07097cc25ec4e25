import { readdirSync, readFileSync } from 'node:fs';

const SCHEMA_DIR = new URL('../../schema/', import.meta.url);

/** The SDL, schema first: every `schema/*.graphql`, in name order. */
export function loadTypeDefs(): string[] {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(new URL(f, SCHEMA_DIR), 'utf8'));
}
