/**
 * The subset of `schema/schema.graphql` and `schema/jobs.graphql` the bench's operations use, with the
 * same names and types, so the very same documents run against the naive server and the gateway.
 */
export const NAIVE_TYPE_DEFS = /* GraphQL */ `
  scalar DateTime
  enum BackupFamily {
    TENANT
    FLEX
  }
  enum JobStatus {
    PENDING
    QUEUED
    RUNNING
    COMPLETED
    FAILED
  }
  enum DeliveryType {
    DOWNLOAD
    RESTORE
  }
  enum ClusterState {
    IDLE
    CREATING
    UPDATING
    DELETING
    REPAIRING
  }
  enum CloudProvider {
    AWS
    GCP
    AZURE
  }
  type Query {
    projects: [Project!]!
    project(id: ID!): Project
    cluster(projectId: ID!, name: String!): Cluster
    snapshot(projectId: ID!, clusterName: String!, id: ID!): Snapshot
    restoreJob(projectId: ID!, clusterName: String!, id: ID!): RestoreJob
  }
  type Project {
    id: ID!
    name: String!
    orgId: ID!
    clusters: [Cluster!]!
    cluster(name: String!): Cluster
  }
  type Cluster {
    id: ID!
    name: String!
    projectId: ID!
    project: Project
    family: BackupFamily!
    instanceSize: String!
    backingProvider: CloudProvider
    region: String
    state: ClusterState
    mongoDBVersion: String
    backupEnabled: Boolean!
    createDate: DateTime
    snapshots(first: Int = 20, after: String): SnapshotConnection!
    snapshot(id: ID!): Snapshot
    restoreJobs(first: Int = 20, after: String): RestoreJobConnection!
  }
  type Snapshot {
    id: ID!
    status: JobStatus!
    cluster: Cluster!
    mongoDBVersion: String
    scheduledTime: DateTime
    startTime: DateTime
    finishTime: DateTime
    expiration: DateTime
    restoreJobs(first: Int = 20, after: String): RestoreJobConnection!
  }
  type RestoreJob {
    id: ID!
    status: JobStatus!
    deliveryType: DeliveryType!
    cluster: Cluster!
    snapshotId: ID!
    snapshot: Snapshot
    snapshotUrl: String
    expirationDate: DateTime
    isTerminal: Boolean!
  }
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }
  type SnapshotConnection {
    nodes: [Snapshot!]!
    totalCount: Int
    pageInfo: PageInfo!
  }
  type RestoreJobConnection {
    nodes: [RestoreJob!]!
    totalCount: Int
    pageInfo: PageInfo!
  }
  input RequestDownloadInput {
    projectId: ID!
    clusterName: String!
    snapshotId: ID!
    idempotencyKey: String
    reuseExisting: Boolean = true
  }
  type RequestDownloadPayload {
    job: RestoreJob!
    reused: Boolean!
  }
  type Mutation {
    requestDownload(input: RequestDownloadInput!): RequestDownloadPayload!
  }
  type Subscription {
    restoreJobStatus(projectId: ID!, clusterName: String!, jobId: ID!): RestoreJob!
  }
`;
