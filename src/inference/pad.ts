/**
 * Padding a volume up to a network's size multiple and cropping its outputs back (MONAI's DivisiblePad with
 * method='symmetric': a dimension of size n grows to ceil(n / k) * k, with floor(extra / 2) voxels before and the rest
 * after). Built from pad and slice, so gradients flow through both directions.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from '../kernels/common.js';
import { pad, type PadMode } from '../kernels/pad.js';
import { clone, slice } from '../kernels/shape.js';

export type SpatialPadMode = PadMode;

const PAD_MODES: readonly SpatialPadMode[] = ['constant', 'replicate', 'reflect', 'circular'];

/** (before, after) per spatial dim, in the tensor's dim order. */
export type SpatialPadding = [number, number][];

export function checkSpatial(op: string, arg: string, x: Tensor): number {
  expectTensor(op, arg, x);
  expectFloat(op, arg, x);
  if (x.ndim !== 4 && x.ndim !== 5)
    fail(op, `${arg} must be [N, C, H, W] or [N, C, D, H, W] (rank 4 or 5), got shape ${fmtShape(x.shape)}`);
  return x.ndim - 2;
}

export function checkPadMode(op: string, mode: unknown): SpatialPadMode {
  if (!PAD_MODES.includes(mode as SpatialPadMode))
    fail(op, `mode must be one of ${PAD_MODES.map((m) => `'${m}'`).join(', ')}, got ${describe(mode)}`);
  return mode as SpatialPadMode;
}

/** Pads the trailing spatial dims of x by `widths` (one (before, after) pair per spatial dim). */
export function padSpatial(op: string, x: Tensor, widths: SpatialPadding, mode: SpatialPadMode, value: number): Tensor {
  const first = x.ndim - widths.length;
  // checked here too, so the error names the caller and the spatial dim
  widths.forEach(([lo, hi], i) => {
    const n = x.shape[first + i];
    if (mode === 'reflect' && (lo >= n || hi >= n))
      fail(op, `reflect padding (${lo}, ${hi}) of spatial dim ${i} needs a size above ${Math.max(lo, hi)}, got ${n}; use mode 'replicate' or 'constant'`);
    if (mode === 'circular' && (lo > n || hi > n))
      fail(op, `circular padding (${lo}, ${hi}) of spatial dim ${i} cannot exceed its size ${n}; use mode 'replicate' or 'constant'`);
  });
  return pad(x, [...widths].reverse().flat(), { mode, value }); // torch order: last dim first
}

/** Removes `widths` from the trailing spatial dims of y (the inverse of padSpatial on any tensor of that grid). */
export function cropSpatial(y: Tensor, widths: SpatialPadding): Tensor {
  const first = y.ndim - widths.length;
  return tidy(() => {
    let out = y;
    widths.forEach(([lo, hi], i) => {
      if (lo !== 0 || hi !== 0) out = slice(out, first + i, lo, y.shape[first + i] - hi);
    });
    return out === y ? clone(y) : out;
  });
}

export interface PadToMultipleOptions {
  /** How the added border is filled (torch.nn.functional.pad modes). Default 'constant'. */
  mode?: SpatialPadMode;
  /** Fill value for mode 'constant'. Default 0. */
  value?: number;
}

export interface PaddedToMultiple {
  /** x padded so that every spatial size is a multiple of its `multiple` (a new tensor, also when nothing was added). */
  tensor: Tensor;
  /** (before, after) voxels added per spatial dim, in dim order (D, H, W or H, W). */
  padding: SpatialPadding;
  /** The spatial size before padding. */
  spatialShape: number[];
  /**
   * Crops any tensor on the padded grid (same rank, same padded spatial size; batch and channel counts free, e.g.
   * logits) back to the original spatial size. Returns a new tensor.
   */
  cropBack(y: Tensor): Tensor;
}

/**
 * Pads the spatial dims (last 2 of [N, C, H, W], last 3 of [N, C, D, H, W]) so each is a multiple of `multiple`
 * (one number for all dims, or one per spatial dim), symmetrically like MONAI's DivisiblePad(k, method='symmetric'):
 * floor(extra / 2) before, the rest after.
 */
export function padToMultiple(x: Tensor, multiple: number | readonly number[], opts: PadToMultipleOptions = {}): PaddedToMultiple {
  const op = 'padToMultiple';
  const nsp = checkSpatial(op, 'input', x);
  const ks = typeof multiple === 'number' ? new Array<number>(nsp).fill(multiple) : [...(multiple ?? [])];
  if (ks.length !== nsp || !ks.every((k) => Number.isInteger(k) && k >= 1))
    fail(op, `multiple must be a positive integer or a list of ${nsp} positive integers (one per spatial dim), got ${JSON.stringify(multiple)}`);
  const mode = checkPadMode(op, opts.mode ?? 'constant');
  const spatialShape = x.shape.slice(2);
  const padding: SpatialPadding = spatialShape.map((n, i) => {
    const extra = Math.ceil(n / ks[i]) * ks[i] - n;
    return [Math.floor(extra / 2), extra - Math.floor(extra / 2)];
  });
  const padded = padSpatial(op, x, padding, mode, opts.value ?? 0);
  const paddedSpatial = padded.shape.slice(2);
  return {
    tensor: padded,
    padding,
    spatialShape,
    cropBack(y: Tensor): Tensor {
      expectTensor('padToMultiple.cropBack', 'y', y);
      if (y.ndim !== x.ndim || y.shape.slice(2).some((n, i) => n !== paddedSpatial[i]))
        fail(
          'padToMultiple.cropBack',
          `y must have rank ${x.ndim} and spatial size ${fmtShape(paddedSpatial)} (the padded grid), got shape ${fmtShape(y.shape)}`,
        );
      return cropSpatial(y, padding);
    },
  };
}
