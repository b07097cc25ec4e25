import { describe, expect, it } from 'vitest';
import { AtlasConfigError } from '../../src/atlas/errors.js';
import { collectAll, iteratePages, pageQuery, type AtlasPage } from '../../src/atlas/paginate.js';

/** A fake list of `total` numbers served page by page, the way the simulator/Atlas do. */
function source(total: number, opts: { count?: boolean; links?: boolean; lie?: number } = {}) {
  const calls: { pageNum: number; itemsPerPage: number }[] = [];
  const fetchPage = (p: { pageNum: number; itemsPerPage: number }): Promise<AtlasPage<{ n: number }>> => {
    calls.push(p);
    const start = (p.pageNum - 1) * p.itemsPerPage;
    const results = Array.from({ length: Math.max(0, Math.min(p.itemsPerPage, total - start)) }, (_, i) => ({
      n: start + i,
    }));
    const hasNext = start + p.itemsPerPage < total;
    return Promise.resolve({
      results,
      totalCount: opts.count === false ? undefined : (opts.lie ?? total),
      links: opts.links === false || !hasNext ? [{ rel: 'self', href: 'x' }] : [{ rel: 'next', href: 'y' }],
    });
  };
  return { fetchPage, calls };
}

describe('collectAll / iteratePages', () => {
  it('walks every page at 500 items by default and stops at totalCount', async () => {
    const s = source(1234);
    const all = await collectAll(s.fetchPage);
    expect(all).toHaveLength(1234);
    expect(all.at(-1)).toEqual({ n: 1233 });
    expect(s.calls).toEqual([
      { pageNum: 1, itemsPerPage: 500 },
      { pageNum: 2, itemsPerPage: 500 },
      { pageNum: 3, itemsPerPage: 500 },
    ]);
  });

  it('stops on an exact multiple without fetching an empty page', async () => {
    const s = source(100);
    expect(await collectAll(s.fetchPage, { itemsPerPage: 50 })).toHaveLength(100);
    expect(s.calls).toHaveLength(2);
  });

  it('without totalCount, follows next links and stops when none is left', async () => {
    const s = source(120, { count: false });
    expect(await collectAll(s.fetchPage, { itemsPerPage: 50 })).toHaveLength(120);
    expect(s.calls).toHaveLength(3);
  });

  it('stops when a page links no next page even if totalCount says more', async () => {
    const s = source(120, { links: false });
    expect(await collectAll(s.fetchPage, { itemsPerPage: 50 })).toHaveLength(50);
  });

  it('stops on an empty page, and at maxPages', async () => {
    const empty = source(0);
    expect(await collectAll(empty.fetchPage)).toEqual([]);
    expect(empty.calls).toHaveLength(1);
    const capped = source(10_000, { count: false });
    expect(await collectAll(capped.fetchPage, { itemsPerPage: 10, maxPages: 3 })).toHaveLength(30);
  });

  it('yields pages lazily', async () => {
    const s = source(1000);
    for await (const page of iteratePages(s.fetchPage, { itemsPerPage: 100 })) {
      expect(page.results).toHaveLength(100);
      break;
    }
    expect(s.calls).toHaveLength(1);
  });
});

describe('pageQuery', () => {
  it('sends only what was given', () => {
    expect(pageQuery(undefined, 'op')).toEqual({});
    expect(pageQuery({ pageNum: 2, itemsPerPage: 500, includeCount: false }, 'op')).toEqual({
      pageNum: '2',
      itemsPerPage: '500',
      includeCount: 'false',
    });
  });
  it('refuses values Atlas would reject', () => {
    for (const p of [{ itemsPerPage: 501 }, { itemsPerPage: 0 }, { itemsPerPage: 1.5 }, { pageNum: 0 }]) {
      expect(() => pageQuery(p, 'op')).toThrow(AtlasConfigError);
    }
  });
});
