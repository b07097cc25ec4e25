/**
 * The whole flow a user wants: ask the gateway for a snapshot download, follow the job over the
 * `restoreJobStatus` subscription (SSE), and save the `.tgz` through the gateway's `downloadUrl` (with
 * the same credentials; the gateway renews Atlas's link if it has expired, so there is no hurry).
 *
 *   npm start                      # in another terminal (demo mode)
 *   npx tsx examples/download-snapshot.ts [--project ID --cluster NAME --snapshot ID] [--out DIR]
 *
 * Without ids it picks the newest COMPLETED snapshot of the first cluster it can see.
 *
 * Environment:
 *   GATEWAY_URL      the gateway's base URL (`--gateway` wins)   default http://127.0.0.1:4000
 *   DOWNLOAD_DIR     the folder the .tgz is saved in (`--out` wins)
 *                    default <the OS temp dir>/atlas-backup-snapshots, so a demo leaves nothing in the repo
 *   GATEWAY_API_KEY  sent as `x-api-key` when the gateway checks callers
 *
 * It prints the absolute path of the saved file.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { graphql } from './graphql-request.js';

/** Where snapshots go when no folder is named: the OS temp dir, never the working copy. */
export const DEFAULT_DOWNLOAD_DIR = join(tmpdir(), 'atlas-backup-snapshots');

export interface DownloadOptions {
  /** @default 'http://127.0.0.1:4000' */
  gatewayUrl?: string;
  projectId?: string;
  clusterName?: string;
  snapshotId?: string;
  /** The folder the `.tgz` is saved in (made when missing). @default DEFAULT_DOWNLOAD_DIR */
  outDir?: string;
  /** Extra headers for the gateway (an API key, a JWT). @default {} */
  headers?: Record<string, string>;
  /** Called with each status the job reports. */
  onStatus?: (status: string) => void;
}

interface Job {
  id: string;
  status: string;
  downloadUrl: string | null;
  expirationDate: string | null;
}

/** Follows the job over SSE until it is COMPLETED (answers it) or FAILED (throws). */
async function follow(
  url: string,
  headers: Record<string, string>,
  vars: object,
  onStatus?: (s: string) => void,
) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({
      query: `subscription($p: ID!, $c: String!, $j: ID!) {
        restoreJobStatus(projectId: $p, clusterName: $c, jobId: $j) { id status downloadUrl expirationDate }
      }`,
      variables: vars,
    }),
  });
  if (!res.body) throw new Error(`subscription refused: HTTP ${res.status}`);
  let buffer = '';
  const decoder = new TextDecoder();
  // Node's web streams are async iterable; the DOM typings here do not say so.
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (!/^event: next$/m.test(block) || !data) continue;
      const event = JSON.parse(data) as { data?: { restoreJobStatus: Job }; errors?: { message: string }[] };
      if (event.errors?.length) throw new Error(event.errors[0]!.message);
      const job = event.data!.restoreJobStatus;
      onStatus?.(job.status);
      if (job.status === 'FAILED') throw new Error(`download job ${job.id} failed`);
      if (job.status === 'COMPLETED') return job;
    }
  }
  throw new Error('the subscription ended before the job finished');
}

/** Requests, follows and saves one snapshot; answers the absolute path of the saved `.tgz`. */
export async function downloadSnapshot(options: DownloadOptions = {}): Promise<string> {
  const url = options.gatewayUrl ?? 'http://127.0.0.1:4000';
  const headers = options.headers ?? {};
  let { projectId, clusterName, snapshotId } = options;
  if (!projectId || !clusterName || !snapshotId) {
    const { projects } = await graphql<{
      projects: { id: string; clusters: { name: string; snapshots: { nodes: { id: string }[] } }[] }[];
    }>(
      url,
      headers,
      `
        {
          projects {
            id
            clusters {
              name
              snapshots(first: 1, status: [COMPLETED]) {
                nodes {
                  id
                }
              }
            }
          }
        }
      `,
    );
    const pick = projects
      .flatMap((p) => p.clusters.map((c) => ({ p, c })))
      .find(({ c }) => c.snapshots.nodes.length > 0);
    if (!pick) throw new Error('no cluster with a COMPLETED snapshot is visible');
    projectId = pick.p.id;
    clusterName = pick.c.name;
    snapshotId = pick.c.snapshots.nodes[0]!.id;
  }
  const { requestDownload } = await graphql<{ requestDownload: { reused: boolean; job: Job } }>(
    url,
    headers,
    `
      mutation ($i: RequestDownloadInput!) {
        requestDownload(input: $i) {
          reused
          job {
            id
            status
            downloadUrl
            expirationDate
          }
        }
      }
    `,
    // The key makes a retried run of this script reuse its job instead of making another.
    { i: { projectId, clusterName, snapshotId, idempotencyKey: `example-${snapshotId}` } },
  );
  const job = await follow(
    url,
    headers,
    { p: projectId, c: clusterName, j: requestDownload.job.id },
    options.onStatus,
  );
  if (!job.downloadUrl) throw new Error(`job ${job.id} completed without a downloadUrl`);
  // Streamed by the gateway with this caller's credentials (Atlas's signed snapshotUrl never needs to
  // leave it), saved as <snapshotId>.tgz like the Atlas CLI does.
  const file = await fetch(job.downloadUrl, { headers });
  if (!file.ok || !file.body) throw new Error(`the download URL answered HTTP ${file.status}`);
  const outDir = resolve(options.outDir ?? DEFAULT_DOWNLOAD_DIR);
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, `${snapshotId}.tgz`);
  await pipeline(Readable.fromWeb(file.body as WebReadableStream), createWriteStream(path));
  return path;
}

// Run as a script (not imported by a test): the argument handling below.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string' },
      project: { type: 'string' },
      cluster: { type: 'string' },
      snapshot: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const outDir = values.out ?? process.env.DOWNLOAD_DIR;
  const path = await downloadSnapshot({
    gatewayUrl: values.gateway ?? process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000',
    ...(values.project ? { projectId: values.project } : {}),
    ...(values.cluster ? { clusterName: values.cluster } : {}),
    ...(values.snapshot ? { snapshotId: values.snapshot } : {}),
    ...(outDir ? { outDir } : {}),
    ...(process.env.GATEWAY_API_KEY ? { headers: { 'x-api-key': process.env.GATEWAY_API_KEY } } : {}),
    onStatus: (s) => console.log(`job: ${s}`),
  });
  console.log(`saved ${path}`);
}
