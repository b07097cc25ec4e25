import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/callers/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import type { Gateway } from '../../src/gateway.js';
import { createGatewayFromConfig } from '../../src/gateway-from-config.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack } from '../support/stack.js';

const KEY = generateApiKey();
const KEYS = JSON.stringify([
  { id: 'svc', hash: hashApiKey(KEY), projects: [SEED.projects.payments.id], rights: ['read'] },
]);

const post = (gateway: Gateway, headers: Record<string, string> = {}) =>
  gateway.yoga.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: '{ projects { id } }' }),
  });

describe('createGatewayFromConfig', () => {
  it('needs the simulator in demo mode: the config has no Atlas URL then', () => {
    expect(() => createGatewayFromConfig(loadConfig({}))).toThrow(/demo mode: pass the simulator's URL/);
  });

  it('builds the gateway the config describes: its callers, its limits, its Atlas', async () => {
    const env = { GATEWAY_AUTH: 'apikey', GATEWAY_API_KEYS: KEYS, GATEWAY_MAX_BODY_BYTES: '2048' };
    const config = loadConfig(env);
    const built = createGatewayFromConfig(config, {
      atlas: { baseUrl: 'http://127.0.0.1:9' },
      logging: false,
    });
    expect(built.callers).toBe('apikey');
    expect(built.redis).toBeUndefined();
    expect(built.tracing).toBeUndefined();
    await built.close();
    // The test stack builds through the same function, from the same environment.
    const stack = await startStack({ env });
    try {
      expect((await post(stack.gateway)).status).toBe(401);
      const ok = await post(stack.gateway, { 'x-api-key': KEY });
      expect(await ok.json()).toEqual({ data: { projects: [{ id: SEED.projects.payments.id }] } });
      const big = await stack.gateway.yoga.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        body: JSON.stringify({ query: `{ projects { id } } # ${'x'.repeat(4096)}` }),
      });
      expect(big.status).toBe(413);
    } finally {
      await stack.close();
    }
  });
});
