import { ServerResponse } from 'node:http';
import { getOperationAST, Kind, print, type DocumentNode, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { cacheScopeOf } from '../callers/cache-scope.js';
import type { GatewayContext } from './context.js';
import { SseSource } from './sse-source.js';
import { OpenStreams, SseStream } from './sse-stream.js';
import { streamHolds } from './stream-holds.js';

/** Options of `useLeanSse`. */
export interface LeanSseOptions {
  /**
   * Time between two keep-alive comments (`:`) on every open stream; one timer serves them all.
   * @default 12000 (yoga's own SSE ping interval)
   */
  pingIntervalMs?: number;
  /**
   * Subscriptions to these root fields, started by the same caller (same id, projects and rights)
   * with the same document and variables on the same origin, are one execution written to every
   * client that asked: each client costs its socket and response only. Only fields whose events are
   * whole states (the first is the thing as it is now) can be shared: a client that joins gets the
   * latest event first. An empty list shares nothing.
   * @default ['restoreJobStatus', 'snapshotStatus']
   */
  sharedFields?: readonly string[];
  /**
   * Bytes a client may leave unread before its stream is cut (its events are not held back for it).
   * @default 262144
   */
  maxBufferedBytes?: number;
  /** Counts the streams this path served (tests prove the path ran). @default none */
  stats?: LeanSseStats;
}

/** Streams served by the lean path since start, and those open now. */
export class LeanSseStats {
  /** Streams the lean writer took over from yoga's SSE processor. */
  served = 0;
  /** Lean streams open now (until they complete or their client leaves). */
  open = 0;
  /** Of `served`: streams that joined an execution already running for an identical subscription. */
  joined = 0;
  /** Executions writing to lean streams now (fewer than `open` when streams share one). */
  executions = 0;
}

// The headers yoga's SSE processor answers with (graphql-yoga plugins/result-processor/sse.js).
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  Connection: 'keep-alive',
  'Cache-Control': 'no-cache',
  'Content-Encoding': 'none',
};

const SHARED_FIELDS = ['restoreJobStatus', 'snapshotStatus'];

// Keys are JSON, so variables must serialize the same whatever order the client wrote them in.
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
  );
}

interface Share {
  key: string;
  contextValue: object;
}

/**
 * A leaner SSE writer for subscriptions. Everything before the stream is yoga's, unchanged: every
 * plugin (authentication, CSRF, persisted operations, armor, rate and subscription limits, masking,
 * metrics, access log) has run, and the subscription's resolver has checked access, when a
 * subscription's result reaches `onResultProcess`; this plugin then swaps yoga's SSE processor for
 * its own writer, with the same headers and the same bytes per event. A client whose subscription is
 * identical to one already streaming (`sharedFields`) is written the events of that execution, and its
 * own execution is closed once accepted: its subscription-limit slot stays held until its stream ends
 * (`streamHolds`). Only the node transport (`serverContext.res`) and only when yoga itself chose SSE.
 */
export function useLeanSse(options: LeanSseOptions = {}): Plugin {
  const streams = new OpenStreams(options.pingIntervalMs ?? 12_000);
  const stats = options.stats ?? new LeanSseStats();
  const maxBuffered = options.maxBufferedBytes ?? 262_144;
  const sharedFields = new Set(options.sharedFields ?? SHARED_FIELDS);
  const sources = new Map<string, SseSource>();
  const shares = new WeakMap<Request, Share>();
  const printed = new WeakMap<DocumentNode, string>();

  // Everything the events depend on besides the document and variables: who asks (its id covers a
  // pass-through token) with which rights, and the origin download links are built on.
  const shareKey = (args: {
    document: DocumentNode;
    operationName?: string | null | undefined;
    variableValues?: unknown;
    contextValue: unknown;
  }): string | undefined => {
    const op = getOperationAST(args.document, args.operationName);
    const [field, ...more] = op?.operation === 'subscription' ? op.selectionSet.selections : [];
    if (!field || more.length || field.kind !== Kind.FIELD || !sharedFields.has(field.name.value)) return;
    const ctx = args.contextValue as Partial<GatewayContext>;
    if (!ctx.caller) return;
    let text = printed.get(args.document);
    if (text === undefined) printed.set(args.document, (text = print(args.document)));
    return JSON.stringify([
      ctx.caller.id,
      cacheScopeOf(ctx.caller),
      ctx.downloads ?? null,
      text,
      args.operationName ?? null,
      canonical(args.variableValues ?? {}),
    ]);
  };

  const open = (res: ServerResponse, source: (stream: SseStream) => void, onLeave: () => void) => {
    stats.served += 1;
    stats.open += 1;
    const stream = new SseStream(res, maxBuffered, () => {
      streams.delete(stream);
      stats.open -= 1;
      onLeave();
    });
    streams.add(stream);
    source(stream);
    return stream;
  };

  // `join` and `start` live out here so that what an open stream keeps (its leave callback) closes
  // over the stream's own objects only, not over the request's scope: 10,000 share keys and
  // request scopes were ~0.5 KB per subscriber.
  const join = (res: ServerResponse, running: SseSource, release: () => void): SseStream => {
    stats.joined += 1;
    const stream = open(
      res,
      (s) => running.add(s),
      () => {
        running.remove(stream);
        release();
      },
    );
    return stream;
  };
  const start = (
    res: ServerResponse,
    iterator: AsyncIterator<ExecutionResult>,
    key: string | undefined,
    release: (() => void) | undefined,
  ): SseStream => {
    stats.executions += 1;
    const source = new SseSource(iterator, key !== undefined, () => {
      stats.executions -= 1;
      if (key !== undefined && sources.get(key) === source) sources.delete(key);
    });
    if (key !== undefined) sources.set(key, source);
    const stream = open(
      res,
      (s) => source.add(s),
      () => {
        source.remove(stream);
        release?.();
      },
    );
    return stream;
  };

  return {
    onSubscribe({ args }) {
      if (sharedFields.size === 0) return;
      const request = (args.contextValue as { request?: Request }).request;
      const key = request && shareKey(args);
      if (key) shares.set(request, { key, contextValue: args.contextValue });
    },
    onResultProcess({ request, result, resultProcessor, setResultProcessor, serverContext }) {
      // yoga's SSE processor is chosen by yoga's own content negotiation; anything else stays as it is.
      if (resultProcessor?.name !== 'processSSEResult' || !isAsyncIterable(result)) return;
      const res = (serverContext as { res?: unknown }).res;
      if (!(res instanceof ServerResponse)) return;
      // The request lives as long as its stream (whatwg-node keeps it): an entry left in `shares`
      // would keep the whole request context (loaders, caller, key) alive per subscriber.
      const share = shares.get(request);
      shares.delete(request);
      const key = share?.key;
      const holds = share && streamHolds(share.contextValue);
      setResultProcessor((r, fetchAPI) => {
        const iterator = (r as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
        const running = key !== undefined ? sources.get(key) : undefined;
        let stream: SseStream;
        if (holds && running?.running) {
          // Accepted (every check ran): the client's own execution is not needed. Its holds (the
          // subscription slot) now end with its stream: adopted before the execution is closed.
          const release = holds.adopt();
          void Promise.resolve(iterator.return?.()).catch(() => undefined);
          stream = join(res, running, release);
        } else {
          // A shared execution may outlive this client (others joined it): its holds end with its
          // stream, not with the execution. Unshared, the two end together.
          stream = start(res, iterator, key, holds?.adopt());
        }
        return new fetchAPI.Response(stream as unknown as BodyInit, { status: 200, headers: SSE_HEADERS });
      }, 'text/event-stream');
    },
  };
}
