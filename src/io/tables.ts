/**
 * Results as files: CSV (RFC 4180) for per-case numbers that pandas/R/spreadsheets read, Markdown tables for notes,
 * and mean ± sd strings.
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';
import { files, readBytes, type ByteSource } from './files.js';

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
  await files('writeCsv', 'vg.io.toCsv').writeFileAtomic(path, new TextEncoder().encode(text));
}

/** A field back to a number where it reads as one (as csvNumber writes them: digits, inf, -inf, nan), else the text. */
function csvValue(field: string, quoted: boolean): number | string {
  if (quoted || field.trim() === '') return field;
  if (field === 'nan' || field === 'NaN') return NaN;
  if (field === 'inf' || field === 'Infinity') return Infinity;
  if (field === '-inf' || field === '-Infinity') return -Infinity;
  const v = Number(field);
  return Number.isNaN(v) ? field : v;
}

/**
 * Rows of CSV text (RFC 4180: quoted fields may hold commas, quotes doubled, line breaks; records end with CRLF or LF).
 * The first record names the columns. Unquoted fields that read as numbers (including inf, -inf, nan) become numbers;
 * an empty field is left out of its row, as toCsv writes a missing key.
 */
export function parseCsv(text: string): Row[] {
  const op = 'parseCsv';
  if (typeof text !== 'string') fail(op, `text must be a string, got ${describe(text)}`);
  const records: { field: string; quoted: boolean }[][] = [];
  let record: { field: string; quoted: boolean }[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    record.push({ field, quoted });
    field = '';
    quoted = false;
  };
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"' && field === '' && !quoted) {
      // a quoted field: up to the closing quote, "" standing for one quote
      quoted = true;
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close < 0) fail(op, `unterminated quoted field in record ${records.length + 1}`);
        field += text.slice(i, close);
        if (text[close + 1] === '"') {
          field += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      if (i < text.length && !',\r\n'.includes(text[i])) fail(op, `text after a closing quote in record ${records.length + 1}: '${text.slice(i, i + 10)}'`);
    } else if (ch === ',') {
      endField();
      i++;
    } else if (ch === '\r' || ch === '\n') {
      endField();
      // a blank line is no record (pandas skips them too)
      if (!(record.length === 1 && record[0].field === '' && !record[0].quoted)) records.push(record);
      record = [];
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (field !== '' || quoted || record.length > 0) {
    endField();
    records.push(record);
  }
  if (records.length === 0) fail(op, 'no header record: the text is empty');
  const header = records[0].map((f) => f.field);
  return records.slice(1).map((rec, r) => {
    if (rec.length !== header.length) fail(op, `record ${r + 2} has ${rec.length} fields, the header ${header.length}`);
    const row: Row = {};
    rec.forEach((f, c) => {
      if (f.field !== '' || f.quoted) row[header[c]] = csvValue(f.field, f.quoted);
    });
    return row;
  });
}

/** Reads a CSV file (UTF-8) into rows, as parseCsv, from a path, URL, File, Blob, Response or bytes. */
export async function readCsv(source: ByteSource): Promise<Row[]> {
  return parseCsv(new TextDecoder().decode(await readBytes('readCsv', source)));
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
