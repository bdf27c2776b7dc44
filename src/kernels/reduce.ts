/**
 * Reductions over any set of dims: sum, max, min, argmax, argmin run one kernel (shaders/reduce.wgsl);
 * mean, var, std, logsumexp are compositions, so their gradients come from the rules of their parts.
 */
import reduceWgsl from '../../shaders/reduce.wgsl';
import { NOT_DIFFERENTIABLE, defineOp, record } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { coalesce, normDims, pad8, sameShape, stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize, tidy, type DType } from '../engine/tensor.js';
import { ceilDiv, emptyTensor, expectFloat, expectTensor } from './common.js';
import { elementwise, mapExpr } from './elementwise.js';
import { reshape } from './shape.js';

export interface ReduceOptions {
  dim?: number | number[] | null;
  keepdim?: boolean;
}

type ReduceKind = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

function kernelFor(kind: ReduceKind, t: DType, row: boolean) {
  const arg = kind === 'argmax' || kind === 'argmin';
  const key = `reduce.${kind}.${t}.${row ? 'row' : 'thread'}`;
  return kernel(
    key,
    () =>
      reduceWgsl
        .replaceAll('{{T}}', t)
        .replaceAll('{{OUT_T}}', arg ? 'i32' : t)
        .replaceAll('{{OP}}', kind)
        .replace('{{IS_NAN}}', t === 'f32' ? 'is_nan_f32(v)' : 'false')
        .replace('{{BETTER}}', kind === 'max' || kind === 'argmax' ? 'b.v > a.v' : 'b.v < a.v')
        .replaceAll('{{RESULT}}', arg ? 'index_of' : 'value_of'),
    { defines: { ROW: row, SUM: kind === 'sum' } },
  );
}

/** Launches one reduction; returns a tensor of `outShape` (the kept dims, or with 1s where keepdim). */
function reduceRaw(op: string, kind: ReduceKind, x: Tensor, dims: number[], outShape: readonly number[]): Tensor {
  const keepDims = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const st = stridesOf(x.shape);
  const keepShape = keepDims.map((i) => x.shape[i]);
  const redShape = dims.map((i) => x.shape[i]);
  const nOut = shapeSize(keepShape);
  const redSize = shapeSize(redShape);
  const arg = kind === 'argmax' || kind === 'argmin';
  if (redSize === 0 && kind !== 'sum') fail(op, `cannot reduce over an empty dimension (shape ${fmtShape(x.shape)})`);
  // merged dims keep the row-major order of outputs and of reduction indices (argmax's r), with fewer divisions
  const keep = coalesce(keepShape, [keepDims.map((i) => st[i])]);
  const red = coalesce(redShape, [dims.map((i) => st[i])]);
  const uniforms = {
    nOut,
    redSize,
    keepRank: keep.shape.length,
    redRank: red.shape.length,
    keepShape: pad8(keep.shape),
    keepStrides: pad8(keep.strides[0]),
    redShape: pad8(red.shape),
    redStrides: pad8(red.strides[0]),
  };
  const outDtype: DType = arg ? 'i32' : x.dtype;
  const out = emptyTensor(op, outShape, outDtype);
  if (nOut === 0) return out;
  // Short reductions: one invocation each. Long ones: a workgroup each, split into chunks when there are too few
  // outputs to fill the device (a full reduction of a large tensor then takes two passes).
  const row = redSize > 32 && !(nOut >= 4096 && redSize <= 1024);
  if (!row) {
    const k = kernelFor(kind, x.dtype, false);
    dispatch(k, [out.buffer(op), x.buffer(op)], { ...uniforms, nSplit: 1, chunk: redSize }, grid1d(ceilDiv(nOut, k.workgroupSize)));
    return out;
  }
  const k = kernelFor(kind, x.dtype, true);
  const nSplit = arg || nOut >= 64 ? 1 : Math.min(256, Math.max(1, Math.floor(redSize / (16 * k.workgroupSize))));
  if (nSplit === 1) {
    dispatch(k, [out.buffer(op), x.buffer(op)], { ...uniforms, nSplit: 1, chunk: redSize }, grid1d(nOut));
    return out;
  }
  const chunk = ceilDiv(redSize, nSplit);
  const partial = emptyTensor(op, [nOut, nSplit], outDtype);
  dispatch(k, [partial.buffer(op), x.buffer(op)], { ...uniforms, nSplit, chunk }, grid1d(nOut * nSplit));
  const final = reduceRaw(op, kind, partial, [1], outShape);
  partial.dispose();
  out.dispose();
  return final;
}

function outShapeOf(shape: readonly number[], dims: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (dims.includes(i) ? 1 : d)) : shape.filter((_, i) => !dims.includes(i));
}

interface ReduceAttrs {
  dims: number[];
}

const sumDef = defineOp<ReduceAttrs>({
  name: 'sum',
  backward: (g, ctx) => {
    const keepShape = outShapeOf(ctx.inputShapes[0], ctx.attrs.dims, true);
    const gk = g.shareStorage(keepShape);
    const out = mapExpr('sum.backward', 'g', [{ name: 'g', value: gk }], 'f32', 'f32', ctx.inputShapes[0]);
    gk.dispose();
    return [out];
  },
});

/** amax semantics: the gradient is shared evenly among the maximal elements. */
const extremumBackward = (g: Tensor, ctx: { saved: readonly Tensor[]; attrs: ReduceAttrs; inputShapes: readonly (readonly number[])[] }) => {
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
};

const maxDef = defineOp<ReduceAttrs>({ name: 'max', backward: extremumBackward });
const minDef = defineOp<ReduceAttrs>({ name: 'min', backward: extremumBackward });
const argDef = defineOp<ReduceAttrs>({ name: 'argmax', backward: NOT_DIFFERENTIABLE });

function reduceOp(op: string, kind: ReduceKind, x: Tensor, opts: ReduceOptions = {}): Tensor {
  expectTensor(op, 'input', x);
  if (opts === null || typeof opts !== 'object')
    fail(op, `options must be an object like { dim: 1, keepdim: true }, got ${String(opts)}`);
  const dims = normDims(op, opts.dim, x.ndim);
  const outShape = outShapeOf(x.shape, dims, Boolean(opts.keepdim));
  if (dims.length === 0) {
    // a 0-d input: the reduction is the identity (argmax/argmin: index 0)
    return kind === 'argmax' || kind === 'argmin' ? mapExpr(op, '0', [{ name: 'a', value: x }], 'i32', 'i32') : elementwise('mul', [x, 1]);
  }
  const out = reduceRaw(op, kind, x, dims, outShape);
  const attrs = { dims };
  if (kind === 'sum') return record(sumDef, [x], out, attrs);
  if (kind === 'max') return record(maxDef, [x], out, attrs, () => [x, out]);
  if (kind === 'min') return record(minDef, [x], out, attrs, () => [x, out]);
  return record(argDef, [x], out, attrs);
}

export function sum(x: Tensor, opts?: ReduceOptions): Tensor {
  return reduceOp('sum', 'sum', x, opts);
}

export function max(x: Tensor, opts?: ReduceOptions): Tensor {
  return reduceOp('max', 'max', x, opts);
}

export function min(x: Tensor, opts?: ReduceOptions): Tensor {
  return reduceOp('min', 'min', x, opts);
}

/** argmax/argmin along `dim`, or over the flattened input when dim is omitted (keepdim then gives all-1 dims, as in PyTorch). */
function argReduce(op: 'argmax' | 'argmin', x: Tensor, opts: { dim?: number; keepdim?: boolean }): Tensor {
  expectTensor(op, 'input', x);
  if (Array.isArray(opts?.dim)) fail(op, `dim must be a single dimension (or omitted to flatten), got ${JSON.stringify(opts.dim)}`);
  if (opts?.dim !== undefined && opts.dim !== null) return reduceOp(op, op, x, opts);
  const flat = x.shareStorage([x.size]);
  const r = reduceOp(op, op, flat, { dim: 0 });
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

export function mean(x: Tensor, opts: ReduceOptions = {}): Tensor {
  expectTensor('mean', 'input', x);
  if (x.dtype !== 'f32') fail('mean', `input must be f32 (mean of ${x.dtype} is not defined, as in PyTorch); use x.to('f32')`);
  const n = countOf(x, opts, 'mean');
  return tidy(() => elementwise('mul', [sum(x, opts), 1 / n]));
}

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

export function variance(x: Tensor, opts: VarOptions = {}): Tensor {
  return varianceOf('var', x, opts);
}

export function std(x: Tensor, opts: VarOptions = {}): Tensor {
  return tidy(() => elementwise('sqrt', [varianceOf('std', x, opts)]));
}

export function logsumexp(x: Tensor, opts: ReduceOptions = {}): Tensor {
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
}

/** Reduces a broadcast gradient back to `shape` (sum over the broadcast dims). */
export function sumToShape(t: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const lead = t.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < t.ndim; i++) if (i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1)) dims.push(i);
  const r = dims.length ? reduceRaw('sumToShape', 'sum', t, dims, shape) : t.shareStorage(shape);
  t.dispose();
  return r;
}

export { reduceRaw };
