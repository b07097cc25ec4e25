import type { SimRequest } from './http-types.js';

/** Atlas's list query parameters, already validated (itemsPerPage 1..500, pageNum ≥ 1). */
export interface PageParams {
  /** @default 1 */
  pageNum: number;
  /** @default 100 */
  itemsPerPage: number;
  /** @default true */
  includeCount: boolean;
}

export interface Link {
  href: string;
  rel: string;
}

/** Atlas's `Paginated*View` envelope. */
export interface Paginated<T> {
  links: Link[];
  results: T[];
  totalCount?: number;
}

export function pageParams(query: URLSearchParams): PageParams {
  return {
    pageNum: Number(query.get('pageNum') ?? 1),
    itemsPerPage: Number(query.get('itemsPerPage') ?? 100),
    includeCount: query.get('includeCount') !== 'false',
  };
}

/**
 * Slices `items` the way Atlas does and adds `self`/`previous`/`next` links built from the request,
 * so a client can follow `next` as it would on Atlas.
 */
export function paginate<T>(
  items: readonly T[],
  page: PageParams,
  baseUrl: string,
  req: SimRequest,
): Paginated<T> {
  const start = (page.pageNum - 1) * page.itemsPerPage;
  const results = items.slice(start, start + page.itemsPerPage);
  // As Atlas writes them (recorded): `includeCount`, `pageNum`, `itemsPerPage` first, in that order,
  // whatever the request sent; then any other parameter of the request.
  const link = (pageNum: number, rel: string): Link => {
    const q = new URLSearchParams({
      includeCount: String(page.includeCount),
      pageNum: String(pageNum),
      itemsPerPage: String(page.itemsPerPage),
    });
    for (const [k, v] of req.query) if (!q.has(k)) q.append(k, v);
    return { href: `${baseUrl}${req.path}?${q.toString()}`, rel };
  };
  const links = [link(page.pageNum, 'self')];
  if (page.pageNum > 1) links.push(link(page.pageNum - 1, 'previous'));
  if (start + page.itemsPerPage < items.length) links.push(link(page.pageNum + 1, 'next'));
  return { links, results, ...(page.includeCount ? { totalCount: items.length } : {}) };
}
