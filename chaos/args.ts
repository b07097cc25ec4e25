import { defaultConfig, testConfig, type ChaosConfig } from './config.js';

export interface CliOptions {
  config: ChaosConfig;
  /** Where the JSON report goes. */
  out: string | undefined;
  help: boolean;
}

export const USAGE = `npm run chaos -- [--profile default|test] [--seed N] [--minutes N] [--rounds N] [--no-baseline] [--no-fleet] [--out FILE] [--tolerate-known-bugs] [--verbose]

  --profile P    default (npm run chaos) or test (the short run inside npm test, to replay it)
  --seed N       seed of the workload, the fault schedule and every random draw (default: random, printed)
  --minutes N    soak: repeat the workload in rounds for N minutes (RSS over time in the report)
  --rounds N     rounds to run when not soaking (default 1)
  --no-baseline  skip the fault-free run (then the retry-storm bound is not checked)
  --no-fleet     skip the gateway processes with Redis and replica faults (chaos/fleet-scenarios.ts)
  --out FILE     where to write the JSON report (default: a file in the OS temp dir)
  --tolerate-known-bugs
                 violations matching a known bug's exact signature are reported, not failed
  --verbose      a line per round as it ends`;

/** Parses the CLI; a bad flag throws with the usage. */
export function parseArgs(argv: readonly string[], randomSeed: () => number): CliOptions {
  const overrides: Partial<ChaosConfig> = {};
  let out: string | undefined;
  let help = false;
  let noFleet = false;
  let profile: ChaosConfig['profile'] = 'default';
  const num = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) {
      throw new Error(`${flag} needs a number ≥ ${min}, got ${JSON.stringify(v)}\n\n${USAGE}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--profile': {
        const p = value();
        if (p !== 'default' && p !== 'test')
          throw new Error(`--profile is default or test, got ${JSON.stringify(p)}\n\n${USAGE}`);
        profile = p;
        break;
      }
      case '--seed':
        overrides.seed = Math.floor(num(flag, value(), 0)) >>> 0;
        break;
      case '--minutes':
        overrides.minutes = num(flag, value(), 0.05);
        break;
      case '--rounds':
        overrides.rounds = Math.floor(num(flag, value(), 1));
        break;
      case '--no-baseline':
        overrides.baseline = false;
        break;
      case '--no-fleet':
        noFleet = true;
        break;
      case '--out':
        out = value();
        break;
      case '--tolerate-known-bugs':
        overrides.tolerateKnownBugs = true;
        break;
      case '--verbose':
        overrides.verbose = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(argv[i])}\n\n${USAGE}`);
    }
  }
  const preset = profile === 'test' ? testConfig : defaultConfig;
  const config = preset({ seed: randomSeed(), ...overrides });
  if (noFleet) config.fleet = { ...config.fleet, enabled: false };
  if (config.minutes !== undefined) config.verbose = true;
  return { config, out, help };
}
