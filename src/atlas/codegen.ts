/**
 * Generates `src/atlas/generated/openapi.ts` from `schema/atlas/openapi.json` with openapi-typescript,
 * after one fix to a copy of the schema in memory (the spec file itself stays verbatim).
 *
 * Why: Atlas puts `discriminator` + `oneOf: [Child…]` on a parent (ClusterProviderSettings,
 * CloudRegionConfig, …) whose children say `allOf: [{$ref: Parent}, …]`. openapi-typescript 7 turns
 * that into `Parent = {…} & (Child | …)` and `Child = Omit<Parent, …> & {…}`, a cycle tsc rejects
 * (TS2502; openapi-ts/openapi-typescript#1665, open). Each child's back-reference is replaced by the
 * parent's own fields (without its oneOf/discriminator), which is what the `allOf` contributes
 * anyway, plus the child's discriminator value from the mapping: the parent keeps its tagged union
 * and the cycle is gone.
 *
 * Usage: `tsx src/atlas/codegen.ts [--check]` (`--check` fails when the file is out of date).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3, type SchemaObject } from 'openapi-typescript';

const root = new URL('../../', import.meta.url);
const input = new URL('schema/atlas/openapi.json', root);
const output = new URL('src/atlas/generated/openapi.ts', root);

type Schemas = Record<string, SchemaObject | { $ref: string }>;

/** Replaces `allOf: [{$ref: Parent}]` in the children of a `discriminator` + `oneOf` parent. */
export function breakDiscriminatorCycles(spec: OpenAPI3): OpenAPI3 {
  const copy = structuredClone(spec);
  const schemas = (copy.components?.schemas ?? {}) as Schemas;
  const prefix = '#/components/schemas/';
  for (const [parentName, parent] of Object.entries(schemas)) {
    if ('$ref' in parent || !parent.discriminator || !('oneOf' in parent) || !parent.oneOf) continue;
    const { oneOf: _oneOf, discriminator, ...ownFields } = parent;
    const valueOf = new Map(Object.entries(discriminator.mapping ?? {}).map(([value, ref]) => [ref, value]));
    for (const member of parent.oneOf) {
      if (!('$ref' in member) || !member.$ref.startsWith(prefix)) continue;
      const child = schemas[member.$ref.slice(prefix.length)];
      if (!child || '$ref' in child || !('allOf' in child) || !child.allOf) continue;
      child.allOf = child.allOf.map((part) =>
        '$ref' in part && part.$ref === `${prefix}${parentName}` ? structuredClone(ownFields) : part,
      );
      // The discriminator value openapi-typescript would have added, so the parent stays a tagged union.
      const value = valueOf.get(member.$ref);
      if (value !== undefined) {
        child.allOf.push({
          type: 'object',
          properties: { [discriminator.propertyName]: { type: 'string', enum: [value] } },
          required: [discriminator.propertyName],
        });
      }
    }
  }
  return copy;
}

async function main(): Promise<void> {
  const spec = JSON.parse(await readFile(input, 'utf8')) as OpenAPI3;
  const ast = await openapiTS(breakDiscriminatorCycles(spec));
  const contents = COMMENT_HEADER + astToString(ast);
  if (process.argv.includes('--check')) {
    const current = await readFile(output, 'utf8').catch(() => '');
    if (current !== contents) {
      console.error(`${fileURLToPath(output)} is out of date: run tsx src/atlas/codegen.ts`);
      process.exit(1);
    }
    return;
  }
  await writeFile(output, contents);
  console.log(`wrote ${fileURLToPath(output)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
