import { describe, expect, it } from 'vitest';
import { AtlasApiError, AtlasNetworkError } from '../../src/atlas/errors.js';
import {
  NotSharedOrFlexError,
  familySignal,
  routeByFamily,
  type FamilyCalls,
} from '../../src/backup/backup-router.js';
import { FamilyCache } from '../../src/backup/family-cache.js';
import type { Family } from '../../src/backup/model.js';
import { ManualClock } from '../../src/time/clock.js';

const api = (status: number, errorCode: string) =>
  new AtlasApiError({ operation: 'op', status, errorCode, reason: 'r', detail: 'd' });

const ref = { projectId: 'p1', clusterName: 'c1' };

/** Calls that answer per family, or throw what the family is given; records the order they ran in. */
function calls(answers: Record<Family, unknown>) {
  const tried: Family[] = [];
  const call = (family: Family) => async () => {
    tried.push(family);
    const a = answers[family];
    if (a instanceof Error) throw a;
    return a as string;
  };
  const familyCalls: FamilyCalls<string> = { TENANT: call('TENANT'), FLEX: call('FLEX') };
  return { familyCalls, tried };
}

describe('which family a failed call points to', () => {
  it('reads a family signal only from the route of the other family', () => {
    // Each signal names the family that was NOT tried; from the same family it means nothing.
    expect(familySignal(api(400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API'), 'TENANT')).toBeUndefined();
    expect(familySignal(api(400, 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API'), 'FLEX')).toBeUndefined();
  });

  it('takes VERSION_GONE as “now Flex” only with status 410', () => {
    expect(familySignal(api(404, 'VERSION_GONE'), 'TENANT')).toBeUndefined();
    expect(familySignal(api(410, 'RESOURCE_GONE'), 'TENANT')).toBeUndefined();
    expect(familySignal(api(410, 'VERSION_GONE'), 'TENANT')).toBe('FLEX');
  });

  it('sees no signal in anything but an Atlas error answer', () => {
    const network = new AtlasNetworkError('down', {
      operation: 'op',
      sent: false,
      code: 'ATLAS_NETWORK_ERROR',
    });
    expect(familySignal(network, 'TENANT')).toBeUndefined();
    expect(familySignal(new Error('CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API'), 'TENANT')).toBeUndefined();
    // Not even an object that looks like one (a JSON body rethrown by some other layer).
    expect(familySignal({ status: 410, errorCode: 'VERSION_GONE' }, 'TENANT')).toBeUndefined();
    expect(
      familySignal({ status: 400, errorCode: 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API' }, 'FLEX'),
    ).toBeUndefined();
  });
});

describe('routing one call by family', () => {
  it('tries Flex first for an unknown cluster and remembers Flex when it answers', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const { familyCalls, tried } = calls({ TENANT: 'tenant answer', FLEX: 'flex answer' });
    expect(await routeByFamily(cache, ref, familyCalls)).toBe('flex answer');
    expect(tried).toEqual(['FLEX']);
    expect(cache.get(ref)).toBe('FLEX');
  });

  it('asks the known family first, and only it', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    cache.set(ref, 'TENANT');
    const { familyCalls, tried } = calls({ TENANT: 'tenant answer', FLEX: 'flex answer' });
    expect(await routeByFamily(cache, ref, familyCalls)).toBe('tenant answer');
    expect(tried).toEqual(['TENANT']);
  });

  it('switches once on a family signal, and learns the other family', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const { familyCalls, tried } = calls({
      TENANT: 'tenant answer',
      FLEX: api(400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API'),
    });
    expect(await routeByFamily(cache, ref, familyCalls)).toBe('tenant answer');
    expect(tried).toEqual(['FLEX', 'TENANT']);
    expect(cache.get(ref)).toBe('TENANT');
  });

  it('leaves any other error to the caller, learning nothing', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const notFound = api(404, 'GROUP_NOT_FOUND');
    const { familyCalls, tried } = calls({ TENANT: 'tenant answer', FLEX: notFound });
    await expect(routeByFamily(cache, ref, familyCalls)).rejects.toBe(notFound);
    expect(tried).toEqual(['FLEX']);
    expect(cache.get(ref)).toBeUndefined();
  });

  it.each([
    ['CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API', 400],
    ['FEATURE_UNSUPPORTED', 400],
    ['CLUSTER_NOT_FOUND', 404],
  ])(
    'family signal %s from a Flex route: the tenant route is asked, as the Atlas CLI does',
    async (code, status) => {
      const cache = new FamilyCache({ clock: new ManualClock() });
      const { familyCalls, tried } = calls({ TENANT: 'tenant answer', FLEX: api(status, code) });
      expect(await routeByFamily(cache, ref, familyCalls)).toBe('tenant answer');
      expect(tried).toEqual(['FLEX', 'TENANT']);
      expect(cache.get(ref)).toBe('TENANT');
    },
  );

  it('family signal CLUSTER_NOT_FOUND from a tenant route: the Flex route is asked', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    cache.set(ref, 'TENANT');
    const { familyCalls, tried } = calls({ TENANT: api(404, 'CLUSTER_NOT_FOUND'), FLEX: 'flex answer' });
    expect(await routeByFamily(cache, ref, familyCalls)).toBe('flex answer');
    expect(tried).toEqual(['TENANT', 'FLEX']);
    expect(cache.get(ref)).toBe('FLEX');
  });

  it('a weak signal is learned only once the other family answers', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const missing = api(404, 'CLUSTER_NOT_FOUND');
    const { familyCalls, tried } = calls({ TENANT: api(404, 'CLUSTER_NOT_FOUND'), FLEX: missing });
    // No such cluster in either family: Atlas's 404 (null or NOT_FOUND), and nothing learned.
    await expect(routeByFamily(cache, ref, familyCalls)).rejects.toMatchObject({
      status: 404,
      errorCode: 'CLUSTER_NOT_FOUND',
    });
    expect(tried).toEqual(['FLEX', 'TENANT']);
    expect(cache.get(ref)).toBeUndefined();
  });

  it('answers the second family’s error when the switch fails for another reason', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const second = api(503, 'UNEXPECTED_ERROR');
    const { familyCalls, tried } = calls({
      TENANT: second,
      FLEX: api(400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API'),
    });
    await expect(routeByFamily(cache, ref, familyCalls)).rejects.toBe(second);
    expect(tried).toEqual(['FLEX', 'TENANT']);
    // The signal itself was Atlas's word: the family stays learned.
    expect(cache.get(ref)).toBe('TENANT');
  });
});

describe('a dedicated (M10+) or M0 cluster: neither family serves it', () => {
  const dedicated = {
    FLEX: api(400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API'),
    TENANT: api(410, 'VERSION_GONE'),
  };

  it('answers NOT_FOUND "not a shared-tier or Flex cluster" on every request, whatever the cache holds', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const answers: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const { familyCalls } = calls(dedicated);
      answers.push(await routeByFamily(cache, ref, familyCalls).catch((e: unknown) => e));
    }
    for (const a of answers) {
      expect(a).toBeInstanceOf(NotSharedOrFlexError);
      expect((a as NotSharedOrFlexError).code).toBe('NOT_FOUND');
      expect((a as NotSharedOrFlexError).extensions).toEqual({ reason: 'NOT_SHARED_TIER_OR_FLEX' });
    }
  });

  it('before the sunset too: the tenant route has no such cluster after Flex named it non-Flex', async () => {
    const cache = new FamilyCache({ clock: new ManualClock() });
    const { familyCalls } = calls({ ...dedicated, TENANT: api(404, 'CLUSTER_NOT_FOUND') });
    await expect(routeByFamily(cache, ref, familyCalls)).rejects.toBeInstanceOf(NotSharedOrFlexError);
    const again = calls({ ...dedicated, TENANT: api(404, 'CLUSTER_NOT_FOUND') });
    await expect(routeByFamily(cache, ref, again.familyCalls)).rejects.toBeInstanceOf(NotSharedOrFlexError);
    expect(again.tried).toEqual(['TENANT', 'FLEX']);
  });
});
