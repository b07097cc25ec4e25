// `npm run docs:config`: regenerates the variable table of docs/configuration.md from the declarations
// (test/config/docs-table.test.ts fails while the file is out of date).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withEnvTable } from './env-table.js';

const file = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));
const before = readFileSync(file, 'utf8');
const after = withEnvTable(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? `${file}: up to date` : `${file}: table rewritten`);
