import { track } from './disposer.js';
import {
  checkAgainstSpec,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
  type Violation,
} from '../../src/simulator/index.js';

export { checkAgainstSpec, type Violation };

/**
 * A violation a test provokes on purpose, with a fault the spec does not allow (a truncated or
 * malformed body, a status the operation does not declare): which operation, which status, and
 * optionally what the problem says. It must happen exactly `times` times; anything else still fails.
 */
export interface ExpectedViolation {
  operationId: string;
  status: number;
  /** A substring (or pattern) of the problem. @default any problem */
  problem?: string | RegExp;
  /** @default 1 */
  times?: number;
}

/** A simulator whose every answer is checked against the spec (src/simulator/spec-check.ts). */
export type ContractSimulator = Simulator & {
  /** Violations nobody declared: must stay empty, and closing the simulator fails the test if not. */
  violations: Violation[];
  /** Violations that matched a declared expectation. */
  expected: Violation[];
  /** Answers checked so far. */
  checked: () => number;
  /** Declares violations the test is about to provoke (see `ExpectedViolation`). */
  expectViolations(...expected: ExpectedViolation[]): void;
};

const describeExpected = (e: ExpectedViolation) =>
  `${e.operationId} ${e.status}${e.problem !== undefined ? ` ${String(e.problem)}` : ''}`;

/**
 * The one simulator factory of the tests: every answer is validated against
 * schema/atlas/openapi.json, and the simulator is closed when the test (or file) ends
 * (test/support/disposer.ts). Closing it fails the test when an answer broke the spec that the test
 * did not declare with `expect`/`expectViolations`, or when a declared violation did not happen.
 */
export async function startContractSimulator(
  options: SimulatorOptions = {},
  contract: { expect?: ExpectedViolation[] } = {},
): Promise<ContractSimulator> {
  const violations: Violation[] = [];
  const expected: Violation[] = [];
  const pending: { rule: ExpectedViolation; left: number }[] = [];
  let checked = 0;
  const expectViolations = (...rules: ExpectedViolation[]) => {
    for (const rule of rules) pending.push({ rule, left: rule.times ?? 1 });
  };
  expectViolations(...(contract.expect ?? []));
  const matches = (v: Violation, r: ExpectedViolation) =>
    v.operationId === r.operationId &&
    v.status === r.status &&
    (r.problem === undefined ||
      (typeof r.problem === 'string' ? v.problem.includes(r.problem) : r.problem.test(v.problem)));

  const sim = await startSimulator({
    // The tests are written against the small data (120 six-hourly Flex snapshots, four jobs a
    // cluster): they ask for it here; a test of real volumes passes `profile: 'realistic'`.
    profile: 'small',
    // Written before the recordings showed PENDING first: a test of the real lifecycle passes PENDING.
    firstJobStatus: 'QUEUED',
    ...options,
    onResponse: (info) => {
      checked += 1;
      for (const v of checkAgainstSpec(info)) {
        const slot = pending.find((p) => p.left > 0 && matches(v, p.rule));
        if (slot) {
          slot.left -= 1;
          expected.push(v);
        } else violations.push(v);
      }
      options.onResponse?.(info);
    },
  });
  const close = sim.close;
  return track(
    Object.assign(sim, {
      violations,
      expected,
      checked: () => checked,
      expectViolations,
      async close() {
        await close();
        const unmet = pending.filter((p) => p.left > 0);
        if (violations.length === 0 && unmet.length === 0) return;
        throw new Error(
          [
            'the simulator answered outside the Atlas spec (schema/atlas/openapi.json):',
            ...violations.map((v) => `  ${v.operationId} ${v.status}: ${v.problem}`),
            ...unmet.map((p) => `  declared but not seen ${p.left}×: ${describeExpected(p.rule)}`),
          ].join('\n'),
        );
      },
    }),
    'contract simulator',
  );
}
