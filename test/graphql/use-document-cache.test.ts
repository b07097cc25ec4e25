import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useDocumentCache } from '../../src/graphql/use-document-cache.js';

// Issue #19: the gateway's parser and validation cache (yoga's, without the TTL whose timers woke the
// event loop after every request) parses a text once, validates a document once, and stays bounded.

function counting(): { plugin: Plugin; parsed: () => number; validated: () => number } {
  let parsed = 0;
  let validated = 0;
  return {
    plugin: {
      onParse({ parseFn, setParseFn }) {
        setParseFn((...args: Parameters<typeof parseFn>) => {
          parsed += 1;
          return parseFn(...args);
        });
      },
      onValidate({ validateFn, setValidationFn }) {
        setValidationFn((...args: Parameters<typeof validateFn>) => {
          validated += 1;
          return validateFn(...args);
        });
      },
    },
    parsed: () => parsed,
    validated: () => validated,
  };
}

function server(max?: number) {
  const count = counting();
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { a: Int, b: Int }',
      resolvers: { Query: { a: () => 1, b: () => 2 } },
    }),
    logging: false,
    parserAndValidationCache: false,
    plugins: [useDocumentCache(max), count.plugin],
  });
  const ask = async (query: string) => {
    const res = await yoga.fetch('http://yoga.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as { data?: unknown; errors?: { message: string }[] };
  };
  return { ask, ...count };
}

describe('useDocumentCache', () => {
  it('parses and validates a query text once, however often it comes', async () => {
    const s = server();
    for (let i = 0; i < 3; i++) expect(await s.ask('{ a }')).toEqual({ data: { a: 1 } });
    expect(s.parsed()).toBe(1);
    expect(s.validated()).toBe(1);
  });

  it('answers a text that does not parse from its cached error, with the same message', async () => {
    const s = server();
    const first = await s.ask('{ a');
    const second = await s.ask('{ a');
    expect(first.errors?.[0]?.message).toMatch(/Syntax Error/);
    expect(second).toEqual(first);
    expect(s.parsed()).toBe(1);
  });

  it('keeps at most `max` documents, the least recently used going first', async () => {
    const s = server(1);
    await s.ask('{ a }');
    await s.ask('{ b }');
    await s.ask('{ a }');
    expect(s.parsed()).toBe(3);
    await s.ask('{ a }');
    expect(s.parsed()).toBe(3);
  });
});
