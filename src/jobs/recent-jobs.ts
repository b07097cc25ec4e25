import type { BackupService } from '../backup/backup-service.js';
import type { ClusterRef, RestoreJobSource } from '../backup/model.js';

/**
 * When Atlas created a job: its `restoreScheduledDate` (set at creation, whole seconds), else the
 * creation seconds every ObjectId starts with. NaN when neither can be read.
 */
export function createdAt(job: RestoreJobSource): number {
  const scheduled = Date.parse(job.dto.restoreScheduledDate ?? '');
  if (!Number.isNaN(scheduled)) return scheduled;
  const id = job.dto.id ?? '';
  return /^[0-9a-f]{24}$/.test(id) ? parseInt(id.slice(0, 8), 16) * 1000 : Number.NaN;
}

/** Upstream pages read by one `jobsCreatedSince`, for tests and logs. */
export interface RecentJobsRead {
  jobs: RestoreJobSource[];
  pages: number;
}

/**
 * The cluster's jobs created at or after `sinceMs`, reading only the pages that can hold them: a real
 * cluster has thousands of jobs (one Flex cluster had 2,160), and proving that a lost POST made no job
 * must not cost the whole list. Atlas's order is not relied upon (its snapshot lists are oldest first,
 * the simulator's lists newest first): the first page tells it when its first and last jobs differ in
 * age, else the last page is compared with it; then pages are read from the newest end, page after
 * page, until one reaches past `sinceMs`. A list that takes no paging (tenant) is filtered whole. A job
 * whose age cannot be read counts as recent (it may be the one looked for).
 *
 * @param pageSize jobs per page asked for. @default 100
 */
export async function jobsCreatedSince(
  service: BackupService,
  ref: ClusterRef,
  sinceMs: number,
  pageSize = 100,
): Promise<RecentJobsRead> {
  const recent = (j: RestoreJobSource) => !(createdAt(j) < sinceMs);
  const page = (pageNum: number) => service.listJobPage(ref, { pageNum, itemsPerPage: pageSize });
  const first = await page(1);
  const total = first.totalCount ?? first.results.length;
  const last = Math.max(1, Math.ceil(total / pageSize));
  if (first.whole || last === 1) return { jobs: first.results.filter(recent), pages: 1 };

  const age = (jobs: RestoreJobSource[], at: 'first' | 'last') =>
    createdAt(at === 'first' ? jobs[0]! : jobs[jobs.length - 1]!);
  let pages = 1;
  let lastPage: RestoreJobSource[] | undefined;
  let newestFirst: boolean;
  const a = age(first.results, 'first');
  const b = age(first.results, 'last');
  if (a !== b && !Number.isNaN(a) && !Number.isNaN(b)) {
    newestFirst = a > b;
  } else {
    lastPage = (await page(last)).results;
    pages++;
    newestFirst = !(age(lastPage, 'last') > a);
  }

  const out: RestoreJobSource[] = [];
  if (newestFirst) {
    let results = first.results;
    for (let n = 1; ;) {
      out.push(...results.filter(recent));
      if (n === last || results.length === 0 || age(results, 'last') < sinceMs) break;
      n++;
      results = n === last && lastPage ? lastPage : (pages++, (await page(n)).results);
    }
  } else {
    let results = lastPage ?? (pages++, (await page(last)).results);
    for (let n = last; ;) {
      out.push(...results.filter(recent));
      if (n === 1 || results.length === 0 || age(results, 'first') < sinceMs) break;
      n--;
      results = n === 1 ? first.results : (pages++, (await page(n)).results);
    }
  }
  return { jobs: out, pages };
}
