import { DEFAULT_SIM_CREDENTIALS } from './auth-server/sim-auth.js';
import type { SimCredential } from './http-types.js';
import type { SimulatorOptions } from './server.js';

/** One bad environment variable: its name, what was expected and what arrived. */
export class SimEnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid simulator environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * Simulator options from `ATLAS_SIM_*` variables (see README). Shared by `npm run simulator` and the
 * gateway's demo mode so both accept the same credentials.
 */
export function simulatorOptionsFromEnv(env: NodeJS.ProcessEnv): SimulatorOptions {
  const problems: string[] = [];
  const int = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min) {
      problems.push(`${name}: expected an integer ≥ ${min}, got "${raw}"`);
      return undefined;
    }
    return Number(raw);
  };
  const bool = (name: string): boolean | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    if (raw !== 'true' && raw !== 'false') {
      problems.push(`${name}: expected "true" or "false", got "${raw}"`);
      return undefined;
    }
    return raw === 'true';
  };
  const [owner, readOnly] = DEFAULT_SIM_CREDENTIALS as [SimCredential, SimCredential];
  const credentials: SimCredential[] = [
    {
      ...owner,
      clientId: env.ATLAS_SIM_CLIENT_ID || owner.clientId,
      clientSecret: env.ATLAS_SIM_CLIENT_SECRET || owner.clientSecret,
      publicKey: env.ATLAS_SIM_PUBLIC_KEY || owner.publicKey,
      privateKey: env.ATLAS_SIM_PRIVATE_KEY || owner.privateKey,
    },
    readOnly,
  ];
  const jobMs = int('ATLAS_SIM_JOB_MS', 0);
  const tenantSunset = bool('ATLAS_SIM_TENANT_SUNSET');
  const capacity = int('ATLAS_SIM_RATE_LIMIT', 0);
  const refill = int('ATLAS_SIM_RATE_REFILL_PER_SEC', 1);
  const adminRoutes = bool('ATLAS_SIM_ADMIN');
  if (problems.length > 0) throw new SimEnvError(problems);
  return {
    credentials,
    ...(jobMs !== undefined ? { jobMs } : {}),
    ...(tenantSunset !== undefined ? { tenantSunset } : {}),
    // 0 turns limiting off; unset keeps a generous bucket so a demo behaves like Atlas without getting in the way.
    rateLimit: capacity === 0 ? false : { capacity: capacity ?? 1000, refillPerSecond: refill ?? 100 },
    ...(adminRoutes !== undefined ? { adminRoutes } : {}),
  };
}
