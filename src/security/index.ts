export {
  CSRF_HEADERS,
  resolveSecurityOptions,
  type PersistedManifest,
  type PersistedOperationsMode,
  type RateLimitOptions,
  type ResolvedSecurityOptions,
  type SecurityOptions,
  type WebSocketLimits,
} from './security-options.js';
export {
  callerRateLimit,
  securityPlugins,
  securityYogaOptions,
  type SecurityYogaOptions,
} from './security-plugins.js';
export { loadPersistedManifest, parsePersistedManifest, sha256Hex } from './load-persisted-manifest.js';
export {
  deadlineSignal,
  executionTimeoutError,
  MUTATION_CUT_AFTER_MS,
  useExecutionTimeout,
} from './use-execution-timeout.js';
export { useBodyLimit } from './use-body-limit.js';
export { connectionCostEstimator, useCostLimit, type CostLimitOptions } from './use-cost-limit.js';
export {
  CallerRateLimit,
  isCallerFault,
  rateLimitKey,
  rateLimitedError,
  useRateLimit,
} from './use-rate-limit.js';
export { tooManySubscriptionsError, useSubscriptionLimit } from './use-subscription-limit.js';
export { extractPersistedOperationId, usePersistedManifest } from './use-persisted-manifest.js';
export { stripSuggestions, useHideSuggestions } from './use-hide-suggestions.js';
export { useUnreadableRequestAs400 } from './use-unreadable-request-as-400.js';
export { addressKey } from '../callers/client-address.js';
export {
  limitConnections,
  resolveConnectionLimits,
  serverTimeouts,
  type ConnectionLimits,
  type ConnectionStats,
  type ResolvedConnectionLimits,
} from './connection-limits.js';
export {
  corsPolicy,
  isSameOrigin,
  normaliseOrigin,
  type CorsPolicy,
  type CorsPolicyOptions,
} from './cors-policy.js';
