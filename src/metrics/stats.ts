/**
 * Paired two-sided Student t-test (scipy.stats.ttest_rel) in float64, with the t distribution's tail from the
 * regularized incomplete beta function: P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';

export interface TTestResult {
  /** t statistic of mean(a - b). */
  t: number;
  /** Degrees of freedom, n - 1. */
  df: number;
  /** Two-sided p-value. */
  p: number;
  /** mean(a - b). */
  meanDiff: number;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta (modified Lentz), valid for x < (a + 1) / (a + b + 2). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function betaInc(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/**
 * Paired t-test of two matched samples (e.g. per-case Dice of two methods), two-sided, as scipy.stats.ttest_rel:
 * t = mean(d) / (std(d, ddof=1) / sqrt(n)) with d = a - b, df = n - 1. All differences equal and zero give t = p = NaN
 * (scipy's 0/0); equal nonzero differences give t = ±Infinity and p = 0.
 */
export function pairedTTest(a: readonly number[] | ArrayLike<number>, b: readonly number[] | ArrayLike<number>): TTestResult {
  const op = 'pairedTTest';
  for (const [name, v] of [['a', a], ['b', b]] as const)
    if (v === null || typeof v !== 'object' || typeof v.length !== 'number') fail(op, `${name} must be an array of numbers, got ${describe(v)}`);
  if (a.length !== b.length) fail(op, `a and b must be paired (the same length), got ${a.length} and ${b.length}`);
  const n = a.length;
  if (n < 2) fail(op, `needs at least 2 pairs for a variance, got ${n}`);
  const d = Array.from({ length: n }, (_, i) => a[i] - b[i]);
  if (d.some((v) => !Number.isFinite(v))) fail(op, 'a and b must hold finite numbers (NaN or Infinity found)');
  const mean = d.reduce((s, v) => s + v, 0) / n;
  const sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  const df = n - 1;
  const t = mean / (sd / Math.sqrt(n));
  let p: number;
  if (Number.isNaN(t)) p = NaN;
  else if (!Number.isFinite(t)) p = 0;
  else p = betaInc(df / 2, 0.5, df / (df + t * t));
  return { t, df, p, meanDiff: mean };
}

function expectPaired(op: string, a: ArrayLike<number>, b: ArrayLike<number>, names: [string, string]): number {
  for (const [name, v] of [[names[0], a], [names[1], b]] as const)
    if (v === null || typeof v !== 'object' || typeof v.length !== 'number') fail(op, `${name} must be an array of numbers, got ${describe(v)}`);
  if (a.length !== b.length) fail(op, `${names[0]} and ${names[1]} must have the same length, got ${a.length} and ${b.length}`);
  return a.length;
}

/** Pearson's correlation coefficient r of two samples (scipy.stats.pearsonr's statistic), in float64. */
export function pearsonCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const op = 'pearsonCorrelation';
  const n = expectPaired(op, a, b, ['a', 'b']);
  if (n < 2) fail(op, `needs at least 2 pairs, got ${n}`);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

/**
 * Area under the ROC curve of `scores` for binary `labels` (1 positive, 0 negative): the probability that a random
 * positive scores above a random negative, ties counting one half (sklearn's roc_auc_score; the Mann–Whitney U over
 * n₊·n₋). NaN when either class is absent.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const op = 'auroc';
  const n = expectPaired(op, scores, labels, ['scores', 'labels']);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => scores[i] - scores[j]);
  // mid-ranks of tied scores, summed over the positives
  let rankSum = 0;
  let positives = 0;
  for (let k = 0; k < n; ) {
    let end = k;
    while (end + 1 < n && scores[order[end + 1]] === scores[order[k]]) end++;
    const midRank = (k + end) / 2 + 1;
    for (let q = k; q <= end; q++) {
      const l = labels[order[q]];
      if (l !== 0 && l !== 1) fail(op, `labels must be 0 or 1, got ${describe(l)} at index ${order[q]}`);
      if (!Number.isFinite(scores[order[q]])) fail(op, `scores must be finite, got ${scores[order[q]]} at index ${order[q]}`);
      if (l === 1) {
        rankSum += midRank;
        positives++;
      }
    }
    k = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
