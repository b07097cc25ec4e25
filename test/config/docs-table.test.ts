import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ENV_TABLE_END, ENV_TABLE_START, envDeclarations, withEnvTable } from '../../src/config/index.js';

const DOC = new URL('../../docs/configuration.md', import.meta.url);

it('docs/configuration.md holds the table the declarations make (else: npm run docs:config)', () => {
  const doc = readFileSync(DOC, 'utf8');
  expect(doc).toContain(ENV_TABLE_START);
  expect(doc).toContain(ENV_TABLE_END);
  expect(withEnvTable(doc)).toBe(doc);
});

it('lists every declared variable with its default and group', () => {
  const doc = readFileSync(DOC, 'utf8');
  for (const d of envDeclarations()) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${d.name}\` `));
    expect(row, d.name).toBeDefined();
    expect(row, d.name).toContain(` ${d.group} `);
  }
  expect(withEnvTable(`${ENV_TABLE_START}\nstale\n${ENV_TABLE_END}`)).not.toContain('stale');
});
