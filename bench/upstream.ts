import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import {
  DEFAULT_SIM_CREDENTIALS,
  startSimulator,
  type Clock,
  type ResponseInfo,
  type Simulator,
} from '../src/simulator/index.js';

/** The demo owner: the gateway's service account, and the peer's and direct client's token source. */
export const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;

/** Options of `startUpstream`. */
export interface UpstreamOptions {
  /** The simulator's clock (the subscription runs step a ManualClock). @default the system clock */
  clock?: Clock;
  /** Simulator time from a download request to COMPLETED. @default 3000 */
  jobMs?: number;
  /**
   * The simulator's data. The sections before issue #17 were measured on `small`, and keep it so
   * their figures stay comparable; `mutation-volume` measures on `realistic`. @default 'small'
   */
  profile?: 'small' | 'realistic';
}

/** One answer of the simulator as the bench sees it: when, which operation, which job state. */
export interface Answer {
  /** `performance.now()` when the simulator answered (before the bytes left). */
  at: number;
  operationId: string;
  status: number;
  /** `id` and `status` of a restore-job body, for the subscription's delivery delay. */
  job?: { id: string; status: string };
}

/**
 * The simulator with counters the bench owns: API calls by operation (token requests excluded),
 * unbounded (the simulator's own request log is capped for long runs), and answer listeners.
 */
export interface Upstream {
  sim: Simulator;
  url: string;
  /** API calls (not `oauth.*`) since the last `reset`, by operationId. */
  calls(): { total: number; byOperation: Record<string, number> };
  reset(): void;
  /** Called with every API answer; returns the unsubscribe function. */
  onAnswer(fn: (a: Answer) => void): () => void;
  close(): Promise<void>;
}

const JOB_OPERATIONS = new Set([
  'getGroupFlexClusterBackupRestoreJob',
  'getGroupClusterBackupTenantRestore',
  'downloadGroupFlexClusterBackup',
  'downloadGroupClusterBackupTenant',
]);

/** Starts the simulator on 127.0.0.1, port 0, rate limiting off (the bench measures, not throttles). */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const byOperation = new Map<string, number>();
  let total = 0;
  const listeners = new Set<(a: Answer) => void>();
  const onResponse = (info: ResponseInfo) => {
    if (info.operationId.startsWith('oauth.')) return;
    total += 1;
    byOperation.set(info.operationId, (byOperation.get(info.operationId) ?? 0) + 1);
    if (listeners.size === 0) return;
    const answer: Answer = { at: performance.now(), operationId: info.operationId, status: info.status };
    if (JOB_OPERATIONS.has(info.operationId) && typeof info.body === 'object' && info.body !== null) {
      const b = info.body as { id?: unknown; status?: unknown };
      if (typeof b.id === 'string' && typeof b.status === 'string') {
        answer.job = { id: b.id, status: b.status };
      }
    }
    for (const l of listeners) l(answer);
  };
  const sim = await startSimulator({
    port: 0,
    host: '127.0.0.1',
    rateLimit: false,
    profile: options.profile ?? 'small',
    onResponse,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.jobMs !== undefined ? { jobMs: options.jobMs } : {}),
  });
  return {
    sim,
    url: sim.url,
    calls: () => ({ total, byOperation: Object.fromEntries(byOperation) }),
    reset: () => {
      total = 0;
      byOperation.clear();
    },
    onAnswer: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    close: () => sim.close(),
  };
}

/** A bearer token from the simulator's OAuth endpoint (client credentials), as a static token. */
export async function fetchToken(baseUrl: string): Promise<string> {
  const res = await request(`${baseUrl}/api/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${OWNER.clientId}:${OWNER.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: 'grant_type=client_credentials',
  });
  const body = (await res.body.json()) as { access_token?: unknown };
  if (res.statusCode !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`token request answered ${res.statusCode}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}
