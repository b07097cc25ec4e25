import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { webhookKey } from '../webhooks/sign-webhook.js';
import { WEBHOOK_EVENTS, type WebhookHook } from '../webhooks/webhook-hook.js';
import { envVar, httpUrl, integer, text } from './env-var.js';
import type { WebhooksConfig } from './gateway-config.js';
import type { EnvReading, EnvValues } from './read-env.js';

const FILE = 'GATEWAY_WEBHOOKS_FILE';

export const webhooksEnv = {
  GATEWAY_WEBHOOKS_FILE: envVar(
    {
      group: 'webhooks',
      description:
        'A JSON file listing the webhooks: `[{id, url, secret | secretEnv | secretFile, scope: {projectIds, …}, events?, includeSnapshotUrl?}]` (docs/webhooks.md); unset: none.',
      example: '/etc/gateway/webhooks.json',
    },
    text,
  ),
  GATEWAY_WEBHOOK_MAX_ATTEMPTS: envVar(
    {
      group: 'webhooks',
      description:
        'POSTs per event before it is dead-lettered (kept, visible in `webhookDeliveries`, not retried).',
      example: '5',
      default: 8,
    },
    integer(1, 100),
  ),
  GATEWAY_WEBHOOK_BACKOFF_MS: envVar(
    {
      group: 'webhooks',
      description: 'The wait before the first retry; each next one doubles (half of it random).',
      example: '2000',
      default: 1000,
    },
    integer(1, 3_600_000),
  ),
  GATEWAY_WEBHOOK_MAX_BACKOFF_MS: envVar(
    {
      group: 'webhooks',
      description: "Longest wait between two attempts, a receiver's `Retry-After` included.",
      example: '600000',
      default: 3_600_000,
    },
    integer(1, 86_400_000),
  ),
  GATEWAY_WEBHOOK_TIMEOUT_MS: envVar(
    {
      group: 'webhooks',
      description: "Longest wait for a receiver's answer (its headers, then each chunk of its body).",
      example: '5000',
      default: 10_000,
    },
    integer(100, 600_000),
  ),
  GATEWAY_WEBHOOK_CONCURRENCY: envVar(
    {
      group: 'webhooks',
      description: 'POSTs in flight per hook and replica: all a slow receiver can hold in memory.',
      example: '1',
      default: 2,
    },
    integer(1, 16),
  ),
  GATEWAY_WEBHOOK_CLAIM_IDLE_MS: envVar(
    {
      group: 'webhooks',
      description:
        "With Redis: how long a delivery may stay claimed by one replica before another takes it over (a dead replica's); above the timeout.",
      example: '120000',
      default: 60_000,
    },
    integer(1000, 86_400_000),
  ),
  GATEWAY_WEBHOOK_MEMORY_OUTBOX_MAX: envVar(
    {
      group: 'webhooks',
      description:
        'Without Redis: most undelivered events held in memory (not durable: a restart loses them); more are dropped and counted.',
      example: '500',
      default: 1000,
    },
    integer(1, 1_000_000),
  ),
};

const HEX24 = /^[0-9a-f]{24}$/;
const hookSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ or -, 1 to 64 of them'),
    url: z.string().refine((u) => httpUrl(u) !== undefined, 'an http or https URL'),
    secret: z.string().optional(),
    secretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
      .optional(),
    secretFile: z.string().min(1).optional(),
    scope: z
      .object({
        projectIds: z.array(z.string().regex(HEX24, 'a 24-hex project id')).min(1),
        clusterNames: z.array(z.string().min(1)).min(1).optional(),
        families: z
          .array(z.enum(['TENANT', 'FLEX']))
          .min(1)
          .optional(),
        deliveryTypes: z
          .array(z.enum(['DOWNLOAD', 'RESTORE']))
          .min(1)
          .optional(),
      })
      .strict(),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .default([...WEBHOOK_EVENTS]),
    includeSnapshotUrl: z.boolean().default(false),
  })
  .strict();

/** Standard Webhooks keys are 24 to 64 bytes; fewer would be guessable. */
const MIN_KEY_BYTES = 24;

export function webhooksFromEnv(
  v: EnvValues<typeof webhooksEnv>,
  reading: EnvReading,
  hasRedis: boolean,
): WebhooksConfig {
  const policy = {
    maxAttempts: v.GATEWAY_WEBHOOK_MAX_ATTEMPTS,
    backoffMs: v.GATEWAY_WEBHOOK_BACKOFF_MS,
    maxBackoffMs: v.GATEWAY_WEBHOOK_MAX_BACKOFF_MS,
    timeoutMs: v.GATEWAY_WEBHOOK_TIMEOUT_MS,
    concurrency: v.GATEWAY_WEBHOOK_CONCURRENCY,
  };
  if (hasRedis && v.GATEWAY_WEBHOOK_CLAIM_IDLE_MS <= v.GATEWAY_WEBHOOK_TIMEOUT_MS) {
    reading.problem(
      'GATEWAY_WEBHOOK_CLAIM_IDLE_MS',
      `GATEWAY_WEBHOOK_CLAIM_IDLE_MS: expected more than GATEWAY_WEBHOOK_TIMEOUT_MS (${v.GATEWAY_WEBHOOK_TIMEOUT_MS}), got ${v.GATEWAY_WEBHOOK_CLAIM_IDLE_MS} (a receiver still answering would be sent the event again by another replica)`,
    );
  }
  return {
    hooks: v.GATEWAY_WEBHOOKS_FILE === undefined ? [] : readHooks(v.GATEWAY_WEBHOOKS_FILE, reading),
    policy,
    claimIdleMs: v.GATEWAY_WEBHOOK_CLAIM_IDLE_MS,
    memoryOutboxMax: v.GATEWAY_WEBHOOK_MEMORY_OUTBOX_MAX,
  };
}

function readHooks(file: string, reading: EnvReading): WebhookHook[] {
  const problem = (line: string) => reading.problem(FILE, `${FILE}: ${line}`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as { code?: string }).code;
    problem(
      code
        ? `expected a readable file, got "${file}" (${code})`
        : `expected JSON in "${file}", got text that does not parse`,
    );
    return [];
  }
  const parsed = z.array(z.unknown()).safeParse(json);
  if (!parsed.success) {
    problem(`expected a JSON array of hooks in "${file}", got ${typeof json}`);
    return [];
  }
  const hooks: WebhookHook[] = [];
  const ids = new Set<string>();
  parsed.data.forEach((raw, i) => {
    const at = `hooks[${i}]`;
    const r = hookSchema.safeParse(raw);
    if (!r.success) {
      // zod's messages name the field and what was expected; the values themselves are not repeated,
      // so a secret in a misplaced field never reaches the output.
      for (const issue of r.error.issues) {
        problem(`${[at, ...issue.path].join('.')}: ${issue.message}`);
      }
      return;
    }
    const h = r.data;
    if (ids.has(h.id)) return problem(`${at}.id: expected a unique id, got "${h.id}" twice`);
    ids.add(h.id);
    const secret = secretOf(h, at, reading, problem);
    if (secret === undefined) return;
    const key = webhookKey(secret);
    if (key.length < MIN_KEY_BYTES) {
      return problem(`${at}: expected a secret of at least ${MIN_KEY_BYTES} bytes, got ${key.length}`);
    }
    hooks.push({
      id: h.id,
      url: h.url,
      key,
      scope: h.scope,
      events: h.events,
      includeSnapshotUrl: h.includeSnapshotUrl,
    });
  });
  return hooks;
}

function secretOf(
  h: { secret?: string | undefined; secretEnv?: string | undefined; secretFile?: string | undefined },
  at: string,
  reading: EnvReading,
  problem: (line: string) => void,
): string | undefined {
  const given = (['secret', 'secretEnv', 'secretFile'] as const).filter((k) => h[k] !== undefined);
  if (given.length !== 1) {
    problem(
      `${at}: expected exactly one of secret, secretEnv, secretFile, got ${given.length ? given.join(' and ') : 'none'}`,
    );
    return undefined;
  }
  if (h.secret !== undefined) return h.secret;
  if (h.secretEnv !== undefined) {
    const value = reading.raw(h.secretEnv);
    if (value === undefined) problem(`${at}.secretEnv: expected ${h.secretEnv} to be set, got nothing`);
    return value;
  }
  try {
    return readFileSync(h.secretFile!, 'utf8').trim();
  } catch (err) {
    problem(
      `${at}.secretFile: expected a readable file, got "${h.secretFile}" (${(err as { code?: string }).code ?? 'unreadable'})`,
    );
    return undefined;
  }
}
