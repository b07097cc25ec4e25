import { serverAudits } from 'graphql-http';
import { describe, expect, it } from 'vitest';
import { startStack } from '../support/stack.js';

// The GraphQL-over-HTTP spec's own audit (graphql-http), against the gateway as `npm start` builds it
// (CSRF prevention, limits and all): every MUST and every SHOULD passes.
describe('GraphQL over HTTP audit (graphql-http serverAudits)', async () => {
  const stack = await startStack();
  const url = await stack.gateway.listen(0);
  const audits = serverAudits({ url: `${url}/graphql` });

  it('has MUST and SHOULD audits to run', () => {
    expect(audits.filter((a) => a.name.startsWith('MUST')).length).toBeGreaterThan(10);
    expect(audits.filter((a) => a.name.startsWith('SHOULD')).length).toBeGreaterThan(10);
  });

  it.each(audits.filter((a) => /^(MUST|SHOULD) /.test(a.name)).map((a) => [a.name, a] as const))(
    '%s',
    async (_name, audit) => {
      const result = await audit.fn();
      expect({ status: result.status, reason: 'reason' in result ? result.reason : undefined }).toEqual({
        status: 'ok',
        reason: undefined,
      });
    },
  );
});
