import { canSeeProject } from '../callers/caller.js';
import { GatewayError } from '../errors/index.js';
import type { WebhookHook } from '../webhooks/webhook-hook.js';
import { checkFirst } from './connection.js';
import type { GatewayContext } from './context.js';
import type { Resolvers } from './generated/resolvers-types.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Who may read a hook's deliveries: a caller who sees every project of its scope and holds `read`
 * there (`download` too when its events carry the snapshot URL, a bearer link). A hook whose scope
 * the caller does not see wholly answers as an unknown hook (NOT_FOUND), so ids and scopes do not
 * leak. Pass-through callers are refused: the gateway cannot tell which projects Atlas lets their
 * token see without asking Atlas for each.
 */
function requireHookAccess(ctx: GatewayContext, hookId: string): WebhookHook {
  // Before the lookup: a pass-through caller must not learn which hook ids exist either.
  if (ctx.caller.kind === 'passThrough') {
    throw new GatewayError(
      'FORBIDDEN',
      'Webhook deliveries need an API key or JWT caller: a pass-through token cannot prove it sees every project of a hook.',
      { extensions: { right: 'read' } },
    );
  }
  const hook = ctx.webhooks?.hook(hookId);
  const unknown = () => new GatewayError('NOT_FOUND', `No webhook with id ${JSON.stringify(hookId)} exists.`);
  if (!hook) throw unknown();
  if (!hook.scope.projectIds.every((p) => canSeeProject(ctx.caller, p))) throw unknown();
  const right = hook.includeSnapshotUrl ? 'download' : 'read';
  if (!ctx.caller.rights.has('read') || !ctx.caller.rights.has(right)) {
    throw new GatewayError(
      'FORBIDDEN',
      `This caller may not ${right} in every project of webhook ${hookId}.`,
      {
        extensions: { right },
      },
    );
  }
  return hook;
}

/** `Query.webhookDeliveries` and its type (schema/webhooks.graphql). */
export const webhookResolvers: Resolvers = {
  Query: {
    webhookDeliveries: async (_p, { hookId, status, first }, ctx) => {
      const n = checkFirst(first);
      const hook = requireHookAccess(ctx, hookId);
      return ctx.webhooks!.deliveries(hook.id, { statuses: status ?? undefined, first: n });
    },
  },
  WebhookDelivery: {
    createdAt: (d) => iso(d.createdAt)!,
    nextAttemptAt: (d) => iso(d.nextAttemptAt),
    deliveredAt: (d) => iso(d.deliveredAt),
    deadLetteredAt: (d) => iso(d.deadLetteredAt),
    deadLettered: (d) => d.status === 'DEAD_LETTERED',
  },
};
