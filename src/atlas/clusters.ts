import type { AtlasHttp, AtlasOperation, CallOptions } from './atlas-http.js';
import type { components, paths } from './generated/openapi.js';
import { collectAll, pageQuery, type AtlasPage, type CollectOptions, type PageParams } from './paginate.js';
import { parseObject, parsePage } from './parse-body.js';

/** A cluster as version 2024-08-05 describes it (tenant M0/M2/M5 and dedicated alike). */
export type AtlasCluster = components['schemas']['ClusterDescription20240805'];

/**
 * Pinned: the spec offers 2023-01-01, 2023-02-01 and 2024-08-05 here, and Atlas answered
 * `VERSION_GONE` for 2023-02-01 before its announced sunset (CLI#4472).
 */
const MEDIA_TYPE = 'application/vnd.atlas.2024-08-05+json';

const OPS = {
  listGroupClusters: {
    id: 'listGroupClusters',
    method: 'GET',
    path: '/api/atlas/v2/groups/{groupId}/clusters' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'clusters',
  },
  getGroupCluster: {
    id: 'getGroupCluster',
    method: 'GET',
    path: '/api/atlas/v2/groups/{groupId}/clusters/{clusterName}' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'clusters',
  },
} as const satisfies Record<string, AtlasOperation>;

/** `/groups/{groupId}/clusters`. */
export interface ClustersApi {
  listGroupClusters(
    args: { groupId: string } & PageParams,
    options?: CallOptions,
  ): Promise<AtlasPage<AtlasCluster>>;
  /** Every page of `listGroupClusters`. */
  listAllGroupClusters(
    args: { groupId: string },
    options?: CallOptions & CollectOptions,
  ): Promise<AtlasCluster[]>;
  getGroupCluster(
    args: { groupId: string; clusterName: string },
    options?: CallOptions,
  ): Promise<AtlasCluster>;
}

export function createClustersApi(http: AtlasHttp): ClustersApi {
  const api: ClustersApi = {
    listGroupClusters: ({ groupId, ...page }, options) =>
      http.call(
        OPS.listGroupClusters,
        { pathParams: { groupId }, query: pageQuery(page, OPS.listGroupClusters.id), options },
        parsePage<AtlasCluster>,
      ),
    listAllGroupClusters: ({ groupId }, options = {}) =>
      collectAll((p) => api.listGroupClusters({ groupId, ...p }, options), options),
    getGroupCluster: ({ groupId, clusterName }, options) =>
      http.call(
        OPS.getGroupCluster,
        { pathParams: { groupId, clusterName }, options },
        parseObject<AtlasCluster>,
      ),
  };
  return api;
}
