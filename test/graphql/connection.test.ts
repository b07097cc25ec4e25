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
    expect(decodeCursor(undefined)).toBe(0);
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

  it('reads one page when one covers the range, and pages of 500 otherwise', async () => {
    const items = Array.from({ length: 1200 }, (_, i) => i);
    const calls: [number, number][] = [];
    const fetch = async (pageNum: number, size: number) => {
      calls.push([pageNum, size]);
      return { results: items.slice((pageNum - 1) * size, pageNum * size), totalCount: items.length };
    };
    const a = await pageFromUpstream(fetch, 40, 20);
    expect(a.nodes).toEqual(items.slice(40, 60));
    expect(calls).toEqual([[3, 20]]);
    expect(a.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor(60) });
    calls.length = 0;
    const b = await pageFromUpstream(fetch, 499, 500);
    expect(b.nodes).toEqual(items.slice(499, 999));
    expect(calls).toEqual([
      [1, 500],
      [2, 500],
    ]);
    const last = await pageFromUpstream(fetch, 1190, 20);
    expect(last.nodes).toHaveLength(10);
    expect(last.pageInfo.hasNextPage).toBe(false);
  });

  it('slices a whole list', () => {
    const s = pageFromList([1, 2, 3, 4, 5], 2, 2);
    expect(s).toEqual({
      nodes: [3, 4],
      totalCount: 5,
      pageInfo: { hasNextPage: true, endCursor: encodeCursor(4) },
    });
    expect(pageFromList([1, 2], 2, 2).pageInfo).toEqual({ hasNextPage: false, endCursor: null });
  });
});
