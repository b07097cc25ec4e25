/**
 * A service that starts a snapshot download through the gateway and waits for the gateway's webhook
 * (`job.completed` / `job.failed`) instead of holding a subscription open for minutes. It verifies
 * each POST's Standard Webhooks signature (and refuses replays), answers 2xx at once, and ignores
 * retries of an event it already has (delivery is at least once).
 *
 *   WEBHOOK_SECRET=whsec_… npx tsx examples/webhook-receiver.ts --project ID --cluster NAME --snapshot ID [--new]
 *
 * (`--new`: a new download even when a still-useful one of the snapshot exists; a reused one that has
 * already finished raises no webhook and is answered at once)
 *
 * with the gateway configured with a hook to this receiver (docs/webhooks.md), e.g. hooks.json:
 *   [{ "id": "downloads", "url": "http://127.0.0.1:4010/events", "secretEnv": "DOWNLOADS_HOOK_SECRET",
 *      "scope": { "projectIds": ["<project id>"], "deliveryTypes": ["DOWNLOAD"] } }]
 *   GATEWAY_WEBHOOKS_FILE=hooks.json DOWNLOADS_HOOK_SECRET=whsec_… npm start
 *
 * Environment:
 *   GATEWAY_URL      the gateway's base URL                       default http://127.0.0.1:4000
 *   GATEWAY_API_KEY  sent as `x-api-key` when the gateway checks callers
 *   WEBHOOK_SECRET   the hook's secret (required)
 *   WEBHOOK_PORT     where this receiver listens                  default 4010
 *
 * It prints the finished job (its status, and the download link read from the gateway).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { verifyWebhook } from '../src/webhooks/sign-webhook.js';
import type { JobCloudEvent } from '../src/webhooks/job-cloud-event.js';
import { graphql } from './graphql-request.js';

export interface WebhookReceiverOptions {
  /** The hook's secret, as configured in the gateway (`whsec_…`). */
  secret: string;
  /** @default 0 (a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** The receiver's clock, for the replay window. @default Date.now */
  now?: () => number;
}

export interface WebhookReceiver {
  /** `http://host:port/events`: the URL to configure in the hook. */
  url: string;
  /** The job's terminal event, when (or if already) it arrives. */
  waitForJob(jobId: string, signal?: AbortSignal): Promise<JobCloudEvent>;
  /** POSTs refused (bad or missing signature, replay outside 5 minutes). */
  refused: number;
  close(): Promise<void>;
}

/** Receives the gateway's job events on `/events`. */
export async function startWebhookReceiver(o: WebhookReceiverOptions): Promise<WebhookReceiver> {
  const events = new Map<string, JobCloudEvent>();
  const waiting = new Map<string, ((e: JobCloudEvent) => void)[]>();
  // At least once: a retry of an event already handled is answered 2xx and ignored.
  const handled = new Set<string>();
  const receiver = { refused: 0 } as WebhookReceiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = verifyWebhook({
        secret: o.secret,
        headers: req.headers,
        body,
        nowMs: (o.now ?? Date.now)(),
      });
      if (req.method !== 'POST' || req.url !== '/events' || !verified.ok) {
        receiver.refused += 1;
        res.writeHead(verified.ok ? 404 : 401).end();
        return;
      }
      // Answer first, work after: a slow handler would only make the gateway retry.
      res.writeHead(204).end();
      if (handled.has(verified.id)) return;
      handled.add(verified.id);
      const event = JSON.parse(body) as JobCloudEvent;
      events.set(event.data.id, event);
      for (const resolve of waiting.get(event.data.id) ?? []) resolve(event);
      waiting.delete(event.data.id);
    });
  });
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://${address}:${port}/events`,
    waitForJob: (jobId: string, signal?: AbortSignal) =>
      new Promise<JobCloudEvent>((resolve, reject) => {
        const known = events.get(jobId);
        if (known) return resolve(known);
        waiting.set(jobId, [...(waiting.get(jobId) ?? []), resolve]);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

export interface DownloadAndWaitOptions {
  /** @default 'http://127.0.0.1:4000' */
  gatewayUrl?: string;
  projectId: string;
  clusterName: string;
  snapshotId: string;
  receiver: WebhookReceiver;
  /** Extra headers for the gateway (an API key, a JWT). @default {} */
  headers?: Record<string, string>;
  /** Return a still-useful download of the same snapshot instead of creating one. @default true */
  reuseExisting?: boolean;
  /** Called once the job exists (its id). */
  onRequested?: (jobId: string) => void;
  signal?: AbortSignal;
}

/**
 * Requests a download and waits for its webhook; then reads the download link from the gateway (the
 * hook's events leave the signed link out unless configured to carry it). A download the gateway
 * reused that has already finished raises no event: it is answered at once (`event` undefined).
 */
export async function requestDownloadAndWait(
  o: DownloadAndWaitOptions,
): Promise<{ jobId: string; status: string; event: JobCloudEvent | undefined; snapshotUrl: string | null }> {
  const gatewayUrl = o.gatewayUrl ?? 'http://127.0.0.1:4000';
  const headers = o.headers ?? {};
  const { requestDownload } = await graphql<{
    requestDownload: { job: { id: string; status: string; isTerminal: boolean } };
  }>(
    gatewayUrl,
    headers,
    `
      mutation ($i: RequestDownloadInput!) {
        requestDownload(input: $i) {
          job {
            id
            status
            isTerminal
          }
        }
      }
    `,
    {
      i: {
        projectId: o.projectId,
        clusterName: o.clusterName,
        snapshotId: o.snapshotId,
        reuseExisting: o.reuseExisting ?? true,
      },
    },
  );
  const { id: jobId, isTerminal } = requestDownload.job;
  let status = requestDownload.job.status;
  let event: JobCloudEvent | undefined;
  if (!isTerminal) {
    const arrived = o.receiver.waitForJob(jobId, o.signal);
    o.onRequested?.(jobId);
    event = await arrived;
    status = event.data.status;
  }
  if (status !== 'COMPLETED') return { jobId, status, event, snapshotUrl: null };
  const { restoreJob } = await graphql<{ restoreJob: { snapshotUrl: string | null } | null }>(
    gatewayUrl,
    headers,
    `
      query ($p: ID!, $c: String!, $j: ID!) {
        restoreJob(projectId: $p, clusterName: $c, id: $j) {
          snapshotUrl
        }
      }
    `,
    { p: o.projectId, c: o.clusterName, j: jobId },
  );
  return { jobId, status, event, snapshotUrl: restoreJob?.snapshotUrl ?? null };
}

// Run as a script (not imported by a test): the argument handling below.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      project: { type: 'string' },
      cluster: { type: 'string' },
      snapshot: { type: 'string' },
      new: { type: 'boolean' },
    },
  });
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret || !values.project || !values.cluster || !values.snapshot) {
    console.error(
      'usage: WEBHOOK_SECRET=whsec_… webhook-receiver.ts --project ID --cluster NAME --snapshot ID',
    );
    process.exit(2);
  }
  const receiver = await startWebhookReceiver({ secret, port: Number(process.env.WEBHOOK_PORT ?? 4010) });
  console.log(`receiving webhooks on ${receiver.url}`);
  const { jobId, status, snapshotUrl } = await requestDownloadAndWait({
    gatewayUrl: process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000',
    projectId: values.project,
    clusterName: values.cluster,
    snapshotId: values.snapshot,
    receiver,
    reuseExisting: !values.new,
    ...(process.env.GATEWAY_API_KEY ? { headers: { 'x-api-key': process.env.GATEWAY_API_KEY } } : {}),
    onRequested: (id) => console.log(`download ${id} requested; waiting for its webhook`),
  });
  console.log(`job ${jobId}: ${status}${snapshotUrl ? `, download at ${snapshotUrl}` : ''}`);
  await receiver.close();
}
