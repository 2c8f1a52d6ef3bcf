// A small benchmark harness: each benchmark measures a baseline and ks-upgrade's way in the same
// run, alternating them, and reports medians and the ratio — absolute numbers on a shared 2-core
// machine are noise, ratios measured side by side are not.

export interface Sample {
  ms: number;
  /** Units of work done (objects listed, migrated…). */
  units: number;
}

export interface Comparison {
  name: string;
  unit: string;
  baseline: { label: string; medianMs: number; perSecond: number };
  ours: { label: string; medianMs: number; perSecond: number };
  /** baseline time / our time: > 1 means faster than the baseline. */
  speedup: number;
  rounds: number;
  notes?: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

export async function time(fn: () => Promise<number>): Promise<Sample> {
  const t0 = process.hrtime.bigint();
  const units = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, units };
}

/** One side of a comparison; `setup` (untimed) runs before every timed `run`. */
export interface Contender {
  label: string;
  setup?: () => Promise<void>;
  run: () => Promise<number>;
}

/** Runs baseline and ours `rounds` times each, alternating which goes first. */
export async function compare(
  name: string,
  unit: string,
  rounds: number,
  baseline: Contender,
  ours: Contender,
  notes?: string,
): Promise<Comparison> {
  const b: Sample[] = [];
  const o: Sample[] = [];
  const measure = async (c: Contender): Promise<Sample> => {
    await c.setup?.();
    return time(c.run);
  };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      b.push(await measure(baseline));
      o.push(await measure(ours));
    } else {
      o.push(await measure(ours));
      b.push(await measure(baseline));
    }
  }
  const bm = median(b.map((s) => s.ms));
  const om = median(o.map((s) => s.ms));
  const units = o[0]?.units ?? 0;
  return {
    name,
    unit,
    baseline: { label: baseline.label, medianMs: bm, perSecond: ((b[0]?.units ?? 0) / bm) * 1000 },
    ours: { label: ours.label, medianMs: om, perSecond: (units / om) * 1000 },
    speedup: bm / om,
    rounds,
    ...(notes ? { notes } : {}),
  };
}

export function format(c: Comparison): string {
  const f = (n: number): string => n.toFixed(n >= 100 ? 0 : 1);
  return [
    `${c.name} (${c.rounds} rounds, medians)`,
    `  baseline  ${c.baseline.label.padEnd(44)} ${f(c.baseline.medianMs).padStart(8)} ms  ${f(c.baseline.perSecond).padStart(8)} ${c.unit}/s`,
    `  ours      ${c.ours.label.padEnd(44)} ${f(c.ours.medianMs).padStart(8)} ms  ${f(c.ours.perSecond).padStart(8)} ${c.unit}/s`,
    `  ratio     ${c.speedup.toFixed(2)}x${c.notes ? `   (${c.notes})` : ''}`,
  ].join('\n');
}

/** One side of a table row: a figure, and the peak RSS of the process that produced it. */
export interface RowSide {
  label: string;
  value: number;
  unit: string;
  peakRssMb?: number;
}

/**
 * One row of the `npm run bench` table: ours against a baseline measured in the same run, the
 * ratio in the sense of `ratioLabel`, and whether it meets the issue's target.
 */
export interface Row {
  id: string;
  workload: string;
  baseline: RowSide;
  ours: RowSide;
  ratio: number;
  ratioLabel: string;
  target: string;
  /** undefined: no target, or not measured in this run. */
  met: boolean | undefined;
  rounds: number;
  /** Why a target is missed, from a profile (filled in by the row or docs/benchmarks.md). */
  notes?: string;
  extra?: Record<string, unknown>;
}

/** A row that is not measured by this bench (e.g. measured by another one): shown, marked so. */
export function placeholderRow(id: string, workload: string, target: string, why: string): Row {
  const none: RowSide = { label: '—', value: NaN, unit: '' };
  return {
    id,
    workload,
    baseline: none,
    ours: none,
    ratio: NaN,
    ratioLabel: '',
    target,
    met: undefined,
    rounds: 0,
    notes: why,
  };
}

/** A {@link Comparison} (speed-up of ours over the baseline) as a table row. */
export function comparisonRow(id: string, c: Comparison): Row {
  return {
    id,
    workload: c.name,
    baseline: { label: c.baseline.label, value: c.baseline.medianMs, unit: 'ms' },
    ours: { label: c.ours.label, value: c.ours.medianMs, unit: 'ms' },
    ratio: c.ours.medianMs / c.baseline.medianMs,
    ratioLabel: "× the baseline's time",
    target: '—',
    met: undefined,
    rounds: c.rounds,
    ...(c.notes ? { notes: c.notes } : {}),
  };
}

const num = (n: number, unit: string): string =>
  Number.isNaN(n) ? '—' : `${n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${unit}`.trim();
const rss = (s: RowSide): string => (s.peakRssMb === undefined ? '—' : `${s.peakRssMb.toFixed(0)} MiB`);

/** The rows as one Markdown table (stdout and docs/benchmarks.md). */
export function formatTable(rows: readonly Row[]): string {
  const lines = [
    '| Workload | Baseline (same run) | Ours | Ratio | Target | Met | Peak RSS baseline / ours |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const met = r.met === undefined ? (r.notes?.startsWith('see ') ? r.notes : '—') : r.met ? 'yes' : 'NO';
    lines.push(
      `| ${r.workload} | ${r.baseline.label}: ${num(r.baseline.value, r.baseline.unit)} | ${r.ours.label}: ${num(r.ours.value, r.ours.unit)} | ${Number.isNaN(r.ratio) ? '—' : `${r.ratio.toFixed(2)}${r.ratioLabel}`} | ${r.target} | ${met} | ${rss(r.baseline)} / ${rss(r.ours)} |`,
    );
  }
  return lines.join('\n');
}
