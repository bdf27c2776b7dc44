/** softmax / logSoftmax (one fused kernel each) and the losses, composed from ops so gradients come for free. */
import softmaxWgsl from '../../shaders/softmax.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, FLOAT, composed, defineOp, type BackwardRule, type Composed, type Forward } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { normDim, sameShape } from '../engine/shape.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { assertIndexRange } from './base.js';
import { ceilDiv, emptyTensor, expectFloat, expectInt, expectTensor } from './common.js';
import { cast, elementwise, mapExpr } from './elementwise.js';
import { gather, indexSelect } from './indexing.js';
import { mean, sum } from './reduce.js';
import { permute, reshape, unsqueeze } from './shape.js';
import { abs, add, clamp, exp, gt, log, log1p, mul, ne, neg, sub, where } from './math.js';

function softmaxRaw(x: Tensor, log: boolean): Tensor {
  const L = x.shape[x.ndim - 1] ?? 1;
  const rows = L === 0 ? 0 : x.size / L;
  const out = emptyTensor(log ? 'logSoftmax' : 'softmax', x.shape, 'f32');
  if (x.size === 0) return out;
  const row = L > 64;
  const k = kernel(`softmax.${log ? 'log' : 'exp'}.${row ? 'row' : 'thread'}`, () => softmaxWgsl, { defines: { LOG: log, ROW: row } });
  dispatch(k, [out.buffer('softmax'), x.buffer('softmax')], { rows, L }, grid1d(row ? rows : ceilDiv(rows, k.workgroupSize)));
  return out;
}

const softmaxBackward: BackwardRule<undefined> = (g, ctx) => {
  // dx = y * (g - sum(g * y))
  const [y] = ctx.saved;
  const gy = sum(elementwise('mul', [g, y]), { dim: -1, keepdim: true });
  return [mapExpr('softmax.backward', 'y * (g - s)', [{ name: 'y', value: y }, { name: 'g', value: g }, { name: 's', value: gy }], 'f32', 'f32')];
};

const logSoftmaxBackward: BackwardRule<undefined> = (g, ctx) => {
  // dx = g - exp(y) * sum(g)
  const [y] = ctx.saved;
  const gs = sum(g, { dim: -1, keepdim: true });
  return [mapExpr('logSoftmax.backward', 'g - exp(y) * s', [{ name: 'y', value: y }, { name: 'g', value: g }, { name: 's', value: gs }], 'f32', 'f32')];
};

/** The kernel runs along the last dim; another dim is permuted last and back (0-d: as one element). */
function softmaxForward(op: 'softmax' | 'logSoftmax', x: Tensor, dim: number | undefined): Forward<Tensor, undefined> | Composed<Tensor> {
  const log = op === 'logSoftmax';
  const self: (x: Tensor, opts: { dim?: number }) => Tensor = log ? logSoftmax : softmax;
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  if (dim === undefined) fail(op, 'dim is required (e.g. { dim: -1 }), as PyTorch deprecated the implicit choice');
  if (x.ndim === 0) return composed(tidy(() => self(reshape(x, [1]), { dim: 0 }).shareStorage([])));
  const d = normDim(op, dim, x.ndim);
  const last = x.ndim - 1;
  if (d === last) {
    const out = softmaxRaw(x, log);
    return { out, attrs: undefined, save: () => [out] };
  }
  const perm = x.shape.map((_, i) => i);
  [perm[d], perm[last]] = [perm[last], perm[d]];
  return composed(tidy(() => permute(self(permute(x, perm), { dim: -1 }), perm)));
}

function softmaxOp(name: 'softmax' | 'logSoftmax', backward: BackwardRule<undefined>) {
  return defineOp({
    name,
    dtypes: FLOAT,
    inputs: ([x]) => [x],
    forward: (x: Tensor, opts: { dim?: number } = {}) => softmaxForward(name, x, opts.dim),
    backward,
  });
}

export const softmax = softmaxOp('softmax', softmaxBackward);
export const logSoftmax = softmaxOp('logSoftmax', logSoftmaxBackward);

export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(op: string, r: unknown): Reduction {
  if (r === undefined) return 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') fail(op, `reduction must be 'mean', 'sum' or 'none', got ${String(r)}`);
  return r;
}

function reduceLoss(loss: Tensor, reduction: Reduction): Tensor {
  return reduction === 'none' ? loss : reduction === 'sum' ? sum(loss) : mean(loss);
}

export interface NllOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Moves the class dim (1) last and flattens: [N, C, d1..] → [N*d1*.., C]. */
function classesLast(x: Tensor): Tensor {
  if (x.ndim <= 2) return x.ndim === 1 ? unsqueeze(x, 0) : x;
  const perm = [0, ...x.shape.slice(2).map((_, i) => i + 2), 1];
  return reshape(permute(x, perm), [-1, x.shape[1]]);
}

/**
 * Checks the arguments shared by nllLoss and crossEntropy: input [N, C, d1..] or [C], an optional f32 weight [C]
 * and, for class-index targets, an integer target [N, d1..] (or [] for a rank-1 input). Returns C.
 */
function checkClassArgs(op: string, input: Tensor, target: Tensor, weight: Tensor | null | undefined, classIndices: boolean): number {
  expectTensor(op, 'input', input);
  expectTensor(op, 'target', target);
  expectFloat(op, 'input', input);
  if (input.ndim === 0) fail(op, `input must have a class dim: shape [C] or [N, C, ...], got ${fmtShape(input.shape)}`);
  const C = input.ndim === 1 ? input.shape[0] : input.shape[1];
  if (classIndices) {
    expectInt(op, 'target', target);
    const expected = input.ndim === 1 ? [] : [input.shape[0], ...input.shape.slice(2)];
    if (!sameShape(target.shape, expected))
      fail(op, `target shape ${fmtShape(target.shape)} does not match input ${fmtShape(input.shape)}: expected ${fmtShape(expected)} (input without its class dim 1)`);
  }
  if (weight) {
    expectTensor(op, 'weight', weight);
    expectFloat(op, 'weight', weight);
    if (weight.ndim !== 1 || weight.shape[0] !== C) fail(op, `weight must have shape [${C}] (one per class), got ${fmtShape(weight.shape)}`);
  }
  return C;
}

/** nll_loss on log-probabilities [N, C, ...] (or [C]) with integer targets [N, ...]. */
export const nllLoss = defineOp({ name: 'nllLoss', composite: true, dtypes: FLOAT, forward: nllLossForward });

function nllLossForward(logProbs: Tensor, target: Tensor, opts: NllOptions = {}): Tensor {
  const op = 'nllLoss';
  checkClassArgs(op, logProbs, target, opts.weight, true);
  const reduction = checkReduction(op, opts.reduction);
  return nllUnchecked(logProbs, target, opts.weight, opts.ignoreIndex ?? -100, reduction);
}

function nllUnchecked(logProbs: Tensor, target: Tensor, weight: Tensor | null | undefined, ignoreIndex: number, reduction: Reduction): Tensor {
  // PyTorch raises for a target outside [0, C) other than ignoreIndex; a gather would read it as 0 (a finite loss)
  const C = logProbs.ndim === 1 ? logProbs.shape[0] : logProbs.shape[1];
  assertIndexRange('nllLoss', 'target', target, 0, C, ignoreIndex);
  return tidy(() => {
    const lp = classesLast(logProbs);
    const t = reshape(target, [-1]);
    const valid = ne(t, ignoreIndex);
    const safeT = where(valid, t, 0);
    const picked = reshape(gather(lp, 1, unsqueeze(safeT, 1)), [-1]);
    const validF = cast(valid, 'f32');
    const w = weight ? mul(indexSelect(weight, 0, safeT), validF) : validF;
    const losses = neg(mul(picked, w));
    if (reduction === 'none') return reshape(losses, target.shape);
    if (reduction === 'sum') return sum(losses);
    return elementwise('div', [sum(losses), sum(w)]);
  });
}

export interface CrossEntropyOptions extends NllOptions {
  /** Mixes the one-hot target with the uniform distribution (PyTorch's label_smoothing). */
  labelSmoothing?: number;
}

/** cross_entropy(logits [N, C, ...], target): integer class targets, or class probabilities of the logits' shape. */
export const crossEntropy = defineOp({ name: 'crossEntropy', composite: true, dtypes: FLOAT, forward: crossEntropyForward });

function crossEntropyForward(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  expectTensor(op, 'target', target);
  const C = checkClassArgs(op, logits, target, opts.weight, target.dtype !== 'f32');
  const reduction = checkReduction(op, opts.reduction);
  const eps = opts.labelSmoothing ?? 0;
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) fail(op, `labelSmoothing must be a number in [0, 1], got ${String(eps)}`);
  const classDim = logits.ndim === 1 ? 0 : 1;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (target.dtype === 'f32' && !sameShape(target.shape, logits.shape))
    fail(op, `probability targets must have the logits' shape ${fmtShape(logits.shape)}, got ${fmtShape(target.shape)}`);
  return tidy(() => {
    const lp = logSoftmax(logits, { dim: classDim });
    if (target.dtype === 'f32') {
      let q = eps > 0 ? add(mul(target, 1 - eps), eps / C) : target;
      if (opts.weight) q = mul(q, reshape(opts.weight, [C, ...logits.shape.slice(classDim + 1).map(() => 1)]));
      const per = neg(sum(mul(lp, q), { dim: classDim }));
      return reduceLoss(per, reduction);
    }
    const nll = nllUnchecked(lp, target, opts.weight, ignoreIndex, reduction);
    if (eps === 0) return nll;
    // smoothing term: -(eps / C) * sum_c w_c log p_c over non-ignored elements, normalised like the nll term
    const lpc = classesLast(lp);
    const wRow = opts.weight ? reshape(opts.weight, [1, C]) : null;
    const smooth = neg(sum(wRow ? mul(lpc, wRow) : lpc, { dim: 1 }));
    const valid = cast(ne(reshape(target, [-1]), ignoreIndex), 'f32');
    const smoothed = mul(smooth, valid);
    let s: Tensor;
    if (reduction === 'none') s = reshape(smoothed, target.shape);
    else if (reduction === 'sum') s = sum(smoothed);
    else {
      const denom = opts.weight ? sum(mul(indexSelect(opts.weight, 0, where(ne(reshape(target, [-1]), ignoreIndex), reshape(target, [-1]), 0)), valid)) : sum(valid);
      s = elementwise('div', [sum(smoothed), denom]);
    }
    return add(mul(nll, 1 - eps), mul(s, eps / C));
  });
}

function checkPair(op: string, a: Tensor, b: Tensor): void {
  expectTensor(op, 'input', a);
  expectTensor(op, 'target', b);
  if (!sameShape(a.shape, b.shape))
    fail(op, `input ${fmtShape(a.shape)} and target ${fmtShape(b.shape)} must have the same shape (PyTorch warns and broadcasts; voxgrad refuses, as it is almost always a bug)`);
}

export const mseLoss = defineOp({ name: 'mseLoss', composite: true, dtypes: ALL_DTYPES, forward: mseLossForward });

function mseLossForward(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  checkPair('mseLoss', input, target);
  const r = checkReduction('mseLoss', opts.reduction);
  return tidy(() => {
    const d = sub(input, target);
    return reduceLoss(mul(d, d), r);
  });
}

export const l1Loss = defineOp({ name: 'l1Loss', composite: true, dtypes: ALL_DTYPES, forward: l1LossForward });

function l1LossForward(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  checkPair('l1Loss', input, target);
  const r = checkReduction('l1Loss', opts.reduction);
  return tidy(() => reduceLoss(abs(sub(input, target)), r));
}

export interface BceOptions {
  weight?: Tensor | null;
  posWeight?: Tensor | null;
  reduction?: Reduction;
}

/** binary_cross_entropy_with_logits: (1 - y) x + (1 + (pw - 1) y) (log(1 + e^-|x|) + max(-x, 0)), stable for any x. */
export const bceWithLogits = defineOp({ name: 'bceWithLogits', composite: true, dtypes: ALL_DTYPES, forward: bceWithLogitsForward });

function bceWithLogitsForward(logits: Tensor, target: Tensor, opts: BceOptions = {}): Tensor {
  const op = 'bceWithLogits';
  checkPair(op, logits, target);
  const r = checkReduction(op, opts.reduction);
  for (const [arg, w] of [['weight', opts.weight], ['posWeight', opts.posWeight]] as const) {
    if (!w) continue;
    expectTensor(op, arg, w);
    const off = logits.ndim - w.ndim;
    if (off < 0 || w.shape.some((d, i) => d !== 1 && d !== logits.shape[off + i]))
      fail(op, `${arg} of shape ${fmtShape(w.shape)} must broadcast to the input's shape ${fmtShape(logits.shape)}`);
  }
  return tidy(() => {
    const softTerm = add(log1p(exp(neg(abs(logits)))), clamp(neg(logits), { min: 0 }));
    const coef = opts.posWeight ? add(mul(sub(opts.posWeight, 1), target), 1) : null;
    let loss = add(mul(sub(1, target), logits), coef ? mul(coef, softTerm) : softTerm);
    if (opts.weight) loss = mul(loss, opts.weight);
    return reduceLoss(loss, r);
  });
}

/** kl_div(input = log q, target = p) = p (log p - input), 0 where p = 0; `logTarget` when target is log p. */
export const klDiv = defineOp({ name: 'klDiv', composite: true, dtypes: ALL_DTYPES, forward: klDivForward });

function klDivForward(input: Tensor, target: Tensor, opts: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor {
  checkPair('klDiv', input, target);
  const red = opts.reduction ?? 'mean';
  if (!['mean', 'sum', 'none', 'batchmean'].includes(red))
    fail('klDiv', `reduction must be 'mean', 'sum', 'none' or 'batchmean', got ${String(red)}`);
  return tidy(() => {
    const loss = opts.logTarget
      ? mul(exp(target), sub(target, input))
      : mul(target, sub(log(where(gt(target, 0), target, 1)), input));
    return red === 'batchmean' ? elementwise('div', [sum(loss), input.shape[0] ?? 1]) : reduceLoss(loss, red);
  });
}
