import { oneOf, atLeast, boolean, envVar, integer, text } from './env-var.js';
import type { SimulatorConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

// Defaults here are documentation only: the simulator applies its own (the config holds what the
// environment said), and test/config checks the two agree.
export const simulatorEnv = {
  ATLAS_SIM_PORT: envVar(
    {
      group: 'simulator',
      description:
        "Port of demo mode's embedded simulator, for curl or other clients (also `npm run simulator` without `--port`).",
      example: '8080',
      defaultText: 'a free port in demo mode; `8080` for `npm run simulator`',
    },
    integer(0, 65535),
  ),
  ATLAS_SIM_CLIENT_ID: envVar(
    {
      group: 'simulator',
      description: "Client id of the simulator's owner service account.",
      example: 'mdb_sa_id_my-demo',
      defaultText: '`mdb_sa_id_demo-owner`',
    },
    text,
  ),
  ATLAS_SIM_CLIENT_SECRET: envVar(
    {
      group: 'simulator',
      description: "Client secret of the simulator's owner service account.",
      example: 'mdb_sa_sk_my-demo-secret',
      defaultText: '`mdb_sa_sk_demo-owner-secret`',
      secret: true,
    },
    text,
  ),
  ATLAS_SIM_PUBLIC_KEY: envVar(
    {
      group: 'simulator',
      description: "Public key of the simulator's owner API key (Digest).",
      example: 'mydemo',
      defaultText: '`demoowner`',
    },
    text,
  ),
  ATLAS_SIM_PRIVATE_KEY: envVar(
    {
      group: 'simulator',
      description: "Private key of the simulator's owner API key (Digest).",
      example: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      defaultText: '`11111111-2222-3333-4444-555555555555`',
      secret: true,
    },
    text,
  ),
  ATLAS_SIM_JOB_MS: envVar(
    {
      group: 'simulator',
      description: 'Time from a download or restore request to COMPLETED in the simulator.',
      example: '500',
      defaultText: '`3000`',
    },
    atLeast(0),
  ),
  ATLAS_SIM_PROFILE: envVar(
    {
      group: 'simulator',
      description:
        "The simulator's data: `realistic` (as a real project: 8 daily Flex snapshots, a Flex cluster with 2,160 jobs, M0 and dedicated clusters) or `small` (the compact data most tests use; docs/simulator.md).",
      example: 'small',
      defaultText: '`realistic`',
    },
    oneOf(['realistic', 'small'], '"realistic" or "small"'),
  ),
  ATLAS_SIM_TENANT_SUNSET: envVar(
    {
      group: 'simulator',
      description: "`true` makes the simulator's tenant routes answer 410 VERSION_GONE, as after the sunset.",
      example: 'true',
      defaultText: '`false`',
    },
    boolean,
  ),
  ATLAS_SIM_RATE_LIMIT: envVar(
    {
      group: 'simulator',
      description:
        "Capacity of the simulator's token bucket per project, for every route; unset, Atlas's recorded limits per endpoint set (`Ratelimit-Limit` 1200 on Flex routes, 10000 on cluster routes); 0 turns its rate limit off.",
      example: '50',
      defaultText: '`1200` on Flex routes, `10000` on cluster routes',
    },
    atLeast(0),
  ),
  ATLAS_SIM_RATE_REFILL_PER_SEC: envVar(
    {
      group: 'simulator',
      description: "Tokens added to the simulator's bucket per second.",
      example: '10',
      defaultText: '`100`',
    },
    atLeast(1),
  ),
  ATLAS_SIM_ADMIN: envVar(
    {
      group: 'simulator',
      description: "`true` serves the simulator's `/__admin/*` routes (faults, sunset, stats).",
      example: 'true',
      defaultText: '`false`',
    },
    boolean,
  ),
};

export function simulatorFromEnv(v: EnvValues<typeof simulatorEnv>): SimulatorConfig {
  return {
    port: v.ATLAS_SIM_PORT,
    owner: {
      clientId: v.ATLAS_SIM_CLIENT_ID,
      clientSecret: v.ATLAS_SIM_CLIENT_SECRET,
      publicKey: v.ATLAS_SIM_PUBLIC_KEY,
      privateKey: v.ATLAS_SIM_PRIVATE_KEY,
    },
    jobMs: v.ATLAS_SIM_JOB_MS,
    profile: v.ATLAS_SIM_PROFILE,
    tenantSunset: v.ATLAS_SIM_TENANT_SUNSET,
    rateLimit: v.ATLAS_SIM_RATE_LIMIT,
    rateRefillPerSec: v.ATLAS_SIM_RATE_REFILL_PER_SEC,
    adminRoutes: v.ATLAS_SIM_ADMIN,
  };
}
