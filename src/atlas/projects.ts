import type { AtlasHttp, AtlasOperation, CallOptions } from './atlas-http.js';
import type { components, paths } from './generated/openapi.js';
import { collectAll, pageQuery, type AtlasPage, type CollectOptions, type PageParams } from './paginate.js';
import { parseObject, parsePage } from './parse-body.js';

/** An Atlas project (`Group` in the spec). */
export type AtlasGroup = components['schemas']['Group'];

const MEDIA_TYPE = 'application/vnd.atlas.2023-01-01+json';

const OPS = {
  listGroups: {
    id: 'listGroups',
    method: 'GET',
    path: '/api/atlas/v2/groups' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'projects',
  },
  getGroup: {
    id: 'getGroup',
    method: 'GET',
    path: '/api/atlas/v2/groups/{groupId}' satisfies keyof paths,
    mediaType: MEDIA_TYPE,
    readKind: 'projects',
  },
} as const satisfies Record<string, AtlasOperation>;

/** `/groups`: the projects a credential can see. */
export interface ProjectsApi {
  listGroups(params?: PageParams, options?: CallOptions): Promise<AtlasPage<AtlasGroup>>;
  /** Every page of `listGroups`. */
  listAllGroups(options?: CallOptions & CollectOptions): Promise<AtlasGroup[]>;
  getGroup(args: { groupId: string }, options?: CallOptions): Promise<AtlasGroup>;
}

export function createProjectsApi(http: AtlasHttp): ProjectsApi {
  const api: ProjectsApi = {
    listGroups: (params, options) =>
      http.call(
        OPS.listGroups,
        { query: pageQuery(params, OPS.listGroups.id), options },
        parsePage<AtlasGroup>,
      ),
    listAllGroups: (options = {}) => collectAll((p) => api.listGroups(p, options), options),
    getGroup: ({ groupId }, options) =>
      http.call(OPS.getGroup, { pathParams: { groupId }, options }, parseObject<AtlasGroup>),
  };
  return api;
}
