/**
 * Reading Atlas lists from their newest end. Atlas's list routes are not newest first: the Flex
 * snapshot list comes oldest first (recorded from Atlas, `flex-snapshots-list.http`: scheduled 08-02
 * … 08-09), so the newest items sit on the last page. `totalCount` says where that page is.
 *
 * Atlas's order per paged route, as this module assumes it:
 * - Flex snapshots (`GET …/flexClusters/{name}/backup/snapshots`): oldest first, recorded;
 * - Flex restore jobs (`GET …/backup/restoreJobs`): oldest first, ASSUMED (no recording of a job list;
 *   the same service lists snapshots by creation, and job ids are ObjectIds that grow with time);
 * - tenant lists take no paging parameters: read whole and sorted here (`sortNewestFirst`), so their
 *   order does not matter.
 * `readNewestFirst` checks each page it reads against the assumption and says when it fails, so a
 * caller can fall back to reading the whole list and sorting it.
 */

/** Largest Atlas page (`itemsPerPage` maximum). */
export const MAX_PAGE = 500;

/** One page as Atlas returns it. */
export interface OldestFirstPage<T> {
  results: T[];
  totalCount: number | undefined;
}

/** Reads one Atlas page (`pageNum` from 1) of a list Atlas orders oldest first. */
export type OldestFirstFetch<T> = (pageNum: number, itemsPerPage: number) => Promise<OldestFirstPage<T>>;

/**
 * The Atlas page size that covers items [offset, offset+count) with one call, if there is one: Atlas
 * pages are aligned to `itemsPerPage`, so a page of size P covers the range iff both ends fall in the
 * same page.
 */
export function coveringPageSize(offset: number, count: number): number | undefined {
  for (let p = Math.max(1, count); p <= MAX_PAGE; p++) {
    if (Math.floor(offset / p) === Math.floor((offset + count - 1) / p)) return p;
  }
  return undefined;
}

/** What `readNewestFirst` read. */
export interface NewestFirstRead<T> {
  /** Newest first. */
  items: T[];
  /** Atlas's count (of the last page read); null when Atlas sent none. */
  totalCount: number | null;
  /**
   * How many items are older than the last one of `items` (its index counted from the oldest end):
   * the `before` of the next read. 0 when nothing older is left.
   */
  olderCount: number;
  /** A page contradicted "oldest first" (`isOlder`): the caller should read the whole list instead. */
  orderBroken: boolean;
}

export interface NewestFirstOptions<T> {
  /**
   * Read items older than this many from the oldest end, i.e. `olderCount` of a previous read. New
   * items arriving at the newest end do not move it, so a cursor made of it stays valid.
   * @default the whole list (`totalCount`)
   */
  before?: number | undefined;
  /** How many items to return. */
  count: number;
  /**
   * Size of the first page read when `before` is not known, to learn `totalCount`. A list that fits
   * is answered by this one call; 1 keeps it to a few hundred bytes on a long list.
   * @default `count` (at most 500)
   */
  probeSize?: number;
  /** Whether `a` is older than `b`, to check Atlas's order on each page. @default no check */
  isOlder?: (a: T, b: T) => boolean;
}

/**
 * `count` items of an oldest-first Atlas list, newest first, ending before index `before` (from the
 * oldest end). Reads only the pages that hold them: one page of a size that covers the range when
 * there is one, else the 500-item pages it spans, plus one probe for `totalCount` when `before` is not
 * known (skipped when the probe already holds the range).
 */
export async function readNewestFirst<T>(
  fetch: OldestFirstFetch<T>,
  opts: NewestFirstOptions<T>,
): Promise<NewestFirstRead<T>> {
  const count = opts.count;
  let totalCount: number | null = null;
  let end = opts.before;
  let probe: { size: number; results: T[] } | undefined;
  if (end === undefined) {
    const size = Math.min(MAX_PAGE, Math.max(1, opts.probeSize ?? count));
    const first = await fetch(1, size);
    totalCount = first.totalCount ?? null;
    probe = { size, results: first.results };
    // Without a count, a short page is the whole list; a full one leaves the end unknown.
    end = totalCount ?? (first.results.length < size ? first.results.length : undefined);
    if (end === undefined) throw new Error('Atlas sent no totalCount: the newest end of the list is unknown');
  }
  const lo = Math.max(0, end - count);
  let orderBroken = false;
  const check = (page: T[]) => {
    if (!opts.isOlder) return;
    for (let i = 1; i < page.length; i++) if (opts.isOlder(page[i]!, page[i - 1]!)) orderBroken = true;
  };
  let range: T[] = [];
  if (end > lo) {
    if (probe && end <= probe.size) {
      range = probe.results.slice(lo, end);
      check(probe.results);
    } else {
      const size = coveringPageSize(lo, end - lo);
      if (size !== undefined) {
        const pageNum = Math.floor(lo / size) + 1;
        const page = await fetch(pageNum, size);
        totalCount = page.totalCount ?? totalCount;
        check(page.results);
        const start = lo - (pageNum - 1) * size;
        range = page.results.slice(start, start + (end - lo));
      } else {
        for (let pageNum = Math.floor(lo / MAX_PAGE) + 1; (pageNum - 1) * MAX_PAGE < end; pageNum++) {
          const page = await fetch(pageNum, MAX_PAGE);
          totalCount = page.totalCount ?? totalCount;
          check(page.results);
          const base = (pageNum - 1) * MAX_PAGE;
          range.push(...page.results.slice(Math.max(0, lo - base), end - base));
          if (page.results.length < MAX_PAGE) break;
        }
      }
    }
  } else if (totalCount === null && probe === undefined) {
    // Nothing to read, but the connection still reports a count.
    totalCount = (await fetch(1, 1)).totalCount ?? null;
  }
  // Items deleted since `end` was learned make the range shorter at its newest end, never wrong.
  return { items: range.reverse(), totalCount, olderCount: lo, orderBroken };
}

/** Epoch ms of an ISO-8601 date, or -Infinity when absent or unreadable (sorts as oldest). */
export const timeOf = (iso: string | undefined): number => {
  const t = iso === undefined ? NaN : Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
};

/**
 * A copy of `items`, newest first by `dateOf` (ISO-8601, compared as instants, so `…:29Z` and
 * `…:29.000Z` are equal), ties by id descending (ObjectIds grow with time): the gateway's order.
 */
export function sortNewestFirst<T>(
  items: readonly T[],
  dateOf: (t: T) => string | undefined,
  idOf: (t: T) => string,
): T[] {
  return [...items].sort((a, b) => timeOf(dateOf(b)) - timeOf(dateOf(a)) || idOf(b).localeCompare(idOf(a)));
}
