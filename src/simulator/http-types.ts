import type { IncomingHttpHeaders } from 'node:http';

/** A request as the simulator's handlers see it, after the socket and body are read. */
export interface SimRequest {
  method: string;
  /** The request-target exactly as sent (path + query), which is what Digest's `uri` must equal. */
  target: string;
  /** The path without query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A response before serialisation. `body` is JSON-serialised unless it is a Buffer. */
export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Send the JSON indented, whatever `pretty` the request asked (Atlas's 401, recorded). */
  pretty?: boolean;
}

/** Atlas's error body (`ApiError` in the spec). */
export interface ApiErrorBody {
  error: number;
  errorCode: string;
  reason?: string;
  detail?: string;
  parameters?: unknown[];
  badRequestDetail?: { fields: { field: string; description: string }[] };
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Thrown by handlers; the server turns it into an `ApiError` response with `application/json`. */
export class SimHttpError extends Error {
  readonly status: number;
  readonly errorCode: string;
  readonly parameters: unknown[];
  readonly badRequestDetail: ApiErrorBody['badRequestDetail'];
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    errorCode: string,
    detail: string,
    opts: {
      parameters?: unknown[];
      badRequestDetail?: ApiErrorBody['badRequestDetail'];
      headers?: Record<string, string>;
    } = {},
  ) {
    super(detail);
    this.status = status;
    this.errorCode = errorCode;
    this.parameters = opts.parameters ?? [];
    this.badRequestDetail = opts.badRequestDetail;
    this.headers = opts.headers ?? {};
  }

  toBody(): ApiErrorBody {
    return apiErrorBody(this.status, this.errorCode, this.message, this.parameters, this.badRequestDetail);
  }
}

export function apiErrorBody(
  status: number,
  errorCode: string,
  detail: string,
  parameters: unknown[] = [],
  badRequestDetail?: ApiErrorBody['badRequestDetail'],
): ApiErrorBody {
  return {
    error: status,
    errorCode,
    reason: REASONS[status] ?? 'Error',
    detail,
    parameters,
    ...(badRequestDetail ? { badRequestDetail } : {}),
  };
}

/** What a credential may do, as Atlas project roles: reads need Project Read Only, download/restore Project Owner. */
export type SimRole = 'owner' | 'readOnly';

/** One credential the simulator accepts: a service account and an API key pair share a role. */
export interface SimCredential {
  role: SimRole;
  /** Service account client id (OAuth). */
  clientId: string;
  clientSecret: string;
  /** API key pair (Digest): the public key is the username, the private key the password. */
  publicKey: string;
  privateKey: string;
}

/** The authenticated caller of an API request. */
export interface Principal {
  scheme: 'oauth' | 'digest';
  /** Client id (OAuth) or public key (Digest). */
  id: string;
  role: SimRole;
}
