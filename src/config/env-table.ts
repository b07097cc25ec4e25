import { envRegistry, type EnvVarMeta } from './env-var.js';
import { ENV } from './load-config.js';

export const ENV_TABLE_START = '<!-- env-table:start -->';
export const ENV_TABLE_END = '<!-- env-table:end -->';

/** Every declared variable with its metadata, in declaration order. */
export function envDeclarations(): (EnvVarMeta & { name: string })[] {
  return Object.entries(ENV).map(([name, schema]) => {
    const meta = envRegistry.get(schema);
    if (!meta) throw new Error(`${name} is not registered`);
    return { name, ...meta };
  });
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The markdown table, padded as prettier pads it so `prettier --check` leaves it alone. */
export function renderEnvTable(): string {
  const rows = [
    ['variable', 'default', 'description', 'group'],
    ...envDeclarations().map((d) => [
      `\`${d.name}\``,
      cell(d.default === undefined ? 'none' : d.default),
      cell(d.description),
      d.group,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(3, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const [head, ...body] = rows;
  return [line(head!), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n');
}

/** `markdown` with the part between the markers replaced by the current table. */
export function withEnvTable(markdown: string): string {
  const start = markdown.indexOf(ENV_TABLE_START);
  const end = markdown.indexOf(ENV_TABLE_END);
  if (start < 0 || end < start) throw new Error(`expected ${ENV_TABLE_START} … ${ENV_TABLE_END}`);
  return `${markdown.slice(0, start + ENV_TABLE_START.length)}\n\n${renderEnvTable()}\n\n${markdown.slice(end)}`;
}
