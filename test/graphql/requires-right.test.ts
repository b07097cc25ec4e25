import { makeExecutableSchema } from '@graphql-tools/schema';
import { buildSchema, execute, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Caller, Right } from '../../src/callers/caller.js';
import { enforceRequiredRights, fieldsRequiringRights } from '../../src/graphql/requires-right.js';
import { loadTypeDefs } from '../../src/graphql/type-defs.js';

const caller = (rights: Right[], projects: Caller['projects'] = 'all'): Caller => ({
  id: 'svc',
  kind: 'apiKey',
  projects,
  rights: new Set(rights),
});

// A schema of its own, so the wrapper is seen apart from the gateway's resolvers: `secret` has no
// resolver of its own (graphql's default reads the property), `loud` has one.
const SDL = `
enum Right { READ DOWNLOAD RESTORE }
directive @requiresRight(right: Right!) on FIELD_DEFINITION
type Thing {
  name: String
  secret: String @requiresRight(right: DOWNLOAD)
  loud: String @requiresRight(right: RESTORE)
}
type Query { thing: Thing }
`;

async function run(c: Caller, thing: Record<string, unknown>) {
  const schema = enforceRequiredRights(
    makeExecutableSchema({
      typeDefs: SDL,
      resolvers: {
        Query: { thing: () => thing },
        Thing: { loud: (t: { secret?: string }) => t.secret?.toUpperCase() ?? null },
      },
    }),
  );
  const result = await execute({
    schema,
    document: parse('{ thing { name secret loud } }'),
    contextValue: { caller: c },
  });
  return JSON.parse(JSON.stringify(result)) as unknown;
}

describe('@requiresRight', () => {
  it('is on exactly the fields that grant data: RestoreJob.snapshotUrl and downloadUrl need download', () => {
    const schema = buildSchema(loadTypeDefs().join('\n'));
    expect(Object.fromEntries(fieldsRequiringRights(schema))).toEqual({
      'RestoreJob.snapshotUrl': 'download',
      'RestoreJob.downloadUrl': 'download',
    });
  });

  it('runs the field (default resolver or its own) for a caller holding the right in the project', async () => {
    expect(
      await run(caller(['download', 'restore'], new Set(['p1'])), {
        projectId: 'p1',
        name: 'n',
        secret: 's',
      }),
    ).toEqual({
      data: { thing: { name: 'n', secret: 's', loud: 'S' } },
    });
  });

  it('answers null and FORBIDDEN (extensions.right) on each field whose right the caller lacks', async () => {
    expect(await run(caller(['read', 'download']), { projectId: 'p1', name: 'n', secret: 's' })).toEqual({
      data: { thing: { name: 'n', secret: 's', loud: null } },
      errors: [
        {
          message: 'This caller may not restore in project p1.',
          locations: [{ line: 1, column: 23 }],
          path: ['thing', 'loud'],
          // (`code: FORBIDDEN` is added by the gateway's error mapping, src/graphql/errors.ts.)
          extensions: { right: 'restore' },
        },
      ],
    });
  });

  it('fails closed when the parent carries no project id: no value, an error to mask', async () => {
    const result = (await run(caller(['download', 'restore']), { name: 'n', secret: 's' })) as {
      data: unknown;
      errors: { message: string }[];
    };
    expect(result.data).toEqual({ thing: { name: 'n', secret: null, loud: null } });
    expect(result.errors.map((e) => e.message)).toEqual([
      '@requiresRight on Thing.secret: the parent object carries no projectId',
      '@requiresRight on Thing.loud: the parent object carries no projectId',
    ]);
  });

  it('answers a project outside the caller’s list as NOT_FOUND, as requireAccess does', async () => {
    const result = (await run(caller(['download', 'restore'], new Set(['p1'])), {
      projectId: 'p2',
      secret: 's',
    })) as { errors: { message: string }[] };
    expect(result.errors.map((e) => e.message)).toEqual([
      'No project with id p2 exists.',
      'No project with id p2 exists.',
    ]);
  });
});
