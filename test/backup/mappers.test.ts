import { JOB_STATUSES, readEnum, UnknownValues } from '../../src/backup/unknown-values.js';
import { describe, expect, it } from 'vitest';
import { clusterFields, isTenantBackupCluster, isTerminal } from '../../src/backup/mappers.js';
import type { ClusterSource } from '../../src/backup/model.js';

describe('mappers', () => {
  const tenant = {
    family: 'TENANT',
    projectId: 'p',
    dto: {
      id: 'c1',
      name: 'Cluster0',
      stateName: 'IDLE',
      mongoDBVersion: '8.0.4',
      backupEnabled: true,
      replicationSpecs: [
        {
          regionConfigs: [
            {
              providerName: 'TENANT',
              backingProviderName: 'GCP',
              regionName: 'CENTRAL_US',
              electableSpecs: { instanceSize: 'M5' },
            },
          ],
        },
      ],
    },
  } as unknown as ClusterSource;
  const flex = {
    family: 'FLEX',
    projectId: 'p',
    dto: {
      id: 'c2',
      name: 'f',
      stateName: 'UPDATING',
      providerSettings: { providerName: 'FLEX', backingProviderName: 'AZURE', regionName: 'EUROPE_WEST' },
    },
  } as unknown as ClusterSource;

  it('maps tenant clusterName/region configs and flex providerSettings into one shape', () => {
    expect(clusterFields(tenant)).toMatchObject({
      instanceSize: 'M5',
      backingProviderRaw: 'GCP',
      region: 'CENTRAL_US',
      stateRaw: 'IDLE',
    });
    expect(clusterFields(flex)).toMatchObject({
      instanceSize: 'FLEX',
      backingProviderRaw: 'AZURE',
      region: 'EUROPE_WEST',
      stateRaw: 'UPDATING',
      backupEnabled: true,
    });
  });

  it('serves tenant backups for M2/M5 only', () => {
    expect(isTenantBackupCluster(tenant.dto as never)).toBe(true);
    const m0 = structuredClone(tenant.dto) as {
      replicationSpecs: { regionConfigs: { electableSpecs: { instanceSize: string } }[] }[];
    };
    m0.replicationSpecs[0]!.regionConfigs[0]!.electableSpecs.instanceSize = 'M0';
    expect(isTenantBackupCluster(m0 as never)).toBe(false);
  });

  it('knows the terminal statuses', () => {
    expect(['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED'].map(isTerminal)).toEqual([
      false,
      false,
      false,
      true,
      true,
    ]);
  });
});

describe('reading enums from Atlas', () => {
  it('maps an unknown value to UNKNOWN, notes it once per value and counts every sighting', () => {
    const logged: string[] = [];
    const unknown = new UnknownValues((kind, raw) => logged.push(`${kind}:${raw}`));
    expect(readEnum('status', JOB_STATUSES, 'COMPLETED', unknown)).toBe('COMPLETED');
    expect(readEnum('status', JOB_STATUSES, 'CANCELLED', unknown)).toBe('UNKNOWN');
    expect(readEnum('status', JOB_STATUSES, 'CANCELLED', unknown)).toBe('UNKNOWN');
    expect(readEnum('status', JOB_STATUSES, 'CLOSED', unknown)).toBe('UNKNOWN');
    expect(readEnum('status', JOB_STATUSES, undefined, unknown)).toBeNull();
    expect(logged).toEqual(['status:CANCELLED', 'status:CLOSED']);
    expect(unknown.counts.status).toBe(3);
  });
});
