/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> =
  T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
/** Which Atlas REST family serves a cluster's backups. */
export type BackupFamily =
  /** The Flex cluster `flexClusters/{name}/backup` routes. */
  | 'FLEX'
  /**
   * The shared-tier (M2/M5) `backup/tenant` routes. Atlas sunset them on 2026-01-22; migrated clusters
   * are served from the Flex routes.
   */
  | 'TENANT';

/** The cloud provider under a shared or Flex cluster (Atlas's `backingProviderName`). */
export type CloudProvider =
  /** Amazon Web Services. */
  | 'AWS'
  /** Microsoft Azure. */
  | 'AZURE'
  /** Google Cloud. */
  | 'GCP'
  /** A provider this gateway does not know yet; `backingProviderRaw` has it as sent. */
  | 'UNKNOWN';

/** How a restore job delivers its snapshot. */
export type DeliveryType =
  /** A `.tgz` of the data files at `snapshotUrl`, valid for four hours. */
  | 'DOWNLOAD'
  /** Restored into a target cluster. */
  | 'RESTORE'
  /** A delivery type this gateway does not know yet; `deliveryTypeRaw` has it as sent. */
  | 'UNKNOWN';

/** Status of a snapshot or a restore/download job: the one enum Atlas shares between both families. */
export type JobStatus =
  /** Done; for a download job `snapshotUrl` is set. */
  | 'COMPLETED'
  /** Ended without a result. */
  | 'FAILED'
  /** Accepted, not yet queued. */
  | 'PENDING'
  /** Waiting for a worker. */
  | 'QUEUED'
  /** In progress. */
  | 'RUNNING'
  /**
   * A value Atlas sent that this gateway does not know yet (Atlas adds values without a new API
   * version); `statusRaw` has it as sent.
   */
  | 'UNKNOWN';

export type TypedClientDashboardQueryVariables = Exact<{
  snapshots: number;
  jobs: number;
}>;

export type TypedClientDashboardQuery = {
  projects: Array<{
    id: string;
    name: string;
    clusters: Array<{
      name: string;
      family: BackupFamily;
      instanceSize: string;
      backingProvider: CloudProvider | null;
      snapshots: {
        totalCount: number | null;
        nodes: Array<{ id: string; status: JobStatus; finishTime: string | null } | null>;
      };
      restoreJobs: {
        totalCount: number | null;
        nodes: Array<{ id: string; status: JobStatus; deliveryType: DeliveryType } | null>;
      };
    } | null>;
  } | null>;
};

export const TypedClientDashboardDocument = {
  kind: 'Document',
  definitions: [
    {
      kind: 'OperationDefinition',
      operation: 'query',
      name: { kind: 'Name', value: 'TypedClientDashboard' },
      variableDefinitions: [
        {
          kind: 'VariableDefinition',
          variable: { kind: 'Variable', name: { kind: 'Name', value: 'snapshots' } },
          type: { kind: 'NonNullType', type: { kind: 'NamedType', name: { kind: 'Name', value: 'Int' } } },
        },
        {
          kind: 'VariableDefinition',
          variable: { kind: 'Variable', name: { kind: 'Name', value: 'jobs' } },
          type: { kind: 'NonNullType', type: { kind: 'NamedType', name: { kind: 'Name', value: 'Int' } } },
        },
      ],
      selectionSet: {
        kind: 'SelectionSet',
        selections: [
          {
            kind: 'Field',
            name: { kind: 'Name', value: 'projects' },
            selectionSet: {
              kind: 'SelectionSet',
              selections: [
                { kind: 'Field', name: { kind: 'Name', value: 'id' } },
                { kind: 'Field', name: { kind: 'Name', value: 'name' } },
                {
                  kind: 'Field',
                  name: { kind: 'Name', value: 'clusters' },
                  selectionSet: {
                    kind: 'SelectionSet',
                    selections: [
                      { kind: 'Field', name: { kind: 'Name', value: 'name' } },
                      { kind: 'Field', name: { kind: 'Name', value: 'family' } },
                      { kind: 'Field', name: { kind: 'Name', value: 'instanceSize' } },
                      { kind: 'Field', name: { kind: 'Name', value: 'backingProvider' } },
                      {
                        kind: 'Field',
                        name: { kind: 'Name', value: 'snapshots' },
                        arguments: [
                          {
                            kind: 'Argument',
                            name: { kind: 'Name', value: 'first' },
                            value: { kind: 'Variable', name: { kind: 'Name', value: 'snapshots' } },
                          },
                        ],
                        selectionSet: {
                          kind: 'SelectionSet',
                          selections: [
                            { kind: 'Field', name: { kind: 'Name', value: 'totalCount' } },
                            {
                              kind: 'Field',
                              name: { kind: 'Name', value: 'nodes' },
                              selectionSet: {
                                kind: 'SelectionSet',
                                selections: [
                                  { kind: 'Field', name: { kind: 'Name', value: 'id' } },
                                  { kind: 'Field', name: { kind: 'Name', value: 'status' } },
                                  { kind: 'Field', name: { kind: 'Name', value: 'finishTime' } },
                                ],
                              },
                            },
                          ],
                        },
                      },
                      {
                        kind: 'Field',
                        name: { kind: 'Name', value: 'restoreJobs' },
                        arguments: [
                          {
                            kind: 'Argument',
                            name: { kind: 'Name', value: 'first' },
                            value: { kind: 'Variable', name: { kind: 'Name', value: 'jobs' } },
                          },
                        ],
                        selectionSet: {
                          kind: 'SelectionSet',
                          selections: [
                            { kind: 'Field', name: { kind: 'Name', value: 'totalCount' } },
                            {
                              kind: 'Field',
                              name: { kind: 'Name', value: 'nodes' },
                              selectionSet: {
                                kind: 'SelectionSet',
                                selections: [
                                  { kind: 'Field', name: { kind: 'Name', value: 'id' } },
                                  { kind: 'Field', name: { kind: 'Name', value: 'status' } },
                                  { kind: 'Field', name: { kind: 'Name', value: 'deliveryType' } },
                                ],
                              },
                            },
                          ],
                        },
                      },
                    ],
                  },
                },
              ],
            },
          },
        ],
      },
    },
  ],
} as unknown as DocumentNode<TypedClientDashboardQuery, TypedClientDashboardQueryVariables>;
