import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, USAGE } from './args.js';
import { formatReport, replayCommand, runChaos } from './chaos.js';

// `npm run chaos -- [--seed N] [--minutes N]`: prints the seed first, the invariants last; exit 1 on failure.
async function main(): Promise<number> {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), () => Math.floor(Math.random() * 2 ** 31));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const { config } = opts;
  console.log(
    `chaos: seed ${config.seed}, profile ${config.profile}${config.minutes !== undefined ? `, soak for ${config.minutes} min` : ''} (replay: ${replayCommand(config)})`,
  );
  const report = await runChaos(config, (line) => {
    if (config.verbose || line.startsWith('fault-free')) console.log(`  ${line}`);
  });
  const out = opts.out ?? join(tmpdir(), `atlas-chaos-seed${config.seed}-${Date.now()}.json`);
  writeFileSync(
    out,
    JSON.stringify(report, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 2),
  );
  console.log(formatReport(report));
  console.log(`full report (fault schedule of every round, hits per window): ${out}`);
  return report.ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('chaos: the run itself failed', err);
    process.exitCode = 2;
  },
);
