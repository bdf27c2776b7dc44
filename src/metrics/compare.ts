/**
 * Runs compared on the same test cases: the mean of each metric per run, and for the tested metrics the paired
 * t-test of each run against a baseline run (per-case rows matched by a key column, e.g. `pair`), as the papers'
 * tables report a method against its baseline.
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';
import type { Row } from '../io/tables.js';
import { pairedTTest } from './stats.js';

export interface RunResults {
  name: string;
  /** One row per test case, as the evaluation's per-case CSV (pairs.csv). */
  rows: Row[];
}

export interface CompareRunsOptions {
  /** The baseline run's name (default: the first run). */
  baseline?: string;
  /** Columns tested against the baseline (default: `dice` and every `dice_<structure>` column). */
  tested?: readonly string[];
  /** Columns averaged (default: every numeric column but the key). */
  columns?: readonly string[];
  /** The column that matches cases across runs (default `pair`). */
  key?: string;
}

/**
 * One row per run: `run`, `cases`, the mean of each column, and per tested column `Δ <col>` (mean paired difference
 * to the baseline) and `p <col>` (two-sided paired t-test, as scipy.stats.ttest_rel). Non-finite values (an HD of an
 * empty structure) make that column's mean non-finite, as numpy's mean; a tested column must be finite in every case.
 */
export function compareRuns(runs: readonly RunResults[], opts: CompareRunsOptions = {}): Row[] {
  const op = 'compareRuns';
  if (!Array.isArray(runs) || runs.length === 0 || !runs.every((r) => r && typeof r.name === 'string' && Array.isArray(r.rows)))
    fail(op, `runs must be a non-empty list of { name, rows }, got ${describe(runs)}`);
  const key = opts.key ?? 'pair';
  const baseName = opts.baseline ?? runs[0].name;
  const base = runs.find((r) => r.name === baseName);
  if (!base) fail(op, `baseline '${baseName}' is not one of the runs (${runs.map((r) => `'${r.name}'`).join(', ')})`);
  const keysOf = (r: RunResults) => r.rows.map((row, i) => {
    const k = row[key];
    if (k === undefined) fail(op, `run '${r.name}' row ${i + 1} has no '${key}' column to match cases by`);
    return String(k);
  });
  const baseKeys = keysOf(base);
  const baseIndex = new Map(baseKeys.map((k, i) => [k, i]));
  if (baseIndex.size !== baseKeys.length) fail(op, `baseline '${base.name}' repeats a '${key}' value`);
  const first = base.rows[0] ?? {};
  const columns = opts.columns ?? Object.keys(first).filter((c) => c !== key && typeof first[c] === 'number');
  const tested = opts.tested ?? columns.filter((c) => c === 'dice' || c.startsWith('dice_'));
  const out: Row[] = [];
  for (const run of runs) {
    const keys = keysOf(run);
    if (keys.length !== baseKeys.length || keys.some((k) => !baseIndex.has(k)))
      fail(op, `run '${run.name}' was evaluated on other cases than the baseline '${base.name}' (${keys.length} cases, baseline ${baseKeys.length}): compare runs on the same test set`);
    const values = (r: RunResults, c: string) => r.rows.map((row, i) => {
      const v = row[c];
      if (typeof v !== 'number') fail(op, `run '${r.name}' case ${i + 1} has no number in column '${c}', got ${describe(v)}`);
      return v;
    });
    const row: Row = { run: run.name, cases: run.rows.length };
    for (const c of columns) {
      const v = values(run, c);
      row[c] = v.reduce((a, b) => a + b, 0) / v.length;
    }
    if (run !== base)
      for (const c of tested) {
        // baseline values in this run's case order
        const b = values(base, c);
        const t = pairedTTest(values(run, c), keys.map((k) => b[baseIndex.get(k)!]));
        row[`Δ ${c}`] = t.meanDiff;
        row[`p ${c}`] = t.p;
      }
    out.push(row);
  }
  return out;
}
