import { createGateway, type Gateway } from '../src/gateway.js';
import {
  checkAgainstSpec,
  DEFAULT_SIM_CREDENTIALS,
  startSimulator,
  type ResponseInfo,
  type Simulator,
  type Violation,
} from '../src/simulator/index.js';
import type { ChaosConfig } from './config.js';
import { GATEWAYS, type GatewayName } from './plan.js';
import { fork } from './prng.js';
import { recordingDispatcher, WaitLog, type Exchange } from './recorder.js';
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
  /** The gateways' backoff sleeps and poller timers, in one event sequence with the exchanges. */
  waits: WaitLog;
  /**
   * Every simulator answer since the last call checked against the Atlas spec (src/simulator/spec-check.ts): the
   * answers checked, the violations an injected wire fault explains (a truncated or malformed body:
   * the chaos is meant to send those), and every other violation (the simulator broke the spec). The
   * answers are only collected while the chaos runs and checked here, so checking costs the
   * simulator no time under load (nonces and tokens expire in real time).
   */
  contract(): { checked: number; injected: Violation[]; violations: Violation[] };
  close(): Promise<void>;
}

export async function startChaosStack(config: ChaosConfig, label: string): Promise<ChaosStack> {
  const chaos = config.faults;
  const answers: ResponseInfo[] = [];
  const contract = () => {
    const out: ReturnType<ChaosStack['contract']> = { checked: 0, injected: [], violations: [] };
    for (const info of answers.splice(0)) {
      out.checked += 1;
      const found = checkAgainstSpec(info);
      (info.wire === 'truncated' || info.wire === 'malformed' ? out.injected : out.violations).push(...found);
    }
    return out;
  };
  const sim = await startSimulator({
    port: 0,
    onResponse: (info) => answers.push(info),
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
  const waits = new WaitLog();
  const gateways = {} as Record<GatewayName, ChaosGateway>;
  for (const name of GATEWAYS) {
    const rec = recordingDispatcher(name, exchanges, waits, {
      connectTimeoutMs: config.upstreamTimeoutMs,
      headersTimeoutMs: config.upstreamTimeoutMs,
      bodyTimeoutMs: config.upstreamTimeoutMs,
    });
    const gateway = createGateway({
      // Open on purpose: callers are not what this exercises.
      authenticate: openAccess,
      // The client is one address holding every subscription; connection caps are not exercised here.
      connections: { maxConnections: 0, maxConnectionsPerAddress: 0 },
      logging: false,
      pollIntervalMs: config.pollIntervalMs,
      timers: waits.timers,
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
        sleep: waits.sleep,
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
    waits,
    contract,
    async close() {
      for (const g of Object.values(gateways)) {
        await g.gateway.close({ graceMs: 2000 });
        await g.closeDispatcher();
      }
      await sim.close();
    },
  };
}
