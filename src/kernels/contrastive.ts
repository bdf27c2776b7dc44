/**
 * Contrastive-learning ops: normalize (F.normalize), cosineSimilarity (F.cosine_similarity), cosineSimilarityMatrix
 * and infoNCE. The first three are composites of existing kernels; infoNCE has its own kernels
 * (shaders/info_nce.wgsl) so that the logits of many queries against many keys are never materialised.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, defineOp } from '../engine/op.js';
import { normDim } from '../engine/shape.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from './common.js';
import { linear, matmul } from './matmul.js';
import { maximum, mul, rsqrt, square } from './math.js';
import { sum } from './reduce.js';
import { reshape, transpose } from './shape.js';

export interface NormalizeOptions {
  /** The dim whose vectors are scaled to unit length (default 1, as F.normalize). */
  dim?: number;
  /** Norms below eps are replaced by eps (default 1e-12). */
  eps?: number;
}

export interface CosineSimilarityOptions {
  /** The dim holding the vectors (default 1, as F.cosine_similarity). */
  dim?: number;
  /** Each norm is clamped below at eps (default 1e-8). */
  eps?: number;
}

function checkOpts(op: string, opts: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    fail(op, `options must be an object like { ${allowed[0]}: 1 }, got ${describe(opts)}`);
  for (const key of Object.keys(opts)) if (!allowed.includes(key)) fail(op, `unknown option '${key}' (expected ${allowed.join(', ')})`);
  return opts as Record<string, unknown>;
}

function checkEps(op: string, eps: unknown): number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) fail(op, `eps must be a finite number >= 0, got ${describe(eps)}`);
  return eps;
}

/**
 * x / max(||x||, eps) along dim. Written as x * rsqrt(max(sum(x²), eps²)): sqrt is monotone, so this equals the
 * clamped norm, and below eps the clamp is a constant, so a zero vector gets gradient 1/eps as in PyTorch (no NaN
 * from the derivative of sqrt at 0).
 */
function unitVectors(op: string, x: Tensor, dim: number, eps: number): Tensor {
  return tidy(() => mul(x, rsqrt(maximum(sum(square(x), { dim, keepdim: true }), eps * eps))));
}

/** F.normalize(x, p=2, dim, eps): the vectors along dim scaled to unit Euclidean length. */
export const normalize = defineOp({
  name: 'normalize',
  composite: true,
  dtypes: FLOAT,
  forward: (x: Tensor, opts: NormalizeOptions = {}): Tensor => {
    expectTensor('normalize', 'input', x);
    const o = checkOpts('normalize', opts, ['dim', 'eps']);
    const eps = checkEps('normalize', o.eps ?? 1e-12);
    if (x.ndim === 0) fail('normalize', `input needs at least 1 dimension, got a 0-d tensor`);
    const dim = normDim('normalize', opts.dim ?? 1, x.ndim);
    return unitVectors('normalize', x, dim, eps);
  },
});

/**
 * F.cosine_similarity(a, b, dim, eps): Σ a·b / (max(||a||, eps) · max(||b||, eps)) along dim, a and b broadcast
 * against each other in the other dims (PyTorch ≥ 1.12 clamps each norm separately). The result drops dim.
 */
export const cosineSimilarity = defineOp({
  name: 'cosineSimilarity',
  composite: true,
  dtypes: FLOAT,
  forward: (a: Tensor, b: Tensor, opts: CosineSimilarityOptions = {}): Tensor => {
    const op = 'cosineSimilarity';
    expectTensor(op, 'x1', a);
    expectTensor(op, 'x2', b);
    expectFloat(op, 'x2', b);
    const o = checkOpts(op, opts, ['dim', 'eps']);
    const eps = checkEps(op, o.eps ?? 1e-8);
    const rank = Math.max(a.ndim, b.ndim);
    if (rank === 0) fail(op, `inputs need at least 1 dimension, got 0-d tensors`);
    const dim = normDim(op, opts.dim ?? 1, rank);
    // the vector dim must match (or broadcast) after right-aligning the shapes
    const size = (t: Tensor) => t.shape[dim - (rank - t.ndim)] ?? 1;
    if (size(a) !== size(b))
      fail(op, `x1 ${fmtShape(a.shape)} and x2 ${fmtShape(b.shape)} must have the same size in the vector dim ${dim}, got ${size(a)} and ${size(b)}`);
    return tidy(() => {
      // a reshape (an op) rather than a shared view, so that the gradient reaches the unlifted input
      const lift = (t: Tensor) => (t.ndim === rank ? t : reshape(t, [...Array(rank - t.ndim).fill(1), ...t.shape]));
      const [a2, b2] = [lift(a), lift(b)];
      return sum(mul(unitVectors(op, a2, dim, eps), unitVectors(op, b2, dim, eps)), { dim });
    });
  },
});

/**
 * All pairwise cosine similarities: a [N, D], b [M, D] → [N, M]; batched a [B, N, D], b [B, M, D] → [B, N, M].
 * The rows are normalised (norms clamped at eps = 1e-8, as cosineSimilarity) and multiplied in one matmul.
 */
export const cosineSimilarityMatrix = defineOp({
  name: 'cosineSimilarityMatrix',
  composite: true,
  dtypes: FLOAT,
  forward: (a: Tensor, b: Tensor, opts: { eps?: number } = {}): Tensor => {
    const op = 'cosineSimilarityMatrix';
    expectTensor(op, 'a', a);
    expectTensor(op, 'b', b);
    expectFloat(op, 'b', b);
    const eps = checkEps(op, checkOpts(op, opts, ['eps']).eps ?? 1e-8);
    const ok = (a.ndim === 2 && b.ndim === 2) || (a.ndim === 3 && b.ndim === 3 && a.shape[0] === b.shape[0]);
    if (!ok || a.shape[a.ndim - 1] !== b.shape[b.ndim - 1])
      fail(op, `expects a [N, D] and b [M, D] (or [B, N, D] and [B, M, D]) with the same D (and B), got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    return tidy(() => {
      const an = unitVectors(op, a, a.ndim - 1, eps);
      const bn = unitVectors(op, b, b.ndim - 1, eps);
      // 2-D: linear reads b [M, D] transposed in place; batched: one transposed copy of b
      return a.ndim === 2 ? linear(an, bn) : matmul(an, transpose(bn, 1, 2));
    });
  },
});
