import { loadConfig, type GatewayConfig } from '../../src/config/index.js';
import type { GatewayOverrides } from '../../src/gateway-from-config.js';
import type { SecurityOptions } from '../../src/security/index.js';
import type { SimulatorOptions } from '../../src/simulator/index.js';
import { startStack, type Stack } from './stack.js';

/**
 * A stack whose gateway is built as `npm start` builds it (`createGatewayFromConfig`), from the
 * defaults of an empty environment with the security options `options` on top.
 */
export function startSecureStack(
  options: SecurityOptions,
  gateway: GatewayOverrides = {},
  sim: SimulatorOptions = {},
): Promise<Stack> {
  const base = loadConfig({});
  const config: GatewayConfig = {
    ...base,
    security: {
      ...base.security,
      ...options,
      webSocket: { ...base.security.webSocket, ...options.webSocket },
    },
  };
  return startStack({ config, gateway, sim });
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] } | undefined;
}

/** One request through `yoga.fetch` (in-process), any method, headers and body. */
export async function raw(stack: Stack, init: RequestInit & { path?: string } = {}): Promise<RawAnswer> {
  const { path = '/graphql', ...rest } = init;
  const res = await stack.gateway.yoga.fetch(`http://gateway.test${path}`, rest);
  const text = await res.text();
  let json: RawAnswer['json'];
  try {
    json = JSON.parse(text) as RawAnswer['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A JSON POST of one operation (or of a batch, when `body` is an array). */
export function post(stack: Stack, body: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return raw(stack, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify(body),
  });
}

/** The first error's code and message of an answer (or undefined). */
export function firstError(answer: RawAnswer): { code: unknown; message: string } | undefined {
  const e = answer.json?.errors?.[0];
  return e ? { code: e.extensions?.code, message: e.message } : undefined;
}
