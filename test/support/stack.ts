import { DEFAULT_SIM_CREDENTIALS, ManualClock, type SimulatorOptions } from '../../src/simulator/index.js';
import type { Gateway } from '../../src/gateway.js';
import { createGatewayFromConfig, type GatewayOverrides } from '../../src/gateway-from-config.js';
import { loadConfig, type Env, type GatewayConfig } from '../../src/config/index.js';
import type { AtlasAuthConfig } from '../../src/atlas/index.js';
import { startContractSimulator } from './contract.js';
import { track } from './disposer.js';

const [OWNER, READ_ONLY] = DEFAULT_SIM_CREDENTIALS as [
  (typeof DEFAULT_SIM_CREDENTIALS)[0],
  (typeof DEFAULT_SIM_CREDENTIALS)[0],
];
export { OWNER, READ_ONLY };

export interface GraphQLAnswer<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

/** A gateway in front of a contract-checked simulator, both on the same manual clock. */
export interface Stack {
  sim: Awaited<ReturnType<typeof startContractSimulator>>;
  gateway: Gateway;
  clock: ManualClock;
  /** In-process: `yoga.fetch`, no gateway socket (the simulator still answers over a real one). */
  query<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<GraphQLAnswer<T>>;
  /** Upstream API calls (token requests excluded) made while `fn` ran. */
  upstreamCalls(
    fn: () => Promise<unknown>,
  ): Promise<{ method: string; target: string; operationId: string }[]>;
  close(): Promise<void>;
}

/**
 * A spec-checked simulator and a gateway built the way `npm start` builds it
 * (`createGatewayFromConfig`): caller checks, rights, limits and every security plugin that ships are
 * on unless the test's configuration says otherwise. Only what a test cannot configure through the
 * environment is injected: the simulator's URL and credentials, the manual clock, a no-wait sleep,
 * silent logs.
 */
export async function startStack(
  opts: {
    sim?: SimulatorOptions;
    /** The gateway's own Atlas credentials. @default the simulator owner's service account */
    auth?: AtlasAuthConfig;
    /**
     * The environment the gateway is configured from, as `src/index.ts` reads it. Two exceptions to
     * "as `npm start`": the Atlas budget is off unless `env` sets `GATEWAY_ATLAS_BUDGET`, since it
     * refills on the wall clock while tests run hours of job polling in milliseconds; and the shared
     * read cache is off unless `env` sets `GATEWAY_CACHE`, so the tests that count one request's
     * upstream calls see that request's own (test/graphql/read-cache*.test.ts turn it on).
     * @default {} (demo mode: open callers, every other limit at its default)
     */
    env?: Env;
    /**
     * An already validated configuration, instead of `env` (its Atlas budget off unless `env` sets
     * `GATEWAY_ATLAS_BUDGET`, as above). @default loadConfig(env)
     */
    config?: GatewayConfig;
    /** Injected or overridden `createGateway` options, applied last (a logger, timers, …). @default {} */
    gateway?: GatewayOverrides;
  } = {},
): Promise<Stack> {
  const clock = new ManualClock();
  const sim = await startContractSimulator({ clock, ...opts.sim });
  const env = opts.env ?? {};
  const loaded = opts.config ?? loadConfig(env);
  const budgeted: GatewayConfig =
    env.GATEWAY_ATLAS_BUDGET === undefined
      ? { ...loaded, upstream: { ...loaded.upstream, atlasBudget: false } }
      : loaded;
  const config: GatewayConfig =
    env.GATEWAY_CACHE === undefined
      ? { ...budgeted, cache: { ...budgeted.cache, enabled: false } }
      : budgeted;
  const configured = createGatewayFromConfig(config, {
    clock,
    logging: false,
    ...opts.gateway,
    atlas: {
      baseUrl: sim.url,
      auth: opts.auth ?? { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
      clock,
      // Retries back off through this: tests never wait for real.
      sleep: async () => {},
      ...opts.gateway?.atlas,
    },
  });
  const { gateway } = configured;
  const query = async <T>(q: string, variables?: Record<string, unknown>): Promise<GraphQLAnswer<T>> => {
    const res = await gateway.yoga.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: q, variables }),
    });
    return { status: res.status, ...((await res.json()) as Omit<GraphQLAnswer<T>, 'status'>) };
  };
  return track<Stack>(
    {
      sim,
      gateway,
      clock,
      query,
      async upstreamCalls(fn) {
        const before = sim.stats().requests.length;
        await fn();
        return sim
          .stats()
          .requests.slice(before)
          .filter((r) => !r.operationId.startsWith('oauth.'))
          .map(({ method, target, operationId }) => ({ method, target, operationId }));
      },
      async close() {
        await gateway.close();
        await sim.close();
      },
    },
    'stack',
  );
}
