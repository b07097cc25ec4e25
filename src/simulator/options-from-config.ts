import type { SimulatorConfig } from '../config/gateway-config.js';
import { DEFAULT_SIM_CREDENTIALS } from './auth-server/sim-auth.js';
import type { SimCredential } from './http-types.js';
import type { SimulatorOptions } from './server.js';
import { ATLAS_RATE_LIMITS } from './rate-limiter.js';

/** The simulator's demo defaults under what `ATLAS_SIM_*` said; the first credential is the owner. */
export type ConfiguredSimulatorOptions = SimulatorOptions & {
  credentials: [SimCredential, ...SimCredential[]];
};

/**
 * Options from the config's `simulator` group. Shared by `npm run simulator` and the gateway's demo
 * mode so both accept the same credentials.
 */
export function simulatorOptionsFromConfig(config: SimulatorConfig): ConfiguredSimulatorOptions {
  const [owner, readOnly] = DEFAULT_SIM_CREDENTIALS as [SimCredential, SimCredential];
  return {
    credentials: [
      {
        ...owner,
        clientId: config.owner.clientId ?? owner.clientId,
        clientSecret: config.owner.clientSecret ?? owner.clientSecret,
        publicKey: config.owner.publicKey ?? owner.publicKey,
        privateKey: config.owner.privateKey ?? owner.privateKey,
      },
      readOnly,
    ],
    ...(config.jobMs !== undefined ? { jobMs: config.jobMs } : {}),
    ...(config.profile !== undefined ? { profile: config.profile } : {}),
    ...(config.tenantSunset !== undefined ? { tenantSunset: config.tenantSunset } : {}),
    // 0 turns limiting off; unset keeps a generous bucket so a demo behaves like Atlas without getting in the way.
    // Unset: Atlas's recorded limits per endpoint set (1200 Flex, 10000 cluster routes).
    rateLimit:
      config.rateLimit === 0
        ? false
        : {
            capacity: config.rateLimit ?? 1000,
            refillPerSecond: config.rateRefillPerSec ?? 100,
            ...(config.rateLimit === undefined ? { capacityBySet: ATLAS_RATE_LIMITS } : {}),
          },
    ...(config.adminRoutes !== undefined ? { adminRoutes: config.adminRoutes } : {}),
  };
}
