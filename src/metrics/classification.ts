/**
 * Classification metrics of group-robustness papers (worst-group and average accuracy) and the paired t-test used
 * to compare methods. Accuracies are counted on the GPU with the overlap-counting pass (one read of the counts).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectTensor } from '../kernels/common.js';
import { cast } from '../kernels/elementwise.js';
import { eq, where } from '../kernels/math.js';
import { argmax, max, min } from '../kernels/reduce.js';
import { overlapCounts } from './overlap.js';

export interface GroupAccuracies {
  /** Accuracy of each group present (group id -> accuracy). */
  perGroup: Record<number, number>;
  /** Samples per group present. */
  counts: Record<number, number>;
  /** Lowest group accuracy. */
  worst: number;
  /** Accuracy over all samples (each sample weighs the same). */
  average: number;
  /** Unweighted mean of the group accuracies. */
  groupMean: number;
}

/** Class indices [N] (i32) from logits [N, C] (argmax over C) or from indices [N]. */
function predictedClass(op: string, pred: Tensor, n: number): Tensor {
  if (pred.ndim === 2 && pred.shape[0] === n) return argmax(pred, { dim: 1 });
  if (pred.ndim === 1 && pred.shape[0] === n) return cast(pred, 'i32');
  fail(op, `pred must be logits [N, C] or class indices [N] with N = ${n} (the label count), got shape ${fmtShape(pred.shape)}`);
}

function expectVector(op: string, arg: string, t: unknown, n?: number): Tensor {
  const v = expectTensor(op, arg, t);
  if (v.ndim !== 1 || (n !== undefined && v.shape[0] !== n))
    fail(op, `${arg} must be a vector [N]${n !== undefined ? ` with N = ${n}` : ''}, got shape ${fmtShape(v.shape)}`);
  return v;
}

/** Per-group accuracies, the worst of them and the averages; pred is logits [N, C] or class indices [N]. */
export async function groupAccuracies(pred: Tensor, label: Tensor, group: Tensor): Promise<GroupAccuracies> {
  const op = 'groupAccuracies';
  const y = expectVector(op, 'label', label);
  const n = y.shape[0];
  expectTensor(op, 'pred', pred);
  const g = expectVector(op, 'group', group, n);
  if (n === 0) fail(op, 'label is empty: accuracy of no samples is undefined');
  const [gi, correctGroup, lo, hi] = tidy(() => {
    const gi = cast(g, 'i32');
    const ok = eq(predictedClass(op, pred, n), cast(y, 'i32'));
    // a correct sample counts in its group's "pred" bin, every sample in its group's "target" bin
    return [gi, where(ok, gi, -1), min(gi), max(gi)];
  });
  try {
    const [g0, g1] = [await lo.item(), await hi.item()];
    if (g0 < 0) fail(op, `group ids must be non-negative integers, got a minimum of ${g0}`);
    const ids = Array.from({ length: g1 + 1 }, (_, i) => i);
    const c = await overlapCounts(op, correctGroup, gi, ids);
    const perGroup: Record<number, number> = {};
    const counts: Record<number, number> = {};
    let correct = 0;
    let s = 0;
    let worst = Infinity;
    for (const id of ids) {
      const [ok, size] = [c[3 * id], c[3 * id + 1]];
      if (size === 0) continue;
      perGroup[id] = ok / size;
      counts[id] = size;
      correct += ok;
      s += ok / size;
      worst = Math.min(worst, ok / size);
    }
    const present = Object.keys(counts).length;
    return { perGroup, counts, worst, average: correct / n, groupMean: s / present };
  } finally {
    for (const t of [gi, correctGroup, lo, hi]) t.dispose();
  }
}

/** Lowest per-group accuracy (the worst-group accuracy of group DRO, JTT, DFR). */
export async function worstGroupAccuracy(pred: Tensor, label: Tensor, group: Tensor): Promise<number> {
  return (await groupAccuracies(pred, label, group)).worst;
}

export interface AverageAccuracyOptions {
  /** Group id per sample [N]; needed with groupWeights. */
  group?: Tensor;
  /**
   * Weight of each group's accuracy (indexed by group id), e.g. the training-set group proportions used for Waterbirds'
   * "average accuracy"; without it every sample weighs the same.
   */
  groupWeights?: readonly number[] | Record<number, number>;
}

/** Accuracy over all samples, or the groupWeights-weighted mean of the group accuracies. */
export async function averageAccuracy(pred: Tensor, label: Tensor, opts: AverageAccuracyOptions = {}): Promise<number> {
  const op = 'averageAccuracy';
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { group, groupWeights }, got ${describe(opts)}`);
  const y = expectVector(op, 'label', label);
  if (opts.groupWeights !== undefined && opts.group === undefined) fail(op, 'groupWeights needs group (the group id of each sample)');
  const group = opts.group ?? tidy(() => cast(y, 'i32').mul(0));
  try {
    const r = await groupAccuracies(pred, y, group);
    if (opts.groupWeights === undefined) return r.average;
    const w = opts.groupWeights as Record<number, number>;
    let s = 0;
    let ws = 0;
    for (const id of Object.keys(r.perGroup).map(Number)) {
      const wi = w[id];
      if (typeof wi !== 'number' || !(wi >= 0)) fail(op, `groupWeights must give a non-negative weight for every group present; group ${id} has ${describe(wi)}`);
      s += wi * r.perGroup[id];
      ws += wi;
    }
    if (ws === 0) fail(op, 'groupWeights sum to 0 over the groups present');
    return s / ws;
  } finally {
    if (group !== opts.group) group.dispose();
  }
}
