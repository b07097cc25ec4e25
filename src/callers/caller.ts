/** What a caller may do in a project (Atlas: reads need Read Only, download/restore need Owner). */
export type Right = 'read' | 'download' | 'restore';

export const ALL_RIGHTS: ReadonlySet<Right> = new Set<Right>(['read', 'download', 'restore']);

/** Who is calling the gateway, and what they may touch. Made once per request by `Authenticate`. */
export interface Caller {
  /** Stable id for logs and rate limits (API key id, JWT subject, …); never a secret. */
  id: string;
  kind: 'apiKey' | 'jwt' | 'passThrough' | 'open';
  /** Projects the caller may use; `all` for open access and pass-through (Atlas itself decides). */
  projects: ReadonlySet<string> | 'all';
  rights: ReadonlySet<Right>;
  /** Pass-through: the caller's own Atlas access token, sent upstream instead of the gateway's. */
  atlasBearerToken?: string;
}

/** The caller of open access (demo mode, or `GATEWAY_AUTH=none`). */
export const OPEN_CALLER: Caller = { id: 'anonymous', kind: 'open', projects: 'all', rights: ALL_RIGHTS };

/**
 * Everyone is the open caller: demo mode, or `GATEWAY_AUTH=none` said on purpose. Never a default:
 * whoever builds a gateway names it.
 */
export const openAccess: Authenticate = async () => OPEN_CALLER;

/**
 * Identifies the caller of one HTTP request, or throws a `GatewayError('UNAUTHENTICATED')`.
 * The gateway calls it once per request, before anything else runs.
 */
export type Authenticate = (request: Request) => Promise<Caller>;

export function canSeeProject(caller: Caller, projectId: string): boolean {
  return caller.projects === 'all' || caller.projects.has(projectId);
}
