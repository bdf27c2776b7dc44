/**
 * Point sampling for point-based refinement (PointRend, as MORSE uses it through detectron2's point_rend helpers):
 * - pointSample: features at continuous points in [0, 1]^d (detectron2's point_sample), composed from gridSample.
 * - pointUncertainty: second-best minus best class logit (PointRend's uncertainty: 0 at a tie, negative elsewhere).
 * - uncertainPoints: the training rule (oversampled uniform candidates, the most uncertain kept, uniform rest).
 * - uncertainGridPoints: the inference rule (the top-k most uncertain pixel or voxel centres of the grid).
 * pointSample is composite, not a kernel of its own: its only work beyond gridSample's is the affine map of the
 * [B, N, d] coordinates, and bench/points.mjs measures the composite against gridSample on a ready grid.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, NOT_DIFFERENTIABLE, defineMultiOutputOp, defineOp } from '../engine/op.js';
import { noGrad } from '../engine/autograd.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectRank, expectTensor } from './common.js';
import { mapExpr } from './elementwise.js';
import { mul, sub } from './math.js';
import { rand } from './random.js';
import { cat, expand, reshape, slice, squeeze, stack, unsqueeze } from './shape.js';
import { gather } from './indexing.js';
import { topk } from './sort.js';
import { gridSample } from './spatial.js';

export interface PointSampleOptions {
  /** As gridSample's: false (detectron2's default) puts 0 and 1 on the outer edges of the first and last pixel. */
  alignCorners?: boolean;
  /** 'bilinear' (trilinear in 3-D) for features and logits, 'nearest' for label maps. */
  mode?: 'bilinear' | 'nearest';
}

function checkOptions(op: string, opts: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) fail(op, `options must be an object, got ${describe(opts)}`);
  for (const key of Object.keys(opts)) if (!allowed.includes(key)) fail(op, `unknown option '${key}' (expected ${allowed.join(', ')})`);
  return opts as Record<string, unknown>;
}

/** The map's spatial rank (2 or 3) after checking it is a float [B, C, H, W] or [B, C, D, H, W] tensor. */
function checkMap(op: string, arg: string, x: Tensor): 2 | 3 {
  expectTensor(op, arg, x);
  expectFloat(op, arg, x);
  expectRank(op, arg, x, [4, 5]);
  return (x.ndim - 2) as 2 | 3;
}

/**
 * detectron2's point_sample: input [B, C, H, W] (or [B, C, D, H, W]) read at coords [B, N, 2] (or [B, N, 3]) in
 * [0, 1], x (along W) first, then y (H), then z (D) → [B, C, N]. It is gridSample at the grid 2 coords - 1 laid out
 * as [B, N, 1(, 1), d], with zero padding outside. Differentiable in input and coords.
 */
export const pointSample = defineOp({
  name: 'pointSample',
  composite: true,
  dtypes: FLOAT,
  forward: (input: Tensor, coords: Tensor, opts: PointSampleOptions = {}): Tensor => {
    const op = 'pointSample';
    const nd = checkMap(op, 'input', input);
    expectTensor(op, 'coords', coords);
    expectFloat(op, 'coords', coords);
    const o = checkOptions(op, opts, ['alignCorners', 'mode']);
    const [b, n, last] = coords.shape;
    if (coords.ndim !== 3 || b !== input.shape[0] || last !== nd)
      fail(op, `coords must be [B, N, ${nd}] with B = ${input.shape[0]} for input ${fmtShape(input.shape)}, got ${fmtShape(coords.shape)}`);
    return tidy(() => {
      const grid = reshape(sub(mul(coords, 2), 1), nd === 2 ? [b, n, 1, 2] : [b, n, 1, 1, 3]);
      const mode = (o.mode ?? 'bilinear') as 'bilinear' | 'nearest';
      const out = gridSample(input, grid, { alignCorners: o.alignCorners as boolean | undefined, mode, paddingMode: 'zeros' });
      return reshape(out, [b, input.shape[1], n]);
    });
  },
});

/**
 * PointRend's uncertainty of class logits along dim 1: the second-largest minus the largest logit (≤ 0; 0 where the
 * two best classes tie, the most uncertain). [B, C, ...] → [B, ...]. Needs C ≥ 2.
 */
export const pointUncertainty = defineOp({
  name: 'pointUncertainty',
  composite: true,
  dtypes: FLOAT,
  forward: (logits: Tensor): Tensor => {
    const op = 'pointUncertainty';
    expectTensor(op, 'logits', logits);
    expectFloat(op, 'logits', logits);
    if (logits.ndim < 2 || logits.shape[1] < 2)
      fail(op, `logits must be [B, C, ...] with at least 2 classes in dim 1, got shape ${fmtShape(logits.shape)}`);
    return tidy(() => {
      const best2 = topk(logits, 2, { dim: 1 }).values;
      return squeeze(sub(slice(best2, 1, 1, 2), slice(best2, 1, 0, 1)), 1);
    });
  },
});

export interface UncertainPointsOptions {
  /** Candidates drawn per kept point (PointRend's oversample_ratio, 3). */
  oversample?: number;
  /** Fraction of the n points taken as the most uncertain candidates, the rest uniform (importance_sample_ratio, 0.75). */
  importance?: number;
  /** Seed of the draw (without: the global generator, vg.manualSeed). */
  seed?: number;
}

/**
 * PointRend's training-time point choice (get_uncertain_point_coords_with_randomness): draws oversample·n uniform
 * candidates in [0, 1]^d per image, scores them by pointUncertainty of the logits interpolated there, keeps the
 * floor(importance·n) most uncertain, and appends n minus that many fresh uniform points → coords [B, n, d] (no
 * gradient). The draw is rand([B, oversample·n + n - floor(importance·n), d], { seed }): the first oversample·n rows
 * of each image are the candidates, the rest the uniform points.
 */
export const uncertainPoints = defineOp({
  name: 'uncertainPoints',
  dtypes: FLOAT,
  inputs: ([logits]) => [logits],
  backward: NOT_DIFFERENTIABLE,
  forward: (logits: Tensor, n: number, opts: UncertainPointsOptions = {}) => {
    const op = 'uncertainPoints';
    const nd = checkMap(op, 'logits', logits);
    const o = checkOptions(op, opts, ['oversample', 'importance', 'seed']);
    if (!Number.isInteger(n) || n < 1) fail(op, `n must be a positive integer, got ${describe(n)}`);
    const oversample = (o.oversample ?? 3) as number;
    const importance = (o.importance ?? 0.75) as number;
    if (!Number.isInteger(oversample) || oversample < 1) fail(op, `oversample must be a positive integer, got ${describe(oversample)}`);
    if (typeof importance !== 'number' || !(importance >= 0 && importance <= 1))
      fail(op, `importance must be a number in [0, 1], got ${describe(importance)}`);
    if (logits.shape[1] < 2) fail(op, `logits must have at least 2 classes in dim 1, got shape ${fmtShape(logits.shape)}`);
    const b = logits.shape[0];
    const candidates = oversample * n;
    const kept = Math.floor(importance * n);
    const out = noGrad(() =>
      tidy(() => {
        const draw = rand([b, candidates + n - kept, nd], { seed: o.seed as number | undefined });
        const cand = slice(draw, 1, 0, candidates);
        const parts: Tensor[] = [];
        if (kept > 0) {
          const u = pointUncertainty(pointSample(logits, cand));
          const idx = topk(u, kept, { dim: 1 }).indices;
          parts.push(gather(cand, 1, expand(unsqueeze(idx, 2), [b, kept, nd])));
        }
        if (kept < n) parts.push(slice(draw, 1, candidates));
        return parts.length === 1 ? parts[0] : cat(parts, 1);
      }),
    );
    return { out, attrs: undefined };
  },
});

export type GridPoints = {
  /** [B, k] i32: flat indices into the map's spatial grid (row-major H·W or D·H·W), most uncertain first. */
  indices: Tensor;
  /** [B, k, d]: the same pixel (voxel) centres in [0, 1], x (W) first: ((i mod W) + 0.5) / W, ... */
  coords: Tensor;
};

/**
 * PointRend's inference-time choice (get_uncertain_point_coords_on_grid): the k most uncertain pixels (voxels) of
 * logits [B, C, H, W] ([B, C, D, H, W]) by pointUncertainty, as flat indices and as [0, 1] centre coordinates.
 * k is clamped to the grid size as PointRend does (min(H·W, k)). Not differentiable.
 */
export const uncertainGridPoints = defineMultiOutputOp({
  name: 'uncertainGridPoints',
  dtypes: FLOAT,
  differentiableOutput: 'coords',
  inputs: ([logits]) => [logits],
  backward: NOT_DIFFERENTIABLE,
  forward: (logits: Tensor, k: number) => {
    const op = 'uncertainGridPoints';
    const nd = checkMap(op, 'logits', logits);
    if (!Number.isInteger(k) || k < 1) fail(op, `k must be a positive integer, got ${describe(k)}`);
    if (logits.shape[1] < 2) fail(op, `logits must have at least 2 classes in dim 1, got shape ${fmtShape(logits.shape)}`);
    const spatial = logits.shape.slice(2);
    const cells = spatial.reduce((a, s) => a * s, 1);
    if (cells > 2 ** 24) fail(op, `the grid has ${cells} cells; at most 2^24 are supported (f32 coordinates)`);
    const kk = Math.min(k, cells);
    const out: GridPoints = noGrad(() => {
      const indices = tidy(() => topk(reshape(pointUncertainty(logits), [logits.shape[0], cells]), kk, { dim: 1 }).indices);
      const coords = tidy(() => {
        // axis a (x = W first) of a flat index: (i / stride) mod size, stride the product of the faster axes
        const axes = [...spatial].reverse().map((size, a) => {
          const stride = spatial.slice(nd - a).reduce((p, s) => p * s, 1);
          return mapExpr(op, '(f32((flat / s) % m) + 0.5) / f32(m)', [{ name: 'flat', value: indices }, { name: 's', value: stride }, { name: 'm', value: size }], 'i32', 'f32');
        });
        return stack(axes, 2);
      });
      return { indices, coords };
    });
    return { out, attrs: undefined };
  },
});
