import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock, type Clock } from '../time/clock.js';
import { BodyOverrides, FaultInjector, parseFaultRule } from './faults.js';
import { endpointSetOf, RateLimiter, type RateLimitOptions } from './rate-limiter.js';
import { loadSpec, fieldViolations, type SpecOperation } from './openapi.js';
import { SimAuth, DEFAULT_SIM_CREDENTIALS } from './auth-server/sim-auth.js';
import { SimStore } from './store.js';
import type { SeedProfile } from './seed.js';
import { createHandlers, type Handler } from './handlers.js';
import { pageParams } from './paginate.js';
import { objectAnswer, streamBody, type DownloadStats } from './download-response.js';
import {
  SimHttpError,
  type Principal,
  type SimCredential,
  type SimRequest,
  type SimResponse,
} from './http-types.js';

/** Options of `startSimulator`. Every one has a default that gives a working simulator. */
export interface SimulatorOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Time source for jobs, nonces, tokens and rate limits. @default the system clock */
  clock?: Clock;
  /** Time from a download/restore request to COMPLETED. @default 3000 */
  jobMs?: number;
  /** Tenant routes answer 410 VERSION_GONE and tenant clusters are served as Flex. @default false */
  tenantSunset?: boolean;
  /**
   * Which data it holds: `realistic` (as real Atlas: 8 daily Flex snapshots, a cluster with 2,160
   * jobs, M0 and dedicated clusters) or `small` (what most tests are written against). See
   * `SeedProfile`. @default 'realistic'
   */
  profile?: SeedProfile;
  /** A new job's first status (see `SimStoreOptions.firstJobStatus`). @default 'PENDING' */
  firstJobStatus?: 'PENDING' | 'QUEUED';
  /** Accepted credentials. @default DEFAULT_SIM_CREDENTIALS (owner and read-only demo pairs) */
  credentials?: SimCredential[];
  /** Token bucket per project, or `false` for none. @default false */
  rateLimit?: RateLimitOptions | false;
  /** How long a Digest nonce is valid. @default 30000 */
  nonceTtlMs?: number;
  /** How far behind a nonce's highest `nc` a new count is accepted; 0: strictly increasing. @default 64 */
  digestNcWindow?: number;
  /** OAuth token lifetime in seconds. @default 3600 */
  tokenTtlSec?: number;
  /** Serve `/__admin/*` (faults, sunset, stats). Never on unless asked. @default false */
  adminRoutes?: boolean;
  /** Random source of fault probabilities. @default Math.random */
  random?: () => number;
  /** Called with every API answer: the contract tests validate each against the spec. */
  onResponse?: (info: ResponseInfo) => void;
  /**
   * Waits of the latency and slow-body faults. Injected so tests count the waits (and decide when
   * they end) instead of timing the answer. @default node:timers/promises setTimeout
   */
  sleep?: (ms: number) => Promise<void>;
  /** Incompressible bytes added to every download archive (see `SimStoreOptions`). @default 0 */
  archiveExtraBytes?: number;
}

/** What `onResponse` sees of one answer. */
export interface ResponseInfo {
  operationId: string;
  op: SpecOperation | undefined;
  method: string;
  path: string;
  status: number;
  contentType: string;
  body: unknown;
  /** `envelope=true` reshapes bodies beyond the spec's schemas. */
  enveloped: boolean;
  /**
   * An injected fault that changes what goes on the wire after `body`: `truncated` (half the body,
   * then the socket closes), `malformed` (not JSON), `reset` (the socket closes, no answer at all).
   */
  wire: 'truncated' | 'malformed' | 'reset' | undefined;
}

/** One request as the simulator logged it (for counting upstream calls in tests). */
export interface RequestRecord {
  operationId: string;
  method: string;
  path: string;
  /** Path and query as sent. */
  target: string;
  /** The `x-request-id` the client sent, if any. */
  requestId: string | undefined;
  /** The `Authorization` header as received: whose credentials reached Atlas (tests check it). */
  authorization: string | undefined;
  /** When the simulator answered, by its clock. */
  at: number;
  status: number;
  /** The project the request was about, when it had one. */
  groupId: string | undefined;
  /** Bytes of the answer's body as sent (0 when the connection was reset). */
  bytes: number;
}

export interface Simulator {
  /** `http://host:port`, no trailing slash. */
  url: string;
  port: number;
  clock: Clock;
  store: SimStore;
  auth: SimAuth;
  faults: FaultInjector;
  /** Edits of successful answers (a new enum value, a missing field), applied before validation. */
  overrides: BodyOverrides;
  rateLimiter: RateLimiter | undefined;
  /**
   * Requests by operationId since start (or the last `resetStats`), and the most API requests that
   * were being handled at the same moment (`peakInFlight`), which shows a client's concurrency.
   */
  stats(): {
    total: number;
    byOperation: Record<string, number>;
    requests: RequestRecord[];
    peakInFlight: number;
  };
  resetStats(): void;
  /** The object store's streams of download archives (`snapshotUrl`): open, finished, abandoned. */
  downloads(): DownloadStats;
  close(): Promise<void>;
}

const LEGACY_BASE = '/api/atlas/v1.0/groups/([^/]+)/clusters/([^/]+)/backup/tenant';
const LEGACY_ROUTES: { method: string; regex: RegExp; key: string; names: string[] }[] = [
  {
    method: 'POST',
    regex: new RegExp(`^${LEGACY_BASE}/download$`),
    key: 'v1.downloadTenantSnapshot',
    names: [],
  },
  {
    // v1.0 documented it (seed 004 era); the gateway's legacy restore posts here.
    method: 'POST',
    regex: new RegExp(`^${LEGACY_BASE}/restore$`),
    key: 'v1.restoreTenantSnapshot',
    names: [],
  },
  {
    method: 'GET',
    regex: new RegExp(`^${LEGACY_BASE}/snapshots$`),
    key: 'v1.listTenantSnapshots',
    names: [],
  },
  {
    method: 'GET',
    regex: new RegExp(`^${LEGACY_BASE}/snapshots/([^/]+)$`),
    key: 'v1.getTenantSnapshot',
    names: ['snapshotId'],
  },
  { method: 'GET', regex: new RegExp(`^${LEGACY_BASE}/restores$`), key: 'v1.listTenantRestores', names: [] },
  {
    method: 'GET',
    regex: new RegExp(`^${LEGACY_BASE}/restores/([^/]+)$`),
    key: 'v1.getTenantRestore',
    names: ['restoreId'],
  },
];

const HEX24 = /^([a-f0-9]{24})$/;
const CLUSTER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-]*$/;
const MAX_BODY = 1024 * 1024;
const DOWNLOAD_PATH = /^\/backup\/download\/([a-f0-9]{24})\/([a-f0-9]{24})\.tgz$/;

interface Routed {
  operationId: string;
  op: SpecOperation | undefined;
  params: Record<string, string>;
  legacy: boolean;
}

/** Starts the simulator on a real socket. Tests start it on port 0 and `close()` it. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const spec = loadSpec();
  const store = new SimStore({
    clock,
    jobMs: options.jobMs ?? 3000,
    tenantSunset: options.tenantSunset ?? false,
    profile: options.profile ?? 'realistic',
    firstJobStatus: options.firstJobStatus ?? 'PENDING',
    ...(options.archiveExtraBytes !== undefined ? { archiveExtraBytes: options.archiveExtraBytes } : {}),
  });
  const downloadStats: DownloadStats = { open: 0, started: 0, finished: 0, abandoned: 0 };
  const auth = new SimAuth({
    credentials: options.credentials ?? DEFAULT_SIM_CREDENTIALS,
    clock,
    ...(options.nonceTtlMs !== undefined ? { nonceTtlMs: options.nonceTtlMs } : {}),
    ...(options.digestNcWindow !== undefined ? { digestNcWindow: options.digestNcWindow } : {}),
    ...(options.tokenTtlSec !== undefined ? { tokenTtlSec: options.tokenTtlSec } : {}),
  });
  const faults = new FaultInjector(options.random);
  const overrides = new BodyOverrides();
  const rateLimiter = options.rateLimit ? new RateLimiter(options.rateLimit, clock) : undefined;
  const handlers: Record<string, Handler> = createHandlers(store);
  let records: RequestRecord[] = [];
  let inFlight = 0;
  let peakInFlight = 0;
  const sockets = new Set<Socket>();
  let baseUrl = '';

  const record = (routed: Routed, req: SimRequest, status: number): RequestRecord => {
    const rec: RequestRecord = {
      operationId: routed.operationId,
      method: req.method,
      path: req.path,
      target: req.target,
      requestId: typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined,
      authorization: req.headers.authorization,
      at: clock.now(),
      status,
      groupId: routed.params.groupId,
      bytes: 0,
    };
    records.push(rec);
    // Bounded: a long benchmark run must not grow the simulator without end.
    if (records.length > 100_000) records = records.slice(-50_000);
    return rec;
  };

  function route(method: string, path: string): Routed | undefined {
    const m = spec.match(method, path);
    if (m) return { operationId: m.op.operationId, op: m.op, params: m.params, legacy: false };
    for (const r of LEGACY_ROUTES) {
      const lm = r.method === method ? r.regex.exec(path) : null;
      if (!lm) continue;
      const params: Record<string, string> = {
        groupId: decodeURIComponent(lm[1] ?? ''),
        clusterName: decodeURIComponent(lm[2] ?? ''),
      };
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(lm[i + 3] ?? '')));
      return { operationId: r.key, op: undefined, params, legacy: true };
    }
    return undefined;
  }

  /** Picks the media type to answer with, from the request's Accept, as Atlas's versioning does. */
  function negotiate(routed: Routed, accept: string | undefined): string | undefined {
    const offered = routed.legacy ? ['application/json'] : (routed.op?.successMediaTypes ?? []);
    const wanted = (accept ?? '*/*')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s && !/;\s*q=0(\.0*)?\s*$/.test(s))
      .map((s) => s.split(';')[0]!.trim().toLowerCase());
    for (const w of wanted) {
      if (w === '*/*' || w === 'application/*') return offered[0];
      if (offered.includes(w)) return w;
    }
    return undefined;
  }

  function validateParams(routed: Routed, query: URLSearchParams): void {
    const fields: { field: string; description: string }[] = [];
    for (const [name, value] of Object.entries(routed.params)) {
      const re = name === 'clusterName' || name === 'name' ? CLUSTER_NAME : HEX24;
      if (!re.test(value)) {
        fields.push({ field: name, description: `must match pattern "${re.source}", got "${value}"` });
      }
    }
    const int = (name: string, min: number, max: number) => {
      const v = query.get(name);
      if (v === null) return;
      const n = Number(v);
      if (!/^-?\d+$/.test(v) || n < min || n > max) {
        fields.push({ field: name, description: `must be an integer in [${min}, ${max}], got "${v}"` });
      }
    };
    int('itemsPerPage', 1, 500);
    int('pageNum', 1, Number.MAX_SAFE_INTEGER);
    for (const b of ['includeCount', 'envelope', 'pretty']) {
      const v = query.get(b);
      if (v !== null && v !== 'true' && v !== 'false') {
        fields.push({ field: b, description: `must be true or false, got "${v}"` });
      }
    }
    if (fields.length > 0) {
      throw new SimHttpError(
        400,
        'VALIDATION_ERROR',
        `Invalid parameter: ${fields.map((f) => `${f.field} ${f.description}`).join('; ')}.`,
        { parameters: fields.map((f) => f.field), badRequestDetail: { fields } },
      );
    }
  }

  function parseBody(routed: Routed, req: SimRequest, mediaType: string): unknown {
    if (req.method !== 'POST') return undefined;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const allowed = routed.legacy ? ['application/json'] : (routed.op?.requestMediaTypes ?? []);
    // Atlas reads the body in the version the client chose by Accept; a body of another type is refused.
    if (!allowed.includes(contentType) || (!routed.legacy && contentType !== mediaType)) {
      throw new SimHttpError(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `Content-Type must be ${routed.legacy ? 'application/json' : mediaType}, got "${contentType || '(none)'}".`,
        { parameters: [contentType] },
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(req.body.toString('utf8') || 'null');
    } catch (err) {
      throw new SimHttpError(400, 'VALIDATION_ERROR', `Malformed JSON body: ${(err as Error).message}.`, {
        badRequestDetail: { fields: [{ field: '(body)', description: 'is not valid JSON' }] },
      });
    }
    // The v1.0 download takes `{"snapshotId": …}` alone (seed 003, "Request to Download One M2/M5
    // Cluster Snapshot"): only the v1.0 restore is checked against the full TenantRestore.
    const ref = routed.legacy
      ? routed.operationId === 'v1.downloadTenantSnapshot'
        ? undefined
        : '#/components/schemas/TenantRestore'
      : routed.op?.requestSchemas[contentType];
    if (ref) {
      const validate = spec.validator(ref);
      if (!validate(body)) {
        const fields = fieldViolations(validate.errors);
        throw new SimHttpError(
          400,
          'VALIDATION_ERROR',
          `Invalid request body: ${fields.map((f) => `${f.field} ${f.description}`).join('; ')}.`,
          { parameters: fields.map((f) => f.field), badRequestDetail: { fields } },
        );
      }
    }
    return body;
  }

  async function handleApi(routed: Routed, req: SimRequest): Promise<SimResponse & { mediaType?: string }> {
    const authResult = auth.authenticate(req, { allowBearer: !routed.legacy });
    if (!authResult.ok) return authResult.response;
    const principal: Principal = authResult.principal;

    let rate: { limit: number; remaining: number } | undefined;
    if (rateLimiter) {
      const decision = rateLimiter.take(
        routed.params.groupId ?? `principal:${principal.id}`,
        endpointSetOf(req.path),
      );
      if (!decision.ok) {
        const scope = req.path.replace(/^\//, '');
        const { capacity, refillPerSecond } = rateLimiter.options;
        throw new SimHttpError(
          429,
          'RATE_LIMITED',
          `Rate limit exceeded for ${scope}. Please retry after ${decision.retryAfterSec} seconds. Request capacity: ${capacity}. Refill rate: ${refillPerSecond} per 1 seconds.`,
          {
            parameters: [scope, decision.retryAfterSec, capacity, refillPerSecond, 1],
            headers: {
              'retry-after': String(decision.retryAfterSec),
              'ratelimit-limit': String(decision.limit),
              'ratelimit-remaining': '0',
            },
          },
        );
      }
      rate = decision;
    }

    const isTenant = routed.legacy || routed.op?.pathTemplate.includes('/backup/tenant/') === true;
    const mediaType = negotiate(routed, req.headers.accept);
    if (isTenant && store.tenantSunset) {
      // Atlas's real answer after the 2026-01-22 sunset (mongodb-atlas-cli#4472 shows its shape).
      const version = routed.legacy ? 'v1.0' : '2023-01-01';
      const resource = req.path.replace(/^\//, '');
      throw new SimHttpError(
        410,
        'VERSION_GONE',
        `Version ${version} of ${resource} is no longer available.`,
        {
          parameters: [version, resource],
        },
      );
    }
    if (!mediaType) {
      const offered = routed.legacy ? ['application/json'] : (routed.op?.successMediaTypes ?? []);
      throw new SimHttpError(
        406,
        'NOT_ACCEPTABLE',
        `Invalid Accept header "${req.headers.accept ?? ''}". This resource is available as: ${offered.join(', ')}.`,
        { parameters: [req.headers.accept ?? '', ...offered] },
      );
    }
    validateParams(routed, req.query);
    const body = parseBody(routed, req, mediaType);
    if (req.method === 'POST' && principal.role !== 'owner') {
      throw new SimHttpError(
        403,
        'USER_UNAUTHORIZED',
        'Current user is not authorized to perform this action.',
        {
          parameters: [principal.id],
        },
      );
    }
    const handler = handlers[routed.operationId];
    if (!handler) throw new SimHttpError(500, 'UNEXPECTED_ERROR', `No handler for ${routed.operationId}.`);
    const res = handler({
      req,
      params: routed.params,
      body,
      principal,
      baseUrl,
      page: pageParams(req.query),
      apiVersion: routed.legacy ? 'v1.0' : (/\d{4}-\d{2}-\d{2}/.exec(mediaType)?.[0] ?? ''),
    });
    return {
      ...res,
      mediaType: routed.legacy ? 'application/json' : mediaType,
      headers: {
        ...res.headers,
        ...(rate
          ? { 'ratelimit-limit': String(rate.limit), 'ratelimit-remaining': String(rate.remaining) }
          : {}),
      },
    };
  }

  function handleAdmin(req: SimRequest): SimResponse {
    const json = () => {
      try {
        return JSON.parse(req.body.toString('utf8') || 'null') as unknown;
      } catch {
        throw new SimHttpError(400, 'VALIDATION_ERROR', 'Malformed JSON body.');
      }
    };
    const key = `${req.method} ${req.path}`;
    switch (key) {
      case 'GET /__admin/faults':
        return { status: 200, body: faults.list() };
      case 'POST /__admin/faults':
        try {
          return { status: 200, body: { id: faults.add(parseFaultRule(json())) } };
        } catch (err) {
          if (err instanceof SimHttpError) throw err;
          throw new SimHttpError(400, 'VALIDATION_ERROR', (err as Error).message);
        }
      case 'DELETE /__admin/faults':
        faults.clear();
        return { status: 200, body: {} };
      case 'POST /__admin/sunset': {
        const b = json() as { enabled?: unknown } | null;
        if (typeof b?.enabled !== 'boolean') {
          throw new SimHttpError(
            400,
            'VALIDATION_ERROR',
            `"enabled" must be a boolean, got ${JSON.stringify(b?.enabled)}.`,
          );
        }
        store.setTenantSunset(b.enabled);
        return { status: 200, body: { enabled: b.enabled } };
      }
      case 'GET /__admin/stats':
        return { status: 200, body: stats() };
      default:
        throw new SimHttpError(404, 'RESOURCE_NOT_FOUND', `No admin route ${key}.`);
    }
  }

  function stats() {
    const byOperation: Record<string, number> = {};
    for (const r of records) byOperation[r.operationId] = (byOperation[r.operationId] ?? 0) + 1;
    return { total: records.length, byOperation, requests: [...records], peakInFlight };
  }

  async function dispatch(req: SimRequest, res: ServerResponse): Promise<void> {
    let routed: Routed | undefined;
    let operationId = 'unknown';
    if (req.path === '/api/oauth/token' && req.method === 'POST') operationId = 'oauth.token';
    else if (req.path === '/api/oauth/revoke' && req.method === 'POST') operationId = 'oauth.revoke';
    else if (DOWNLOAD_PATH.test(req.path) && req.method === 'GET') operationId = 'download';
    else if (req.path.startsWith('/__admin/')) operationId = 'admin';
    else {
      routed = route(req.method, req.path);
      if (routed) operationId = routed.operationId;
    }

    const fault = operationId === 'admin' ? undefined : faults.take(operationId);
    if (fault?.reset === 'before') {
      record(routed ?? { operationId, op: undefined, params: {}, legacy: false }, req, 0);
      res.socket?.destroy();
      return;
    }
    if (fault?.latencyMs) await sleep(fault.latencyMs);

    let answer: SimResponse & { mediaType?: string };
    let enveloped = false;
    try {
      if (fault?.status) {
        throw new SimHttpError(fault.status, 'UNEXPECTED_ERROR', 'Unexpected error.', {
          ...(fault.retryAfterSec !== undefined
            ? { headers: { 'retry-after': String(fault.retryAfterSec) } }
            : {}),
        });
      }
      if (operationId === 'admin') {
        if (!options.adminRoutes) throw new SimHttpError(404, 'RESOURCE_NOT_FOUND', 'Not found.');
        answer = handleAdmin(req);
      } else if (operationId === 'oauth.token') {
        answer = auth.handleToken(req);
      } else if (operationId === 'oauth.revoke') {
        answer = auth.handleRevoke(req);
      } else if (operationId === 'download') {
        const m = DOWNLOAD_PATH.exec(req.path)!;
        const found = store.resolveDownload(
          m[1]!,
          m[2]!,
          Number(req.query.get('expires')),
          req.query.get('signature') ?? '',
        );
        // Outside the Atlas API: an S3-like pre-signed object (Range, ETag, 403 once expired).
        answer = found.ok
          ? objectAnswer(found.object, req.headers)
          : {
              status: found.status,
              headers: { 'content-type': 'text/plain' },
              body: Buffer.from(found.message),
            };
      } else if (!routed) {
        throw new SimHttpError(404, 'RESOURCE_NOT_FOUND', `Cannot find resource ${req.path}.`, {
          parameters: [req.path],
        });
      } else {
        answer = await handleApi(routed, req);
      }
    } catch (err) {
      if (!(err instanceof SimHttpError)) {
        // A bug in the simulator must still look like Atlas's 500, never like a hang.
        console.error('simulator: unexpected error', err);
      }
      const e =
        err instanceof SimHttpError ? err : new SimHttpError(500, 'UNEXPECTED_ERROR', 'Unexpected error.');
      answer = { status: e.status, headers: e.headers, body: e.toBody(), mediaType: 'application/json' };
    }

    let status = answer.status;
    let body =
      routed && status === 200 && !Buffer.isBuffer(answer.body)
        ? overrides.apply(operationId, answer.body)
        : answer.body;
    // Error answers are plain `application/json` with the code in `X-Error-Code` (recorded); success
    // answers carry the version's media type with `;charset=utf-8`.
    const isError = answer.status >= 400 && !Buffer.isBuffer(answer.body);
    const contentType =
      answer.headers?.['content-type'] ??
      (isError
        ? 'application/json'
        : answer.mediaType && answer.mediaType !== 'application/json'
          ? `${answer.mediaType};charset=utf-8`
          : 'application/json;charset=utf-8');
    const errorCode =
      isError && typeof answer.body === 'object' && answer.body !== null
        ? (answer.body as { errorCode?: unknown }).errorCode
        : undefined;
    if (routed && req.query.get('envelope') === 'true' && !Buffer.isBuffer(body)) {
      // Atlas's envelope: lists gain `status`, other bodies are wrapped in `content`; HTTP says 200.
      enveloped = true;
      const isList = typeof body === 'object' && body !== null && 'results' in body;
      body = isList ? { ...(body as object), status } : { status, content: body };
      status = 200;
    }
    let rec: RequestRecord | undefined;
    if (routed) rec = record(routed, req, answer.status);
    else if (operationId !== 'admin')
      rec = record({ operationId, op: undefined, params: {}, legacy: false }, req, answer.status);
    if (routed || operationId.startsWith('oauth.')) {
      options.onResponse?.({
        operationId,
        op: routed?.op,
        method: req.method,
        path: req.path,
        status,
        contentType,
        body,
        enveloped,
        wire: fault?.reset === 'after' ? 'reset' : fault?.body,
      });
    }

    if (fault?.reset === 'after') {
      res.socket?.destroy();
      return;
    }
    let payload: Buffer = Buffer.isBuffer(body)
      ? body
      : Buffer.from(
          req.query.get('pretty') === 'true' || answer.pretty
            ? JSON.stringify(body, null, 2)
            : JSON.stringify(body ?? {}),
        );
    if (fault?.body === 'malformed')
      payload = Buffer.from(`${payload.toString('utf8').slice(0, -1)},,}<html>`);
    if (rec) rec.bytes = payload.length;
    const headers: Record<string, string | number> = {
      ...answer.headers,
      ...(typeof errorCode === 'string' ? { 'x-error-code': errorCode } : {}),
      'content-type': contentType,
      'content-length': payload.length,
    };
    res.writeHead(status, headers);
    if (fault?.body === 'truncated' && operationId === 'download') {
      // An object store cutting a transfer: the first half reaches the client, then the connection
      // closes (destroyed once that half is flushed, else the cut could come before any byte).
      res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => res.socket?.destroy());
      return;
    }
    if (fault?.body === 'truncated') {
      res.write(payload.subarray(0, Math.floor(payload.length / 2)));
      res.socket?.destroy();
      return;
    }
    if (operationId === 'download' && (status === 200 || status === 206)) {
      await streamBody(res, payload, downloadStats);
      return;
    }
    if (fault?.slowBodyMs) {
      const pieces = 10;
      const size = Math.ceil(payload.length / pieces);
      for (let i = 0; i < payload.length; i += size) {
        if (res.destroyed) return;
        res.write(payload.subarray(i, i + size));
        await sleep(fault.slowBodyMs / pieces);
      }
      res.end();
      return;
    }
    res.end(payload);
  }

  const server: Server = createServer((incoming: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        incoming.destroy();
        return;
      }
      chunks.push(c);
    });
    incoming.on('end', () => {
      const target = incoming.url ?? '/';
      const url = new URL(target, 'http://sim.invalid');
      const req: SimRequest = {
        method: incoming.method ?? 'GET',
        target,
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        body: Buffer.concat(chunks),
      };
      const counted = req.path.startsWith('/api/atlas/');
      if (counted) peakInFlight = Math.max(peakInFlight, ++inFlight);
      dispatch(req, res)
        .catch((err: unknown) => {
          console.error('simulator: failed to answer', err);
          res.destroy();
        })
        .finally(() => {
          if (counted) inFlight -= 1;
        });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  baseUrl = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;

  return {
    url: baseUrl,
    port,
    clock,
    store,
    auth,
    faults,
    overrides,
    rateLimiter,
    stats,
    resetStats: () => {
      records = [];
      peakInFlight = inFlight;
    },
    downloads: () => ({ ...downloadStats }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
