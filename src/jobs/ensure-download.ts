import { createHash } from 'node:crypto';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';
import { GatewayError } from '../errors/index.js';
import { requestDownload, type JobRequestDeps, type JobRequestResult } from './job-requests.js';

export interface EnsureDownloadRequest extends ClusterRef {
  snapshotId: string;
  /** The download must stay usable at least this long (a COMPLETED job's link), in ms. */
  minValidityMs: number;
  /** As for `requestDownload`: repeats within 24 h share one job. */
  idempotencyKey?: string | undefined;
}

const ACTIVE = new Set(['PENDING', 'QUEUED', 'RUNNING']);

/**
 * Whether `job` serves a download for at least `minMs` from `now`: still in progress (its link will
 * be fresh when it completes), or COMPLETED with a link that expires far enough away.
 */
export function validFor(job: RestoreJobSource, now: number, minMs: number): boolean {
  const d = job.dto;
  if (ACTIVE.has(d.status ?? '')) return true;
  if (d.status !== 'COMPLETED' || !d.snapshotUrl) return false;
  return Date.parse(d.expirationDate ?? '') - now >= minMs;
}

// A key names one job for 24 h, which may outlive its link: the next request is keyed by the old job,
// so concurrent callers that all found it stale still make one new job.
const MAX_HOPS = 3;
const nextKey = (key: string | undefined, staleJobId: string) =>
  `ensure-${createHash('sha256')
    .update(`${key ?? ''}>${staleJobId}`)
    .digest('hex')
    .slice(0, 40)}`;

/**
 * A DOWNLOAD job of the snapshot usable for at least `minValidityMs`: an existing COMPLETED one whose
 * link lasts long enough, one in progress, or a new one, through `requestDownload` (idempotent, never
 * two jobs for one request). When the key's job no longer lasts long enough (its link expired since),
 * a key derived from that job asks again, so every caller renewing it gets the same new job.
 */
export async function ensureDownload(
  deps: JobRequestDeps,
  req: EnsureDownloadRequest,
): Promise<JobRequestResult> {
  const withBound: JobRequestDeps = { ...deps, minUrlLifetimeMs: req.minValidityMs };
  let key = req.idempotencyKey;
  let last: JobRequestResult | undefined;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    last = await requestDownload(withBound, {
      projectId: req.projectId,
      clusterName: req.clusterName,
      snapshotId: req.snapshotId,
      idempotencyKey: key,
      reuseExisting: true,
    });
    if (validFor(last.job, deps.clock.now(), req.minValidityMs)) return last;
    key = nextKey(key, last.job.dto.id ?? '');
  }
  throw new GatewayError(
    'UPSTREAM_UNAVAILABLE',
    `Atlas did not give a download of snapshot ${req.snapshotId} valid for ${Math.round(req.minValidityMs / 60_000)} minutes (last job ${last?.job.dto.id ?? '?'} is ${last?.job.dto.status ?? 'unknown'}).`,
    { extensions: { retryable: true } },
  );
}
