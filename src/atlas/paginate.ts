import type { components } from './generated/openapi.js';
import { AtlasConfigError } from './errors.js';

export type AtlasLink = components['schemas']['Link'];

/** One page of an Atlas `Paginated*View`, normalised: `results` and `links` are always arrays. */
export interface AtlasPage<T> {
  results: T[];
  /** Atlas's estimate; absent when the request said `includeCount=false`. */
  totalCount: number | undefined;
  links: AtlasLink[];
}

/** Atlas's list query parameters. */
export interface PageParams {
  /** @default 1 (Atlas's default) */
  pageNum?: number;
  /** 1..500. @default 100 (Atlas's default) */
  itemsPerPage?: number;
  /** @default true (Atlas's default) */
  includeCount?: boolean;
}

/** How `listAll…` walks the pages. */
export interface CollectOptions {
  /**
   * Page size while collecting; the maximum keeps round trips down.
   * @default 500
   */
  itemsPerPage?: number;
  /**
   * Stop after this many pages even if Atlas still links a `next` one (a guard against a server that
   * never stops).
   * @default 1000
   */
  maxPages?: number;
}

export const MAX_ITEMS_PER_PAGE = 500;

/** The query of a list call; rejects values Atlas would answer with a 400. */
export function pageQuery(params: PageParams | undefined, operation: string): Record<string, string> {
  const q: Record<string, string> = {};
  if (params?.pageNum !== undefined) {
    if (!Number.isInteger(params.pageNum) || params.pageNum < 1) {
      throw new AtlasConfigError(`pageNum must be an integer ≥ 1, got ${params.pageNum}`, operation);
    }
    q.pageNum = String(params.pageNum);
  }
  if (params?.itemsPerPage !== undefined) {
    const n = params.itemsPerPage;
    if (!Number.isInteger(n) || n < 1 || n > MAX_ITEMS_PER_PAGE) {
      throw new AtlasConfigError(
        `itemsPerPage must be an integer in 1..${MAX_ITEMS_PER_PAGE}, got ${n}`,
        operation,
      );
    }
    q.itemsPerPage = String(n);
  }
  if (params?.includeCount !== undefined) q.includeCount = String(params.includeCount);
  return q;
}

/**
 * Walks pages 1, 2, … and yields each. Stops on an empty page, once the items seen reach
 * `totalCount`, or when a page links no `next` page (Terraform's AllPages stops on the first two).
 */
export async function* iteratePages<T>(
  fetchPage: (params: { pageNum: number; itemsPerPage: number }) => Promise<AtlasPage<T>>,
  opts: CollectOptions = {},
): AsyncGenerator<AtlasPage<T>, void, undefined> {
  const itemsPerPage = opts.itemsPerPage ?? MAX_ITEMS_PER_PAGE;
  const maxPages = opts.maxPages ?? 1000;
  let seen = 0;
  for (let pageNum = 1; pageNum <= maxPages; pageNum++) {
    const page = await fetchPage({ pageNum, itemsPerPage });
    if (page.results.length === 0) return;
    yield page;
    seen += page.results.length;
    if (page.totalCount !== undefined && seen >= page.totalCount) return;
    if (!page.links.some((l) => l.rel === 'next')) return;
  }
}

/** Every item of every page (see `iteratePages`). */
export async function collectAll<T>(
  fetchPage: (params: { pageNum: number; itemsPerPage: number }) => Promise<AtlasPage<T>>,
  opts: CollectOptions = {},
): Promise<T[]> {
  const all: T[] = [];
  for await (const page of iteratePages(fetchPage, opts)) all.push(...page.results);
  return all;
}
