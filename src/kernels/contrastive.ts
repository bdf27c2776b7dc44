/**
 * Contrastive-learning ops: normalize (F.normalize), cosineSimilarity (F.cosine_similarity), cosineSimilarityMatrix
 * and infoNCE. The first three are composites of existing kernels; infoNCE has its own kernels
 * (shaders/info_nce.wgsl) so that the logits of many queries against many keys are never materialised.
 */
import infoNceWgsl from '../../shaders/info_nce.wgsl';
import { assertBuffer } from '../engine/device-asserts.js';
import { fail, fmtShape } from '../engine/errors.js';
import { noGrad } from '../engine/autograd.js';
import { FLOAT, defineOp, type BackwardContext } from '../engine/op.js';
import { dispatch, grid1d, kernel, type Kernel } from '../engine/runtime.js';
import { normDim } from '../engine/shape.js';
import { Tensor, tidy, type DType } from '../engine/tensor.js';
import { fillInto, indexAssertSlot, reduceRaw, withIndexAssert } from './base.js';
import { ceilDiv, defineKey, describe, emptyTensor, expectFloat, expectInt, expectTensor } from './common.js';
import { cumsum } from './cumsum.js';
import { mapExpr } from './elementwise.js';
import { gather } from './indexing.js';
import { linear, matmul } from './matmul.js';
import { add, exp, log, maximum, mul, rsqrt, square, sub, where } from './math.js';
import { logsumexp, sum } from './reduce.js';
import { cat, narrow, reshape, squeeze, stack, transpose } from './shape.js';
import { sort, topk, type SortResult } from './sort.js';

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
  /**
   * All-key negatives only: bank rows per logit tile (default: as many as keep a [Q, rows] tile within 2^22
   * elements, 16 MiB). Smaller tiles bound the memory more tightly at the cost of more, smaller matmuls.
   */
  tile?: number;
}

interface InfoNCEAttrs {
  Q: number;
  K: number;
  D: number;
  J: number;
  posStride: number;
  invTau: number;
  reduction: 'mean' | 'sum' | 'none';
  /** bank rows per logit tile (all-key negatives) */
  tile: number;
}

const INFO_NCE_WG = 64;
/** All-key negatives: bank rows per matmul tile, so that one [Q, rows] logit tile stays within this many elements. */
const DENSE_TILE_ELEMENTS = 2 ** 22;

type InfoNceStage = 'FORWARD' | 'QUERY_GRAD' | 'COUNT' | 'PLACE' | 'KEY_INDEXED';

function infoNceKernel(stage: InfoNceStage, index: DType, D: number, assertBinding = 0): Kernel {
  const defines = {
    [stage]: true,
    VEC4: D % 4 === 0,
    DOTS: stage === 'FORWARD' || stage === 'QUERY_GRAD',
    STAGED: stage === 'QUERY_GRAD' || stage === 'KEY_INDEXED',
  };
  const src = () => {
    const wgsl = infoNceWgsl.replaceAll('{{I}}', index);
    return assertBinding ? withIndexAssert(wgsl, assertBinding) : wgsl;
  };
  return kernel(`infoNCE.${index}.${defineKey(defines)}`, src, { defines, workgroupSize: INFO_NCE_WG });
}

function uniformsOf(a: InfoNCEAttrs, extra: { gStride?: number; gScale?: number; n?: number; assertSlot?: number } = {}) {
  // with D a multiple of 4 the kernels move vec4s (VEC4) and count row lengths in them
  const row = a.D % 4 === 0 ? a.D / 4 : a.D;
  return { Q: a.Q, K: a.K, D: row, J: a.J, posStride: a.posStride ? row : 0, invTau: a.invTau, gStride: 0, gScale: 1, n: 0, assertSlot: 0, ...extra };
}

/**
 * InfoNCE: for each query q, the cross-entropy with target 0 of the logits [⟨q, positive_q⟩, ⟨q, k_1⟩, ...] / τ,
 * where the negatives k_j are the rows keys[negativeIndex[q, j]] (or all keys). query [Q, D], keys [K, D],
 * positives [Q, D] (or [D] / [1, D]: one positive for every query); → scalar (mean or sum) or [Q]. Gradients reach
 * the queries, the positives and the key rows (summed where several queries share a row). The forward keeps only
 * each query's log-sum-exp; the backward recomputes the logits. Indexed negatives are gathered inside the kernels
 * (shaders/info_nce.wgsl), so the [Q, J, D] negatives are never made; all-key negatives run matmul tiles of the bank
 * with an online log-sum-exp, so at most a [Q, rows] tile of logits exists at a time. Vectors are used as given:
 * normalise them first for cosine logits.
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
    const o = checkOpts(op, opts, ['temperature', 'negativeIndex', 'reduction', 'tile']);
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
    const tile = o.tile ?? Math.max(1, Math.min(K, Math.floor(DENSE_TILE_ELEMENTS / Q)));
    if (typeof tile !== 'number' || !Number.isInteger(tile) || tile < 1) fail(op, `tile must be a positive integer, got ${describe(tile)}`);
    const attrs: InfoNCEAttrs = { Q, K, D, J: index ? index.shape[1] : K, posStride: shared ? 0 : D, invTau: 1 / tau, reduction, tile };
    const { lse, losses } = index ? indexedForward(op, attrs, query, keys, positives, index) : denseForward(attrs, query, keys, positives);
    const saved = () => (index ? [query, keys, positives, lse, index] : [query, keys, positives, lse]);
    if (reduction === 'none') return { out: losses, attrs, save: saved, release: [lse] };
    const total = reduceRaw(op, 'sum', losses, [0], []);
    losses.dispose();
    if (reduction === 'sum') return { out: total, attrs, save: saved, release: [lse] };
    const mean = mapExpr(op, 'a / n', [{ name: 'a', value: total }, { name: 'n', value: Q }], 'f32', 'f32');
    total.dispose();
    return { out: mean, attrs, save: saved, release: [lse] };
  },
  backward: (g, ctx) => (ctx.saved.length === 5 ? indexedBackward(g, ctx) : denseBackward(g, ctx)),
});

function indexedForward(op: string, a: InfoNCEAttrs, query: Tensor, keys: Tensor, positives: Tensor, index: Tensor) {
  const lse = emptyTensor(op, [a.Q], 'f32');
  const losses = emptyTensor(op, [a.Q], 'f32');
  const assertSlot = indexAssertSlot(op, 'negativeIndex', index, 0, a.K);
  dispatch(
    infoNceKernel('FORWARD', index.dtype, a.D, 7),
    [query.buffer(op), keys.buffer(op), positives.buffer(op), index.buffer(op), lse.buffer(op), losses.buffer(op), assertBuffer()],
    uniformsOf(a, { assertSlot }),
    grid1d(a.Q),
  );
  return { lse, losses };
}

/** The positive logits [Q, 1]. */
const positiveLogits = (a: InfoNCEAttrs, query: Tensor, positives: Tensor) =>
  mul(sum(mul(query, a.posStride ? positives : reshape(positives, [1, a.D])), { dim: 1, keepdim: true }), a.invTau);

/** All keys as negatives: the log-sum-exp accumulated over matmul tiles of the bank (no tape: this is the op's own forward). */
function denseForward(a: InfoNCEAttrs, query: Tensor, keys: Tensor, positives: Tensor): { lse: Tensor; losses: Tensor } {
  return noGrad(() =>
    tidy(() => {
      const first = positiveLogits(a, query, positives);
      let lse = first;
      for (let start = 0; start < a.K; start += a.tile) {
        // one tidy per tile: only the running log-sum-exp outlives it
        lse = tidy(() => {
          const part = logsumexp(mul(linear(query, keyTile(a, keys, start)), a.invTau), { dim: 1, keepdim: true });
          // log(e^lse + e^part), shifted by the larger
          const top = maximum(lse, part);
          return add(top, log(add(exp(sub(lse, top)), exp(sub(part, top)))));
        });
      }
      return { lse: reshape(lse, [a.Q]), losses: reshape(sub(lse, first), [a.Q]) };
    }),
  );
}

/** Bank rows [start, start + tile) (the whole bank when one tile holds it). */
const keyTile = (a: InfoNCEAttrs, keys: Tensor, start: number) => (a.tile >= a.K ? keys : narrow(keys, 0, start, Math.min(a.tile, a.K - start)));

/** The upstream gradient per query as a [Q, 1] column (or a scalar), times the reduction's scale and 1/τ. */
function upstream(g: Tensor, a: InfoNCEAttrs): Tensor {
  const scale = (a.reduction === 'mean' ? 1 / a.Q : 1) * a.invTau;
  return mul(a.reduction === 'none' ? reshape(g, [a.Q, 1]) : g, scale);
}

function denseBackward(g: Tensor, ctx: BackwardContext<InfoNCEAttrs>): (Tensor | null)[] {
  const [query, keys, positives, lse] = ctx.saved;
  const a = ctx.attrs;
  return noGrad(() =>
    tidy(() => {
      const gs = upstream(g, a);
      const lseCol = reshape(lse, [a.Q, 1]);
      const first = positiveLogits(a, query, positives);
      // column 0: softmax weight minus the one-hot target
      const w0 = mul(gs, sub(exp(sub(first, lseCol)), 1));
      const pos = a.posStride ? positives : reshape(positives, [1, a.D]);
      let dquery = mul(w0, pos);
      const keyTiles: Tensor[] = [];
      for (let start = 0; start < a.K; start += a.tile) {
        // one tidy per tile: the tile's logits and weights are gone before the next tile's
        const step = tidy(() => {
          const tile = keyTile(a, keys, start);
          const w = mul(exp(sub(mul(linear(query, tile), a.invTau), lseCol)), gs);
          return { dquery: add(dquery, matmul(w, tile)), dkeys: ctx.needsGrad[1] ? matmul(transpose(w, 0, 1), query) : null };
        });
        dquery = step.dquery;
        if (step.dkeys) keyTiles.push(step.dkeys);
      }
      const dkeys = ctx.needsGrad[1] ? (keyTiles.length === 1 ? keyTiles[0] : cat(keyTiles, 0)) : null;
      const dposRows = mul(w0, query);
      const dpositive = ctx.needsGrad[2] ? (a.posStride ? dposRows : reshape(sum(dposRows, { dim: 0 }), ctx.inputShapes[2])) : null;
      return [ctx.needsGrad[0] ? dquery : null, dkeys, dpositive];
    }),
  );
}

function indexedBackward(g: Tensor, ctx: BackwardContext<InfoNCEAttrs>): (Tensor | null)[] {
  const op = 'infoNCE.backward';
  const [query, keys, positives, lse, index] = ctx.saved;
  const a = ctx.attrs;
  const gUniforms = { gStride: a.reduction === 'none' ? 1 : 0, gScale: a.reduction === 'mean' ? 1 / a.Q : 1 };
  const dquery = emptyTensor(op, [a.Q, a.D], 'f32');
  const dpositiveRows = emptyTensor(op, [a.Q, a.D], 'f32');
  const coef = emptyTensor(op, [a.Q, a.J + 1], 'f32');
  dispatch(
    infoNceKernel('QUERY_GRAD', index.dtype, a.D),
    [query, keys, positives, index, lse, g, dquery, dpositiveRows, coef].map((t) => t.buffer(op)),
    uniformsOf(a, gUniforms),
    grid1d(a.Q),
  );
  let dpositive = dpositiveRows;
  if (a.posStride === 0) {
    // one positive for every query: its gradient is the sum of the rows
    dpositive = reduceRaw(op, 'sum', dpositiveRows, [0], ctx.inputShapes[2]);
    dpositiveRows.dispose();
  }
  let dkeys: Tensor | null = null;
  if (ctx.needsGrad[1]) {
    dkeys = emptyTensor(op, [a.K, a.D], 'f32');
    keyGradIndexed(op, a, query, index, coef, dkeys);
  }
  coef.dispose();
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
  dispatch(infoNceKernel('COUNT', index.dtype, a.D), [index.buffer(op), counts.buffer(op)], uniformsOf(a, { n }), perEntry);
  const ends = cumsum(counts, 0);
  dispatch(infoNceKernel('PLACE', index.dtype, a.D), [index.buffer(op), ends.buffer(op), counts.buffer(op), cursor.buffer(op), order.buffer(op)], uniformsOf(a, { n }), perEntry);
  dispatch(
    infoNceKernel('KEY_INDEXED', index.dtype, a.D),
    [query.buffer(op), coef.buffer(op), order.buffer(op), ends.buffer(op), counts.buffer(op), dkeys.buffer(op)],
    uniformsOf(a, { n }),
    grid1d(a.K),
  );
  for (const t of [counts, cursor, order, ends]) t.dispose();
}

export interface QuantileOptions {
  /** The dim to take quantiles along; omitted: over the flattened input. */
  dim?: number | null;
  /** Keep the reduced dim with size 1 (all dims, when dim is omitted). */
  keepdim?: boolean;
  /** Only 'linear' (the default of torch.quantile). */
  interpolation?: 'linear';
}

/**
 * torch.quantile(x, q, dim, keepdim) with linear interpolation: along dim, the value at position q·(n − 1) of the
 * sorted line, interpolated between its two neighbours (lerp as torch writes it); a line holding NaN gives NaN.
 * q is a number (the dim is reduced) or an array of numbers (a leading dim of that length). Built on sort, so the
 * gradient goes to the (at most two) elements each quantile interpolates.
 */
export const quantile = defineOp({
  name: 'quantile',
  composite: true,
  dtypes: FLOAT,
  forward: (x: Tensor, q: number | readonly number[], opts: QuantileOptions = {}): Tensor => {
    const op = 'quantile';
    expectTensor(op, 'input', x);
    const o = checkOpts(op, opts, ['dim', 'keepdim', 'interpolation']);
    if (o.interpolation !== undefined && o.interpolation !== 'linear')
      fail(op, `interpolation must be 'linear' (the only one implemented), got ${describe(o.interpolation)}`);
    const qs = typeof q === 'number' ? [q] : Array.isArray(q) ? q : null;
    if (!qs || (Array.isArray(q) && q.length === 0) || !qs.every((v) => typeof v === 'number' && v >= 0 && v <= 1))
      fail(op, `q must be a number in [0, 1] or a non-empty array of them, got ${Array.isArray(q) ? `[${q.join(', ')}]` : describe(q)}`);
    const whole = opts.dim === undefined || opts.dim === null;
    const keepdim = Boolean(opts.keepdim);
    if (!whole && x.ndim === 0) fail(op, `dim ${opts.dim} given for a 0-d input`);
    const dim = whole ? 0 : normDim(op, opts.dim as number, x.ndim);
    const n = whole ? x.size : x.shape[dim];
    if (n === 0) fail(op, `cannot take a quantile of an empty line (input shape ${fmtShape(x.shape)}, dim ${whole ? 'all' : dim})`);
    return tidy(() => {
      const sorted = sort(whole ? reshape(x, [-1]) : x, { dim }).values;
      // NaN sorts last: a line holding one ends with it (tested by bit pattern: WGSL may assume NaN away in v != v)
      const last = narrow(sorted, dim, n - 1, 1);
      const hasNaN = mapExpr(op, 'select(0.0, 1.0, is_nan_f32(a))', [{ name: 'a', value: last }], 'f32', 'f32');
      const results = qs.map((qi) => {
        const pos = qi * (n - 1);
        const lo = Math.floor(pos);
        const w = pos - lo;
        const below = narrow(sorted, dim, lo, 1);
        let v = below;
        if (w > 0) {
          const above = narrow(sorted, dim, Math.min(lo + 1, n - 1), 1);
          const gap = sub(above, below);
          // torch's lerp: from the nearer end
          v = w < 0.5 ? add(below, mul(gap, w)) : sub(above, mul(gap, 1 - w));
        }
        v = where(hasNaN, last, v);
        if (whole) return keepdim ? reshape(v, x.shape.map(() => 1)) : reshape(v, []);
        return keepdim ? v : squeeze(v, dim);
      });
      return typeof q === 'number' ? results[0] : stack(results, 0);
    });
  },
});

export interface KnnOptions {
  /** 'cosine' (default): cosine similarity; 'dot': raw dot products. Larger is nearer either way. */
  metric?: 'cosine' | 'dot';
  /**
   * Bank rows compared per step (default: as many as keep the [Q, rows] similarity tile within 2^24 elements).
   * Each tile's top k is merged into the running top k, so the [Q, K] matrix is never whole when K is large.
   */
  tile?: number;
}

const KNN_TILE_ELEMENTS = 2 ** 24;

/**
 * The k nearest bank rows of each query: query [Q, D], bank [K, D] → { values [Q, k] (similarities, largest first),
 * indices [Q, k] (i32 rows of bank) }; among equal similarities the lower bank row comes first. A composite of
 * linear and topk over tiles of the bank (the running top k merged with each tile's), so the values are
 * differentiable with respect to query and bank.
 */
export const knn = defineOp({
  name: 'knn',
  composite: true,
  dtypes: FLOAT,
  forward: (query: Tensor, bank: Tensor, k: number, opts: KnnOptions = {}): SortResult => {
    const op = 'knn';
    expectTensor(op, 'query', query);
    expectTensor(op, 'bank', bank);
    expectFloat(op, 'bank', bank);
    const o = checkOpts(op, opts, ['metric', 'tile']);
    const metric = o.metric ?? 'cosine';
    if (metric !== 'cosine' && metric !== 'dot') fail(op, `metric must be 'cosine' or 'dot', got ${describe(metric)}`);
    if (query.ndim !== 2 || bank.ndim !== 2 || query.shape[1] !== bank.shape[1])
      fail(op, `expects query [Q, D] and bank [K, D] with the same D, got ${fmtShape(query.shape)} and ${fmtShape(bank.shape)}`);
    const [Q, K] = [query.shape[0], bank.shape[0]];
    if (!Number.isInteger(k) || k < 1 || k > K) fail(op, `k must be an integer in [1, ${K}] (the bank's rows), got ${describe(k)}`);
    const tile = o.tile ?? Math.max(k, Math.floor(KNN_TILE_ELEMENTS / Math.max(Q, 1)));
    if (typeof tile !== 'number' || !Number.isInteger(tile) || tile < k) fail(op, `tile must be an integer >= k (${k}), got ${describe(tile)}`);
    return tidy(() => {
      const q = metric === 'cosine' ? unitVectors(op, query, 1, 1e-8) : query;
      const b = metric === 'cosine' ? unitVectors(op, bank, 1, 1e-8) : bank;
      let best: SortResult | null = null;
      for (let start = 0; start < K; start += tile) {
        const rows = Math.min(tile, K - start);
        const sim = linear(q, rows === K ? b : narrow(b, 0, start, rows));
        const top = topk(sim, Math.min(k, rows), { dim: 1 });
        const indices = start ? add(top.indices, start) : top.indices;
        if (!best) {
          best = { values: top.values, indices };
          continue;
        }
        // the running best holds lower bank rows than the tile: topk's lower-position-first keeps ties in row order
        const ids = cat([best.indices, indices], 1);
        const merged = topk(cat([best.values, top.values], 1), k, { dim: 1 });
        best = { values: merged.values, indices: gather(ids, 1, merged.indices) };
      }
      return best as SortResult;
    });
  },
});
