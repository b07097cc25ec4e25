import {
  createAtlasClient,
  type AtlasClient,
  type AtlasClientConfig,
  type AtlasAuthConfig,
} from '../../src/atlas/index.js';
import { DEFAULT_SIM_CREDENTIALS, ManualClock, type SimulatorOptions } from '../../src/simulator/index.js';
import { startContractSimulator } from './contract.js';
import { track } from './disposer.js';
import { recordingSleep } from './tiny-server.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;

/** The owner's service account (OAuth) or API key (Digest) on the simulator. */
export const ownerAuth = (type: 'oauth' | 'digest'): AtlasAuthConfig =>
  type === 'oauth'
    ? { type, clientId: OWNER.clientId, clientSecret: OWNER.clientSecret }
    : { type, publicKey: OWNER.publicKey, privateKey: OWNER.privateKey };

/**
 * Our Atlas client against a spec-checked simulator on port 0, both on one manual clock; the client's
 * sleep records each backoff and moves that clock, so retries never wait for real. Both are closed
 * when the test ends (test/support/disposer.ts).
 */
export async function startAtlasClient(
  options: {
    auth?: 'oauth' | 'digest';
    sim?: SimulatorOptions;
    config?: Partial<AtlasClientConfig>;
    /** The recorded backoffs also move the clock (token and nonce expiry follow). @default true */
    sleepMovesClock?: boolean;
  } = {},
) {
  const clock = new ManualClock();
  const sim = await startContractSimulator({ clock, ...options.sim });
  const { sleep, delays } = recordingSleep(options.sleepMovesClock === false ? undefined : clock);
  const client: AtlasClient = track(
    createAtlasClient({
      baseUrl: sim.url,
      auth: ownerAuth(options.auth ?? 'oauth'),
      clock,
      sleep,
      ...options.config,
    }),
    'atlas client',
  );
  return { sim, client, clock, delays };
}
