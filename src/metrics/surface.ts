/**
 * Surface-distance metrics with medpy's conventions (medpy.metric.binary hd, hd95, asd, assd; docs/metrics.md):
 * borders = mask XOR binary_erosion(mask, generate_binary_structure(nd, connectivity)), distances = the EDT of the
 * other mask's border (in units of spacing) sampled at this mask's border voxels. Borders, EDTs and the compaction of
 * the border distances run on the GPU (shaders/metrics_border.wgsl, edt.wgsl, metrics_gather.wgsl); only the border
 * distances are read back, and their percentile, mean and maximum are taken in float64 on the CPU.
 */
import borderWgsl from '../../shaders/metrics_border.wgsl';
import gatherWgsl from '../../shaders/metrics_gather.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor } from '../kernels/common.js';
import { fillInto } from '../kernels/base.js';
import { slice } from '../kernels/shape.js';
import { edt } from './edt.js';
import { expectChoice, expectPair, isFloat, labelsOf, perLabelResult, spacingOf, type Binary, type LabelOptions, type Multi, type PerLabelResult } from './common.js';

export interface SurfaceOptions extends LabelOptions {
  /** Voxel size per spatial axis (or one number): results are in these units (mm for NIfTI spacing). Default 1. */
  spacing?: number | readonly number[];
  /** Neighbourhood of the erosion that defines the border (scipy's generate_binary_structure): 1 (default, faces) to nd. */
  connectivity?: number;
  /**
   * Exactly one mask empty (medpy raises): 'inf' (default: +Infinity, the worst value, which a mean keeps), 'worst'
   * (the volume's diagonal in spacing units, a finite worst case), 'nan', or 'error' (throw, as medpy).
   */
  empty?: 'inf' | 'worst' | 'nan' | 'error';
  /** Both masks empty (medpy raises): 'zero' (default: nothing to miss), 'nan', 'skip' (NaN, left out of a per-label mean), 'error'. */
  bothEmpty?: 'zero' | 'nan' | 'skip' | 'error';
}

export interface Hd95Options extends SurfaceOptions {
  /**
   * 'concat' (default, medpy): the 95th percentile of both directions' distances pooled; 'max': the larger of the two
   * directed 95th percentiles (MONAI, DeepMind surface-distance without surfel weights).
   */
  combine?: 'concat' | 'max';
  /** The percentile, 0..100 (default 95), numpy's linear interpolation. */
  percentile?: number;
}

export interface AssdOptions extends SurfaceOptions {
  /**
   * 'mean' (default, medpy <= 0.4.0 and most published numbers): (asd(pred, target) + asd(target, pred)) / 2;
   * 'concat' (medpy 0.5, Heimann et al. 2009): the mean of both directions' distances pooled.
   */
  combine?: 'mean' | 'concat';
}

/** Border-voxel distances in both directions (units of spacing). */
export interface SurfaceDistances {
  /** For each border voxel of pred: distance to the nearest border voxel of target (empty if pred is empty). */
  predToTarget: Float64Array;
  /** For each border voxel of target: distance to the nearest border voxel of pred. */
  targetToPred: Float64Array;
}

interface Parsed {
  spacing: number[];
  connectivity: number;
  labels: number[] | null;
}

function parse(op: string, pred: unknown, target: unknown, opts: SurfaceOptions): [Tensor, Tensor, Parsed] {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { spacing: [1, 1, 2.5] }, got ${describe(opts)}`);
  const [p, t] = expectPair(op, pred, target);
  if (p.ndim !== 2 && p.ndim !== 3)
    fail(
      op,
      `pred and target must be 2-D [H, W] or 3-D [D, H, W] masks, got shape ${fmtShape(p.shape)}. Squeeze batch and ` +
        'channel axes first (a [1, H, W] mask is a 3-D volume of one slice, whose every voxel is a border voxel, as in medpy)',
    );
  const connectivity = opts.connectivity ?? 1;
  if (!Number.isInteger(connectivity) || connectivity < 1 || connectivity > p.ndim)
    fail(op, `connectivity must be an integer from 1 to ${p.ndim} (scipy's generate_binary_structure), got ${describe(connectivity)}`);
  return [p, t, { spacing: spacingOf(op, opts.spacing, p.ndim), connectivity, labels: labelsOf(op, opts) }];
}

/** Voxels each invocation of the gather pass scans. */
const GATHER_PER = 16;

function border(op: string, mask: Tensor, a: Parsed, label: number | null): Tensor {
  const out = emptyTensor(op, mask.shape, 'u32');
  const [D, H, W] = mask.ndim === 3 ? mask.shape : [1, ...mask.shape];
  const k = kernel(`metrics.border${label === null ? '' : '.label'}`, () => borderWgsl, { defines: { LABEL: label !== null } });
  const u = { total: mask.size, D, H, W, nd: mask.ndim, connectivity: a.connectivity, isFloat: isFloat(mask), labelI: label ?? 0, labelF: label ?? 0 };
  dispatch(k, [out.buffer(op), mask.buffer(op)], u, grid1d(ceilDiv(mask.size, k.workgroupSize)));
  return out;
}

async function distances(op: string, pred: Tensor, target: Tensor, a: Parsed, label: number | null): Promise<SurfaceDistances> {
  const made: Tensor[] = [];
  const keep = <T extends Tensor>(t: T) => (made.push(t), t);
  try {
    const bp = keep(border(op, pred, a, label));
    const bt = keep(border(op, target, a, label));
    const dt = keep(edt(op, bt, a.spacing));
    const dp = keep(edt(op, bp, a.spacing));
    const counter = keep(emptyTensor(op, [2], 'u32'));
    fillInto(counter, 0);
    const k = kernel('metrics.gather', () => gatherWgsl.replaceAll('{{PER}}', String(GATHER_PER)));
    const outs = [keep(emptyTensor(op, [pred.size], 'f32')), keep(emptyTensor(op, [pred.size], 'f32'))];
    const grid = grid1d(ceilDiv(pred.size, k.workgroupSize * GATHER_PER));
    dispatch(k, [outs[0].buffer(op), counter.buffer(op), bp.buffer(op), dt.buffer(op)], { total: pred.size, slot: 0 }, grid);
    dispatch(k, [outs[1].buffer(op), counter.buffer(op), bt.buffer(op), dp.buffer(op)], { total: pred.size, slot: 1 }, grid);
    const counts = await counter.data();
    const read = async (t: Tensor, n: number) => (n === 0 ? new Float64Array(0) : Float64Array.from(await keep(slice(t, 0, 0, n)).data()));
    const [predToTarget, targetToPred] = await Promise.all([read(outs[0], counts[0]), read(outs[1], counts[1])]);
    return { predToTarget, targetToPred };
  } finally {
    for (const t of made) t.dispose();
  }
}

/**
 * The border-voxel distances in both directions, for binary masks (nonzero = foreground) or one label of label maps
 * (`{ label }`): what medpy's private __surface_distances returns, so several surface metrics can share one pass.
 */
export async function surfaceDistances(pred: Tensor, target: Tensor, opts: Omit<SurfaceOptions, 'empty' | 'bothEmpty' | 'labels' | 'numClasses' | 'includeBackground'> & { label?: number } = {}): Promise<SurfaceDistances> {
  const op = 'surfaceDistances';
  const { label, ...rest } = opts ?? {};
  const [p, t, a] = parse(op, pred, target, rest);
  if (label !== undefined && (!Number.isInteger(label) || Math.abs(label) >= 2 ** 31)) fail(op, `label must be an integer, got ${describe(label)}`);
  return distances(op, p, t, a, label ?? null);
}

/** numpy.percentile(x, q) with the default linear interpolation; x is sorted in place. */
export function percentile(x: Float64Array, q: number): number {
  x.sort();
  const pos = (q / 100) * (x.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, x.length - 1);
  return x[lo] + (x[hi] - x[lo]) * (pos - lo);
}

const mean = (x: Float64Array) => x.reduce((s, v) => s + v, 0) / x.length;
const maxOf = (x: Float64Array) => x.reduce((m, v) => Math.max(m, v), -Infinity);
const concat = (a: Float64Array, b: Float64Array) => {
  const c = new Float64Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
};

type Reduce = (d: SurfaceDistances) => number;

/** Runs `reduce` per label (or once for binary masks), applying the empty-mask policies. */
async function surfaceMetric(op: string, pred: Tensor, target: Tensor, opts: SurfaceOptions, reduce: Reduce): Promise<number | PerLabelResult> {
  const [p, t, a] = parse(op, pred, target, opts);
  const empty = expectChoice(op, 'empty', opts.empty, ['inf', 'worst', 'nan', 'error'] as const, 'inf');
  const bothEmpty = expectChoice(op, 'bothEmpty', opts.bothEmpty, ['zero', 'nan', 'skip', 'error'] as const, 'zero');
  const worst = Math.hypot(...p.shape.map((n, i) => (n - 1) * a.spacing[i]));
  const one = async (label: number | null): Promise<[number, boolean]> => {
    const d = await distances(op, p, t, a, label);
    const what = label === null ? 'mask' : `mask of label ${label}`;
    const np = d.predToTarget.length;
    const nt = d.targetToPred.length;
    if (np === 0 && nt === 0) {
      if (bothEmpty === 'error')
        fail(op, `the pred and target ${what}s are both empty, so no surface distance exists; choose a value with bothEmpty: 'zero' | 'nan' | 'skip'`);
      return [bothEmpty === 'zero' ? 0 : NaN, bothEmpty === 'skip'];
    }
    if (np === 0 || nt === 0) {
      if (empty === 'error')
        fail(op, `the ${np === 0 ? 'pred' : 'target'} ${what} is empty (the other is not), so no surface distance exists; choose a value with empty: 'inf' | 'worst' | 'nan'`);
      return [empty === 'inf' ? Infinity : empty === 'worst' ? worst : NaN, false];
    }
    return [reduce(d), false];
  };
  if (a.labels === null) return (await one(null))[0];
  const values: number[] = [];
  const skip: boolean[] = [];
  for (const l of a.labels) {
    const [v, s] = await one(l);
    values.push(v);
    skip.push(s);
  }
  return perLabelResult(a.labels, values, skip);
}

/** Symmetric Hausdorff distance (medpy hd): the largest border distance in either direction. */
export function hausdorff(pred: Tensor, target: Tensor, opts?: Binary<SurfaceOptions>): Promise<number>;
export function hausdorff(pred: Tensor, target: Tensor, opts: Multi<SurfaceOptions>): Promise<PerLabelResult>;
export function hausdorff(pred: Tensor, target: Tensor, opts: SurfaceOptions = {}): Promise<number | PerLabelResult> {
  return surfaceMetric('hausdorff', pred, target, opts, (d) => Math.max(maxOf(d.predToTarget), maxOf(d.targetToPred)));
}

/** medpy's name for hausdorff. */
export const hd = hausdorff;

/** 95th-percentile Hausdorff distance (medpy hd95 by default: percentile of both directions pooled). */
export function hd95(pred: Tensor, target: Tensor, opts?: Binary<Hd95Options>): Promise<number>;
export function hd95(pred: Tensor, target: Tensor, opts: Multi<Hd95Options>): Promise<PerLabelResult>;
export function hd95(pred: Tensor, target: Tensor, opts: Hd95Options = {}): Promise<number | PerLabelResult> {
  const op = 'hd95';
  const combine = expectChoice(op, 'combine', opts?.combine, ['concat', 'max'] as const, 'concat');
  const q = opts?.percentile ?? 95;
  if (typeof q !== 'number' || !(q >= 0 && q <= 100)) fail(op, `percentile must be a number from 0 to 100, got ${describe(q)}`);
  return surfaceMetric(op, pred, target, opts, (d) =>
    combine === 'concat' ? percentile(concat(d.predToTarget, d.targetToPred), q) : Math.max(percentile(d.predToTarget, q), percentile(d.targetToPred, q)),
  );
}

/** Average surface distance from pred to target (medpy asd; directed). */
export function asd(pred: Tensor, target: Tensor, opts?: Binary<SurfaceOptions>): Promise<number>;
export function asd(pred: Tensor, target: Tensor, opts: Multi<SurfaceOptions>): Promise<PerLabelResult>;
export function asd(pred: Tensor, target: Tensor, opts: SurfaceOptions = {}): Promise<number | PerLabelResult> {
  return surfaceMetric('asd', pred, target, opts, (d) => mean(d.predToTarget));
}

/** Average symmetric surface distance (medpy assd; see AssdOptions.combine). */
export function assd(pred: Tensor, target: Tensor, opts?: Binary<AssdOptions>): Promise<number>;
export function assd(pred: Tensor, target: Tensor, opts: Multi<AssdOptions>): Promise<PerLabelResult>;
export function assd(pred: Tensor, target: Tensor, opts: AssdOptions = {}): Promise<number | PerLabelResult> {
  const combine = expectChoice('assd', 'combine', opts?.combine, ['mean', 'concat'] as const, 'mean');
  return surfaceMetric('assd', pred, target, opts, (d) =>
    combine === 'mean' ? (mean(d.predToTarget) + mean(d.targetToPred)) / 2 : mean(concat(d.predToTarget, d.targetToPred)),
  );
}
