import type { OverheadReport, Target } from './overhead.js';

const COLORS: Partial<Record<Target, string>> = {
  direct: '#9aa5b1',
  'direct-undici': '#cbd2d9',
  ours: '#2f80ed',
  peer: '#f2994a',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/**
 * A grouped bar chart of req/s per load point (simulator latency × connections), one bar per
 * target, as a standalone SVG with no script or external reference.
 */
export function throughputSvg(o: OverheadReport, title: string): string {
  const targets = (Object.keys(COLORS) as Target[]).filter((t) => o.points.some((p) => p.target === t));
  const groups = [
    ...new Set(o.points.filter((p) => COLORS[p.target]).map((p) => `${p.latencyMs}|${p.connections}`)),
  ];
  const max = Math.max(1, ...o.points.filter((p) => COLORS[p.target]).map((p) => p.rps));
  const bar = 16;
  const gap = 28;
  const groupWidth = targets.length * bar + gap;
  const left = 60;
  const top = 40;
  const height = 260;
  const width = left + groups.length * groupWidth + 20;
  const y = (v: number) => top + height - (v / max) * height;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + height + 90}" font-family="sans-serif" font-size="11">`,
    `<text x="${left}" y="20" font-size="14">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(
      `<line x1="${left - 4}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#e4e7eb"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const [latency, conns] = g.split('|');
    const x0 = left + gi * groupWidth + gap / 2;
    targets.forEach((t, ti) => {
      const p = o.points.find((x) => x.target === t && `${x.latencyMs}|${x.connections}` === g);
      if (!p) return;
      parts.push(
        `<rect x="${x0 + ti * bar}" y="${y(p.rps)}" width="${bar - 2}" height="${top + height - y(p.rps)}" fill="${COLORS[t]}"><title>${t}: ${p.rps.toFixed(0)} req/s, p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms</title></rect>`,
      );
    });
    parts.push(
      `<text x="${x0 + (targets.length * bar) / 2}" y="${top + height + 16}" text-anchor="middle">${latency} ms, c=${conns}</text>`,
    );
  });
  targets.forEach((t, i) => {
    const x = left + i * 120;
    parts.push(
      `<rect x="${x}" y="${top + height + 40}" width="12" height="12" fill="${COLORS[t]}"/>`,
      `<text x="${x + 16}" y="${top + height + 50}">${t}</text>`,
    );
  });
  parts.push(
    `<text x="${left}" y="${top + height + 76}" fill="#52606d">req/s of the single-snapshot query (higher is better); simulator latency, client connections</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
