import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { subscribeSse } from '../support/sse.js';

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

/** `npm start`'s process (src/index.ts) in demo mode on a free port; answers its URLs and logs. */
async function startGateway(env: Record<string, string>) {
  child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    logs.push(...c.toString().split('\n').filter(Boolean));
  });
  child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
  for (let i = 0; i < 200 && !/simulator at (http\S+)/.test(out); i++)
    await new Promise((r) => setTimeout(r, 50));
  const url = /Gateway on (http:\/\/[^/\s]+)\/graphql/.exec(out)?.[1];
  const sim = /simulator at (http\S+)/.exec(out)?.[1];
  if (!url || !sim) throw new Error(`gateway did not start:\n${logs.join('\n')}`);
  return { url, sim, logs, proc: child };
}

it('on SIGTERM ends subscriptions with SHUTTING_DOWN then complete, lets in-flight requests finish, revokes the token and exits 0', async () => {
  const { url, sim, logs, proc } = await startGateway({
    ATLAS_SIM_JOB_MS: '600000',
    ATLAS_SIM_ADMIN: 'true',
    GATEWAY_POLL_INTERVAL_MS: '200',
    GATEWAY_SHUTDOWN_GRACE_MS: '5000',
  });
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
  await request(`${sim}/__admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operationId: 'getGroup', latencyMs: 1000, times: 1 }),
  }).then((r) => r.body.dump());
  const inFlight = gql(`{ project(id: "${P}") { name } }`);
  await new Promise((r) => setTimeout(r, 200));

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
});
