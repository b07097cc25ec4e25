/**
 * Every code a client can find in `extensions.code`, whoever sets it: the gateway's own errors, its
 * plugins, and the few yoga raises itself and the gateway passes through unchanged (`BAD_REQUEST` is
 * both). Machines branch on these, never on messages, so this list is the contract: a code missing
 * here cannot be typed anywhere in the gateway.
 */
export const GATEWAY_ERROR_CODES = [
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'BAD_USER_INPUT',
  'PERSISTED_QUERY_NOT_FOUND',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'GONE',
  'RATE_LIMITED',
  'INTERNAL_SERVER_ERROR',
  'UPSTREAM_UNAVAILABLE',
  'OUTCOME_UNKNOWN',
  'STORE_UNAVAILABLE',
  'SHUTTING_DOWN',
  'OVERLOADED',
] as const;

/** One of {@link GATEWAY_ERROR_CODES}. */
export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

/**
 * Per code, the HTTP statuses a request failing with it is answered with: the first is the code's own
 * status; the others are the more precise ones an HTTP-level cause earns (a body too large is 413, a
 * gateway-side timeout 504) without a code of its own, since clients handle it like the first. yoga
 * also answers `BAD_REQUEST` with 405 (a mutation over GET) and 413 (a batch over the limit).
 *
 * Only errors that fail the whole request set the status; a field error in a partial result travels
 * in a 200 like any other.
 */
export const HTTP_STATUSES = {
  BAD_REQUEST: [400, 405, 413],
  GRAPHQL_PARSE_FAILED: [400],
  GRAPHQL_VALIDATION_FAILED: [400],
  OPERATION_RESOLUTION_FAILURE: [400],
  BAD_USER_INPUT: [400, 413],
  PERSISTED_QUERY_NOT_FOUND: [400],
  UNAUTHENTICATED: [401],
  FORBIDDEN: [403],
  NOT_FOUND: [404],
  CONFLICT: [409],
  GONE: [410],
  RATE_LIMITED: [429],
  INTERNAL_SERVER_ERROR: [500],
  UPSTREAM_UNAVAILABLE: [502, 504],
  // The POST went out and its answer did not come back in time (or at all): 504, like a gateway timeout.
  OUTCOME_UNKNOWN: [504],
  // The shared idempotency store (Redis) cannot be reached: the request was refused before any POST.
  STORE_UNAVAILABLE: [503],
  SHUTTING_DOWN: [503],
  // Too many Atlas calls in flight in this process: shed unsent, retryable after the hint.
  OVERLOADED: [503],
} as const satisfies { readonly [C in GatewayErrorCode]: readonly [number, ...number[]] };

/** An HTTP status the table allows for `C`. */
export type HttpStatusOf<C extends GatewayErrorCode> = (typeof HTTP_STATUSES)[C][number];

/**
 * The HTTP status of a request that fails with `code`.
 *
 * @param precise one of the code's other statuses in {@link HTTP_STATUSES}; a status the table does
 *   not list for the code does not compile.
 * @default the code's own status (the first of its list)
 */
export function httpStatusOf<C extends GatewayErrorCode>(
  code: C,
  precise?: HttpStatusOf<C>,
): HttpStatusOf<C> {
  return precise ?? (HTTP_STATUSES[code][0] as HttpStatusOf<C>);
}

/** Whether `value` is one of {@link GATEWAY_ERROR_CODES} (for codes read back from a response). */
export function isGatewayErrorCode(value: unknown): value is GatewayErrorCode {
  return (GATEWAY_ERROR_CODES as readonly unknown[]).includes(value);
}
