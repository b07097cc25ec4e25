import { AtlasApiError } from '../atlas/errors.js';
import type { FamilyCache } from './family-cache.js';
import type { ClusterRef, Family } from './model.js';

/** One implementation per family of the same backup call. */
export interface FamilyCalls<T> {
  TENANT: () => Promise<T>;
  FLEX: () => Promise<T>;
}

/**
 * The family Atlas itself says serves this cluster, read off an error of the other family's route:
 * - `CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API`: a flex route on a tenant cluster (CLI backups watch);
 * - `CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API`: a cluster/tenant route on a flex cluster (CLI restores);
 * - 410 `VERSION_GONE` on a tenant route: past the 2026-01-22 sunset, migrated M2/M5 are Flex.
 */
export function familySignal(err: unknown, tried: Family): Family | undefined {
  if (!(err instanceof AtlasApiError)) return undefined;
  if (tried === 'FLEX' && err.errorCode === 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API') return 'TENANT';
  if (tried === 'TENANT' && err.errorCode === 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API') return 'FLEX';
  if (tried === 'TENANT' && err.status === 410 && err.errorCode === 'VERSION_GONE') return 'FLEX';
  return undefined;
}

/**
 * Runs a backup call on the family that serves the cluster. Unknown clusters try Flex first: after
 * the tenant sunset nearly every shared cluster is Flex, so the first guess is usually right. When
 * Atlas answers with a family signal, the cache learns it and the call is made once on the other
 * family; any other error is the caller's.
 */
export async function routeByFamily<T>(
  cache: FamilyCache,
  ref: ClusterRef,
  calls: FamilyCalls<T>,
): Promise<T> {
  const first: Family = (await cache.lookup(ref)) ?? 'FLEX';
  try {
    const result = await calls[first]();
    cache.set(ref, first);
    return result;
  } catch (err) {
    const other = familySignal(err, first);
    if (!other) throw err;
    cache.set(ref, other);
    return calls[other]();
  }
}
