// The peer gateway's composition: GraphQL Mesh v1 (compose-cli + @omnigraph/openapi) over the same
// OpenAPI file the gateway's Atlas client is generated from. Run by bench/peer/peer-gateway.ts as
// `mesh-compose -o <tmp>` with BENCH_PEER_SPEC set; plain JS so the root typecheck does not need the
// peer's packages installed.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const source = process.env.BENCH_PEER_SPEC;
if (!source) throw new Error('BENCH_PEER_SPEC: the path of schema/atlas/openapi.json is required');

/**
 * Mesh links nothing (the spec has no OpenAPI links), so the dashboard and detail queries could not
 * be asked in one request. These fields add the links, one upstream call per parent, as Mesh's docs
 * show (`@resolveTo`); nothing else is added, so it stays stock Mesh.
 */
const link = (field, type, sourceFieldName, args, selection) =>
  `${field}: ${type} @resolveTo(sourceName: "Atlas", sourceTypeName: "Query", sourceFieldName: "${sourceFieldName}", requiredSelectionSet: "${selection}", sourceArgs: ${args})`;
const ofProject = '{ groupId: "{root.id}" }';
const ofTenant = '{ groupId: "{root.groupId}", clusterName: "{root.name}" }';
const ofFlex = '{ groupId: "{root.groupId}", name: "{root.name}", itemsPerPage: "{args.itemsPerPage}" }';

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('Atlas', {
        source,
        // Placeholders stay in the supergraph and are filled from the gateway's environment.
        endpoint: '{env.ATLAS_BASE_URL}',
        operationHeaders: { Authorization: 'Bearer {env.ATLAS_TOKEN}' },
      }),
    },
  ],
  additionalTypeDefs: /* GraphQL */ `
    extend type Group {
      ${link('clusters', 'listGroupClusters_response', 'listGroupClusters', ofProject, '{ id }')}
      ${link('flexClusters', 'listGroupFlexClusters_response', 'listGroupFlexClusters', ofProject, '{ id }')}
    }
    extend type Cluster_Description {
      ${link('snapshots', 'listGroupClusterBackupTenantSnapshots_response', 'listGroupClusterBackupTenantSnapshots', ofTenant, '{ groupId name }')}
      ${link('restoreJobs', 'listGroupClusterBackupTenantRestores_response', 'listGroupClusterBackupTenantRestores', ofTenant, '{ groupId name }')}
    }
    extend type Flex_Cluster_Description {
      ${link('snapshots(itemsPerPage: Int)', 'listGroupFlexClusterBackupSnapshots_response', 'listGroupFlexClusterBackupSnapshots', ofFlex, '{ groupId name }')}
      ${link('restoreJobs(itemsPerPage: Int)', 'listGroupFlexClusterBackupRestoreJobs_response', 'listGroupFlexClusterBackupRestoreJobs', ofFlex, '{ groupId name }')}
    }
  `,
});
