import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import type { GraphQLError, ValidationContext } from 'graphql';
import type { Plugin, YogaServerOptions } from 'graphql-yoga';
import type { GatewayErrorCode } from '../errors/index.js';
import { corsPolicy, type CorsPolicy } from './cors-policy.js';
import { resolveSecurityOptions, type SecurityOptions } from './security-options.js';
import { useCostLimit } from './use-cost-limit.js';
import { useExecutionTimeout } from './use-execution-timeout.js';
import { useCsrfPrevention } from './use-csrf-prevention.js';
import { useHideSuggestions } from './use-hide-suggestions.js';
import { usePersistedManifest } from './use-persisted-manifest.js';
import { CallerRateLimit, useRateLimit } from './use-rate-limit.js';
import { useSubscriptionLimit } from './use-subscription-limit.js';
import { useUnreadableRequestAs400 } from './use-unreadable-request-as-400.js';

// graphql-armor's errors carry no code; clients branch on `extensions.code` (docs/api.md).
const BAD_USER_INPUT = 'BAD_USER_INPUT' satisfies GatewayErrorCode;
// armor words its limits as "Syntax Error: Query depth limit of 10 exceeded…": the document parsed
// fine, it is a limit, and a client reading "Syntax Error" looks for a typo that is not there.
const badUserInput = (error: GraphQLError) => {
  error.message = error.message.replace(/^Syntax Error: /, '');
  Object.assign(error.extensions, { code: BAD_USER_INPUT });
};
// Validation limits report their error as a validation error instead of throwing it out of
// `validate` (armor's default): a thrown error is not a validation result, and the gateway's
// Prometheus plugin swallows it, letting the operation run.
const reported = {
  propagateOnRejection: false,
  onReject: [
    (ctx: ValidationContext | null, error: GraphQLError) => {
      badUserInput(error);
      ctx?.reportError(error);
    },
  ],
};

/**
 * The gateway's abuse limits as yoga plugins, cheapest and earliest first: unreadable requests as
 * 400, CSRF (before parsing), persisted operations, token count (while parsing), depth, aliases and
 * directives (validation), introspection and suggestions (production), then, once the caller is known
 * and just before execution, the rate limit and the cost, and the execution timeout around it. The
 * body size, checked before anything is read, is the gateway's own first plugin: pass
 * `securityYogaOptions().maxBodyBytes` as `createGateway({ maxBodyBytes })`.
 * Pass them as `createGateway({ plugins })`, together with `securityYogaOptions`. `shared.rateLimit`:
 * the budget the rate limit spends, when another way in (the download route) spends the same one.
 */
export function securityPlugins(
  options: SecurityOptions = {},
  shared: { rateLimit?: CallerRateLimit | undefined } = {},
): Plugin[] {
  const o = resolveSecurityOptions(options);
  // The body size is `createGateway({ maxBodyBytes })` (securityYogaOptions): it must run first.
  const plugins: Plugin[] = [useUnreadableRequestAs400()];
  if (o.csrfPrevention) plugins.push(useCsrfPrevention(o.csrfHeaders));
  if (o.persistedOperations !== 'off') {
    plugins.push(usePersistedManifest(o.persistedOperations, o.persistedManifest));
  }
  plugins.push(
    EnvelopArmorPlugin({
      // Tokens are counted while parsing, where there is no validation context: that one throws.
      maxTokens: { n: o.maxTokens, onReject: [(_ctx, error) => badUserInput(error)] },
      maxDepth: { n: o.maxDepth, ...reported },
      maxAliases: { n: o.maxAliases, ...reported },
      maxDirectives: { n: o.maxDirectives, ...reported },
      // The cost is ours (useCostLimit): armor's ignores `first` and variables.
      costLimit: { enabled: false },
      blockFieldSuggestion: { enabled: o.production },
    }),
  );
  if (o.production) plugins.push(useDisableIntrospection(), useHideSuggestions());
  if (o.rateLimit) plugins.push(useRateLimit(shared.rateLimit ?? o.rateLimit, o.trustProxy));
  // After the rate limit: a refused start still costs its point, and holds no slot.
  if (o.maxSubscriptions > 0) plugins.push(useSubscriptionLimit(o.maxSubscriptions, o.trustProxy));
  plugins.push(useCostLimit({ maxCost: o.maxCost, listSize: o.costListSize, hideSuggestions: o.production }));
  if (o.executionTimeoutMs > 0) plugins.push(useExecutionTimeout(o.executionTimeoutMs));
  return plugins;
}

/**
 * The per-caller rate limit `options` configure, to share between `securityPlugins` and the download
 * route (`createGateway({ downloads: { admit } })`); undefined when the rate limit is off.
 */
export function callerRateLimit(options: SecurityOptions = {}): CallerRateLimit | undefined {
  const o = resolveSecurityOptions(options);
  return o.rateLimit ? new CallerRateLimit(o.rateLimit, o.trustProxy) : undefined;
}

type YogaOptions = YogaServerOptions<Record<string, never>, Record<string, unknown>>;

/** The yoga options the limits need besides the plugins (`createGateway` takes each by this name). */
export interface SecurityYogaOptions {
  /** yoga's `batching`: off, or at most `batchLimit` operations per request (more: HTTP 413). */
  batching: NonNullable<YogaOptions['batching']>;
  /**
   * Which cross-origin pages may read the answers (`createGateway({ corsPolicy })`): the listed
   * origins, any without credentials for `*`, loopback pages with `corsLoopback`, else none.
   */
  corsPolicy: CorsPolicy;
  /** Whether to serve GraphiQL (`createGateway({ graphiql })`): never in production. */
  graphiql: boolean;
  /** Largest request body (`createGateway({ maxBodyBytes })`). */
  maxBodyBytes: number;
}

/** The values to pass to `createGateway` next to `plugins: securityPlugins(options)`. */
export function securityYogaOptions(options: SecurityOptions = {}): SecurityYogaOptions {
  const o = resolveSecurityOptions(options);
  return {
    batching: o.batchLimit > 0 ? { limit: o.batchLimit } : false,
    corsPolicy: corsPolicy({
      origins: o.corsOrigins ?? [],
      loopback: o.corsLoopback,
      production: o.production,
    }),
    graphiql: !o.production,
    maxBodyBytes: o.maxBodyBytes,
  };
}
