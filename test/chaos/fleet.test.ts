import { describe, expect, it } from 'vitest';
import { runFleetChaos } from '../../chaos/chaos.js';
import { testConfig } from '../../chaos/config.js';

// The short form of issue #16's chaos (the long one is `npm run chaos`, the soak `--minutes N`): two
// gateway processes built as `npm start` builds them, one simulator, and a redis-server the run starts
// on a free port (never the shared one), each fault of the issue once, in the seed's order: Redis down
// before, during and after a keyed mutation; Redis restarted mid-flight with its AOF and empty; SIGKILL
// of the replica holding the key before and after its POST; a slow and a hung POST past the deadline.
// Nothing here judges a duration: answers later than the execution timeout are counted, not failed.
describe('chaos fleet (short, seeded): replica deaths and Redis outages', () => {
  it(
    'creates exactly one job per intended request, and answers every request with the job or a typed code that tells the truth',
    { timeout: 240_000 },
    async () => {
      const config = testConfig();
      const { runs, check } = await runFleetChaos(config);
      console.log(
        [
          `${check.ok ? 'PASS' : 'FAIL'} ${check.name}`,
          `  ${check.counts}`,
          ...runs.map(
            (r) =>
              `  ${r.name} (${r.kind}): ${r.answers}; ${r.created} job(s) for ${r.intended} intended; ${r.durationMs} ms`,
          ),
          ...check.problems.map((p) => `  ! ${p}`),
        ].join('\n'),
      );
      expect(new Set(runs.map((r) => r.name))).toEqual(new Set(config.fleet.scenarios));
      for (const r of runs) {
        expect({ scenario: r.name, created: r.created, problems: r.problems }).toEqual({
          scenario: r.name,
          created: r.intended,
          problems: [],
        });
      }
      expect(check.ok).toBe(true);
    },
  );
});
