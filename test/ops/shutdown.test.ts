import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startContractSimulator } from '../support/contract.js';
import { subscribeSse } from '../support/sse.js';

const OWNER = DEFAULT_SIM_CREDENTIALS[0]!;

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

/**
 * `npm start`'s process (src/index.ts) on a free port, in front of a spec-checked simulator that runs
 * in this process (every answer the gateway gets is validated; a violation fails the test); answers
 * the gateway's URL and logs, and the simulator.
 */
async function startGateway(env: Record<string, string>, sim: { url: string }) {
  child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      LOG_LEVEL: 'debug',
      MONGODB_ATLAS_BASE_URL: sim.url,
      MONGODB_ATLAS_CLIENT_ID: OWNER.clientId,
      MONGODB_ATLAS_CLIENT_SECRET: OWNER.clientSecret,
      // Demo mode allowed open access by itself; in front of a non-demo upstream it must be said.
      GATEWAY_AUTH: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    logs.push(...c.toString().split('\n').filter(Boolean));
  });
  child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
  // A deadline for a hang, not a speed limit.
  for (let i = 0; i < 1200 && !/Gateway on (http\S+)/.test(out) && child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 50));
  const url = /Gateway on (http:\/\/[^/\s]+)\/graphql/.exec(out)?.[1];
  if (!url) throw new Error(`gateway did not start:\n${logs.join('\n')}`);
  return { url, logs, proc: child };
}

it(
  'on SIGTERM ends subscriptions with SHUTTING_DOWN then complete, lets in-flight requests finish, revokes the token and exits 0',
  { timeout: 90_000 },
  async () => {
    const sim = await startContractSimulator({ jobMs: 600_000 });
    const { url, logs, proc } = await startGateway(
      { GATEWAY_POLL_INTERVAL_MS: '200', GATEWAY_SHUTDOWN_GRACE_MS: '5000' },
      sim,
    );
    const P = SEED.projects.payments.id;
    const gql = async (query: string) => {
      const res = await request(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return (await res.body.json()) as { data?: Record<string, { job: { id: string } }> };
    };
    const made = await gql(
      `mutation { requestDownload(input: { projectId: "${P}", clusterName: "${SEED.flex.clusterName}", snapshotId: "${SEED.flex.completedSnapshotId}", reuseExisting: false }) { job { id } } }`,
    );
    const jobId = made.data!.requestDownload!.job.id;
    const sub = await subscribeSse(
      url,
      `subscription { restoreJobStatus(projectId: "${P}", clusterName: "${SEED.flex.clusterName}", jobId: "${jobId}") { status } }`,
    );
    expect((await sub.next())?.event).toBe('next');

    // A request that is still waiting on Atlas when the signal arrives.
    const slow = sim.faults.add({ operationId: 'getGroup', latencyMs: 1000, times: 1 });
    const inFlight = gql(`{ project(id: "${P}") { name } }`);
    // Counted, not timed: the signal goes out once the simulator holds the request.
    await expect
      .poll(() => sim.faults.list().find((f) => f.id === slow)?.hits ?? 'taken', { timeout: 15_000 })
      .toBe('taken');

    proc.kill('SIGTERM');
    // The job is still QUEUED: the stream says why it ends before it completes.
    expect((await sub.next())?.data).toMatchObject({
      data: null,
      errors: [{ extensions: { code: 'SHUTTING_DOWN', retryable: true } }],
    });
    expect((await sub.next())?.event).toBe('complete');
    expect((await inFlight).data).toEqual({ project: { name: 'Payments' } });
    const [code] = (await once(proc, 'exit')) as [number];
    // 0, not the hard stop's 1: everything above finished within the grace period.
    expect(code).toBe(0);
    const json = logs.map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : {}));
    expect(json.find((l) => l.msg === 'atlas call' && l.operation === 'oauthRevoke')).toMatchObject({
      status: 200,
    });
    expect(json.find((l) => l.msg === 'gateway closed')).toBeDefined();
    await sub.close();
  },
);
