import { isTerminal } from '../backup/mappers.js';
import type { Family, RestoreJobSource } from '../backup/model.js';

/** The job changes a hook may be told of: a job that reached COMPLETED, or FAILED. */
export const WEBHOOK_EVENTS = ['job.completed', 'job.failed'] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

/** Which jobs a hook hears about. Every list narrows; an omitted one does not. */
export interface WebhookScope {
  /** The projects watched (at least one). */
  projectIds: readonly string[];
  /** Only these clusters of those projects. @default every cluster */
  clusterNames?: readonly string[] | undefined;
  /** @default both families */
  families?: readonly Family[] | undefined;
  /** @default DOWNLOAD and RESTORE */
  deliveryTypes?: readonly ('DOWNLOAD' | 'RESTORE')[] | undefined;
}

/** One webhook, as configured (`GATEWAY_WEBHOOKS_FILE`). */
export interface WebhookHook {
  /** Stable name: deliveries and the outbox are kept under it. */
  id: string;
  /** Where events are POSTed (http or https). */
  url: string;
  /** The signing key's bytes (a `whsec_…` secret decoded). Never logged, never answered. */
  key: Uint8Array;
  scope: WebhookScope;
  events: readonly WebhookEventName[];
  /**
   * Put Atlas's signed `snapshotUrl` (a bearer link to the archive) in the event's data; otherwise it
   * is left out and the receiver asks the gateway for it. @default false
   */
  includeSnapshotUrl: boolean;
}

/** The event a job's status is, or undefined when it is not terminal. */
export function eventNameOf(job: RestoreJobSource): WebhookEventName | undefined {
  const status = job.dto.status;
  if (!isTerminal(status)) return undefined;
  return status === 'COMPLETED' ? 'job.completed' : 'job.failed';
}

/** Whether the hook wants to hear of this job's current state. */
export function wants(hook: WebhookHook, job: RestoreJobSource): boolean {
  const event = eventNameOf(job);
  if (event === undefined || !hook.events.includes(event)) return false;
  const s = hook.scope;
  if (!s.projectIds.includes(job.projectId)) return false;
  if (s.clusterNames && !s.clusterNames.includes(job.clusterName)) return false;
  if (s.families && !s.families.includes(job.family)) return false;
  const type = job.dto.deliveryType;
  if (s.deliveryTypes && !(s.deliveryTypes as readonly string[]).includes(type ?? '')) return false;
  return true;
}
