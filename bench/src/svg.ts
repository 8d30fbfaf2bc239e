/**
 * A hand-written SVG of a bench run: throughput per second on top, p50/p99 latency per second
 * below, the system in colour and the floor (if measured) in grey. No dependency.
 */
import type { SeriesPoint } from './stats.js';

export interface ChartInput {
  title: string;
  subtitle: string;
  system: { series: SeriesPoint[]; windowS: number };
  floor?: { series: SeriesPoint[]; windowS: number };
}

const W = 960;
const PLOT_LEFT = 80;
const PLOT_RIGHT = 200; // room for the legend
const PLOT_H = 230;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) =>
  Math.abs(v) >= 100 || Number.isInteger(v)
    ? String(Math.round(v))
    : v >= 10
      ? v.toFixed(1)
      : v.toFixed(2).replace(/0$/, '');

/** Round tick step (1, 2 or 5 × 10^k) giving about `n` ticks up to `max`. */
export function niceTicks(max: number, n = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Math.round(v / step) * step);
  if ((ticks[ticks.length - 1] ?? 0) < max) ticks.push(ticks.length * step);
  return ticks;
}

interface Line {
  label: string;
  color: string;
  dash?: string;
  points: { x: number; y: number }[];
}

function chart(
  top: number,
  title: string,
  yLabel: string,
  xMax: number,
  lines: Line[],
  marks: { x: number; label: string }[],
): string {
  const left = PLOT_LEFT;
  const width = W - PLOT_LEFT - PLOT_RIGHT;
  const yMaxData = Math.max(0, ...lines.flatMap((l) => l.points.map((p) => p.y)));
  const yTicks = niceTicks(yMaxData || 1);
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  const xTicks = niceTicks(xMax, 12);
  const xTop = xTicks[xTicks.length - 1] ?? xMax;
  const X = (x: number) => left + (x / xTop) * width;
  const Y = (y: number) => top + PLOT_H - (y / yMax) * PLOT_H;
  const out: string[] = [];
  out.push(`<text x="${left}" y="${top - 10}" class="h">${esc(title)}</text>`);
  for (const t of yTicks) {
    out.push(`<line x1="${left}" x2="${left + width}" y1="${Y(t)}" y2="${Y(t)}" class="grid"/>`);
    out.push(`<text x="${left - 6}" y="${Y(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${top + PLOT_H}" y2="${top + PLOT_H + 5}" class="axis"/>`);
    out.push(`<text x="${X(t)}" y="${top + PLOT_H + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + PLOT_H}" class="axis"/>`);
  out.push(`<line x1="${left}" x2="${left + width}" y1="${top + PLOT_H}" y2="${top + PLOT_H}" class="axis"/>`);
  out.push(
    `<text x="${left + width / 2}" y="${top + PLOT_H + 36}" text-anchor="middle">seconds since the start of the measurement</text>`,
  );
  out.push(
    `<text transform="translate(${left - 52},${top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  for (const m of marks) {
    out.push(`<line x1="${X(m.x)}" x2="${X(m.x)}" y1="${top}" y2="${top + PLOT_H}" class="mark"/>`);
    out.push(`<text x="${X(m.x) + 4}" y="${top + PLOT_H - 6}" class="small">${esc(m.label)}</text>`);
  }
  lines.forEach((l, i) => {
    if (l.points.length) {
      const d = l.points.map((p, j) => `${j ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ');
      out.push(
        `<path d="${d}" fill="none" stroke="${l.color}" stroke-width="2"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`,
      );
      if (l.points.length === 1) {
        const p = l.points[0] as { x: number; y: number };
        out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="3" fill="${l.color}"/>`);
      }
    }
    const ly = top + 10 + i * 20;
    const lx = left + width + 20;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="2"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`,
    );
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(l.label)}</text>`);
  });
  return out.join('\n');
}

const mid = (p: SeriesPoint) => p.t + p.seconds / 2;

export function renderSvg(input: ChartInput): string {
  const { system, floor } = input;
  const lastX = (s: SeriesPoint[]) => Math.max(0, ...s.map((p) => p.t + p.seconds));
  const xMax = Math.max(1, lastX(system.series), floor ? lastX(floor.series) : 0);
  const withData = (s: SeriesPoint[]) => s.filter((p) => p.completed > 0);
  // The drain after a timed window has no new load: its rate is not a throughput.
  const inWindow = (s: SeriesPoint[]) => s.filter((p) => !p.drain);

  const throughput: Line[] = [
    {
      label: 'system sagas/s',
      color: '#1f6feb',
      points: inWindow(system.series).map((p) => ({ x: mid(p), y: p.sagas_per_s })),
    },
  ];
  const latency: Line[] = [
    { label: 'system p50', color: '#1f6feb', points: withData(system.series).map((p) => ({ x: mid(p), y: p.p50_ms })) },
    { label: 'system p99', color: '#d1242f', points: withData(system.series).map((p) => ({ x: mid(p), y: p.p99_ms })) },
  ];
  if (floor) {
    throughput.push({
      label: 'floor sagas/s',
      color: '#8c959f',
      dash: '6 4',
      points: inWindow(floor.series).map((p) => ({ x: mid(p), y: p.sagas_per_s })),
    });
    latency.push({
      label: 'floor p50',
      color: '#8c959f',
      dash: '2 3',
      points: withData(floor.series).map((p) => ({ x: mid(p), y: p.p50_ms })),
    });
    latency.push({
      label: 'floor p99',
      color: '#57606a',
      dash: '6 4',
      points: withData(floor.series).map((p) => ({ x: mid(p), y: p.p99_ms })),
    });
  }
  const marks = system.windowS < xMax - 0.05 ? [{ x: system.windowS, label: 'end of window' }] : [];
  const top1 = 90;
  const top2 = top1 + PLOT_H + 90;
  const height = top2 + PLOT_H + 50;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    '<style>.h{font-size:14px;font-weight:600}.t{font-size:16px;font-weight:700}.small{font-size:10px;fill:#57606a}.grid{stroke:#d0d7de;stroke-width:1}.axis{stroke:#24292f;stroke-width:1}.mark{stroke:#57606a;stroke-dasharray:3 3}text{fill:#24292f}</style>',
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="${PLOT_LEFT}" y="28" class="t">${esc(input.title)}</text>`,
    `<text x="${PLOT_LEFT}" y="48" class="small">${esc(input.subtitle)}</text>`,
    chart(top1, 'Throughput (terminal sagas per second)', 'sagas/s', xMax, throughput, marks),
    chart(top2, 'Latency per second of completion (ms)', 'ms', xMax, latency, marks),
    '</svg>',
    '',
  ].join('\n');
}
