/**
 * The operations the bench measures, in the gateway's schema (also served by the naive baseline) and
 * their equivalents in the peer's schema (Mesh's: one field per REST operation, plus the links
 * bench/peer/mesh.config.mjs adds).
 */

/** The nested dashboard of test/graphql/read-model.test.ts, with the README example's fields. */
export const DASHBOARD = /* GraphQL */ `
  query Dashboard {
    projects {
      id
      name
      clusters {
        name
        family
        instanceSize
        backingProvider
        state
        snapshots(first: 5) {
          totalCount
          nodes {
            id
            status
            finishTime
            cluster {
              name
            }
          }
          pageInfo {
            hasNextPage
            endCursor
          }
        }
        restoreJobs(first: 5) {
          nodes {
            id
            status
            deliveryType
            snapshotId
            cluster {
              name
            }
          }
        }
      }
    }
  }
`;

/** Everything a cluster page shows. */
export const CLUSTER_DETAIL = /* GraphQL */ `
  query ClusterDetail($p: ID!, $c: String!) {
    cluster(projectId: $p, name: $c) {
      name
      family
      instanceSize
      backingProvider
      region
      state
      mongoDBVersion
      backupEnabled
      createDate
      project {
        name
      }
      snapshots(first: 10) {
        totalCount
        nodes {
          id
          status
          finishTime
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
      restoreJobs(first: 10) {
        totalCount
        nodes {
          id
          status
          deliveryType
          snapshotUrl
          expirationDate
          snapshot {
            id
            finishTime
          }
        }
      }
    }
  }
`;

/** A snapshot page: the snapshot, its cluster, the jobs made from it. */
export const SNAPSHOT_DETAIL = /* GraphQL */ `
  query SnapshotDetail($p: ID!, $c: String!, $s: ID!) {
    snapshot(projectId: $p, clusterName: $c, id: $s) {
      id
      status
      mongoDBVersion
      scheduledTime
      startTime
      finishTime
      expiration
      cluster {
        name
        family
        instanceSize
      }
      restoreJobs {
        totalCount
        nodes {
          id
          status
          deliveryType
          snapshotUrl
          expirationDate
        }
      }
    }
  }
`;

export const REQUEST_DOWNLOAD = /* GraphQL */ `
  mutation RequestDownload($i: RequestDownloadInput!) {
    requestDownload(input: $i) {
      reused
      job {
        id
        status
      }
    }
  }
`;

export const WATCH_JOB = /* GraphQL */ `
  subscription Watch($p: ID!, $c: String!, $j: ID!) {
    restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) {
      id
      status
      snapshotUrl
      expirationDate
    }
  }
`;

/** The single-snapshot query of the overhead section (literals: the same bytes every request). */
export const singleSnapshot = (p: string, c: string, s: string) =>
  `{ snapshot(projectId: "${p}", clusterName: "${c}", id: "${s}") { id status mongoDBVersion finishTime expiration } }`;

/** The peer's equivalents. Mesh exposes Atlas's operations and answers unions (result | ApiError). */
export const peer = {
  singleSnapshot: (p: string, c: string, s: string) =>
    `{ getGroupFlexClusterBackupSnapshot(groupId: "${p}", name: "${c}", snapshotId: "${s}") { ... on Flex_Backup_Snapshot { id status mongoDBVersion finishTime expiration } } }`,

  // No `cluster { name }` on the nodes: Mesh has no link back, and the client holds the name already.
  dashboard: /* GraphQL */ `
    {
      listGroups {
        ... on PaginatedAtlasGroupView {
          results {
            id
            name
            clusters {
              ... on PaginatedLegacyClusterView {
                results {
                  name
                  stateName
                  providerSettings {
                    ... on ClusterFreeProviderSettings {
                      instanceSizeName
                      backingProviderName
                    }
                  }
                  snapshots {
                    ... on PaginatedTenantSnapshotView {
                      totalCount
                      results {
                        id
                        status
                        finishTime
                      }
                    }
                  }
                  restoreJobs {
                    ... on PaginatedTenantRestoreView {
                      results {
                        id
                        status
                        deliveryType
                        snapshotId
                      }
                    }
                  }
                }
              }
            }
            flexClusters {
              ... on PaginatedFlexClusters20241113 {
                results {
                  name
                  stateName
                  providerSettings {
                    backingProviderName
                  }
                  snapshots(itemsPerPage: 5) {
                    ... on PaginatedApiAtlasFlexBackupSnapshot20241113View {
                      totalCount
                      results {
                        id
                        status
                        finishTime
                      }
                    }
                  }
                  restoreJobs(itemsPerPage: 5) {
                    ... on PaginatedApiAtlasFlexBackupRestoreJob20241113View {
                      results {
                        id
                        status
                        deliveryType
                        snapshotId
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  `,

  flexClusterDetail: (p: string, c: string) => `{
    getGroup(groupId: "${p}") { ... on Group { name } }
    getGroupFlexCluster(groupId: "${p}", name: "${c}") {
      ... on Flex_Cluster_Description {
        name stateName mongoDBVersion createDate providerSettings { backingProviderName regionName }
        snapshots(itemsPerPage: 10) { ... on PaginatedApiAtlasFlexBackupSnapshot20241113View { totalCount results { id status finishTime } } }
        restoreJobs(itemsPerPage: 10) { ... on PaginatedApiAtlasFlexBackupRestoreJob20241113View { totalCount results { id status deliveryType snapshotId snapshotUrl expirationDate } } }
      }
    }
  }`,

  tenantClusterDetail: (p: string, c: string) => `{
    getGroup(groupId: "${p}") { ... on Group { name } }
    getGroupCluster(groupId: "${p}", clusterName: "${c}") {
      ... on Cluster_Description {
        name stateName mongoDBVersion createDate backupEnabled
        snapshots { ... on PaginatedTenantSnapshotView { totalCount results { id status finishTime } } }
        restoreJobs { ... on PaginatedTenantRestoreView { totalCount results { id status deliveryType snapshotId snapshotUrl expirationDate } } }
      }
    }
  }`,

  // Atlas cannot list jobs by snapshot: the client filters the cluster's list.
  snapshotDetail: (p: string, c: string, s: string) => `{
    getGroupFlexClusterBackupSnapshot(groupId: "${p}", name: "${c}", snapshotId: "${s}") {
      ... on Flex_Backup_Snapshot { id status mongoDBVersion scheduledTime startTime finishTime expiration }
    }
    getGroupFlexCluster(groupId: "${p}", name: "${c}") { ... on Flex_Cluster_Description { name } }
    listGroupFlexClusterBackupRestoreJobs(groupId: "${p}", name: "${c}") {
      ... on PaginatedApiAtlasFlexBackupRestoreJob20241113View { totalCount results { id status deliveryType snapshotId snapshotUrl expirationDate } }
    }
  }`,

  download: (p: string, c: string, s: string) => `mutation {
    downloadGroupFlexClusterBackup(groupId: "${p}", name: "${c}", input: { snapshotId: "${s}" }) {
      ... on Flex_Backup_Restore_Job { id status }
      ... on ApiError { error errorCode detail }
    }
  }`,

  job: (p: string, c: string, j: string) => `{
    getGroupFlexClusterBackupRestoreJob(groupId: "${p}", name: "${c}", restoreJobId: "${j}") {
      ... on Flex_Backup_Restore_Job { id status snapshotUrl expirationDate }
      ... on ApiError { error errorCode detail }
    }
  }`,
};
