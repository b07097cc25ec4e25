import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyAuth, generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

// Finding: the `/downloads/…` route (issue #20) granted data outside the per-caller rate limit that
// every GraphQL operation spends, so a caller over its limit on /graphql could keep downloading (and
// make the gateway read Atlas for each request). One budget now serves both ways in.

const P = SEED.projects.payments.id;
const F = SEED.flex.clusterName;
const FRESH = SEED.flex.freshDownloadJobId;
const KEYS = { a: generateApiKey(), b: generateApiKey() };

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack({
    env: { GATEWAY_RATE_LIMIT: '3', GATEWAY_RATE_LIMIT_WINDOW_MS: '60000' },
    gateway: {
      authenticate: authenticateWith([
        apiKeyAuth({
          keys: Object.entries(KEYS).map(([id, key]) => ({
            id,
            hash: hashApiKey(key),
            projects: [P],
            rights: ['read', 'download'],
          })),
        }),
      ]),
    },
  });
  url = await stack.gateway.listen(0);
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

const download = async (key: string) => {
  const res = await request(`${url}/downloads/${P}/${F}/${FRESH}`, { headers: { 'x-api-key': key } });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
};
const operation = async (key: string) => {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as { errors?: { extensions?: unknown }[] } };
};

describe('finding: downloads spent no rate limit', () => {
  it('a download takes a point of the same per-caller budget as GraphQL operations, and is refused 429 past it with no Atlas call', async () => {
    expect((await operation(KEYS.a)).status).toBe(200);
    expect((await download(KEYS.a)).status).toBe(200);
    expect((await operation(KEYS.a)).status).toBe(200);

    // Three points spent, one per way in: the fourth request is refused, whichever door it takes.
    let refused: Awaited<ReturnType<typeof download>> | undefined;
    const calls = await stack.upstreamCalls(async () => {
      refused = await download(KEYS.a);
    });
    expect(refused!.status).toBe(429);
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused!.body.toString())).toEqual({
      errors: [
        {
          message: expect.stringMatching(/^Rate limit reached; retry in \d+ s\.$/) as unknown,
          extensions: { code: 'RATE_LIMITED' },
        },
      ],
    });
    expect(calls).toEqual([]);
    const over = await operation(KEYS.a);
    expect(over.status).toBe(429);
    expect(over.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });

    // Another caller's budget is its own.
    expect((await download(KEYS.b)).status).toBe(200);
  });
});
