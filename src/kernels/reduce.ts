/**
 * Reductions over any set of dims: sum, max, min, argmax, argmin run one kernel (shaders/reduce.wgsl);
 * mean, var, std, logsumexp are compositions, so their gradients come from the rules of their parts.
 */
import { fail } from '../engine/errors.js';
import { ALL_DTYPES, FLOAT, NOT_DIFFERENTIABLE, composed, defineOp, type BackwardContext, type Composed, type Forward } from '../engine/op.js';
import { normDims } from '../engine/shape.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { reduceRaw, type ReduceKind } from './base.js';
import { expectFloat, expectTensor } from './common.js';
import { elementwise, mapExpr } from './elementwise.js';
import { reshape } from './shape.js';

export interface ReduceOptions {
  dim?: number | number[] | null;
  keepdim?: boolean;
}

function outShapeOf(shape: readonly number[], dims: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (dims.includes(i) ? 1 : d)) : shape.filter((_, i) => !dims.includes(i));
}

interface ReduceAttrs {
  dims: number[];
}

function sumBackward(g: Tensor, ctx: BackwardContext<ReduceAttrs>): Tensor[] {
  const keepShape = outShapeOf(ctx.inputShapes[0], ctx.attrs.dims, true);
  const gk = g.shareStorage(keepShape);
  const out = mapExpr('sum.backward', 'g', [{ name: 'g', value: gk }], 'f32', 'f32', ctx.inputShapes[0]);
  gk.dispose();
  return [out];
}

/** amax semantics: the gradient is shared evenly among the maximal elements. */
function extremumBackward(g: Tensor, ctx: BackwardContext<ReduceAttrs>): Tensor[] {
  const [x, y] = ctx.saved;
  const keepShape = outShapeOf(ctx.inputShapes[0], ctx.attrs.dims, true);
  const yk = y.shareStorage(keepShape);
  const gk = g.shareStorage(keepShape);
  const hits = mapExpr('max.backward', 'x == y', [{ name: 'x', value: x }, { name: 'y', value: yk }], 'f32', 'f32');
  const count = reduceRaw('max.backward', 'sum', hits, ctx.attrs.dims, keepShape);
  const out = mapExpr(
    'max.backward',
    'select(0.0, g / n, x == y)',
    [
      { name: 'g', value: gk },
      { name: 'n', value: count },
      { name: 'x', value: x },
      { name: 'y', value: yk },
    ],
    'f32',
    'f32',
  );
  for (const t of [yk, gk, hits, count]) t.dispose();
  return [out];
}

/** The forward every reduction shares: checks, the output shape, one launch (0-d inputs: the identity). */
function reduceForward(op: string, kind: ReduceKind, x: Tensor, opts: ReduceOptions = {}): Forward<Tensor, ReduceAttrs> | Composed<Tensor> {
  expectTensor(op, 'input', x);
  if (opts === null || typeof opts !== 'object')
    fail(op, `options must be an object like { dim: 1, keepdim: true }, got ${String(opts)}`);
  const dims = normDims(op, opts.dim, x.ndim);
  const outShape = outShapeOf(x.shape, dims, Boolean(opts.keepdim));
  if (dims.length === 0) {
    // a 0-d input: the reduction is the identity (argmax/argmin: index 0)
    return composed(
      kind === 'argmax' || kind === 'argmin' ? mapExpr(op, '0', [{ name: 'a', value: x }], 'i32', 'i32') : elementwise('mul', [x, 1]),
    );
  }
  const out = reduceRaw(op, kind, x, dims, outShape);
  return { out, attrs: { dims }, save: () => [x, out] };
}

export const sum = defineOp({
  name: 'sum',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, opts?: ReduceOptions): Forward<Tensor, ReduceAttrs> | Composed<Tensor> => {
    const r = reduceForward('sum', 'sum', x, opts);
    return 'out' in r ? { out: r.out, attrs: r.attrs } : r;
  },
  backward: sumBackward,
});

/** max, min (differentiable: amax's rule) and argmax, argmin (integer indices): one launch each. */
function extremumOp(kind: 'max' | 'min' | 'argmax' | 'argmin') {
  return defineOp({
    name: kind,
    dtypes: ALL_DTYPES,
    inputs: ([x]) => [x],
    forward: (x: Tensor, opts?: ReduceOptions) => reduceForward(kind, kind, x, opts),
    backward: kind === 'max' || kind === 'min' ? extremumBackward : NOT_DIFFERENTIABLE,
  });
}

export const max = extremumOp('max');
export const min = extremumOp('min');
const argmaxOp = extremumOp('argmax');
const argminOp = extremumOp('argmin');

/** argmax/argmin along `dim`, or over the flattened input when dim is omitted (keepdim then gives all-1 dims, as in PyTorch). */
function argReduce(op: 'argmax' | 'argmin', x: Tensor, opts: { dim?: number; keepdim?: boolean }): Tensor {
  expectTensor(op, 'input', x);
  if (Array.isArray(opts?.dim)) fail(op, `dim must be a single dimension (or omitted to flatten), got ${JSON.stringify(opts.dim)}`);
  const launch = op === 'argmax' ? argmaxOp : argminOp;
  if (opts?.dim !== undefined && opts.dim !== null) return launch(x, opts);
  const flat = x.shareStorage([x.size]);
  const r = launch(flat, { dim: 0 });
  flat.dispose();
  if (!opts?.keepdim) return r;
  const kept = r.shareStorage(x.shape.map(() => 1));
  r.dispose();
  return kept;
}

/** Index (i32) of the largest element; the first one on ties, NaN counting as largest (PyTorch semantics). */
export function argmax(x: Tensor, opts: { dim?: number; keepdim?: boolean } = {}): Tensor {
  return argReduce('argmax', x, opts);
}

export function argmin(x: Tensor, opts: { dim?: number; keepdim?: boolean } = {}): Tensor {
  return argReduce('argmin', x, opts);
}

function countOf(x: Tensor, opts: ReduceOptions, op: string): number {
  const dims = normDims(op, opts.dim, x.ndim);
  return dims.reduce((n, d) => n * x.shape[d], 1);
}

export const mean = defineOp({
  name: 'mean',
  composite: true,
  dtypes: FLOAT,
  forward: (x: Tensor, opts: ReduceOptions = {}): Tensor => {
    const n = countOf(x, opts, 'mean');
    return tidy(() => elementwise('mul', [sum(x, opts), 1 / n]));
  },
});

export interface VarOptions extends ReduceOptions {
  /** Bessel's correction: 1 (default, unbiased) or 0. */
  correction?: number;
}

function varianceOf(op: 'var' | 'std', x: Tensor, opts: VarOptions): Tensor {
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  const n = countOf(x, opts, op);
  const correction = opts.correction ?? 1;
  return tidy(() => {
    const d = elementwise('sub', [x, mean(x, { dim: opts.dim, keepdim: true })]);
    return elementwise('div', [sum(elementwise('mul', [d, d]), opts), Math.max(0, n - correction)]);
  });
}

/** PyTorch's var (a reserved word in JS, so `variance`; vg.var and x.var() name it as PyTorch does). */
export const variance = defineOp({
  name: 'var',
  composite: true,
  dtypes: FLOAT,
  forward: (x: Tensor, opts: VarOptions = {}): Tensor => varianceOf('var', x, opts),
});

export const std = defineOp({
  name: 'std',
  composite: true,
  dtypes: FLOAT,
  forward: (x: Tensor, opts: VarOptions = {}): Tensor => tidy(() => elementwise('sqrt', [varianceOf('std', x, opts)])),
});

export const logsumexp = defineOp({
  name: 'logsumexp',
  composite: true,
  dtypes: ALL_DTYPES, // integers compute in f32, as PyTorch promotes them
  forward: (x: Tensor, opts: ReduceOptions = {}): Tensor => {
    expectTensor('logsumexp', 'input', x);
    const dims = normDims('logsumexp', opts.dim, x.ndim);
    return tidy(() => {
      // shift by the max for stability (a constant for autodiff: its gradient contributions cancel); infinite maxima
      // (all -inf rows) shift by 0 so they give -inf rather than NaN
      const mRaw = reduceRaw('logsumexp', 'max', x, dims, outShapeOf(x.shape, dims, true));
      const m = mapExpr('logsumexp', 'select(a, 0.0, abs(a) > 3.0e38)', [{ name: 'a', value: mRaw }], 'f32', 'f32');
      const s = sum(elementwise('exp', [elementwise('sub', [x, m])]), { dim: dims, keepdim: true });
      const r = elementwise('add', [elementwise('log', [s]), m]);
      return opts.keepdim ? r : reshape(r, outShapeOf(x.shape, dims, false));
    });
  },
});
