import type { AtlasHttp, AtlasOperation, CallOptions } from './atlas-http.js';
import type { components, paths } from './generated/openapi.js';
import { collectAll, pageQuery, type AtlasPage, type CollectOptions, type PageParams } from './paginate.js';
import { parseObject, parsePage } from './parse-body.js';

export type FlexCluster = components['schemas']['FlexClusterDescription20241113'];

const MEDIA_TYPE = 'application/vnd.atlas.2024-11-13+json';

const OPS = {
  listGroupFlexClusters: {
    id: 'listGroupFlexClusters',
    method: 'GET',
    path: '/api/atlas/v2/groups/{groupId}/flexClusters' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'clusters',
  },
  getGroupFlexCluster: {
    id: 'getGroupFlexCluster',
    method: 'GET',
    path: '/api/atlas/v2/groups/{groupId}/flexClusters/{name}' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'clusters',
  },
} as const satisfies Record<string, AtlasOperation>;

/** `/groups/{groupId}/flexClusters` (Flex uses `name` where clusters use `clusterName`). */
export interface FlexClustersApi {
  listGroupFlexClusters(
    args: { groupId: string } & PageParams,
    options?: CallOptions,
  ): Promise<AtlasPage<FlexCluster>>;
  /** Every page of `listGroupFlexClusters`. */
  listAllGroupFlexClusters(
    args: { groupId: string },
    options?: CallOptions & CollectOptions,
  ): Promise<FlexCluster[]>;
  getGroupFlexCluster(args: { groupId: string; name: string }, options?: CallOptions): Promise<FlexCluster>;
}

export function createFlexClustersApi(http: AtlasHttp): FlexClustersApi {
  const api: FlexClustersApi = {
    listGroupFlexClusters: ({ groupId, ...page }, options) =>
      http.call(
        OPS.listGroupFlexClusters,
        { pathParams: { groupId }, query: pageQuery(page, OPS.listGroupFlexClusters.id), options },
        parsePage<FlexCluster>,
      ),
    listAllGroupFlexClusters: ({ groupId }, options = {}) =>
      collectAll((p) => api.listGroupFlexClusters({ groupId, ...p }, options), options),
    getGroupFlexCluster: ({ groupId, name }, options) =>
      http.call(
        OPS.getGroupFlexCluster,
        { pathParams: { groupId, name }, options },
        parseObject<FlexCluster>,
      ),
  };
  return api;
}
