/**
 * Sliding-window inference with blended overlaps, following monai.inferers.sliding_window_inference:
 * - an input smaller than the window is padded (floor(extra / 2) before, the rest after) and the output cropped back;
 * - per dim the scan interval is trunc(roi * (1 - overlap)) (at least 1; the roi itself when it equals the image),
 *   windows start at multiples of it and the last one is shifted back to end at the border;
 * - windows are enumerated with the last spatial dim fastest and the batch item outermost, and sent to the predictor
 *   in groups of swBatchSize;
 * - each prediction is weighted by the importance map (ones, or the separable Gaussian exp(-t^2 / (2 sigma^2)) with
 *   t = i - (roi - 1) / 2 and sigma = sigmaScale * roi, clamped below at max(its minimum, 1e-3)) and the output is
 *   sum(w * pred) / sum(w).
 * Not supported from MONAI: predictors whose output spatial size differs from the window (zoomed outputs), dict/tuple
 * outputs, roi_weight_map / process_fn. The result is not differentiable (inference only).
 */
import windowBlendWgsl from '../../shaders/window_blend.wgsl';
import { noGrad } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor } from '../kernels/common.js';
import { tensor, zeros } from '../kernels/creation.js';
import { checkPadMode, checkSpatial, cropSpatial, padSpatial, type SpatialPadMode, type SpatialPadding } from './pad.js';

const OP = 'slidingWindowInference';

export interface SlidingWindowOptions {
  /** Fraction of the window shared by neighbours, in [0, 1). Default 0.25. */
  overlap?: number;
  /** Blending weights: 'constant' (plain average) or 'gaussian' (centre-weighted). Default 'constant' (as MONAI). */
  mode?: 'constant' | 'gaussian';
  /** Gaussian sigma as a fraction of the window size, one number or one per spatial dim. Default 0.125. */
  sigmaScale?: number | readonly number[];
  /** Windows per predictor call. Default 1. */
  swBatchSize?: number;
  /** How an input smaller than the window is padded. Default 'constant'. */
  padMode?: SpatialPadMode;
  /** Fill value for padMode 'constant'. Default 0. */
  cval?: number;
  /** Called after each predictor call with (windows done, windows in all). */
  progress?: (done: number, total: number) => void;
}

/** Maps a batch of windows [B, C, ...roi] to predictions [B, C', ...roi] (C' may differ from C). */
export type WindowPredictor = (windows: Tensor) => Tensor | Promise<Tensor>;

/**
 * Start offsets of the windows along each spatial dim for an image of `spatialSize` (already at least `roiSize`),
 * exactly as MONAI's _get_scan_interval + dense_patch_slices place them. The windows are the Cartesian product.
 */
export function windowStarts(spatialSize: readonly number[], roiSize: readonly number[], overlap: number): number[][] {
  return spatialSize.map((n, d) => {
    const roi = roiSize[d];
    if (roi > n) fail('windowStarts', `roi ${fmtShape(roiSize)} exceeds the image ${fmtShape(spatialSize)}; pad the image first`);
    const interval = roi === n ? roi : Math.max(1, Math.trunc(roi * (1 - overlap)));
    const starts: number[] = [];
    for (let i = 0; ; i++) {
      const s = i * interval;
      starts.push(s - Math.max(s + roi - n, 0));
      if (s + roi >= n) return starts;
    }
  });
}

/** MONAI's importance map as per-dim f32 tables (the map is their outer product, clamped at minWeight). */
function taperTables(roi: readonly number[], mode: 'constant' | 'gaussian', sigmaScale: readonly number[]) {
  const tables = roi.map((n, d) => {
    if (mode === 'constant') return new Float32Array(n).fill(1);
    const sigma = sigmaScale[d] * n;
    return Float32Array.from({ length: n }, (_, i) => Math.exp(-((i - (n - 1) / 2) ** 2) / (2 * sigma * sigma)));
  });
  // the map's minimum is the product of the per-dim minima (all positive, rounding is monotone)
  let min = 1;
  for (const t of tables) min = Math.fround(min * Math.min(...t));
  return { tables, minWeight: Math.max(min, 1e-3) };
}

function resolveRoi(roiSize: unknown, spatial: readonly number[]): number[] {
  const list = typeof roiSize === 'number' ? spatial.map(() => roiSize) : Array.isArray(roiSize) ? roiSize : null;
  if (!list || list.length !== spatial.length || !list.every((v) => v === null || Number.isInteger(v)))
    fail(OP, `roiSize must be an integer or a list of ${spatial.length} integers (one per spatial dim), got ${describe(roiSize)}`);
  // MONAI's fall_back_tuple: a non-positive (or null) entry takes the image's size
  return list.map((v, i) => (v === null || v <= 0 ? spatial[i] : v));
}

/**
 * Runs `predictor` over overlapping windows of `input` ([N, C, H, W] or [N, C, D, H, W]) and blends the predictions
 * into one [N, C', ...] output of the input's spatial size (see the file comment for the exact MONAI conventions).
 * Memory holds the input, one output and one weight volume, plus one batch of windows and its prediction; the
 * predictor runs under vg.noGrad (an async predictor: until its first await) and its results are disposed here.
 */
export async function slidingWindowInference(
  input: Tensor,
  roiSize: number | readonly (number | null)[],
  predictor: WindowPredictor,
  opts: SlidingWindowOptions = {},
): Promise<Tensor> {
  const nsp = checkSpatial(OP, 'input', input);
  if (typeof predictor !== 'function') fail(OP, `predictor must be a function (windows) => Tensor, got ${describe(predictor)}`);
  const overlap = opts.overlap ?? 0.25;
  if (typeof overlap !== 'number' || !(overlap >= 0 && overlap < 1)) fail(OP, `overlap must be in [0, 1), got ${describe(overlap)}`);
  const mode = opts.mode ?? 'constant';
  if (mode !== 'constant' && mode !== 'gaussian') fail(OP, `mode must be 'constant' or 'gaussian', got ${describe(mode)}`);
  const ss = opts.sigmaScale ?? 0.125;
  const sigmaScale = typeof ss === 'number' ? new Array<number>(nsp).fill(ss) : [...ss];
  if (sigmaScale.length !== nsp || !sigmaScale.every((v) => typeof v === 'number' && v > 0))
    fail(OP, `sigmaScale must be a positive number or ${nsp} positive numbers, got ${describe(ss)}`);
  const swBatchSize = opts.swBatchSize ?? 1;
  if (!Number.isInteger(swBatchSize) || swBatchSize < 1) fail(OP, `swBatchSize must be a positive integer, got ${describe(swBatchSize)}`);
  const padMode = checkPadMode(OP, opts.padMode ?? 'constant');

  const [batch, channels, ...spatial] = input.shape;
  const roi = resolveRoi(roiSize, spatial);
  const padWidths: SpatialPadding = spatial.map((n, d) => {
    const extra = Math.max(roi[d] - n, 0);
    return [Math.floor(extra / 2), extra - Math.floor(extra / 2)];
  });
  const padded = padWidths.some(([lo, hi]) => lo + hi > 0);
  const imageSize = spatial.map((n, d) => Math.max(n, roi[d]));
  const starts = windowStarts(imageSize, roi, overlap);
  const windows: number[][] = [[]];
  for (const dimStarts of starts) windows.splice(0, windows.length, ...windows.flatMap((w) => dimStarts.map((s) => [...w, s])));
  const total = windows.length * batch;

  // the kernel sees every input as 3-D: a 2-D grid is one slice deep
  const roi3 = nsp === 2 ? [1, ...roi] : roi;
  const grid3 = nsp === 2 ? [1, ...imageSize] : imageSize;
  const { tables, minWeight } = taperTables(roi, mode, sigmaScale);
  const roiVol = shapeSize(roi);
  const accumulate = kernel('slidingWindow.accumulate', () => windowBlendWgsl);
  const extract = kernel('slidingWindow.extract', () => windowBlendWgsl, { defines: { EXTRACT: true } });
  // uniforms placing window number `idx` (batch item outermost) on the grid
  const place = (idx: number, channels: number) => {
    const w = windows[idx % windows.length];
    return { batch: Math.floor(idx / windows.length), channels, roi: roi3, grid: grid3, start: nsp === 2 ? [0, ...w] : w };
  };

  const owned: Tensor[] = [];
  const own = <T extends Tensor>(t: T) => (owned.push(t), t);
  let out: Tensor | null = null;
  try {
    const x = padded ? own(padSpatial(OP, input, padWidths, padMode, opts.cval ?? 0)) : input;
    const taper = own(tensor(Float32Array.from(nsp === 2 ? [1, ...tables.flatMap((t) => [...t])] : tables.flatMap((t) => [...t]))));
    let wsum: Tensor | null = null;
    let outChannels = 0;
    for (let g = 0; g < total; g += swBatchSize) {
      const count = Math.min(swBatchSize, total - g);
      const win = emptyTensor(OP, [count, channels, ...roi], 'f32');
      let pred: Tensor | null = null;
      try {
        for (let k = 0; k < count; k++) {
          const n = channels * roiVol;
          dispatch(extract, [win.buffer(OP), x.buffer(OP)], { ...place(g + k, channels), predOffset: k * n, n }, grid1d(ceilDiv(n, extract.workgroupSize)));
        }
        pred = await noGrad(() => predictor(win));
        if (!(pred instanceof Tensor) || pred.dtype !== 'f32' || pred.ndim !== x.ndim || pred.shape[0] !== count || pred.shape.slice(2).some((n, d) => n !== roi[d]))
          fail(
            OP,
            `predictor must return an f32 tensor [${count}, C', ${roi.join(', ')}] for windows ${fmtShape(win.shape)}, got ${describe(pred)}` +
              ' (outputs of another spatial size than the window are not supported)',
          );
        if (!out) {
          outChannels = pred.shape[1];
          out = zeros([batch, outChannels, ...imageSize]);
          wsum = own(zeros(imageSize));
        } else if (pred.shape[1] !== outChannels)
          fail(OP, `predictor returned ${pred.shape[1]} channels after returning ${outChannels} for earlier windows`);
        for (let k = 0; k < count; k++) {
          const n = outChannels * roiVol;
          const at = place(g + k, outChannels);
          dispatch(
            accumulate,
            [out.buffer(OP), wsum!.buffer(OP), pred.buffer(OP), taper.buffer(OP)],
            { ...at, n, addWeight: at.batch === 0 ? 1 : 0, predOffset: k * n, minWeight },
            grid1d(ceilDiv(n, accumulate.workgroupSize)),
          );
        }
      } finally {
        win.dispose();
        pred?.dispose();
      }
      opts.progress?.(g + count, total);
    }
    const result = out!;
    const normalize = kernel('slidingWindow.normalize', () => windowBlendWgsl, { defines: { NORMALIZE: true } });
    dispatch(normalize, [result.buffer(OP), wsum!.buffer(OP)], { n: result.size, grid: grid3 }, grid1d(ceilDiv(result.size, normalize.workgroupSize)));
    if (!padded) return result;
    owned.push(result);
    return cropSpatial(result, padWidths);
  } catch (e) {
    (out as Tensor | null)?.dispose();
    throw e;
  } finally {
    for (const t of owned) t.dispose();
  }
}
