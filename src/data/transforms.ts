/**
 * Intensity normalisation and crop/pad to a size for tensors in batch layout [N, C, *spatial] (1 to 3 spatial
 * dims), composed from existing GPU ops. Statistics are per sample over all its channels by default (MONAI's
 * channel_wise=False), or per (sample, channel) with `channelWise: true`. Geometry-carrying crops and resampling to
 * a spacing live in vg.io's volume helpers; these work on plain tensors.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { cast } from '../kernels/elementwise.js';
import { add, clamp, div, gt, maximum, mul, ne, sqrt, square, sub, where } from '../kernels/math.js';
import { max, min, sum } from '../kernels/reduce.js';
import { pad, type PadMode } from '../kernels/pad.js';
import { broadcastTo, cat, clone, slice } from '../kernels/shape.js';
import { Rng, seedOrNext } from './random.js';

function expectBatch(op: string, x: Tensor, arg = 'x'): void {
  expectTensor(op, arg, x);
  expectFloat(op, arg, x);
  if (x.ndim < 3 || x.ndim > 5)
    fail(op, `${arg} must be a batch [N, C, *spatial] with 1 to 3 spatial dims (rank 3 to 5), got shape ${fmtShape(x.shape)}`);
}

/** The reduced dims of a statistic: everything but N (and C when channel-wise). */
function statDims(x: Tensor, channelWise: boolean): number[] {
  return Array.from({ length: x.ndim - (channelWise ? 2 : 1) }, (_, i) => i + (channelWise ? 2 : 1));
}

export interface NormalizeMinMaxOptions {
  /** Output range (default [0, 1]). */
  min?: number;
  max?: number;
  channelWise?: boolean;
}

/**
 * MONAI's ScaleIntensity(minv, maxv): each sample (or sample-channel) is mapped linearly from [its min, its max]
 * onto [min, max]. A constant sample maps to `min` everywhere (MONAI multiplies it by minv, the same for minv = 0).
 */
export function normalizeMinMax(x: Tensor, opts: NormalizeMinMaxOptions = {}): Tensor {
  const op = 'normalizeMinMax';
  expectBatch(op, x);
  const lo = opts.min ?? 0;
  const hi = opts.max ?? 1;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) fail(op, `min and max must be finite numbers, got ${lo} and ${hi}`);
  return tidy(() => {
    const dim = statDims(x, Boolean(opts.channelWise));
    const mn = min(x, { dim, keepdim: true });
    const range = sub(max(x, { dim, keepdim: true }), mn);
    const scale = where(gt(range, 0), div(hi - lo, where(gt(range, 0), range, 1)), 0);
    return add(mul(sub(x, mn), scale), lo);
  });
}

export interface NormalizeZScoreOptions {
  /** Statistics over the voxels where mask != 0 only; other voxels are returned unchanged. Broadcast against x. */
  mask?: Tensor | null;
  /** Use x != 0 as the mask (MONAI's nonzero=True). */
  nonzero?: boolean;
  channelWise?: boolean;
  /** The divisor is max(std, eps), so a constant sample becomes 0 (default 1e-8). */
  eps?: number;
}

/**
 * MONAI's NormalizeIntensity: (x - mean) / std with the population std (unbiased=False), over each sample (or
 * sample-channel), optionally restricted to a mask whose outside keeps its values.
 */
export function normalizeZScore(x: Tensor, opts: NormalizeZScoreOptions = {}): Tensor {
  const op = 'normalizeZScore';
  expectBatch(op, x);
  const eps = opts.eps ?? 1e-8;
  if (!(eps >= 0)) fail(op, `eps must be a number >= 0, got ${describe(eps)}`);
  if (opts.mask != null) {
    expectTensor(op, 'mask', opts.mask);
    if (opts.mask.ndim !== x.ndim || opts.mask.shape.some((d, i) => d !== 1 && d !== x.shape[i]))
      fail(op, `mask must have x's rank and broadcast to its shape ${fmtShape(x.shape)}, got ${fmtShape(opts.mask.shape)}`);
    if (opts.nonzero) fail(op, 'give either mask or nonzero, not both');
  }
  return tidy(() => {
    const dim = statDims(x, Boolean(opts.channelWise));
    const mask = opts.mask != null ? cast(ne(opts.mask, 0), 'f32') : opts.nonzero ? cast(ne(x, 0), 'f32') : null;
    if (!mask) {
      const count = dim.reduce((n, d) => n * x.shape[d], 1);
      const mean = div(sum(x, { dim, keepdim: true }), count);
      const centred = sub(x, mean);
      const std = sqrt(div(sum(square(centred), { dim, keepdim: true }), count));
      return div(centred, maximum(std, eps));
    }
    const m = broadcastTo(mask, x.shape);
    const n = maximum(sum(m, { dim, keepdim: true }), 1);
    const mean = div(sum(mul(x, m), { dim, keepdim: true }), n);
    const centred = sub(x, mean);
    const std = sqrt(div(sum(mul(square(centred), m), { dim, keepdim: true }), n));
    return where(m, div(centred, maximum(std, eps)), x);
  });
}

export interface ClipPercentileOptions {
  channelWise?: boolean;
  /** With bMin and bMax: also map [p_lower, p_upper] linearly onto [bMin, bMax] (MONAI's b_min, b_max). */
  bMin?: number;
  bMax?: number;
}

/** np.percentile's default ('linear') of a sorted array. */
function percentileSorted(v: Float32Array, q: number): number {
  const r = (q / 100) * (v.length - 1);
  const i = Math.floor(r);
  return i + 1 < v.length ? v[i] + (r - i) * (v[i + 1] - v[i]) : v[i];
}

/**
 * Clips each sample (or sample-channel) to its own [lower, upper] percentiles (0-100, np.percentile's linear
 * interpolation); with bMin/bMax also rescales that range onto [bMin, bMax], as MONAI's
 * ScaleIntensityRangePercentiles(lower, upper, b_min, b_max, clip=True). The percentiles are exact: the tensor is
 * read back once and each group sorted on the host (a Float32Array sort, ~0.1 s for 128^3); the clip and rescale
 * run on the GPU. Async because of that read-back.
 */
export async function clipPercentile(x: Tensor, lower: number, upper: number, opts: ClipPercentileOptions = {}): Promise<Tensor> {
  const op = 'clipPercentile';
  expectBatch(op, x);
  if (!(lower >= 0 && lower <= upper && upper <= 100)) fail(op, `lower and upper must satisfy 0 <= lower <= upper <= 100, got ${lower} and ${upper}`);
  if ((opts.bMin === undefined) !== (opts.bMax === undefined)) fail(op, 'give both bMin and bMax, or neither');
  const groups = opts.channelWise ? x.shape[0] * x.shape[1] : x.shape[0];
  const per = x.size / groups;
  const data = (await x.data()) as Float32Array;
  const lo = new Float32Array(groups);
  const hi = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const v = data.slice(g * per, (g + 1) * per).sort();
    lo[g] = percentileSorted(v, lower);
    hi[g] = percentileSorted(v, upper);
  }
  const statShape = x.shape.map((d, i) => (i === 0 || (i === 1 && opts.channelWise) ? d : 1));
  return tidy(() => {
    const a = tensor(lo, statShape);
    const b = tensor(hi, statShape);
    const clipped = clamp(x, { min: a, max: b });
    if (opts.bMin === undefined) return clipped;
    const range = sub(b, a);
    // a zero range (constant sample) maps to bMin
    const scale = where(gt(range, 0), div(opts.bMax! - opts.bMin!, where(gt(range, 0), range, 1)), 0);
    return add(mul(sub(clipped, a), scale), opts.bMin!);
  });
}

// ---- crop and pad -----------------------------------------------------------------------------------------------------

/** The spatial sizes as a list covering the trailing dims of x (one number: every spatial dim of a batch). */
function trailingSize(op: string, x: Tensor, size: number | readonly number[], minDims: number): number[] {
  const s = typeof size === 'number' ? Array(Math.max(1, x.ndim - minDims)).fill(size) : [...size];
  if (!s.length || s.length > x.ndim || !s.every((d) => Number.isInteger(d) && d > 0))
    fail(op, `size must be a positive integer or a list of up to ${x.ndim} positive integers (the trailing dims), got ${describe(size)}${Array.isArray(size) ? ` [${size.join(', ')}]` : ''}`);
  return s;
}

/** Crops `x` to `size` along its trailing dims starting at `starts`. */
function cropAt(x: Tensor, size: readonly number[], starts: readonly number[]): Tensor {
  return tidy(() => {
    let y = x;
    const off = x.ndim - size.length;
    size.forEach((s, i) => {
      if (s !== x.shape[off + i]) y = slice(y, off + i, starts[i], starts[i] + s);
    });
    return y === x ? clone(x) : y;
  });
}

/**
 * MONAI's CenterSpatialCrop: crops the trailing dims to `size` (a number: every spatial dim of [N, C, *spatial]),
 * starting at floor(n / 2) - floor(size / 2). Every size must be <= the input's; pad first with padTo (or use
 * resizeWithPadOrCrop) otherwise.
 */
export function centerCrop(x: Tensor, size: number | readonly number[]): Tensor {
  const op = 'centerCrop';
  expectTensor(op, 'x', x);
  const s = trailingSize(op, x, size, 2);
  const off = x.ndim - s.length;
  s.forEach((d, i) => {
    if (d > x.shape[off + i])
      fail(op, `size ${fmtShape(s)} is larger than x's trailing dims ${fmtShape(x.shape.slice(off))} (x ${fmtShape(x.shape)}); pad with padTo first or use resizeWithPadOrCrop`);
  });
  return cropAt(x, s, s.map((d, i) => Math.floor(x.shape[off + i] / 2) - Math.floor(d / 2)));
}

export interface PadToOptions {
  /** How the added border is filled: vg.pad's modes ('constant' with value, 'reflect', 'replicate', 'circular'). */
  mode?: PadMode;
  value?: number;
  /** 'symmetric' (default): floor(extra / 2) before, the rest after (MONAI's SpatialPad); 'end': all after. */
  method?: 'symmetric' | 'end';
}

/** Pads the trailing dims up to `size` (dims already at least that large are unchanged), as MONAI's SpatialPad. */
export function padTo(x: Tensor, size: number | readonly number[], opts: PadToOptions = {}): Tensor {
  const op = 'padTo';
  expectTensor(op, 'x', x);
  const s = trailingSize(op, x, size, 2);
  const method = opts.method ?? 'symmetric';
  if (method !== 'symmetric' && method !== 'end') fail(op, `method must be 'symmetric' or 'end', got ${describe(method)}`);
  const off = x.ndim - s.length;
  const widths = s.map((d, i) => {
    const extra = Math.max(0, d - x.shape[off + i]);
    const before = method === 'symmetric' ? Math.floor(extra / 2) : 0;
    return [before, extra - before];
  });
  if (widths.every(([a, b]) => a + b === 0)) return clone(x);
  return pad(x, [...widths].reverse().flat(), { mode: opts.mode ?? 'constant', value: opts.value ?? 0 });
}

/** MONAI's ResizeWithPadOrCrop: symmetric padTo, then centerCrop, to exactly `size`. */
export function resizeWithPadOrCrop(x: Tensor, size: number | readonly number[], opts: PadToOptions = {}): Tensor {
  expectTensor('resizeWithPadOrCrop', 'x', x);
  const s = trailingSize('resizeWithPadOrCrop', x, size, 2);
  return tidy(() => centerCrop(padTo(x, s, { ...opts, method: 'symmetric' }), s));
}

/**
 * Random crops of `size` along the trailing dims, one offset per sample (uniform over the valid positions), the
 * same offset for every tensor given: randomCrop([image, label], [96, 96], { seed }) keeps them aligned. Tensors
 * must share N (dim 0) and their trailing dims; returns new tensors in the same form as given.
 */
export function randomCrop<T extends Tensor | readonly Tensor[]>(tensors: T, size: number | readonly number[], opts: { seed?: number } = {}): T {
  const op = 'randomCrop';
  const list: Tensor[] = tensors instanceof Tensor ? [tensors] : [...(tensors as readonly Tensor[])];
  if (list.length === 0) fail(op, 'needs at least one tensor');
  list.forEach((t, i) => expectTensor(op, `tensors[${i}]`, t));
  const s = trailingSize(op, list[0], size, 2);
  const ref = list[0];
  const spatial = ref.shape.slice(ref.ndim - s.length);
  for (const [i, t] of list.entries()) {
    if (t.ndim <= s.length || t.shape[0] !== ref.shape[0] || t.shape.slice(t.ndim - s.length).join() !== spatial.join())
      fail(op, `tensors[${i}] ${fmtShape(t.shape)} must share dim 0 and the cropped trailing dims ${fmtShape(spatial)} with tensors[0] ${fmtShape(ref.shape)}`);
  }
  s.forEach((d, i) => {
    if (d > spatial[i]) fail(op, `size ${fmtShape(s)} is larger than the trailing dims ${fmtShape(spatial)}; pad with padTo first`);
  });
  const rng = new Rng(seedOrNext(opts.seed));
  const starts = Array.from({ length: ref.shape[0] }, () => s.map((d, i) => rng.int(0, spatial[i] - d + 1)));
  const out = list.map((t) =>
    tidy(() => {
      const parts = starts.map((st, n) => cropAt(slice(t, 0, n, n + 1), s, st));
      return parts.length === 1 ? parts[0] : cat(parts, 0);
    }),
  );
  return (tensors instanceof Tensor ? out[0] : out) as unknown as T;
}
