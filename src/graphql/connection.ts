import type { RestoreJobSource, SnapshotSource } from '../backup/model.js';
import {
  coveringPageSize,
  readNewestFirst,
  type OldestFirstFetch,
  type OldestFirstPage,
} from '../backup/newest-first.js';
import { BadUserInputError } from '../errors/index.js';

export { coveringPageSize };

/** Largest `first` (Atlas's `itemsPerPage` maximum). */
export const MAX_FIRST = 500;

/** A page of a GraphQL connection, before node mapping. */
export interface Slice<T> {
  nodes: T[];
  totalCount: number | null;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export type SnapshotSlice = Slice<SnapshotSource>;
export type RestoreJobSlice = Slice<RestoreJobSource>;

/** One page as Atlas returns it (oldest first). */
export type UpstreamPage<T> = OldestFirstPage<T>;

/** Reads one Atlas page (`pageNum` from 1) of a list Atlas orders oldest first. */
export type PageFetcher<T> = OldestFirstFetch<T>;

/**
 * Cursors are opaque to clients. Inside: how many items of the list are older than the next one to
 * answer, counted from the oldest end. New items arrive at the newest end, so a cursor stays valid
 * (the next page starts where the last one ended) while new snapshots and jobs are made.
 */
export const encodeCursor = (olderCount: number): string =>
  Buffer.from(`b:${olderCount}`).toString('base64url');

/** The `olderCount` of a cursor; undefined for the first page (start at the newest item). */
export function decodeCursor(cursor: string | null | undefined): number | undefined {
  if (cursor === null || cursor === undefined) return undefined;
  const m = /^b:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new BadUserInputError('after', 'an endCursor from a previous page', cursor);
  return Number(m[1]);
}

export function checkFirst(first: number | null | undefined): number {
  const n = first ?? 20;
  if (!Number.isInteger(n) || n < 0 || n > MAX_FIRST) {
    throw new BadUserInputError('first', `an integer from 0 to ${MAX_FIRST}`, first);
  }
  return n;
}

function slice<T>(nodes: T[], olderCount: number, totalCount: number | null): Slice<T> {
  return {
    nodes,
    totalCount,
    pageInfo: {
      hasNextPage: olderCount > 0,
      endCursor: nodes.length > 0 ? encodeCursor(olderCount) : null,
    },
  };
}

/** What `pageFromUpstream` answers besides the slice: a page contradicted Atlas's assumed order. */
export interface UpstreamSlice<T> extends Slice<T> {
  orderBroken: boolean;
}

/**
 * `first` items, newest first, older than the cursor's `before`, of a list Atlas orders oldest first:
 * only the page(s) holding them are read (`readNewestFirst`), plus one probe for `totalCount` on the
 * first page of a connection.
 */
export async function pageFromUpstream<T>(
  fetch: PageFetcher<T>,
  before: number | undefined,
  first: number,
  isOlder?: (a: T, b: T) => boolean,
): Promise<UpstreamSlice<T>> {
  const read = await readNewestFirst(fetch, { before, count: first, ...(isOlder ? { isOlder } : {}) });
  const s = slice(read.items, read.olderCount, read.totalCount);
  if (first === 0) s.pageInfo.hasNextPage = (before ?? read.totalCount ?? 0) > 0;
  return { ...s, orderBroken: read.orderBroken };
}

/** `first` items older than `before` of a list already held whole, newest first (filtered, tenant). */
export function pageFromList<T>(items: readonly T[], before: number | undefined, first: number): Slice<T> {
  const end = Math.min(before ?? items.length, items.length);
  const start = items.length - end;
  const nodes = items.slice(start, start + first);
  const s = slice(nodes, end - nodes.length, items.length);
  if (first === 0) s.pageInfo.hasNextPage = end > 0;
  return s;
}
