import { AtlasApiError } from '../atlas/errors.js';
import { GatewayError } from '../errors/index.js';
import type { FamilyCache } from './family-cache.js';
import type { ClusterRef, Family } from './model.js';

/** One implementation per family of the same backup call. */
export interface FamilyCalls<T> {
  TENANT: () => Promise<T>;
  FLEX: () => Promise<T>;
}

const other = (f: Family): Family => (f === 'FLEX' ? 'TENANT' : 'FLEX');

/**
 * The family Atlas itself says serves this cluster, read off an error of the other family's route,
 * the way the Atlas CLI reads them (`internal/cli/backup/{snapshots,restores}` watch: the Flex route
 * first, the other API on any of the first three codes):
 * - `CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API`: a Flex route on a non-Flex cluster;
 * - `FEATURE_UNSUPPORTED` or `CLUSTER_NOT_FOUND` from a Flex route: no Flex cluster by that name, so
 *   maybe a tenant one (weaker: `isWeakSignal`);
 * - `CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API`: a cluster/tenant route on a Flex cluster (CLI restores);
 * - 410 `VERSION_GONE` on a tenant route: past the 2026-01-22 sunset, migrated M2/M5 are Flex;
 * - `CLUSTER_NOT_FOUND` from a tenant route: no tenant cluster by that name, so maybe a Flex one (weak).
 */
export function familySignal(err: unknown, tried: Family): Family | undefined {
  if (!(err instanceof AtlasApiError)) return undefined;
  if (tried === 'FLEX') {
    if (err.errorCode === 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API') return 'TENANT';
    if (err.errorCode === 'FEATURE_UNSUPPORTED') return 'TENANT';
    if (err.status === 404 && err.errorCode === 'CLUSTER_NOT_FOUND') return 'TENANT';
    return undefined;
  }
  if (err.errorCode === 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API') return 'FLEX';
  if (err.status === 410 && err.errorCode === 'VERSION_GONE') return 'FLEX';
  if (err.status === 404 && err.errorCode === 'CLUSTER_NOT_FOUND') return 'FLEX';
  return undefined;
}

/**
 * A signal that only says "not this family" (no cluster by that name here, or the route does not
 * apply): worth asking the other family, but not worth remembering until that family answers.
 */
export function isWeakSignal(err: unknown): boolean {
  return (
    err instanceof AtlasApiError &&
    (err.errorCode === 'CLUSTER_NOT_FOUND' || err.errorCode === 'FEATURE_UNSUPPORTED')
  );
}

/**
 * The cluster exists (one family named it as the other's) but neither family serves its backups: a
 * dedicated (M10+) or M0 cluster. Always the same answer for the same cluster, whatever the family
 * cache holds, so a client never sees GONE on one request and BAD_USER_INPUT on the next; nullable
 * reads answer null (`nullIfMissing`), mutations NOT_FOUND.
 */
export class NotSharedOrFlexError extends GatewayError {
  constructor(
    readonly ref: ClusterRef,
    cause: unknown,
  ) {
    super(
      'NOT_FOUND',
      `Cluster ${ref.clusterName} is not a shared-tier (M2/M5) or Flex cluster: this API serves no backups for it.`,
      { extensions: { reason: 'NOT_SHARED_TIER_OR_FLEX' }, cause },
    );
  }
}

/** A CANNOT_USE_* answer: Atlas knows the cluster, as the other family's. */
const namesCluster = (err: unknown) =>
  err instanceof AtlasApiError && err.errorCode.startsWith('CANNOT_USE_');

/**
 * What two refusals say together, when the second is a signal too (back to the first family, or
 * "no such cluster"): if either named the cluster (CANNOT_USE_*), it exists but neither family
 * serves it; otherwise it does not exist at all.
 */
function bothRefused(
  first: Family,
  firstErr: unknown,
  secondErr: unknown,
): 'neither' | 'missing' | undefined {
  const back = familySignal(secondErr, other(first)) === first;
  if (!back && !isWeakSignal(secondErr)) return undefined;
  return namesCluster(firstErr) || namesCluster(secondErr) ? 'neither' : 'missing';
}

/**
 * Runs a backup call on the family that serves the cluster. Unknown clusters try Flex first: after
 * the tenant sunset nearly every shared cluster is Flex, so the first guess is usually right. When
 * Atlas answers with a family signal, the call is made once on the other family; a strong signal is
 * learned at once, a weak one (`isWeakSignal`) only when the other family answers. Two refusals that
 * together say "neither family" reject with `NotSharedOrFlexError`; any other error is the caller's.
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
    const next = familySignal(err, first);
    if (!next) throw err;
    if (!isWeakSignal(err)) cache.set(ref, next);
    try {
      const result = await calls[next]();
      cache.set(ref, next);
      return result;
    } catch (second) {
      const verdict = bothRefused(first, err, second);
      if (verdict === 'neither') throw new NotSharedOrFlexError(ref, second);
      // Atlas's own 404: the cluster does not exist (null, or NOT_FOUND), whichever family said so.
      if (verdict === 'missing') throw isWeakSignal(second) ? second : err;
      throw second;
    }
  }
}
