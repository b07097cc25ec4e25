import { createGateway, type Gateway } from '../src/gateway.js';
import { DEFAULT_SIM_CREDENTIALS, startSimulator, type Simulator } from '../src/simulator/index.js';
import type { ChaosConfig } from './config.js';
import { GATEWAYS, type GatewayName } from './plan.js';
import { fork } from './prng.js';
import { recordingDispatcher, type Exchange } from './recorder.js';
import { openAccess } from '../src/callers/caller.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;

export interface ChaosGateway {
  name: GatewayName;
  gateway: Gateway;
  url: string;
  closeDispatcher(): Promise<void>;
}

/** A simulator on the real clock and two gateways in front of it: one OAuth, one Digest. */
export interface ChaosStack {
  sim: Simulator;
  gateways: Record<GatewayName, ChaosGateway>;
  /** Upstream exchanges of both gateways, appended as they happen. */
  exchanges: Exchange[];
  close(): Promise<void>;
}

export async function startChaosStack(config: ChaosConfig, label: string): Promise<ChaosStack> {
  const chaos = config.faults;
  const sim = await startSimulator({
    port: 0,
    jobMs: config.jobMs,
    random: fork(config.seed, `${label}:sim-random`).next,
    ...(chaos
      ? {
          rateLimit: { ...config.rateLimit },
          tokenTtlSec: config.tokenTtlSec,
          nonceTtlMs: config.nonceTtlMs,
        }
      : {}),
  });
  const exchanges: Exchange[] = [];
  const gateways = {} as Record<GatewayName, ChaosGateway>;
  for (const name of GATEWAYS) {
    const rec = recordingDispatcher(name, exchanges, {
      connectTimeoutMs: config.upstreamTimeoutMs,
      headersTimeoutMs: config.upstreamTimeoutMs,
      bodyTimeoutMs: config.upstreamTimeoutMs,
    });
    const gateway = createGateway({
      // Open on purpose: callers are not what this exercises.
      authenticate: openAccess,
      logging: false,
      pollIntervalMs: config.pollIntervalMs,
      atlas: {
        baseUrl: sim.url,
        auth:
          name === 'oauth'
            ? {
                type: 'oauth',
                clientId: OWNER.clientId,
                clientSecret: OWNER.clientSecret,
                // Renew late, so tokens really expire in flight (401, then a new token and one resend).
                ...(chaos ? { refreshMarginMs: 150 } : {}),
              }
            : { type: 'digest', publicKey: OWNER.publicKey, privateKey: OWNER.privateKey },
        dispatcher: rec.dispatcher,
        random: fork(config.seed, `${label}:${name}:jitter`).next,
        timeouts: {
          connectMs: config.upstreamTimeoutMs,
          headersMs: config.upstreamTimeoutMs,
          bodyMs: config.upstreamTimeoutMs,
        },
      },
    });
    const url = await gateway.listen(0, '127.0.0.1');
    gateways[name] = { name, gateway, url, closeDispatcher: rec.close };
  }
  return {
    sim,
    gateways,
    exchanges,
    async close() {
      for (const g of Object.values(gateways)) {
        await g.gateway.close({ graceMs: 2000 });
        await g.closeDispatcher();
      }
      await sim.close();
    },
  };
}
