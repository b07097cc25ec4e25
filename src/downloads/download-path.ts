import type { ClusterRef } from '../backup/model.js';

/** Where the gateway serves downloads: `/downloads/{projectId}/{clusterName}/{jobId}`. */
export const DOWNLOADS_PREFIX = '/downloads/';

/** The gateway path that streams a DOWNLOAD job's `.tgz`. */
export function downloadPath(ref: ClusterRef, jobId: string): string {
  return `${DOWNLOADS_PREFIX}${ref.projectId}/${encodeURIComponent(ref.clusterName)}/${jobId}`;
}

/** The job a download path names, or undefined when `pathname` is not one. Ids are checked later. */
export function parseDownloadPath(pathname: string): (ClusterRef & { jobId: string }) | undefined {
  if (!pathname.startsWith(DOWNLOADS_PREFIX)) return undefined;
  const parts = pathname.slice(DOWNLOADS_PREFIX.length).split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined;
  let clusterName: string;
  try {
    clusterName = decodeURIComponent(parts[1]!);
  } catch {
    return undefined;
  }
  return { projectId: parts[0]!, clusterName, jobId: parts[2]! };
}
