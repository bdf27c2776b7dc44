/** Argument checks and option parsing shared by the vg.metrics modules. */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { describe, expectTensor } from '../kernels/common.js';

/** Spacing per spatial axis: a positive number for all axes or one per axis; 1 (voxel units) when omitted. */
export function spacingOf(op: string, spacing: number | readonly number[] | undefined, nd: number): number[] {
  if (spacing === undefined || spacing === null) return new Array(nd).fill(1);
  const list = typeof spacing === 'number' ? new Array(nd).fill(spacing) : [...spacing];
  if (list.length !== nd)
    fail(op, `spacing must have one entry per spatial axis (${nd}), got ${list.length} entries [${list.join(', ')}]`);
  for (const s of list)
    if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0)
      fail(op, `spacing entries must be positive finite numbers (e.g. mm per voxel), got [${list.join(', ')}]`);
  return list;
}

/** Two tensors of the same shape (a prediction and its reference). */
export function expectPair(op: string, pred: unknown, target: unknown): [Tensor, Tensor] {
  const p = expectTensor(op, 'pred', pred);
  const t = expectTensor(op, 'target', target);
  if (p.shape.length !== t.shape.length || p.shape.some((d, i) => d !== t.shape[i]))
    fail(op, `pred and target must have the same shape, got pred ${fmtShape(p.shape)} and target ${fmtShape(t.shape)}`);
  return [p, t];
}

export function expectChoice<T extends string>(op: string, name: string, v: unknown, choices: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!choices.includes(v as T)) fail(op, `${name} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(v)}`);
  return v as T;
}

/** Which labels a metric evaluates: null = binary masks (nonzero is foreground). */
export interface LabelOptions {
  /** Evaluate these label values of label maps (each `map == label` is one mask). */
  labels?: readonly number[];
  /** Evaluate labels 0..numClasses-1 of label maps (background 0 dropped unless includeBackground). */
  numClasses?: number;
  /** With numClasses: include label 0. Default false (the background is rarely reported). */
  includeBackground?: boolean;
}

/** Options without label selection: binary masks, a number as result. */
export type Binary<O> = O & { labels?: undefined; numClasses?: undefined };
/** Options selecting labels of label maps: a per-label result. */
export type Multi<O> = O & ({ labels: readonly number[] } | { numClasses: number });

export function labelsOf(op: string, opts: LabelOptions): number[] | null {
  const { labels, numClasses, includeBackground } = opts;
  if (labels !== undefined && numClasses !== undefined)
    fail(op, 'give either labels or numClasses, not both (labels lists the values to evaluate; numClasses means 0..numClasses-1)');
  if (includeBackground !== undefined && numClasses === undefined)
    fail(op, 'includeBackground applies to numClasses; with labels, list the labels to evaluate (0 is the background)');
  if (labels !== undefined) {
    if (!Array.isArray(labels) || labels.length === 0 || labels.some((l) => !Number.isInteger(l) || Math.abs(l) >= 2 ** 31))
      fail(op, `labels must be a non-empty array of integers, got ${describe(labels)}${Array.isArray(labels) ? ` [${labels.join(', ')}]` : ''}`);
    if (new Set(labels).size !== labels.length) fail(op, `labels must not repeat, got [${labels.join(', ')}]`);
    return [...labels];
  }
  if (numClasses !== undefined) {
    if (!Number.isInteger(numClasses) || numClasses < 1) fail(op, `numClasses must be a positive integer, got ${describe(numClasses)}`);
    const first = includeBackground ? 0 : 1;
    if (first >= numClasses) fail(op, `numClasses ${numClasses} without the background leaves no label to evaluate; pass includeBackground: true or numClasses >= 2`);
    return Array.from({ length: numClasses - first }, (_, i) => i + first);
  }
  return null;
}

/** Result of a metric over several labels. */
export interface PerLabelResult {
  /** Value per evaluated label (NaN where the policy says NaN or skip). */
  perLabel: Record<number, number>;
  /** Mean over the labels, leaving out those the policy skips (NaN if every label is skipped). */
  mean: number;
  /** The labels evaluated, in the order given. */
  labels: number[];
  /** Labels left out of the mean by an empty policy of 'skip'. */
  skipped: number[];
}

export function perLabelResult(labels: number[], values: number[], skip: boolean[]): PerLabelResult {
  const perLabel: Record<number, number> = {};
  let s = 0;
  let n = 0;
  labels.forEach((l, i) => {
    perLabel[l] = values[i];
    if (!skip[i]) {
      s += values[i];
      n++;
    }
  });
  return { perLabel, mean: n ? s / n : NaN, labels, skipped: labels.filter((_, i) => skip[i]) };
}

/** 1 when a tensor's 32-bit words are f32 (nonzero tests then ignore the sign bit). */
export const isFloat = (t: Tensor): number => (t.dtype === 'f32' ? 1 : 0);
