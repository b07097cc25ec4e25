import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_RIGHTS, type Caller } from '../../src/callers/caller.js';
import { rateLimitKey } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { post, startSecureStack } from '../support/security-gateway.js';

const QUERY = { query: `{ project(id: "${SEED.projects.payments.id}") { name } }` };

// Callers named by a header: enough to show that each caller has its own budget.
const caller = (id: string): Caller => ({ id, kind: 'apiKey', projects: 'all', rights: ALL_RIGHTS });

let stack: Stack;
beforeAll(async () => {
  stack = await startSecureStack(
    { rateLimit: { points: 3, windowMs: 60_000 }, batchLimit: 5 },
    { authenticate: async (request) => caller(request.headers.get('x-test-caller') ?? 'nobody') },
  );
});
afterAll(async () => {
  await stack.close();
});

describe('the per-caller rate limit', () => {
  it('refuses a burst past the limit with RATE_LIMITED, HTTP 429 and Retry-After, before any upstream call', async () => {
    const alice = { 'x-test-caller': 'alice' };
    for (let i = 0; i < 3; i++) {
      const ok = await post(stack, QUERY, alice);
      expect(ok.status).toBe(200);
    }
    let res;
    const calls = await stack.upstreamCalls(async () => {
      res = await post(stack, QUERY, alice);
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(429);
    const retryAfterSec = Number(res!.headers.get('retry-after'));
    expect(retryAfterSec).toBeGreaterThan(0);
    expect(retryAfterSec).toBeLessThanOrEqual(60);
    expect(res!.json?.errors?.[0]).toEqual({
      message: expect.stringMatching(
        /^Rate limit reached: at most 3 operations per 60 s per caller; retry in \d+ s\.$/,
      ),
      extensions: { code: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) },
    });
    const retryAfterMs = res!.json?.errors?.[0]?.extensions?.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('keeps a separate budget per caller', async () => {
    const res = await post(stack, QUERY, { 'x-test-caller': 'bob' });
    expect(res.status).toBe(200);
    expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
  });

  it('counts each operation of a batch', async () => {
    const carol = { 'x-test-caller': 'carol' };
    const res = await post(stack, [QUERY, QUERY, QUERY, QUERY], carol);
    const answers = res.json as unknown as { errors?: { extensions?: { code?: string } }[] }[];
    expect(answers.map((a) => a.errors?.[0]?.extensions?.code ?? 'ok')).toEqual([
      'ok',
      'ok',
      'ok',
      'RATE_LIMITED',
    ]);
  });
});

describe('rateLimitKey', () => {
  const open: Caller = { id: 'anonymous', kind: 'open', projects: 'all', rights: ALL_RIGHTS };
  const req = (headers: Record<string, string> = {}) =>
    new Request('http://gateway.test/graphql', { headers });
  const socket = { remoteAddress: '10.1.2.3' };

  it('keys an authenticated caller by its id', () => {
    expect(rateLimitKey({ caller: caller('key-1'), req: { socket } }, false)).toBe('caller:key-1');
  });

  it('keys open access by the client address, since every anonymous caller has the same id', () => {
    expect(rateLimitKey({ caller: open, req: { socket } }, false)).toBe('address:10.1.2.3');
    expect(rateLimitKey({ caller: open }, false)).toBe('address:unknown');
  });

  it('reads X-Forwarded-For only when the proxy is trusted, and then its last entry', () => {
    const request = req({ 'x-forwarded-for': '6.6.6.6, 192.0.2.7' });
    expect(rateLimitKey({ caller: open, request, req: { socket } }, false)).toBe('address:10.1.2.3');
    expect(rateLimitKey({ caller: open, request, req: { socket } }, true)).toBe('address:192.0.2.7');
  });
});
