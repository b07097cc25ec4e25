import { GraphQLError, type GraphQLErrorOptions } from 'graphql';
import { AtlasApiError, AtlasAuthError, AtlasNetworkError, AtlasResponseError } from '../atlas/errors.js';
import {
  GatewayError,
  httpStatusOf,
  isGatewayErrorCode,
  type GatewayErrorCode,
  type HttpStatusOf,
} from '../errors/index.js';
import type { ExpectedErrorLine } from '../observability/logger.js';

/**
 * `extensions` of an error that fails the whole request: the code, `extra`, and yoga's `http` with
 * the code's status from `HTTP_STATUSES` (yoga answers with it and strips `http` from the body).
 *
 * @param http.status a more precise status the table allows for the code.
 * @default http `{}`: the code's own status, no extra headers
 */
export function requestErrorExtensions<C extends GatewayErrorCode>(
  code: C,
  extra: Record<string, unknown> = {},
  http: { status?: HttpStatusOf<C>; headers?: Record<string, string> } = {},
): { code: C; http: { status: number; headers?: Record<string, string> } } & Record<string, unknown> {
  return {
    code,
    ...extra,
    http: { status: httpStatusOf(code, http.status), ...(http.headers ? { headers: http.headers } : {}) },
  };
}

/**
 * Code, retryability and message of an Atlas error answer. The message is written from the status and
 * Atlas's `errorCode` only: Atlas's `detail` and `parameters` are free text (a proxy's HTML page, ids
 * the caller may not know) and go to the logs, never to clients.
 */
function fromAtlasApi(err: AtlasApiError): { code: GatewayErrorCode; message: string; retryable: boolean } {
  const { status, errorCode } = err;
  switch (status) {
    case 400:
      return {
        code: 'BAD_USER_INPUT',
        message: `Atlas refused the request (${errorCode}).`,
        retryable: false,
      };
    case 401:
      // The key was accepted; only its Digest nonce kept expiring on the way (slow round trips).
      if (err.nonceStale) {
        return {
          code: 'UPSTREAM_UNAVAILABLE',
          message: 'Atlas kept answering that the Digest nonce had expired; retry.',
          retryable: true,
        };
      }
      return { code: 'UNAUTHENTICATED', message: 'Atlas did not accept the credentials.', retryable: false };
    case 403:
      return {
        code: 'FORBIDDEN',
        message: `Atlas refused: the credential lacks the role for this (${errorCode}).`,
        retryable: false,
      };
    case 404:
      return { code: 'NOT_FOUND', message: `Atlas has no such resource (${errorCode}).`, retryable: false };
    case 409:
      return { code: 'CONFLICT', message: `Atlas reports a conflict (${errorCode}).`, retryable: false };
    case 410:
      return { code: 'GONE', message: `Atlas no longer serves this (${errorCode}).`, retryable: false };
    case 429:
      return { code: 'RATE_LIMITED', message: 'Atlas rate limit reached; retry later.', retryable: true };
    default:
      return {
        code: 'UPSTREAM_UNAVAILABLE',
        message: `Atlas answered HTTP ${status}.`,
        // The statuses the Atlas client retries itself (with 429): a 500 is not a passing outage.
        retryable: [502, 503, 504].includes(status),
      };
  }
}

/**
 * The one mapping from errors to what clients see. Gateway and Atlas errors keep their code and, for
 * Atlas, `extensions.atlas` (`status`, `errorCode`, `reason`) and `retryable`; anything else returns
 * undefined and is masked.
 */
export function toGraphQLError(err: unknown, base?: GraphQLError): GraphQLError | undefined {
  const opts = (extensions: Record<string, unknown>, original: Error): GraphQLErrorOptions => ({
    ...locationOf(base),
    originalError: original,
    extensions,
  });
  if (err instanceof GatewayError) {
    // Only a missing or refused credential fails the whole request (it is checked before execution),
    // and a call shed under overload marks it 503 with Retry-After, partial data or not: a client or a
    // load balancer must back off, which a 200 would not tell it. Other gateway errors are field
    // errors of a partial result, answered with 200.
    const http =
      err.code === 'UNAUTHENTICATED'
        ? { http: { status: err.status } }
        : err.code === 'OVERLOADED'
          ? { http: { status: err.status, headers: retryAfterHeader(err.extensions.retryAfterMs) } }
          : {};
    return new GraphQLError(err.message, opts({ code: err.code, ...err.extensions, ...http }, err));
  }
  if (err instanceof AtlasApiError) {
    const { code, message, retryable } = fromAtlasApi(err);
    return new GraphQLError(
      message,
      opts(
        {
          code,
          retryable,
          ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
          atlas: {
            status: err.status,
            errorCode: err.errorCode,
            reason: err.reason ?? null,
          },
          ...(err.requestId ? { requestId: err.requestId } : {}),
        },
        err,
      ),
    );
  }
  if (
    err instanceof AtlasNetworkError ||
    err instanceof AtlasResponseError ||
    err instanceof AtlasAuthError
  ) {
    const message =
      err instanceof AtlasAuthError
        ? 'The gateway could not authenticate to Atlas.'
        : err instanceof AtlasResponseError
          ? 'Atlas sent an answer the gateway could not read.'
          : err.code === 'ATLAS_TIMEOUT'
            ? 'Atlas did not answer in time.'
            : 'Atlas could not be reached.';
    return new GraphQLError(
      message,
      opts(
        {
          code: 'UPSTREAM_UNAVAILABLE' satisfies GatewayErrorCode,
          retryable: !(err instanceof AtlasAuthError),
          ...(err.requestId ? { requestId: err.requestId } : {}),
        },
        err,
      ),
    );
  }
  return undefined;
}

/** `Retry-After` (whole seconds, at least 1) for a wait in milliseconds. */
export function retryAfterHeader(retryAfterMs: unknown): Record<string, string> {
  const ms = typeof retryAfterMs === 'number' && retryAfterMs > 0 ? retryAfterMs : 1000;
  return { 'retry-after': String(Math.ceil(ms / 1000)) };
}

// Duck-typed, not `instanceof GraphQLError`: graphql ships CJS and ESM builds, and the executor may
// create its located errors from the other copy (the dual-package hazard).
function asLocated(err: unknown): GraphQLError | undefined {
  return typeof err === 'object' && err !== null && (err as Error).name === 'GraphQLError'
    ? (err as GraphQLError)
    : undefined;
}

/** The error's root cause as thrown by a resolver (GraphQL wraps it in located errors). */
export function originalOf(err: unknown): unknown {
  let cur = err;
  for (
    let located = asLocated(cur);
    located?.originalError && located.originalError !== cur;
    located = asLocated(cur)
  ) {
    cur = located.originalError;
  }
  return cur;
}

/**
 * yoga's `maskedErrors.maskError`: typed errors pass through mapped, everything else becomes
 * INTERNAL_SERVER_ERROR with a generic message (details stay in the logs, never reach clients).
 */
export function maskError(error: unknown, message: string): Error {
  const original = originalOf(error);
  const located = asLocated(error);
  const mapped = toGraphQLError(original, located);
  if (mapped) return mapped;
  // A GraphQLError with no cause is graphql's own (validation, variables): it is meant for clients.
  const own = asLocated(original);
  if (own && !own.originalError) return own;
  return new GraphQLError(message, {
    ...locationOf(located),
    extensions: { code: 'INTERNAL_SERVER_ERROR' satisfies GatewayErrorCode },
  });
}

/**
 * How yoga's log line for an error the gateway mapped is written (`yogaLogger`'s `expected`): the
 * gateway meant that answer, so no stack, and `info` for what the client caused (4xx: a missing
 * credential, a refused right, a project it may not see, a bad argument) or `warn` for what Atlas or
 * the shutdown did (5xx, whose upstream exchange is logged on its own). An error the gateway does not
 * map answers undefined: unexpected, logged at `error` with its stack.
 */
export function expectedErrorLine(err: Error): ExpectedErrorLine | undefined {
  const mapped = toGraphQLError(originalOf(err), asLocated(err));
  const code = mapped?.extensions.code;
  if (!mapped || !isGatewayErrorCode(code) || code === 'INTERNAL_SERVER_ERROR') return undefined;
  return {
    level: httpStatusOf(code) >= 500 ? 'warn' : 'info',
    fields: { code, ...(mapped.path ? { path: mapped.path } : {}) },
    message: mapped.message,
  };
}

/** Where in the document and the result an error stands, copied from the located error it replaces. */
function locationOf(located: GraphQLError | undefined): GraphQLErrorOptions {
  if (!located) return {};
  return {
    ...(located.nodes ? { nodes: located.nodes } : {}),
    ...(located.source ? { source: located.source } : {}),
    ...(located.positions ? { positions: located.positions } : {}),
    ...(located.path ? { path: located.path } : {}),
  };
}
