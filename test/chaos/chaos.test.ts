import { describe, expect, it } from 'vitest';
import { formatReport, runChaos } from '../../chaos/chaos.js';
import { testConfig } from '../../chaos/config.js';
import { planWorkload } from '../../chaos/plan.js';

// The short chaos run of issue #10 (the long one is `npm run chaos`, the soak `npm run chaos -- --minutes N`):
// a mixed workload on two real gateways (OAuth, Digest) over one simulator injecting faults, with a
// fixed seed. Deadlines only catch hangs; nothing here asserts how fast anything was.
describe('chaos (short, seeded)', () => {
  // The fleet of issue #16 (gateway processes, Redis faults) runs in test/chaos/fleet.test.ts.
  const config = testConfig();
  const inProcess = { ...config, fleet: { ...config.fleet, enabled: false } };

  it('plans 100+ SSE subscriptions, duplicate idempotency keys and every download intent', () => {
    const plan = planWorkload(config);
    const downloads = plan.actions.filter((a) => a.kind === 'download');
    const subs =
      downloads.reduce((n, a) => n + a.subscribers.length, 0) +
      plan.actions.filter((a) => a.kind === 'subscribe').length +
      plan.held.subscribers.length;
    expect(subs).toBeGreaterThanOrEqual(100);
    expect(plan.held.subscribers.length).toBeGreaterThanOrEqual(100);
    expect(Math.max(...plan.held.subscribers.map((h) => h.atMs))).toBeLessThan(config.jobMs);
    const keys = downloads.map((a) => `${a.gateway}/${a.key}`).filter((k) => !k.endsWith('/undefined'));
    expect(new Set(keys).size).toBeLessThan(keys.length); // some keys are sent more than once
    expect(new Set(downloads.map((a) => a.intent))).toEqual(
      new Set(['keyed', 'unkeyed', 'reuse', 'invalid']),
    );
    // Same seed, same plan: `--seed N` replays it.
    expect(planWorkload(testConfig())).toEqual(plan);
  });

  it('keeps every invariant under injected faults', { timeout: 120_000 }, async () => {
    const report = await runChaos(inProcess);
    console.log(formatReport(report));
    // The same workload without faults: nothing but the invalid requests may fail.
    expect(report.baseline?.unexpectedErrors).toBe(0);
    expect(report.rounds[0]!.subscriptions).toBeGreaterThanOrEqual(100);
    // The held subscriptions are all open before their jobs can end: 100+ live at once, faults or not.
    expect(report.rounds[0]!.peakLive).toBeGreaterThanOrEqual(100);
    expect(report.faultHitsByLabel).not.toEqual({});
    for (const check of report.checks) {
      expect({ invariant: check.name, problems: check.problems }).toEqual({
        invariant: check.name,
        problems: [],
      });
    }
    expect(report.ok).toBe(true);
  });
});
