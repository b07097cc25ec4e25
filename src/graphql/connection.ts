import type { RestoreJobSource, SnapshotSource } from '../backup/model.js';
import { BadUserInputError } from '../errors/index.js';

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

/** One page as Atlas returns it. */
export interface UpstreamPage<T> {
  results: T[];
  totalCount: number | undefined;
}

/** Reads one Atlas page (`pageNum` from 1). */
export type PageFetcher<T> = (pageNum: number, itemsPerPage: number) => Promise<UpstreamPage<T>>;

// Cursors are opaque to clients; inside they are the offset of the next item.
export const encodeCursor = (offset: number): string => Buffer.from(`o:${offset}`).toString('base64url');

export function decodeCursor(cursor: string | null | undefined): number {
  if (cursor === null || cursor === undefined) return 0;
  const m = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
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

/**
 * The Atlas page size that covers items [offset, offset+count) with one call, if there is one: Atlas
 * pages are aligned to `itemsPerPage`, so a page of size P covers the range iff both ends fall in the
 * same page. Sequential paging with a constant `first` always finds P = first.
 */
export function coveringPageSize(offset: number, count: number): number | undefined {
  for (let p = count; p <= MAX_FIRST; p++) {
    if (Math.floor(offset / p) === Math.floor((offset + count - 1) / p)) return p;
  }
  return undefined;
}

function slice<T>(nodes: T[], offset: number, totalCount: number | null, exhausted: boolean): Slice<T> {
  const end = offset + nodes.length;
  const hasNextPage = totalCount !== null ? end < totalCount : !exhausted;
  return {
    nodes,
    totalCount,
    pageInfo: { hasNextPage, endCursor: nodes.length > 0 ? encodeCursor(end) : null },
  };
}

/**
 * `first` items after `offset`, read from a paginated Atlas list with as few calls as possible: one
 * call when a page size covers the range, else the 500-item pages that hold it.
 */
export async function pageFromUpstream<T>(
  fetch: PageFetcher<T>,
  offset: number,
  first: number,
): Promise<Slice<T>> {
  if (first === 0) {
    const probe = await fetch(1, 1);
    return {
      nodes: [],
      totalCount: probe.totalCount ?? null,
      pageInfo: { hasNextPage: offset < (probe.totalCount ?? 0), endCursor: null },
    };
  }
  const size = coveringPageSize(offset, first);
  if (size !== undefined) {
    const pageNum = Math.floor(offset / size) + 1;
    const page = await fetch(pageNum, size);
    const start = offset - (pageNum - 1) * size;
    const nodes = page.results.slice(start, start + first);
    return slice(nodes, offset, page.totalCount ?? null, page.results.length < size);
  }
  const nodes: T[] = [];
  let totalCount: number | null = null;
  let exhausted = false;
  for (let pageNum = Math.floor(offset / MAX_FIRST) + 1; nodes.length < first; pageNum++) {
    const page = await fetch(pageNum, MAX_FIRST);
    totalCount = page.totalCount ?? null;
    const start = Math.max(0, offset - (pageNum - 1) * MAX_FIRST);
    nodes.push(...page.results.slice(start, start + first - nodes.length));
    if (page.results.length < MAX_FIRST) {
      exhausted = true;
      break;
    }
  }
  return slice(nodes, offset, totalCount, exhausted);
}

/** `first` items after `offset` of a list already held whole (filtered lists, tenant lists). */
export function pageFromList<T>(items: readonly T[], offset: number, first: number): Slice<T> {
  return slice(items.slice(offset, offset + first), offset, items.length, true);
}
