import { DEFAULT_SIM_CREDENTIALS, ManualClock, type SimulatorOptions } from '../../src/simulator/index.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
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

export async function startStack(
  opts: {
    sim?: SimulatorOptions;
    auth?: AtlasAuthConfig;
    gateway?: Partial<GatewayOptions>;
    /** Builds the gateway from the options below. @default createGateway */
    build?: (options: GatewayOptions) => Gateway;
  } = {},
): Promise<Stack> {
  const clock = new ManualClock();
  const sim = await startContractSimulator({ clock, ...opts.sim });
  const gateway = (opts.build ?? createGateway)({
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
