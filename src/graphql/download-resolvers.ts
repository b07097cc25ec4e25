import { jobClusterName } from '../backup/mappers.js';
import { downloadPath } from '../downloads/download-path.js';
import { BadUserInputError } from '../errors/index.js';
import { ensureDownload } from '../jobs/ensure-download.js';
import { requireAccess } from './access.js';
import type { Resolvers } from './generated/resolvers-types.js';
import { jobDeps, primed } from './resolvers.js';
import { checkClusterName, checkId } from './validate.js';

/** `minValidityMinutes`: at least a minute; at most Atlas's four-hour link lifetime. */
const MAX_VALIDITY_MINUTES = 240;

/**
 * The resolvers of schema/downloads.graphql: `RestoreJob.downloadUrl`, `Mutation.ensureDownload`, and
 * `RestoreJob.snapshotUrl` hidden when the configuration says so (`GATEWAY_EXPOSE_SNAPSHOT_URL`).
 * Merged after `resolvers` (later wins). `@requiresRight(right: DOWNLOAD)` on both link fields is
 * enforced for the whole schema (requires-right.ts) before these run.
 */
export const downloadResolvers: Resolvers = {
  RestoreJob: {
    snapshotUrl: (j, _a, ctx) =>
      ctx.downloads?.exposeSnapshotUrl === false ? null : (j.dto.snapshotUrl ?? null),
    downloadUrl: (j, _a, ctx) => {
      if (!ctx.downloads || !j.dto.id) return null;
      if (j.dto.deliveryType !== 'DOWNLOAD' || j.dto.status !== 'COMPLETED') return null;
      const ref = { projectId: j.projectId, clusterName: jobClusterName(j) };
      return `${ctx.downloads.baseUrl}${downloadPath(ref, j.dto.id)}`;
    },
  },
  Mutation: {
    ensureDownload: async (_p, { input }, ctx) => {
      const projectId = checkId('input.projectId', input.projectId);
      const clusterName = checkClusterName('input.clusterName', input.clusterName);
      const snapshotId = checkId('input.snapshotId', input.snapshotId);
      const minutes = input.minValidityMinutes;
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_VALIDITY_MINUTES) {
        throw new BadUserInputError(
          'input.minValidityMinutes',
          `an integer from 1 to ${MAX_VALIDITY_MINUTES} (minutes; Atlas's links last four hours)`,
          minutes,
        );
      }
      requireAccess(ctx.caller, projectId, 'download');
      const result = await ensureDownload(jobDeps(ctx), {
        projectId,
        clusterName,
        snapshotId,
        minValidityMs: minutes * 60_000,
        idempotencyKey: input.idempotencyKey ?? undefined,
      });
      return primed(ctx, result);
    },
  },
};
