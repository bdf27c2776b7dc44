/**
 * Registration metrics from the Jacobian determinant of x -> x + u(x) (vg.jacobianDeterminant: VoxelMorph's
 * np.gradient differences, docs/conventions.md §7): folding fraction and log-Jacobian statistics, reduced on the GPU.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectTensor } from '../kernels/common.js';
import { add, clamp, div, le, log, logicalAnd, mul, ne, sqrt, square, sub } from '../kernels/math.js';
import { cast } from '../kernels/elementwise.js';
import { sum } from '../kernels/reduce.js';
import { reshape } from '../kernels/shape.js';
import { jacobianDeterminant } from '../kernels/spatial.js';

export interface JacobianMetricOptions {
  /** Evaluate only where mask != 0: shape [*spatial], [N, *spatial] or [N, 1, *spatial] (e.g. the fixed image's mask). */
  mask?: Tensor | null;
}

export interface LogJacobianOptions extends JacobianMetricOptions {
  /** Lower clamp of the determinant before the log, so folded voxels (J <= 0) count as log(eps). Default 1e-9. */
  eps?: number;
  /** Added to J before clamping (Learn2Reg's evaluation uses (J + 3).clip(1e-9, 1e9); default 0). */
  offset?: number;
}

/** The determinant [N, *spatial] and the mask as u32 0/1 broadcastable to it (null: every voxel). */
function detAndMask(op: string, flow: Tensor, mask: Tensor | null | undefined): [Tensor, Tensor | null] {
  const det = jacobianDeterminant(flow);
  if (mask === undefined || mask === null) return [det, null];
  expectTensor(op, 'mask', mask);
  const spatial = det.shape.slice(1);
  const n = det.shape[0];
  const same = (s: readonly number[]) => s.length === spatial.length && s.every((d, i) => d === spatial[i]);
  let shape: number[];
  if (same(mask.shape)) shape = [1, ...spatial];
  else if (mask.ndim === spatial.length + 1 && mask.shape[0] === n && same(mask.shape.slice(1))) shape = [n, ...spatial];
  else if (mask.ndim === spatial.length + 2 && mask.shape[0] === n && mask.shape[1] === 1 && same(mask.shape.slice(2))) shape = [n, ...spatial];
  else fail(op, `mask must have shape ${fmtShape(spatial)}, ${fmtShape([n, ...spatial])} or ${fmtShape([n, 1, ...spatial])} for flow ${fmtShape(flow.shape)}, got ${fmtShape(mask.shape)}`);
  return [det, reshape(ne(mask, 0), shape)];
}

/** Voxels the mask selects over the batch (a [1, *spatial] mask applies to every batch element). */
function maskedCount(det: Tensor, m: Tensor): Tensor {
  const c = sum(m);
  return m.shape[0] === det.shape[0] ? c : mul(c, det.shape[0]);
}

/** Fraction of voxels (inside the mask, over the whole batch) where det J <= 0, i.e. the map folds. */
export async function jacobianFoldingFraction(flow: Tensor, opts: JacobianMetricOptions = {}): Promise<number> {
  const op = 'jacobianFoldingFraction';
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { mask }, got ${describe(opts)}`);
  const [folded, count] = tidy(() => {
    const [det, m] = detAndMask(op, flow, opts.mask);
    const f = le(det, 0);
    return m ? [sum(logicalAnd(f, m)), maskedCount(det, m)] : [sum(f), null];
  });
  try {
    const nf = await folded.item();
    const n = count ? await count.item() : jacobianVoxels(flow);
    if (n === 0) fail(op, 'the mask selects no voxel, so the folding fraction is 0/0');
    return nf / n;
  } finally {
    folded.dispose();
    count?.dispose();
  }
}

const jacobianVoxels = (flow: Tensor) => flow.shape[0] * flow.shape.slice(2).reduce((a, b) => a * b, 1);

/**
 * Mean and (population, numpy's .std()) standard deviation of log(clamp(J + offset, eps, 1e9)) inside the mask;
 * `std` is the SDlogJ that registration papers report.
 */
export async function logJacobianStats(flow: Tensor, opts: LogJacobianOptions = {}): Promise<{ mean: number; std: number; count: number }> {
  const op = 'logJacobianStats';
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { mask, eps }, got ${describe(opts)}`);
  const eps = opts.eps ?? 1e-9;
  const offset = opts.offset ?? 0;
  if (typeof eps !== 'number' || !(eps > 0) || eps >= 1e9) fail(op, `eps must be a positive number below 1e9, got ${describe(eps)}`);
  if (typeof offset !== 'number' || !Number.isFinite(offset)) fail(op, `offset must be a finite number, got ${describe(offset)}`);
  const [mean, std, count] = tidy(() => {
    const [det, m] = detAndMask(op, flow, opts.mask);
    const x = log(clamp(offset ? add(det, offset) : det, eps, 1e9));
    const w = m ? cast(m, 'f32') : null;
    const n = w ? cast(maskedCount(det, m!), 'f32') : det.size;
    const mu = div(sum(w ? mul(x, w) : x), n);
    const d2 = square(sub(x, mu));
    return [mu, sqrt(div(sum(w ? mul(d2, w) : d2), n)), typeof n === 'number' ? null : n];
  });
  try {
    const n = count ? await count.item() : jacobianVoxels(flow);
    if (n === 0) fail(op, 'the mask selects no voxel, so the statistics are undefined');
    return { mean: await mean.item(), std: await std.item(), count: n };
  } finally {
    mean.dispose();
    std.dispose();
    count?.dispose();
  }
}
