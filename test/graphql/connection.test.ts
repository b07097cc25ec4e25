import { describe, expect, it } from 'vitest';
import {
  coveringPageSize,
  decodeCursor,
  encodeCursor,
  pageFromList,
  pageFromUpstream,
  checkFirst,
} from '../../src/graphql/connection.js';
import { BadUserInputError } from '../../src/errors/index.js';

describe('connections', () => {
  it('round-trips cursors and rejects forged ones', () => {
    expect(decodeCursor(encodeCursor(140))).toBe(140);
    expect(decodeCursor(undefined)).toBeUndefined();
    expect(() => decodeCursor('bm9wZQ')).toThrow(BadUserInputError);
  });

  it('bounds first', () => {
    expect(checkFirst(undefined)).toBe(20);
    expect(() => checkFirst(-1)).toThrow('Argument "first" must be an integer from 0 to 500; got -1.');
    expect(() => checkFirst(501)).toThrow(BadUserInputError);
  });

  it('finds the Atlas page size that covers a range with one call', () => {
    expect(coveringPageSize(0, 20)).toBe(20);
    expect(coveringPageSize(40, 20)).toBe(20);
    expect(coveringPageSize(10, 20)).toBe(30);
    expect(coveringPageSize(499, 2)).toBe(3);
    expect(coveringPageSize(499, 500)).toBeUndefined();
  });

  it('reads an oldest-first list from its newest end: one probe, then one page when one covers the range, pages of 500 otherwise', async () => {
    // Atlas's order: item i is the i-th oldest.
    const items = Array.from({ length: 1200 }, (_, i) => i);
    const calls: [number, number][] = [];
    const fetch = async (pageNum: number, size: number) => {
      calls.push([pageNum, size]);
      return { results: items.slice((pageNum - 1) * size, pageNum * size), totalCount: items.length };
    };
    const newest = await pageFromUpstream(fetch, undefined, 20);
    expect(newest.nodes).toEqual(items.slice(1180).reverse());
    expect(calls).toEqual([
      [1, 20],
      [60, 20],
    ]);
    expect(newest.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor(1180) });
    calls.length = 0;
    // With a cursor no probe is needed: the cursor says where the range ends.
    const next = await pageFromUpstream(fetch, 1180, 20);
    expect(next.nodes).toEqual(items.slice(1160, 1180).reverse());
    expect(calls).toEqual([[59, 20]]);
    calls.length = 0;
    const wide = await pageFromUpstream(fetch, 999, 500);
    expect(wide.nodes).toEqual(items.slice(499, 999).reverse());
    expect(calls).toEqual([
      [1, 500],
      [2, 500],
    ]);
    const last = await pageFromUpstream(fetch, 10, 20);
    expect(last.nodes).toEqual(items.slice(0, 10).reverse());
    expect(last.pageInfo.hasNextPage).toBe(false);
  });

  it('a cursor stays valid while new items arrive at the newest end', async () => {
    const items = Array.from({ length: 30 }, (_, i) => i);
    const fetch = async (pageNum: number, size: number) => ({
      results: items.slice((pageNum - 1) * size, pageNum * size),
      totalCount: items.length,
    });
    const a = await pageFromUpstream(fetch, undefined, 10);
    items.push(30, 31, 32);
    const b = await pageFromUpstream(fetch, decodeCursor(a.pageInfo.endCursor), 10);
    expect([...a.nodes, ...b.nodes]).toEqual(Array.from({ length: 20 }, (_, i) => 29 - i));
  });

  it('slices a whole list held newest first', () => {
    const s = pageFromList([5, 4, 3, 2, 1], 3, 2);
    expect(s).toEqual({
      nodes: [3, 2],
      totalCount: 5,
      pageInfo: { hasNextPage: true, endCursor: encodeCursor(1) },
    });
    expect(pageFromList([2, 1], 0, 2).pageInfo).toEqual({ hasNextPage: false, endCursor: null });
  });
});
