/**
 * Contrastive-learning ops: normalize (F.normalize), cosineSimilarity (F.cosine_similarity), cosineSimilarityMatrix
 * and infoNCE. The first three are composites of existing kernels; infoNCE has its own kernels
 * (shaders/info_nce.wgsl) so that the logits of many queries against many keys are never materialised.
 */
import infoNceWgsl from '../../shaders/info_nce.wgsl';
import { assertBuffer } from '../engine/device-asserts.js';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, defineOp, type BackwardContext } from '../engine/op.js';
import { dispatch, grid1d, kernel, type Kernel } from '../engine/runtime.js';
import { normDim } from '../engine/shape.js';
import { Tensor, tidy, type DType } from '../engine/tensor.js';
import { fillInto, indexAssertSlot, reduceRaw, withIndexAssert } from './base.js';
import { ceilDiv, defineKey, describe, emptyTensor, expectFloat, expectInt, expectTensor } from './common.js';
import { cumsum } from './cumsum.js';
import { mapExpr } from './elementwise.js';
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

export interface InfoNCEOptions {
  /** τ > 0: the logits are dot products divided by τ. Required. */
  temperature: number;
  /**
   * [Q, J] integer rows of `keys`: query q's negatives are keys[negativeIndex[q, j]] (the kernel gathers them; the
   * [Q, J, D] tensor is never made). Without it every key is a negative of every query.
   */
  negativeIndex?: Tensor | null;
  /** 'mean' over queries (default), 'sum', or 'none' (the [Q] per-query losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

interface InfoNCEAttrs {
  Q: number;
  K: number;
  D: number;
  J: number;
  posStride: number;
  invTau: number;
  reduction: 'mean' | 'sum' | 'none';
  indexed: boolean;
}

const INFO_NCE_WG = 64;

type InfoNceStage = 'FORWARD' | 'QUERY_GRAD' | 'KEY_DENSE' | 'COUNT' | 'PLACE' | 'KEY_INDEXED';

function infoNceKernel(stage: InfoNceStage, index: DType | null, assertBinding = 0): Kernel {
  const defines = {
    [stage]: true,
    INDEXED: index !== null,
    DOTS: stage === 'FORWARD' || stage === 'QUERY_GRAD' || stage === 'KEY_DENSE',
    STAGED: stage === 'QUERY_GRAD' || stage === 'KEY_DENSE' || stage === 'KEY_INDEXED',
  };
  const src = () => {
    const wgsl = infoNceWgsl.replaceAll('{{I}}', index ?? 'i32');
    return assertBinding ? withIndexAssert(wgsl, assertBinding) : wgsl;
  };
  return kernel(`infoNCE.${index ?? 'dense'}.${defineKey(defines)}`, src, { defines, workgroupSize: INFO_NCE_WG });
}

function uniformsOf(a: InfoNCEAttrs, extra: { gStride?: number; gScale?: number; n?: number; assertSlot?: number } = {}) {
  return { Q: a.Q, K: a.K, D: a.D, J: a.J, posStride: a.posStride, invTau: a.invTau, gStride: 0, gScale: 1, n: 0, assertSlot: 0, ...extra };
}

/**
 * InfoNCE: for each query q, the cross-entropy with target 0 of the logits [⟨q, positive_q⟩, ⟨q, k_1⟩, ...] / τ,
 * where the negatives k_j are the rows keys[negativeIndex[q, j]] (or all keys). query [Q, D], keys [K, D],
 * positives [Q, D] (or [D] / [1, D]: one positive for every query); → scalar (mean or sum) or [Q]. Gradients reach
 * the queries, the positives and the key rows (scatter-added where several queries share a row). The logits are
 * computed in the kernels and never stored: the forward keeps only each query's log-sum-exp, the backward
 * recomputes them. Vectors are used as given: normalise them first for cosine logits.
 */
export const infoNCE = defineOp({
  name: 'infoNCE',
  dtypes: FLOAT,
  inputs: ([query, keys, positives]) => [query, keys, positives],
  forward: (query: Tensor, keys: Tensor, positives: Tensor, opts: InfoNCEOptions) => {
    const op = 'infoNCE';
    expectTensor(op, 'query', query);
    expectTensor(op, 'keys', keys);
    expectTensor(op, 'positives', positives);
    expectFloat(op, 'keys', keys);
    expectFloat(op, 'positives', positives);
    const o = checkOpts(op, opts, ['temperature', 'negativeIndex', 'reduction']);
    const tau = o.temperature;
    if (typeof tau !== 'number' || !Number.isFinite(tau) || tau <= 0)
      fail(op, `temperature must be a finite number > 0 (e.g. { temperature: 0.1 }), got ${describe(tau)}`);
    const reduction = o.reduction ?? 'mean';
    if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none')
      fail(op, `reduction must be 'mean', 'sum' or 'none', got ${describe(reduction)}`);
    if (query.ndim !== 2 || query.shape[0] === 0 || query.shape[1] === 0)
      fail(op, `query must be [Q, D] with Q, D >= 1, got ${fmtShape(query.shape)}`);
    const [Q, D] = query.shape;
    if (keys.ndim !== 2 || keys.shape[1] !== D || keys.shape[0] === 0)
      fail(op, `keys must be [K, ${D}] with K >= 1 (query is ${fmtShape(query.shape)}), got ${fmtShape(keys.shape)}`);
    const K = keys.shape[0];
    const shared = (positives.ndim === 1 && positives.shape[0] === D) || (positives.ndim === 2 && positives.shape[0] === 1 && positives.shape[1] === D);
    if (!shared && !(positives.ndim === 2 && positives.shape[0] === Q && positives.shape[1] === D))
      fail(op, `positives must be [${Q}, ${D}], [1, ${D}] or [${D}] (query is ${fmtShape(query.shape)}), got ${fmtShape(positives.shape)}`);
    const index = (o.negativeIndex ?? null) as Tensor | null;
    if (index !== null) {
      expectTensor(op, 'negativeIndex', index);
      expectInt(op, 'negativeIndex', index);
      if (index.ndim !== 2 || index.shape[0] !== Q || index.shape[1] === 0)
        fail(op, `negativeIndex must be [${Q}, J] with J >= 1 (one row per query), got ${fmtShape(index.shape)}`);
    }
    const attrs: InfoNCEAttrs = {
      Q,
      K,
      D,
      J: index ? index.shape[1] : K,
      posStride: shared ? 0 : D,
      invTau: 1 / tau,
      reduction,
      indexed: index !== null,
    };
    const lse = emptyTensor(op, [Q], 'f32');
    const losses = emptyTensor(op, [Q], 'f32');
    const buffers = [query.buffer(op), keys.buffer(op), positives.buffer(op)];
    if (index) {
      const assertSlot = indexAssertSlot(op, 'negativeIndex', index, 0, K);
      const k = infoNceKernel('FORWARD', index.dtype, 7);
      dispatch(k, [...buffers, index.buffer(op), lse.buffer(op), losses.buffer(op), assertBuffer()], uniformsOf(attrs, { assertSlot }), grid1d(Q));
    } else dispatch(infoNceKernel('FORWARD', null), [...buffers, lse.buffer(op), losses.buffer(op)], uniformsOf(attrs), grid1d(Q));
    const saved = () => (index ? [query, keys, positives, lse, index] : [query, keys, positives, lse]);
    if (reduction === 'none') return { out: losses, attrs, save: saved, release: [lse] };
    const total = reduceRaw(op, 'sum', losses, [0], []);
    losses.dispose();
    if (reduction === 'sum') return { out: total, attrs, save: saved, release: [lse] };
    const mean = mapExpr(op, 'a / n', [{ name: 'a', value: total }, { name: 'n', value: Q }], 'f32', 'f32');
    total.dispose();
    return { out: mean, attrs, save: saved, release: [lse] };
  },
  backward: infoNCEBackward,
});

function infoNCEBackward(g: Tensor, ctx: BackwardContext<InfoNCEAttrs>): (Tensor | null)[] {
  const op = 'infoNCE.backward';
  const [query, keys, positives, lse, index] = ctx.saved;
  const a = ctx.attrs;
  const gUniforms = { gStride: a.reduction === 'none' ? 1 : 0, gScale: a.reduction === 'mean' ? 1 / a.Q : 1 };
  const C = a.J + 1;
  const dquery = emptyTensor(op, [a.Q, a.D], 'f32');
  const dpositiveRows = emptyTensor(op, [a.Q, a.D], 'f32');
  const coef = index ? emptyTensor(op, [a.Q, C], 'f32') : null;
  const common = [query.buffer(op), keys.buffer(op), positives.buffer(op)];
  const outs = [lse.buffer(op), g.buffer(op), dquery.buffer(op), dpositiveRows.buffer(op)];
  if (index && coef)
    dispatch(infoNceKernel('QUERY_GRAD', index.dtype), [...common, index.buffer(op), ...outs, coef.buffer(op)], uniformsOf(a, gUniforms), grid1d(a.Q));
  else dispatch(infoNceKernel('QUERY_GRAD', null), [...common, ...outs], uniformsOf(a, gUniforms), grid1d(a.Q));
  let dpositive: Tensor | null = dpositiveRows;
  if (a.posStride === 0) {
    // one positive for every query: its gradient is the sum of the rows
    dpositive = reduceRaw(op, 'sum', dpositiveRows, [0], ctx.inputShapes[2]);
    dpositiveRows.dispose();
  }
  let dkeys: Tensor | null = null;
  if (ctx.needsGrad[1]) {
    dkeys = emptyTensor(op, [a.K, a.D], 'f32');
    if (index && coef) keyGradIndexed(op, a, query, index, coef, dkeys);
    else dispatch(infoNceKernel('KEY_DENSE', null), [query.buffer(op), keys.buffer(op), lse.buffer(op), g.buffer(op), dkeys.buffer(op)], uniformsOf(a, gUniforms), grid1d(a.K));
  }
  coef?.dispose();
  if (!ctx.needsGrad[0]) dquery.dispose();
  if (!ctx.needsGrad[2]) dpositive.dispose();
  return [ctx.needsGrad[0] ? dquery : null, dkeys, ctx.needsGrad[2] ? dpositive : null];
}

/**
 * The bank gradient of indexed negatives without float atomics: the (q, j) reading each key row are grouped by row
 * (a count, a prefix sum, a placement), then each row sums its group's coef · query.
 */
function keyGradIndexed(op: string, a: InfoNCEAttrs, query: Tensor, index: Tensor, coef: Tensor, dkeys: Tensor): void {
  const n = a.Q * a.J;
  const counts = emptyTensor(op, [a.K], 'u32');
  const cursor = emptyTensor(op, [a.K], 'u32');
  const order = emptyTensor(op, [n], 'u32');
  fillInto(counts, 0);
  fillInto(cursor, 0);
  const perEntry = grid1d(ceilDiv(n, INFO_NCE_WG));
  dispatch(infoNceKernel('COUNT', index.dtype), [index.buffer(op), counts.buffer(op)], uniformsOf(a, { n }), perEntry);
  const ends = cumsum(counts, 0);
  dispatch(infoNceKernel('PLACE', index.dtype), [index.buffer(op), ends.buffer(op), counts.buffer(op), cursor.buffer(op), order.buffer(op)], uniformsOf(a, { n }), perEntry);
  dispatch(
    infoNceKernel('KEY_INDEXED', index.dtype),
    [query.buffer(op), coef.buffer(op), order.buffer(op), ends.buffer(op), counts.buffer(op), dkeys.buffer(op)],
    uniformsOf(a, { n }),
    grid1d(a.K),
  );
  for (const t of [counts, cursor, order, ends]) t.dispose();
}
