/**
 * The second half of `npm run build` (the first is the Dockerfile's own tsc command, writing build/):
 * gives build/ the image's layout. The compiled code finds schema/*.graphql and
 * schema/atlas/openapi.json relative to its own files (`new URL('../../schema/', import.meta.url)`),
 * so build/schema must sit next to build/src as /app/schema sits next to /app/src in the image; a
 * symlink keeps one copy of the schema, always current. Then a stamp, which the bench compares with
 * the sources' modification times to rebuild a stale build (bench/built-gateway.ts).
 */
import { lstat, rm, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const BUILD = new URL('../build/', import.meta.url);

const link = fileURLToPath(new URL('schema', BUILD));
const existing = await lstat(link).catch(() => undefined);
if (existing) await rm(link, { recursive: true, force: true });
await symlink('../schema', link, 'dir');
await writeFile(new URL('.built', BUILD), `${new Date().toISOString()}\n`);
