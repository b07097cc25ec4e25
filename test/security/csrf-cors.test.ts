import { afterEach, describe, expect, it } from 'vitest';
import { CSRF_HEADERS } from '../../src/security/index.js';
import { SEED } from '../../src/simulator/seed.js';
import type { Stack } from '../support/stack.js';
import { firstError, raw, startSecureStack } from '../support/security-gateway.js';

const QUERY = `{ project(id: "${SEED.projects.payments.id}") { name } }`;
const GET_PATH = `/graphql?query=${encodeURIComponent(QUERY)}`;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('CSRF prevention', () => {
  it('refuses a GET without a CSRF header (what an <img> or a link sends), before any upstream call', async () => {
    const s = (stack = await startSecureStack({}));
    let res;
    const calls = await s.upstreamCalls(async () => {
      res = await raw(s, { method: 'GET', path: GET_PATH, headers: { accept: 'application/json' } });
    });
    expect(calls).toEqual([]);
    expect(res!.status).toBe(403);
    expect(firstError(res!)).toEqual({
      code: 'FORBIDDEN',
      message:
        'Required CSRF header not present: a GET or a form-encoded POST must carry one of x-graphql-csrf, x-graphql-yoga-csrf, apollo-require-preflight (any value).',
    });
  });

  it('refuses a form POST without a CSRF header', async () => {
    const s = (stack = await startSecureStack({}));
    const res = await raw(s, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: QUERY }).toString(),
    });
    expect(res.status).toBe(403);
    expect(firstError(res)?.code).toBe('FORBIDDEN');
  });

  it('answers a GET with any of the CSRF headers, and a JSON POST without one', async () => {
    const s = (stack = await startSecureStack({}));
    for (const header of CSRF_HEADERS) {
      const res = await raw(s, {
        method: 'GET',
        path: GET_PATH,
        headers: { accept: 'application/json', [header]: '1' },
      });
      expect(res.status, header).toBe(200);
      expect(res.json?.data).toEqual({ project: { name: 'Payments' } });
    }
    const post = await raw(s, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY }),
    });
    expect(post.status).toBe(200);
  });

  it('can be turned off', async () => {
    const s = (stack = await startSecureStack({ csrfPrevention: false }));
    const res = await raw(s, { method: 'GET', path: GET_PATH, headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
  });
});

describe('CORS', () => {
  const preflight = (s: Stack, origin: string) =>
    raw(s, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  it('allows no cross-origin caller in production by default', async () => {
    const s = (stack = await startSecureStack({ production: true }));
    const res = await preflight(s, 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows only the listed origins', async () => {
    const s = (stack = await startSecureStack({
      production: true,
      corsOrigins: ['https://app.example.com', 'https://admin.example.com'],
    }));
    const ok = await preflight(s, 'https://app.example.com');
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await preflight(s, 'https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).not.toBe('https://evil.example');
  });

  it('keeps yoga’s default (the caller’s origin is reflected) outside production', async () => {
    const s = (stack = await startSecureStack({}));
    const res = await preflight(s, 'http://localhost:5173');
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
  });
});
