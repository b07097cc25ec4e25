import { describe, expect, it } from 'vitest';
import { AtlasApiError } from '../../src/atlas/errors.js';
import { ManualClock } from '../../src/time/clock.js';
import { familySignal } from '../../src/backup/backup-router.js';
import { FamilyCache } from '../../src/backup/family-cache.js';

const api = (
  status: number,
  errorCode: string,
  extra: Partial<ConstructorParameters<typeof AtlasApiError>[0]> = {},
) => new AtlasApiError({ operation: 'getGroup', status, errorCode, reason: 'r', detail: 'd', ...extra });

describe('family signals', () => {
  it('reads Atlas’s own answers as the family that serves the cluster', () => {
    expect(familySignal(api(400, 'CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API'), 'FLEX')).toBe('TENANT');
    expect(familySignal(api(400, 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API'), 'TENANT')).toBe('FLEX');
    expect(familySignal(api(410, 'VERSION_GONE'), 'TENANT')).toBe('FLEX');
    // The CLI falls back from a Flex route on these too.
    expect(familySignal(api(404, 'CLUSTER_NOT_FOUND'), 'FLEX')).toBe('TENANT');
    expect(familySignal(api(400, 'FEATURE_UNSUPPORTED'), 'FLEX')).toBe('TENANT');
    expect(familySignal(api(410, 'VERSION_GONE'), 'FLEX')).toBeUndefined();
  });

  it('forgets a family after its TTL', () => {
    const clock = new ManualClock();
    const cache = new FamilyCache({ clock, ttlMs: 1000 });
    const ref = { projectId: 'p', clusterName: 'c' };
    cache.set(ref, 'TENANT');
    expect(cache.get(ref)).toBe('TENANT');
    clock.advance(1000);
    expect(cache.get(ref)).toBeUndefined();
  });
});
