import { createHash } from 'node:crypto';
import { isTerminal, jobClusterName } from '../backup/mappers.js';
import type { RestoreJobSource } from '../backup/model.js';
import { DELIVERY_TYPES, JOB_STATUSES, readEnum } from '../backup/unknown-values.js';
import { eventNameOf, type WebhookHook } from './webhook-hook.js';

/** The CloudEvents `type` prefix; the event name follows (`…job.completed`). */
export const EVENT_TYPE_PREFIX = 'com.example.atlas-backup.';

/** The job as the GraphQL `RestoreJob` shows it (scalar fields), plus where it lives. */
export interface WebhookJobData {
  id: string;
  projectId: string;
  clusterName: string;
  family: string;
  status: string;
  statusRaw: string | null;
  deliveryType: string;
  deliveryTypeRaw: string | null;
  snapshotId: string;
  /** Only for hooks with `includeSnapshotUrl`; absent otherwise. */
  snapshotUrl?: string | null;
  expirationDate: string | null;
  restoreScheduledDate: string | null;
  restoreFinishedDate: string | null;
  snapshotFinishedDate: string | null;
  targetProjectId: string | null;
  targetDeploymentItemName: string | null;
  isTerminal: boolean;
}

/** A CloudEvents 1.0 event in structured JSON mode. */
export interface JobCloudEvent {
  specversion: '1.0';
  id: string;
  type: string;
  source: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: WebhookJobData;
}

/**
 * One id per (hook, job, status): every replica that sees the same change names it the same, so the
 * outbox takes it once, and a receiver may dedupe retries on `webhook-id`.
 */
export function eventIdOf(hookId: string, job: RestoreJobSource): string {
  const key = [hookId, job.projectId, job.clusterName, job.dto.id ?? '', job.dto.status ?? ''].join('\u0000');
  return `evt_${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/** The event a hook is sent for a job that reached a terminal state, at `nowMs` if Atlas gave no date. */
export function jobCloudEvent(hook: WebhookHook, job: RestoreJobSource, nowMs: number): JobCloudEvent {
  const d = job.dto;
  const clusterName = jobClusterName(job);
  const data: WebhookJobData = {
    id: d.id ?? '',
    projectId: job.projectId,
    clusterName,
    family: job.family,
    status: readEnum('status', JOB_STATUSES, d.status) ?? 'UNKNOWN',
    statusRaw: d.status ?? null,
    deliveryType: readEnum('deliveryType', DELIVERY_TYPES, d.deliveryType) ?? 'UNKNOWN',
    deliveryTypeRaw: d.deliveryType ?? null,
    snapshotId: d.snapshotId ?? '',
    ...(hook.includeSnapshotUrl ? { snapshotUrl: d.snapshotUrl ?? null } : {}),
    expirationDate: d.expirationDate ?? null,
    restoreScheduledDate: d.restoreScheduledDate ?? null,
    restoreFinishedDate: d.restoreFinishedDate ?? null,
    snapshotFinishedDate: d.snapshotFinishedDate ?? null,
    targetProjectId: d.targetProjectId ?? null,
    targetDeploymentItemName: d.targetDeploymentItemName ?? null,
    isTerminal: isTerminal(d.status),
  };
  return {
    specversion: '1.0',
    id: eventIdOf(hook.id, job),
    type: `${EVENT_TYPE_PREFIX}${eventNameOf(job) ?? 'job.changed'}`,
    source: `/atlas-backup-gateway/projects/${encodeURIComponent(job.projectId)}/clusters/${encodeURIComponent(clusterName)}`,
    subject: data.id,
    time: new Date(timeOf(d.restoreFinishedDate) ?? nowMs).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

function timeOf(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}
