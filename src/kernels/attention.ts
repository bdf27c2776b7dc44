/**
 * torch.nn.functional.scaled_dot_product_attention as a composite of matmul, softmax and dropout (gradients come
 * from those ops). The score matrix is materialised: fine for the window sizes of Swin/TransMorph (≤ a few hundred
 * tokens per window); a fused flash-style kernel would be the next step for long sequences.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, defineOp } from '../engine/op.js';
import { broadcastShapes } from '../engine/shape.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from './common.js';
import { tensor } from './creation.js';
import { dropout } from './dropout.js';
import { add, mul, where } from './math.js';
import { matmul } from './matmul.js';
import { softmax } from './nn.js';
import { transpose } from './shape.js';

export interface ScaledDotProductAttentionOptions {
  /**
   * Broadcastable to [..., L, S]. An integer (i32/u32) mask is boolean: nonzero = the position takes part in
   * attention (PyTorch's bool mask), zero = masked out. An f32 mask is added to the scores.
   */
  attnMask?: Tensor | null;
  /** Dropout probability on the attention weights (applied whenever > 0, as PyTorch's functional does). */
  dropoutP?: number;
  /** Causal (top-left aligned lower-triangular) mask; cannot be combined with attnMask. */
  isCausal?: boolean;
  /** Score scale; default 1/√E. */
  scale?: number | null;
  /** Seeds the dropout mask (default: the global generator). */
  seed?: number;
}

/** Lower-triangular [L, S] boolean mask, top-left aligned (torch.ones(L, S).tril()). */
function causalMask(L: number, S: number): Tensor {
  const m = new Int32Array(L * S);
  for (let i = 0; i < L; i++) for (let j = 0; j <= Math.min(i, S - 1); j++) m[i * S + j] = 1;
  return tensor(m, [L, S], { dtype: 'i32' });
}

/**
 * softmax(Q Kᵀ · scale + mask) V, with the weights returned too (MultiheadAttention reports them).
 * `mask` is either boolean (nonzero keeps) or additive, as in scaledDotProductAttention.
 */
export function attentionWithWeights(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  dropoutP: number,
  seed?: number,
): [Tensor, Tensor] {
  return tidy(() => {
    let scores = mul(matmul(q, transpose(k, -2, -1)), scale);
    if (mask) scores = mask.dtype === 'f32' ? add(scores, mask) : where(mask, scores, -Infinity);
    let w = softmax(scores, { dim: -1 });
    if (dropoutP > 0) w = dropout(w, { p: dropoutP, training: true, seed });
    return [matmul(w, v), w];
  });
}

/**
 * vg.scaledDotProductAttention(query [..., L, E], key [..., S, E], value [..., S, Ev], opts) → [..., L, Ev]
 * (PyTorch's F.scaled_dot_product_attention): batch dims broadcast; a row whose every position is masked gives NaN,
 * as in PyTorch's math implementation.
 */
export const scaledDotProductAttention = defineOp({
  name: 'scaledDotProductAttention',
  composite: true,
  dtypes: FLOAT,
  forward: scaledDotProductAttentionForward,
});

function scaledDotProductAttentionForward(q: Tensor, k: Tensor, v: Tensor, opts: ScaledDotProductAttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  for (const [name, t] of [['query', q], ['key', k], ['value', v]] as const) {
    expectTensor(op, name, t);
    expectFloat(op, name, t);
    if (t.ndim < 2) fail(op, `${name} must have at least 2 dims [..., tokens, features], got ${fmtShape(t.shape)}`);
  }
  if (!opts || typeof opts !== 'object') fail(op, `options must be an object, got ${describe(opts)}`);
  const E = q.shape[q.ndim - 1];
  const L = q.shape[q.ndim - 2];
  const S = k.shape[k.ndim - 2];
  if (k.shape[k.ndim - 1] !== E) fail(op, `key's feature size must equal query's (${E}), got key ${fmtShape(k.shape)}, query ${fmtShape(q.shape)}`);
  if (v.shape[v.ndim - 2] !== S)
    fail(op, `value must have as many tokens as key (${S}), got value ${fmtShape(v.shape)}, key ${fmtShape(k.shape)}`);
  const batch = broadcastShapes(`${op}: batch dims of query, key and value`, [q.shape.slice(0, -2), k.shape.slice(0, -2), v.shape.slice(0, -2)]);
  const dropoutP = opts.dropoutP ?? 0;
  if (typeof dropoutP !== 'number' || !(dropoutP >= 0 && dropoutP <= 1)) fail(op, `dropoutP must be a number in [0, 1], got ${describe(opts.dropoutP)}`);
  const scale = opts.scale ?? 1 / Math.sqrt(E);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) fail(op, `scale must be a finite number or null, got ${describe(opts.scale)}`);
  let mask = opts.attnMask ?? null;
  if (mask !== null) {
    expectTensor(op, 'attnMask', mask);
    broadcastShapes(`${op}: attnMask ${fmtShape(mask.shape)} against the scores [${[...batch, L, S].join(', ')}]`, [mask.shape, [...batch, L, S]]);
  }
  if (opts.isCausal) {
    if (mask) fail(op, 'attnMask and isCausal cannot both be set (as in PyTorch); fold the causal mask into attnMask');
    return tidy(() => attentionWithWeights(op, q, k, v, causalMask(L, S), scale, dropoutP, opts.seed)[0]);
  }
  return attentionWithWeights(op, q, k, v, mask, scale, dropoutP, opts.seed)[0];
}
