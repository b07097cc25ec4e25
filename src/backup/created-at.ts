import type { RestoreJobSource } from './model.js';

/**
 * When Atlas created a job: its `restoreScheduledDate` (set at creation, whole seconds), else the
 * creation seconds every ObjectId starts with. NaN when neither can be read: callers that look for
 * recent jobs keep such a job (it may be the one looked for), hence `!(createdAt(j) < since)`.
 */
export function createdAt(job: RestoreJobSource): number {
  const scheduled = Date.parse(job.dto.restoreScheduledDate ?? '');
  if (!Number.isNaN(scheduled)) return scheduled;
  const id = job.dto.id ?? '';
  return /^[0-9a-f]{24}$/.test(id) ? parseInt(id.slice(0, 8), 16) * 1000 : Number.NaN;
}
