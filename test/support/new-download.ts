import { expect } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from './stack.js';

/**
 * A new DOWNLOAD job (never a reused one) of a COMPLETED snapshot, requested in process; its id. By
 * default of Payments / payments-flex, the Flex cluster the subscription tests watch.
 */
export async function newDownload(
  stack: Stack,
  clusterName: string = SEED.flex.clusterName,
  snapshotId: string = SEED.flex.completedSnapshotId,
): Promise<string> {
  const res = await stack.query<{ requestDownload: { job: { id: string } } }>(
    `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id } } }`,
    { i: { projectId: SEED.projects.payments.id, clusterName, snapshotId, reuseExisting: false } },
  );
  expect(res.errors).toBeUndefined();
  return res.data!.requestDownload.job.id;
}
