import { Agent, request } from 'undici';
import { GATEWAY_ERROR_CODES } from '../src/errors/index.js';

/** The codes a client may meet: the gateway's one list (the docs list the same). */
export const DOCUMENTED_CODES: ReadonlySet<string> = new Set(GATEWAY_ERROR_CODES);

export interface GraphQLErrorShape {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** How one GraphQL request ended, from the client's side. */
export interface Answer {
  /** `hung`: no answer before the deadline; `broken`: an answer that is not a GraphQL response. */
  outcome: 'data' | 'errors' | 'hung' | 'broken';
  httpStatus: number | undefined;
  data: Record<string, unknown> | null | undefined;
  errors: GraphQLErrorShape[];
  /** What was wrong, for `broken`. */
  detail: string | undefined;
  ms: number;
  /** The `x-request-id` sent, which the gateway passes upstream. */
  requestId: string;
}

/** The client side of the run: one keep-alive pool for all GraphQL requests and SSE streams. */
export class ChaosClient {
  readonly agent = new Agent({ keepAliveTimeout: 2000, connections: null, pipelining: 1 });
  #seq = 0;

  constructor(readonly runId: string) {}

  /** A fresh `x-request-id`; the gateway sends it upstream, so the exchange log can tell our calls apart. */
  requestId(): string {
    return `chaos-${this.runId}-${++this.#seq}`;
  }

  async query(
    url: string,
    query: string,
    variables: Record<string, unknown>,
    deadlineMs: number,
  ): Promise<Answer> {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('deadline')), deadlineMs);
    const ms = () => Math.round(performance.now() - started);
    const requestId = this.requestId();
    const broken = (httpStatus: number | undefined, detail: string): Answer => ({
      outcome: 'broken',
      httpStatus,
      data: undefined,
      errors: [],
      detail,
      ms: ms(),
      requestId,
    });
    try {
      const res = await request(`${url}/graphql`, {
        dispatcher: this.agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          'x-request-id': requestId,
        },
        body: JSON.stringify({ query, variables }),
        signal: controller.signal,
      });
      const text = await res.body.text();
      let body: { data?: Record<string, unknown> | null; errors?: GraphQLErrorShape[] };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        return broken(res.statusCode, `not JSON: ${text.slice(0, 120)}`);
      }
      if (typeof body !== 'object' || body === null || (!('data' in body) && !Array.isArray(body.errors))) {
        return broken(res.statusCode, `neither data nor errors: ${text.slice(0, 120)}`);
      }
      const errors = Array.isArray(body.errors) ? body.errors : [];
      return {
        outcome: errors.length ? 'errors' : 'data',
        httpStatus: res.statusCode,
        data: body.data,
        errors,
        detail: undefined,
        ms: ms(),
        requestId,
      };
    } catch (err) {
      if (controller.signal.aborted) {
        return {
          outcome: 'hung',
          httpStatus: undefined,
          data: undefined,
          errors: [],
          detail: 'deadline',
          ms: ms(),
          requestId,
        };
      }
      return broken(undefined, `transport: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A subscription over SSE, read to its end. Resolves with every event once the server ends the
   * stream, or at the deadline (then `hung`).
   */
  async subscribe(
    url: string,
    query: string,
    variables: Record<string, unknown>,
    deadlineMs: number,
    onEvent?: (e: SseEvent) => void,
  ): Promise<SseResult> {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('deadline')), deadlineMs);
    const events: SseEvent[] = [];
    const ms = () => Math.round(performance.now() - started);
    try {
      const res = await request(`${url}/graphql`, {
        dispatcher: this.agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'x-request-id': this.requestId(),
        },
        body: JSON.stringify({ query, variables }),
        signal: controller.signal,
      });
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString('utf8');
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: ?(.*)$/m.exec(block)?.[1];
          if (!event) continue; // keep-alive comment
          let parsed: unknown;
          try {
            parsed = data ? (JSON.parse(data) as unknown) : undefined;
          } catch {
            parsed = { unparsable: data };
          }
          const e = { event, data: parsed, atMs: ms() };
          events.push(e);
          onEvent?.(e);
        }
      }
      return { ended: 'server', httpStatus: res.statusCode, events, ms: ms(), detail: undefined };
    } catch (err) {
      if (controller.signal.aborted) {
        return { ended: 'hung', httpStatus: undefined, events, ms: ms(), detail: 'deadline' };
      }
      return { ended: 'broken', httpStatus: undefined, events, ms: ms(), detail: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export interface SseEvent {
  event: string;
  data: unknown;
  atMs: number;
}

export interface SseResult {
  ended: 'server' | 'hung' | 'broken';
  httpStatus: number | undefined;
  events: SseEvent[];
  ms: number;
  detail: string | undefined;
}
