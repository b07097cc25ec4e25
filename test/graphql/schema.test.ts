import { buildSchema, isEnumType, isInputObjectType, isObjectType, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadTypeDefs } from '../../src/graphql/type-defs.js';

const schema: GraphQLSchema = buildSchema(loadTypeDefs().join('\n'));

describe('the GraphQL schema', () => {
  it('has the names docs/design.md fixes, as written', () => {
    const fields = (type: string) =>
      Object.keys((schema.getType(type) as { getFields(): object }).getFields());
    expect(fields('Query')).toEqual(
      expect.arrayContaining(['projects', 'project', 'cluster', 'snapshot', 'restoreJob']),
    );
    expect(fields('Project')).toEqual(expect.arrayContaining(['id', 'name', 'clusters', 'cluster']));
    expect(fields('Cluster')).toEqual(
      expect.arrayContaining(['id', 'name', 'projectId', 'family', 'snapshots', 'snapshot', 'restoreJobs']),
    );
    expect(fields('Snapshot')).toEqual(
      expect.arrayContaining([
        'id',
        'status',
        'cluster',
        'mongoDBVersion',
        'scheduledTime',
        'startTime',
        'finishTime',
        'expiration',
      ]),
    );
    expect(fields('RestoreJob')).toEqual(
      expect.arrayContaining([
        'id',
        'status',
        'deliveryType',
        'cluster',
        'snapshotId',
        'snapshot',
        'snapshotUrl',
        'expirationDate',
        'restoreScheduledDate',
        'restoreFinishedDate',
        'snapshotFinishedDate',
        'targetProjectId',
        'targetDeploymentItemName',
        'isTerminal',
      ]),
    );
    for (const c of ['SnapshotConnection', 'RestoreJobConnection'])
      expect(fields(c)).toEqual(['nodes', 'totalCount', 'pageInfo']);
    expect(fields('PageInfo')).toEqual(['hasNextPage', 'endCursor']);
    const values = (e: string) => {
      const type = schema.getType(e);
      if (!isEnumType(type)) throw new Error(`${e} is not an enum`);
      return type.getValues().map((v) => v.name);
    };
    expect(values('BackupFamily')).toEqual(['TENANT', 'FLEX']);
    // UNKNOWN: Atlas adds values without a new API version; the `…Raw` fields keep what it sent.
    expect(values('JobStatus')).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'UNKNOWN']);
    expect(values('DeliveryType')).toEqual(['DOWNLOAD', 'RESTORE', 'UNKNOWN']);
  });

  it('describes every type, field and enum value (GraphiQL shows them)', () => {
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name))
        continue;
      if (!type.description && !['Query', 'Mutation', 'Subscription'].includes(type.name))
        missing.push(type.name);
      if (isObjectType(type) || isInputObjectType(type)) {
        for (const f of Object.values(type.getFields())) {
          if (!f.description) missing.push(`${type.name}.${f.name}`);
        }
      }
      if (isEnumType(type))
        for (const v of type.getValues()) if (!v.description) missing.push(`${type.name}.${v.name}`);
    }
    expect(missing).toEqual([]);
  });

  it('deprecates what Atlas deprecates: the tenant family', () => {
    const family = schema.getType('BackupFamily');
    if (!isEnumType(family)) throw new Error('BackupFamily is not an enum');
    expect(family.getValue('TENANT')?.deprecationReason).toMatch(/2026-01-22/);
  });
});
