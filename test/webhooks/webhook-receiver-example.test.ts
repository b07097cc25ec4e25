import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { requestDownloadAndWait, startWebhookReceiver } from '../../examples/webhook-receiver.js';
import { SEED } from '../../src/simulator/seed.js';
import { track } from '../support/disposer.js';
import { until } from '../support/private-redis.js';
import { startStack } from '../support/stack.js';

const P = SEED.projects.payments.id;
const F = SEED.flex;

it('examples/webhook-receiver.ts requests a download and gets its signed webhook, no subscription', async () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const file = join(mkdtempSync(join(tmpdir(), 'webhook-example-')), 'hooks.json');
  let now = () => Date.now();
  const receiver = track(await startWebhookReceiver({ secret, now: () => now() }), 'example receiver');
  writeFileSync(
    file,
    JSON.stringify([
      {
        id: 'downloads',
        url: receiver.url,
        secret,
        scope: { projectIds: [P], clusterNames: [F.clusterName] },
      },
    ]),
  );
  // Polls every 10 ms of real time; the simulator's jobs move on the stack's clock, which the receiver
  // reads too (the gateway signs with it).
  const stack = await startStack({ env: { GATEWAY_WEBHOOKS_FILE: file }, gateway: { pollIntervalMs: 10 } });
  now = () => stack.clock.now();
  const url = await stack.gateway.listen(0);
  // The hook's watch has read the cluster's jobs once (its starting point) and polls again: the job
  // about to be made is one it sees change.
  await until(() => stack.gateway.pollers.stats().polls >= 3, 'the hook watching');

  const ask = {
    gatewayUrl: url,
    projectId: P,
    clusterName: F.clusterName,
    snapshotId: F.completedSnapshotId,
  };
  // The seed already holds a fresh download of this snapshot: reused, finished, nothing to wait for.
  const reused = await requestDownloadAndWait({ ...ask, receiver });
  expect(reused).toMatchObject({ jobId: F.freshDownloadJobId, status: 'COMPLETED', event: undefined });

  const { event, snapshotUrl } = await requestDownloadAndWait({
    ...ask,
    reuseExisting: false,
    receiver,
    onRequested: () => stack.clock.advance(stack.sim.store.jobMs),
  });
  expect(event).toMatchObject({
    type: 'com.example.atlas-backup.job.completed',
    data: { status: 'COMPLETED' },
  });
  expect(snapshotUrl).toMatch(/^https?:\/\/.+/);
  expect(receiver.refused).toBe(0);

  // A forged POST is refused.
  const forged = await fetch(receiver.url, {
    method: 'POST',
    headers: {
      'webhook-id': 'evt_x',
      'webhook-timestamp': String(Math.floor(now() / 1000)),
      'webhook-signature': 'v1,AAAA',
    },
    body: JSON.stringify(event),
  });
  expect(forged.status).toBe(401);
  expect(receiver.refused).toBe(1);
  expect(stack.sim.violations).toEqual([]);
});
