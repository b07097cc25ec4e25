import { readFile } from 'node:fs/promises';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';
import { breakDiscriminatorCycles } from '../../src/atlas/codegen.js';

const root = new URL('../../', import.meta.url);

describe('src/atlas/generated/openapi.ts', () => {
  it('is what src/atlas/codegen.ts makes of schema/atlas/openapi.json (run it after a spec change)', async () => {
    const spec = JSON.parse(await readFile(new URL('schema/atlas/openapi.json', root), 'utf8')) as OpenAPI3;
    const expected = COMMENT_HEADER + astToString(await openapiTS(breakDiscriminatorCycles(spec)));
    const actual = await readFile(new URL('src/atlas/generated/openapi.ts', root), 'utf8');
    expect(actual === expected).toBe(true);
  });

  it('leaves the spec itself untouched and keeps the discriminator values', () => {
    const spec = {
      openapi: '3.0.1',
      info: { title: 't', version: '1' },
      paths: {},
      components: {
        schemas: {
          Parent: {
            type: 'object',
            properties: { kind: { type: 'string' } },
            required: ['kind'],
            discriminator: { propertyName: 'kind', mapping: { A: '#/components/schemas/A' } },
            oneOf: [{ $ref: '#/components/schemas/A' }],
          },
          A: { allOf: [{ $ref: '#/components/schemas/Parent' }, { properties: { a: { type: 'string' } } }] },
        },
      },
    } as unknown as OpenAPI3;
    const before = JSON.stringify(spec);
    const fixed = breakDiscriminatorCycles(spec);
    expect(JSON.stringify(spec)).toBe(before);
    expect(fixed.components?.schemas?.A).toEqual({
      allOf: [
        { type: 'object', properties: { kind: { type: 'string' } }, required: ['kind'] },
        { properties: { a: { type: 'string' } } },
        { type: 'object', properties: { kind: { type: 'string', enum: ['A'] } }, required: ['kind'] },
      ],
    });
  });
});
