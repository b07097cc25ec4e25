/**
 * `npm run mutation:summary`: the per-file and per-group counts of Stryker's JSON report
 * (reports/mutation/mutation.json, made by `npm run mutation`) written to docs/mutation-summary.json.
 * `-- --survivors` also prints every surviving and uncovered mutant (file:line, mutator, replacement).
 * `-- --report <path>` reads another report; given several times, their files are merged (a file in
 * several reports counts from the last), for runs made one module group at a time. `-- --out <path>`
 * writes elsewhere (`-` prints it). `-- --keep <summary.json>` keeps the counts of the files that
 * summary has and the reports do not (a group re-run alone updates its files, the others stay).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface Mutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
}

export interface Counts {
  mutants: number;
  killed: number;
  survived: number;
  timeout: number;
  noCoverage: number;
  ignored: number;
  errors: number;
  /** (killed + timeout) / (killed + timeout + survived + noCoverage), in percent, 2 decimals; null when nothing was tested. */
  score: number | null;
}

/** The module groups of docs/mutation.md; a file belongs to the first that matches. */
export const GROUPS: [string, RegExp][] = [
  ['jobs', /^src\/jobs\//],
  ['callers', /^src\/callers\//],
  ['access+errors', /^src\/(graphql\/(access|errors)\.ts|errors\/)/],
  ['backup', /^src\/backup\//],
  ['atlas credentials', /^src\/atlas\/credentials\//],
];

export function count(mutants: Mutant[]): Counts {
  const n = (s: string) => mutants.filter((m) => m.status === s).length;
  const c = {
    mutants: mutants.length,
    killed: n('Killed'),
    survived: n('Survived'),
    timeout: n('Timeout'),
    noCoverage: n('NoCoverage'),
    ignored: n('Ignored'),
    errors: n('CompileError') + n('RuntimeError'),
  };
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  return { ...c, score: valid === 0 ? null : Math.round((detected / valid) * 10_000) / 100 };
}

/** Counts of several files added up, the score made again from the sums. */
export function add(counts: Counts[]): Counts {
  const sum = (k: Exclude<keyof Counts, 'score'>) => counts.reduce((n, c) => n + c[k], 0);
  const c = {
    mutants: sum('mutants'),
    killed: sum('killed'),
    survived: sum('survived'),
    timeout: sum('timeout'),
    noCoverage: sum('noCoverage'),
    ignored: sum('ignored'),
    errors: sum('errors'),
  };
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  return { ...c, score: valid === 0 ? null : Math.round((detected / valid) * 10_000) / 100 };
}

/** Per file and per group; `kept`: counts of files the report does not have (`--keep`). */
export function summarize(report: Report, kept: Record<string, Counts> = {}) {
  const measured = Object.fromEntries(
    Object.entries(report.files).map(([path, f]) => [path, count(f.mutants)]),
  );
  const files = Object.fromEntries(
    Object.entries({ ...kept, ...measured }).sort(([a], [b]) => a.localeCompare(b)),
  );
  const groups = Object.fromEntries(
    GROUPS.map(([name, re]) => [
      name,
      add(Object.entries(files).flatMap(([path, c]) => (re.test(path) ? [c] : []))),
    ]),
  );
  const total = add(Object.values(files));
  return { total, groups, files };
}

export function survivors(report: Report): string[] {
  return Object.entries(report.files)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([path, f]) =>
      f.mutants
        .filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')
        .sort((a, b) => a.location.start.line - b.location.start.line)
        .map(
          (m) =>
            `${path}:${m.location.start.line}:${m.location.start.column} ${m.status} ${m.mutatorName} ${JSON.stringify(m.replacement ?? '')}`,
        ),
    );
}

const { values } = parseArgs({
  options: {
    report: { type: 'string', multiple: true, default: ['reports/mutation/mutation.json'] },
    out: { type: 'string', default: 'docs/mutation-summary.json' },
    survivors: { type: 'boolean', default: false },
    keep: { type: 'string' },
  },
});
const reports = await Promise.all(
  values.report.map(async (path) => JSON.parse(await readFile(path, 'utf8')) as Report),
);
const report: Report = { files: Object.assign({}, ...reports.map((r) => r.files)) as Report['files'] };
const kept = values.keep
  ? (JSON.parse(await readFile(values.keep, 'utf8')) as { files: Record<string, Counts> }).files
  : {};
const text = `${JSON.stringify(summarize(report, kept), null, 2)}\n`;
if (values.out === '-') process.stdout.write(text);
else await writeFile(values.out, text);
if (values.survivors) process.stdout.write(`${survivors(report).join('\n')}\n`);
