/**
 * Every error the Atlas client throws. Each class has a stable `code` (callers branch on it, never on
 * the message), a `status` (the upstream HTTP status, or undefined when no response was read) and a
 * standard `cause`.
 */

export type AtlasErrorCode =
  | 'ATLAS_API_ERROR'
  | 'ATLAS_NETWORK_ERROR'
  | 'ATLAS_TIMEOUT'
  | 'ATLAS_ABORTED'
  | 'ATLAS_BAD_RESPONSE'
  | 'ATLAS_AUTH_FAILED'
  | 'ATLAS_CONFIG_ERROR';

export interface AtlasErrorInit {
  /** The operation id (`getGroup`, `oauthToken`, …) of the call that failed. */
  operation: string;
  status?: number | undefined;
  /** Atlas's request id when it sent one, else the `x-request-id` this client sent. */
  requestId?: string | undefined;
  cause?: unknown;
}

export abstract class AtlasError extends Error {
  abstract readonly code: AtlasErrorCode;
  readonly status: number | undefined;
  readonly operation: string;
  readonly requestId: string | undefined;

  constructor(message: string, init: AtlasErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.operation = init.operation;
    this.requestId = init.requestId;
  }
}

/** One violated field of a 400, as Atlas reports it in `badRequestDetail.fields`. */
export interface AtlasFieldViolation {
  field: string;
  description: string;
}

export interface AtlasApiErrorInit extends AtlasErrorInit {
  status: number;
  errorCode: string;
  reason?: string | undefined;
  detail?: string | undefined;
  parameters?: unknown[] | undefined;
  badRequestDetail?: { fields: AtlasFieldViolation[] } | undefined;
  retryAfterMs?: number | undefined;
  /** A 401 whose challenge still said `stale=true` after the resends. @default false */
  nonceStale?: boolean | undefined;
}

/** Any non-2xx answer of the Atlas API (body `ApiError`, or a synthetic code when the body is not one). */
export class AtlasApiError extends AtlasError {
  readonly code = 'ATLAS_API_ERROR';
  declare readonly status: number;
  /** Atlas's `errorCode` (`RESOURCE_NOT_FOUND`, `VERSION_GONE`, …), or `HTTP_<status>` when the body had none. */
  readonly errorCode: string;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
  readonly parameters: unknown[];
  readonly badRequestDetail: { fields: AtlasFieldViolation[] } | undefined;
  /** From `Retry-After` (429/503), in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /**
   * A Digest 401 whose last challenge still said `stale=true`: Atlas accepted the key, only its nonce
   * kept expiring before the resend arrived (round trips slower than the nonce's life). Asking again
   * later can succeed, unlike a refused key.
   */
  readonly nonceStale: boolean;

  constructor(init: AtlasApiErrorInit) {
    super(
      `${init.operation}: HTTP ${init.status} ${init.errorCode}${init.detail ? `: ${init.detail}` : ''}`,
      init,
    );
    this.errorCode = init.errorCode;
    this.reason = init.reason;
    this.detail = init.detail;
    this.parameters = init.parameters ?? [];
    this.badRequestDetail = init.badRequestDetail;
    this.retryAfterMs = init.retryAfterMs;
    this.nonceStale = init.nonceStale ?? false;
  }
}

export type AtlasNetworkErrorCode = 'ATLAS_NETWORK_ERROR' | 'ATLAS_TIMEOUT' | 'ATLAS_ABORTED';

export interface AtlasNetworkErrorInit extends AtlasErrorInit {
  code: AtlasNetworkErrorCode;
  sent: boolean;
}

/** No complete response: connection refused or reset, a timeout, or the caller's abort. */
export class AtlasNetworkError extends AtlasError {
  readonly code: AtlasNetworkErrorCode;
  /**
   * Whether the request may have reached Atlas (false only when it surely did not, e.g. a refused
   * connection). A POST with `sent: true` may have been applied.
   */
  readonly sent: boolean;

  constructor(message: string, init: AtlasNetworkErrorInit) {
    super(`${init.operation}: ${message}`, init);
    this.code = init.code;
    this.sent = init.sent;
  }
}

export interface AtlasResponseErrorInit extends AtlasErrorInit {
  contentType?: string | undefined;
}

/** A 2xx that we cannot use: wrong content type, malformed JSON, or a body of the wrong shape. */
export class AtlasResponseError extends AtlasError {
  readonly code = 'ATLAS_BAD_RESPONSE';
  readonly contentType: string | undefined;

  constructor(message: string, init: AtlasResponseErrorInit) {
    super(`${init.operation}: ${message}`, init);
    this.contentType = init.contentType;
  }
}

export interface AtlasAuthErrorInit extends AtlasErrorInit {
  /** OAuth `error` (`invalid_client`, `access_denied`, …) or Atlas's `errorCode`. */
  authError?: string | undefined;
  description?: string | undefined;
  retryAfterMs?: number | undefined;
}

/** The OAuth token endpoint refused or failed (bad client credentials, the 100-token limit, …). */
export class AtlasAuthError extends AtlasError {
  readonly code = 'ATLAS_AUTH_FAILED';
  readonly authError: string | undefined;
  readonly description: string | undefined;
  /** From `Retry-After` when the token endpoint said 429/503, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: AtlasAuthErrorInit) {
    super(`${init.operation}: ${message}`, init);
    this.authError = init.authError;
    this.description = init.description;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** A call the client refuses before sending (bad configuration or argument). */
export class AtlasConfigError extends AtlasError {
  readonly code = 'ATLAS_CONFIG_ERROR';

  constructor(message: string, operation = 'config') {
    super(message, { operation });
  }
}

export function isAtlasError(err: unknown): err is AtlasError {
  return err instanceof AtlasError;
}
