import { loadSpec } from './openapi.js';
import type { ResponseInfo } from './server.js';

// The simulator's conformance check: every answer against the Atlas spec it serves. Tests
// (test/support/contract.ts) and the chaos harness (chaos/stack.ts) hang it on `onResponse`.

/** One way an answer of the simulator differs from what the Atlas spec allows. */
export interface Violation {
  operationId: string;
  status: number;
  problem: string;
}

/**
 * Checks one simulator answer against `schema/atlas/openapi.json`: the status is one the operation
 * declares (or an error status Atlas is known to add: 406, 410, 415, 502-504), the content type is the
 * declared versioned type (errors: application/json), and the body validates against the declared schema.
 */
export function checkAgainstSpec(info: ResponseInfo): Violation[] {
  const spec = loadSpec();
  const out: Violation[] = [];
  const fail = (problem: string) => out.push({ operationId: info.operationId, status: info.status, problem });
  const mediaType = info.contentType.split(';')[0]!.trim();

  // What went on the wire, not what the handler meant to send: an injected body fault is an answer the
  // spec does not allow; a reset is no answer at all (the client sees a network failure).
  if (info.wire === 'truncated') fail('body truncated on the wire (injected fault)');
  if (info.wire === 'malformed') fail('body is not JSON on the wire (injected fault)');
  if (info.wire !== undefined) return out;

  if (info.operationId === 'oauth.token' && info.status === 200) {
    const b = info.body as Record<string, unknown>;
    if (typeof b.access_token !== 'string' || b.token_type !== 'Bearer' || typeof b.expires_in !== 'number') {
      fail(`token answer lacks access_token/token_type/expires_in: ${JSON.stringify(b)}`);
    }
    return out;
  }
  if (info.operationId.startsWith('oauth.')) return out;

  const isError = info.status >= 400;
  if (info.enveloped) {
    // envelope=true is outside the spec's schemas: Atlas answers 200 and wraps the real status and body.
    if (!/json/.test(mediaType)) fail(`enveloped answer is not JSON: ${mediaType}`);
    return out;
  }
  if (isError) {
    if (mediaType !== 'application/json') fail(`error answered as ${mediaType}, Atlas uses application/json`);
    const validate = spec.validator('#/components/schemas/ApiError');
    if (!validate(info.body)) fail(`ApiError body invalid: ${JSON.stringify(validate.errors)}`);
    const b = info.body as { error?: number };
    if (b.error !== info.status) fail(`ApiError.error ${b.error} != HTTP ${info.status}`);
  }
  // Legacy v1.0 routes are outside the v2 spec; their bodies are the tenant shapes plus v1-only fields.
  const op = info.op;
  if (!op) {
    if (!isError && mediaType !== 'application/json') fail(`v1.0 answered as ${mediaType}`);
    return out;
  }
  const declared = op.responses[String(info.status)];
  if (!declared) {
    // Atlas answers statuses the spec leaves out: 406/415 (versioning), 410 (sunset), gateway 5xx, and
    // the family-mismatch 400 that the official CLI and Terraform branch on, also from getGroupCluster.
    const errorCode = (info.body as { errorCode?: string } | undefined)?.errorCode;
    const familyMismatch = info.status === 400 && errorCode === 'CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API';
    if (![406, 410, 415, 502, 503, 504].includes(info.status) && !familyMismatch) {
      fail(`status ${info.status} is not declared by ${op.operationId}`);
    }
    return out;
  }
  if (!(mediaType in declared)) {
    fail(
      `content type ${mediaType} not declared for ${info.status} (declared: ${Object.keys(declared).join(', ')})`,
    );
    return out;
  }
  const ref = declared[mediaType];
  if (ref) {
    const validate = spec.validator(ref);
    if (!validate(info.body)) {
      fail(`body does not match ${ref}: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
    }
  }
  return out;
}
