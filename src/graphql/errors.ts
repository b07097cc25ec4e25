import { GraphQLError } from 'graphql';
import { AtlasApiError, AtlasAuthError, AtlasNetworkError, AtlasResponseError } from '../atlas/errors.js';

/** The codes clients see in `extensions.code` (DESIGN.md). Machines branch on these, never on messages. */
export type GatewayErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'GONE'
  | 'RATE_LIMITED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

const HTTP_STATUS: Record<GatewayErrorCode, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  GONE: 410,
  RATE_LIMITED: 429,
  UPSTREAM_UNAVAILABLE: 502,
  INTERNAL_SERVER_ERROR: 500,
};

/** An error the gateway raises itself, with a stable code. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly extensions: Record<string, unknown>;
  constructor(
    code: GatewayErrorCode,
    message: string,
    options: { extensions?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = HTTP_STATUS[code];
    this.extensions = options.extensions ?? {};
  }
}

/** A bad argument, caught before any upstream call: names it, what was expected and what arrived. */
export class BadUserInputError extends GatewayError {
  constructor(argumentName: string, expected: string, received: unknown) {
    super(
      'BAD_USER_INPUT',
      `Argument "${argumentName}" must be ${expected}; got ${JSON.stringify(received)}.`,
      {
        extensions: { argumentName, expected, received },
      },
    );
  }
}

function fromAtlasApi(err: AtlasApiError): { code: GatewayErrorCode; message: string; retryable: boolean } {
  const what = err.detail ?? err.reason ?? err.errorCode;
  switch (true) {
    case err.status === 400:
      return { code: 'BAD_USER_INPUT', message: `Atlas refused the request: ${what}`, retryable: false };
    case err.status === 401:
      return { code: 'UNAUTHENTICATED', message: 'Atlas did not accept the credentials.', retryable: false };
    case err.status === 403:
      return {
        code: 'FORBIDDEN',
        message: `Atlas refused: the credential lacks the role for this (${err.errorCode}).`,
        retryable: false,
      };
    case err.status === 404:
      return { code: 'NOT_FOUND', message: `Atlas has no such resource: ${what}`, retryable: false };
    case err.status === 409:
      return { code: 'CONFLICT', message: `Atlas reports a conflict: ${what}`, retryable: false };
    case err.status === 410:
      return { code: 'GONE', message: `Atlas no longer serves this: ${what}`, retryable: false };
    case err.status === 429:
      return { code: 'RATE_LIMITED', message: 'Atlas rate limit reached; retry later.', retryable: true };
    default:
      return {
        code: 'UPSTREAM_UNAVAILABLE',
        message: `Atlas answered HTTP ${err.status}.`,
        retryable: [502, 503, 504].includes(err.status),
      };
  }
}

/**
 * The one mapping from errors to what clients see. Gateway and Atlas errors keep their code and, for
 * Atlas, `extensions.atlas` and `retryable`; anything else returns undefined and is masked.
 */
export function toGraphQLError(err: unknown, base?: GraphQLError): GraphQLError | undefined {
  const opts = (extensions: Record<string, unknown>, original: Error) => ({
    ...(base ? { nodes: base.nodes, source: base.source, positions: base.positions, path: base.path } : {}),
    originalError: original,
    extensions,
  });
  if (err instanceof GatewayError) {
    // A request without valid credentials gets HTTP 401 (yoga reads `extensions.http` and strips it).
    const http = err.code === 'UNAUTHENTICATED' ? { http: { status: 401 } } : {};
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
            detail: err.detail ?? null,
            parameters: err.parameters,
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
          code: 'UPSTREAM_UNAVAILABLE',
          retryable: !(err instanceof AtlasAuthError),
          ...(err.requestId ? { requestId: err.requestId } : {}),
        },
        err,
      ),
    );
  }
  return undefined;
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
    ...(located
      ? { nodes: located.nodes, source: located.source, positions: located.positions, path: located.path }
      : {}),
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}
