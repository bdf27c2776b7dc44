/**
 * Results as files: CSV (RFC 4180) for per-case numbers that pandas/R/spreadsheets read, Markdown tables for notes,
 * and mean ± sd strings.
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';
import { files } from './files.js';

export type Row = Record<string, number | string>;

export interface CsvOptions {
  /** Column order. Default: every key of every row, in first-seen order. */
  columns?: readonly string[];
}

function checkRows(op: string, rows: unknown): Row[] {
  if (!Array.isArray(rows) || !rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r)))
    fail(op, `rows must be an array of objects like [{ case: 'p01', dice: 0.91 }], got ${describe(rows)}`);
  for (const [i, r] of (rows as Row[]).entries())
    for (const [k, v] of Object.entries(r))
      if (typeof v !== 'number' && typeof v !== 'string') fail(op, `rows[${i}].${k} must be a number or a string, got ${describe(v)}`);
  return rows as Row[];
}

function columnsOf(op: string, rows: Row[], columns?: readonly string[]): string[] {
  if (columns === undefined) return [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string'))
    fail(op, `columns must be a list of strings, got ${describe(columns)}`);
  return [...columns];
}

/** Numbers as Python's float() and pandas read them back exactly: shortest round-trip digits, inf/-inf/nan. */
function csvNumber(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return String(v);
}

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled; records end with CRLF. */
function csvField(v: number | string | undefined): string {
  if (v === undefined) return '';
  const s = typeof v === 'number' ? csvNumber(v) : v;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The CSV text of `rows` (header line, then one record per row; a missing key is an empty field). */
export function toCsv(rows: Row[], opts: CsvOptions = {}): string {
  const op = 'toCsv';
  const r = checkRows(op, rows);
  const cols = columnsOf(op, r, opts.columns);
  if (cols.length === 0) fail(op, 'no columns: give rows with keys or { columns }');
  return [cols, ...r.map((row) => cols.map((c) => row[c]))].map((rec) => rec.map(csvField).join(',') + '\r\n').join('');
}

/** Writes `toCsv(rows)` to `path` (UTF-8), atomically. */
export async function writeCsv(path: string, rows: Row[], opts: CsvOptions = {}): Promise<void> {
  if (typeof path !== 'string') fail('writeCsv', `path must be a string, got ${describe(path)}`);
  const text = toCsv(rows, opts);
  await files('writeCsv').writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Fixed decimals, with inf/-inf/nan spelled out. */
function fixed(v: number, digits: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return v.toFixed(digits);
}

/**
 * "mean ± sd" of `values` with `digits` decimals (default 3). sd is the sample standard deviation (n − 1, as numpy's
 * ddof=1 and pandas' default); with one value only the mean is given. Non-finite values propagate (an inf HD95 gives
 * an inf mean), as in numpy.
 */
export function meanSd(values: readonly number[], opts: { digits?: number } = {}): string {
  const op = 'meanSd';
  if (!Array.isArray(values) || values.length === 0 || !values.every((v) => typeof v === 'number'))
    fail(op, `values must be a non-empty list of numbers, got ${describe(values)}`);
  const digits = opts.digits ?? 3;
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) fail(op, `digits must be an integer in [0, 20], got ${describe(digits)}`);
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return fixed(mean, digits);
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  return `${fixed(mean, digits)} ± ${fixed(sd, digits)}`;
}

export interface MarkdownTableOptions {
  /** Column order (default: every key, first-seen order). */
  columns?: readonly string[];
  /** Decimals for numbers (default 3), or a function (value, column) → cell text. Strings are written as given. */
  format?: number | ((value: number, column: string) => string);
}

/** A GitHub-flavoured Markdown table of `rows`; number columns are right-aligned, `|` in cells is escaped. */
export function markdownTable(rows: Row[], opts: MarkdownTableOptions = {}): string {
  const op = 'markdownTable';
  const r = checkRows(op, rows);
  const cols = columnsOf(op, r, opts.columns);
  if (cols.length === 0) fail(op, 'no columns: give rows with keys or { columns }');
  const format = opts.format ?? 3;
  if (typeof format === 'number' && !(Number.isInteger(format) && format >= 0 && format <= 20))
    fail(op, `format must be a number of decimals in [0, 20] or a function, got ${describe(format)}`);
  if (typeof format !== 'number' && typeof format !== 'function') fail(op, `format must be a number of decimals or a function, got ${describe(format)}`);
  const cell = (v: number | string | undefined, c: string) => {
    const s = v === undefined ? '' : typeof v === 'number' ? (typeof format === 'number' ? fixed(v, format) : format(v, c)) : v;
    return s.replaceAll('|', '\\|').replace(/\r?\n/g, ' ');
  };
  const numeric = cols.map((c) => r.some((row) => typeof row[c] === 'number') && r.every((row) => typeof row[c] !== 'string'));
  const lines = [
    `| ${cols.map((c) => cell(c, c)).join(' | ')} |`,
    `| ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`,
    ...r.map((row) => `| ${cols.map((c) => cell(row[c], c)).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}
