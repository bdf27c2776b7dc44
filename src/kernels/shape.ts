/**
 * Shape ops. reshape/view/squeeze/unsqueeze share storage; permute, expand, slice, flip and cat materialise
 * through one strided-copy kernel (shaders/copy.wgsl, kernels/base.ts), and their backward rules are shape ops again.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, composed, defineOp } from '../engine/op.js';
import { broadcastShapes, checkShapeArg, normDim, normDims, sameShape, stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { fillInto, stridedCopy, sumToShape } from './base.js';
import { emptyTensor, expectTensor } from './common.js';

// ---- reshape ------------------------------------------------------------------------------------------------------

function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  if (!Array.isArray(shape)) fail(op, `shape must be an array of integers, got ${String(shape)}`);
  const out = [...shape];
  const inferAt = out.indexOf(-1);
  if (out.lastIndexOf(-1) !== inferAt) fail(op, `only one dimension can be -1, got ${fmtShape(shape)}`);
  if (inferAt >= 0) {
    const rest = shapeSize(out.filter((_, i) => i !== inferAt));
    if (rest === 0 || x.size % rest !== 0)
      fail(op, `cannot infer the -1 in ${fmtShape(shape)} for a tensor of shape ${fmtShape(x.shape)} (${x.size} elements)`);
    out[inferAt] = x.size / rest;
  }
  checkShapeArg(op, out);
  if (shapeSize(out) !== x.size)
    fail(op, `cannot reshape a tensor of shape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)} (${shapeSize(out)} elements)`);
  return out;
}

/** A new shape for the same elements (shares storage; one dim may be -1). */
export const reshape = defineOp({
  name: 'reshape',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, shape: readonly number[]) => {
    expectTensor('reshape', 'input', x);
    return { out: x.shareStorage(resolveShape('reshape', x, shape)), attrs: undefined };
  },
  backward: (g, ctx) => [g.shareStorage(ctx.inputShapes[0])],
});

/** PyTorch's view; tensors here are always contiguous, so it is reshape. */
export const view = reshape;

export const flatten = defineOp({
  name: 'flatten',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: (x: Tensor, startDim: number = 0, endDim: number = -1): Tensor => {
    expectTensor('flatten', 'input', x);
    if (x.ndim === 0) return reshape(x, [1]);
    const s = normDim('flatten', startDim, x.ndim, 'startDim');
    const e = normDim('flatten', endDim, x.ndim, 'endDim');
    if (s > e) fail('flatten', `startDim (${startDim}) must not come after endDim (${endDim})`);
    const shape = [...x.shape.slice(0, s), shapeSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
    return reshape(x, shape);
  },
});

export const squeeze = defineOp({
  name: 'squeeze',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: (x: Tensor, dim?: number | number[]): Tensor => {
    expectTensor('squeeze', 'input', x);
    const dims = dim === undefined ? x.shape.map((_, i) => i) : normDims('squeeze', dim, x.ndim);
    return reshape(x, x.shape.filter((d, i) => !(dims.includes(i) && d === 1)));
  },
});

/** Position of a dim inserted into `shape` (0..rank; negative counts from the end), checked against the input shape. */
function newDim(op: string, dim: number, shape: readonly number[]): number {
  const r = shape.length;
  if (!Number.isInteger(dim) || dim < -r - 1 || dim > r)
    fail(op, `dim=${dim} is out of range for inserting a dim into shape ${fmtShape(shape)} (expected ${-r - 1} <= dim <= ${r})`);
  return dim < 0 ? dim + r + 1 : dim;
}

export const unsqueeze = defineOp({
  name: 'unsqueeze',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: (x: Tensor, dim: number): Tensor => {
    expectTensor('unsqueeze', 'input', x);
    const d = newDim('unsqueeze', dim, x.shape);
    const s = [...x.shape];
    s.splice(d, 0, 1);
    return reshape(x, s);
  },
});

// ---- permute ------------------------------------------------------------------------------------------------------

export const permute = defineOp({
  name: 'permute',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, dims: readonly number[]) => {
    expectTensor('permute', 'input', x);
    if (!Array.isArray(dims) || dims.length !== x.ndim)
      fail('permute', `dims must list all ${x.ndim} dimensions of a tensor of shape ${fmtShape(x.shape)}, got ${JSON.stringify(dims)}`);
    const nd = dims.map((d) => normDim('permute', d, x.ndim));
    if (new Set(nd).size !== nd.length) fail('permute', `dims ${JSON.stringify(dims)} repeat a dimension`);
    const outShape = nd.map((d) => x.shape[d]);
    if (nd.every((d, i) => d === i)) return composed(reshape(x, x.shape));
    const st = stridesOf(x.shape);
    const out = emptyTensor('permute', outShape, x.dtype);
    stridedCopy('permute', out, x, outShape, { offset: 0, strides: nd.map((d) => st[d]) }, { offset: 0, strides: stridesOf(outShape) });
    return { out, attrs: { dims: nd } };
  },
  backward: (g, ctx): Tensor[] => {
    const inv = new Array<number>(ctx.attrs.dims.length);
    ctx.attrs.dims.forEach((d, i) => (inv[d] = i));
    return [permute(g, inv)];
  },
});

export const transpose = defineOp({
  name: 'transpose',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: (x: Tensor, dim0: number, dim1: number): Tensor => {
    expectTensor('transpose', 'input', x);
    const a = normDim('transpose', dim0, x.ndim, 'dim0');
    const b = normDim('transpose', dim1, x.ndim, 'dim1');
    const dims = x.shape.map((_, i) => i);
    [dims[a], dims[b]] = [dims[b], dims[a]];
    return permute(x, dims);
  },
});

// ---- expand -------------------------------------------------------------------------------------------------------

/** Broadcasts to `shape` (-1 keeps a size), materialised. */
export const expand = defineOp({
  name: 'expand',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, shape: readonly number[]) => {
    expectTensor('expand', 'input', x);
    if (!Array.isArray(shape) || shape.length < x.ndim)
      fail('expand', `shape ${JSON.stringify(shape)} must have at least as many dims as the input ${fmtShape(x.shape)}`);
    const lead = shape.length - x.ndim;
    const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
    checkShapeArg('expand', target);
    const outShape = broadcastShapes('expand', [x.shape, target]);
    if (!sameShape(outShape, target))
      fail('expand', `cannot expand a tensor of shape ${fmtShape(x.shape)} to ${fmtShape(shape)} (only size-1 dims can grow)`);
    if (sameShape(x.shape, target)) return composed(reshape(x, x.shape));
    const st = stridesOf(x.shape);
    const inStrides = target.map((_, i) => (i < lead || x.shape[i - lead] === 1 ? 0 : st[i - lead]));
    const out = emptyTensor('expand', target, x.dtype);
    stridedCopy('expand', out, x, target, { offset: 0, strides: inStrides }, { offset: 0, strides: stridesOf(target) });
    return { out, attrs: undefined };
  },
  backward: (g, ctx) => [sumToShape(g.shareStorage(), ctx.inputShapes[0])],
});

/** PyTorch's broadcast_to: expand under its other name. */
export const broadcastTo = expand;

// ---- slice / narrow -----------------------------------------------------------------------------------------------

interface SliceAttrs {
  dim: number;
  start: number;
  step: number;
  count: number;
}

/** The inverse of slice: zeros of `shape` with `g` written at the sliced positions. */
function embedSlice(g: Tensor, shape: readonly number[], a: SliceAttrs): Tensor {
  const out = emptyTensor('slice.backward', shape, g.dtype);
  fillInto(out, 0);
  const st = stridesOf(shape);
  const dstStrides = st.map((s, i) => (i === a.dim ? s * a.step : s));
  stridedCopy('slice.backward', out, g, g.shape, { offset: 0, strides: stridesOf(g.shape) }, { offset: a.start * st[a.dim], strides: dstStrides });
  return out;
}

/** Slicing ops need a dim to slice: a 0-d tensor has none (normDim would accept dim 0 for it). */
function expectDims(op: string, x: Tensor): void {
  expectTensor(op, 'input', x);
  if (x.ndim === 0) fail(op, 'cannot be applied to a 0-d tensor (shape []); unsqueeze it first');
}

/** x[..., start:end:step, ...] along `dim`, with Python's clamping of start and end. */
export const slice = defineOp({
  name: 'slice',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, dim: number, start: number = 0, end?: number | null, step: number = 1) => {
    expectDims('slice', x);
    const d = normDim('slice', dim, x.ndim);
    if (!Number.isInteger(step) || step <= 0) fail('slice', `step must be a positive integer, got ${step}`);
    if (!Number.isInteger(start) || !(end === undefined || end === null || Number.isInteger(end)))
      fail('slice', `start and end must be integers, got ${start} and ${end}`);
    const n = x.shape[d];
    const clampIdx = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
    const s = clampIdx(start);
    const e = end === undefined || end === null ? n : clampIdx(end);
    const attrs: SliceAttrs = { dim: d, start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
    return { out: sliceCopy(x, attrs), attrs };
  },
  backward: (g, ctx) => [embedSlice(g, ctx.inputShapes[0], ctx.attrs)],
});

/** The copy behind slice (not recorded: cat's backward uses it too). */
function sliceCopy(x: Tensor, a: SliceAttrs): Tensor {
  const outShape = x.shape.map((v, i) => (i === a.dim ? a.count : v));
  const st = stridesOf(x.shape);
  const out = emptyTensor('slice', outShape, x.dtype);
  stridedCopy(
    'slice',
    out,
    x,
    outShape,
    { offset: a.start * st[a.dim], strides: st.map((s, i) => (i === a.dim ? s * a.step : s)) },
    { offset: 0, strides: stridesOf(outShape) },
  );
  return out;
}

/** PyTorch's narrow: `length` elements from `start` along `dim` (a slice with step 1, checked to fit). */
export const narrow = defineOp({
  name: 'narrow',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: (x: Tensor, dim: number, start: number, length: number): Tensor => {
    expectDims('narrow', x);
    const d = normDim('narrow', dim, x.ndim);
    const s = start < 0 ? start + x.shape[d] : start;
    if (!Number.isInteger(start) || !Number.isInteger(length) || length < 0 || s < 0 || s + length > x.shape[d])
      fail('narrow', `start ${start} and length ${length} do not fit dimension ${dim} of size ${x.shape[d]}`);
    return slice(x, d, s, s + length);
  },
});

/** Splits into chunks of `splitSize` (or the listed sizes) along `dim`: one slice each. */
export const split = defineOp({
  name: 'split',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: splitForward,
});

function splitForward(x: Tensor, splitSizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  expectDims('split', x);
  const d = normDim('split', dim, x.ndim);
  const n = x.shape[d];
  let sizes: number[];
  if (typeof splitSizeOrSections === 'number') {
    if (!Number.isInteger(splitSizeOrSections) || splitSizeOrSections <= 0)
      fail('split', `splitSize must be a positive integer, got ${splitSizeOrSections}`);
    sizes = [];
    for (let s = 0; s < n; s += splitSizeOrSections) sizes.push(Math.min(splitSizeOrSections, n - s));
  } else {
    if (!Array.isArray(splitSizeOrSections) || !splitSizeOrSections.every((v) => Number.isInteger(v) && v >= 0))
      fail('split', `sections must be a list of non-negative integers, got ${JSON.stringify(splitSizeOrSections)}`);
    sizes = [...splitSizeOrSections];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== n) fail('split', `sections ${JSON.stringify(sizes)} sum to ${total}, but dimension ${dim} has size ${n}`);
  }
  let at = 0;
  return sizes.map((len) => {
    const t = slice(x, d, at, at + len);
    at += len;
    return t;
  });
}

// ---- flip ---------------------------------------------------------------------------------------------------------

export const flip = defineOp({
  name: 'flip',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, dims: number | readonly number[]) => {
    expectTensor('flip', 'input', x);
    const nd = normDims('flip', dims as number[], x.ndim);
    const st = stridesOf(x.shape);
    let offset = 0;
    const inStrides = st.map((s, i) => {
      if (!nd.includes(i)) return s;
      offset += (x.shape[i] - 1) * s;
      return -s;
    });
    const out = emptyTensor('flip', x.shape, x.dtype);
    stridedCopy('flip', out, x, x.shape, { offset, strides: inStrides }, { offset: 0, strides: st });
    return { out, attrs: { dims: nd } };
  },
  backward: (g, ctx): Tensor[] => [flip(g, ctx.attrs.dims)],
});

// ---- cat / stack --------------------------------------------------------------------------------------------------

export const cat = defineOp({
  name: 'cat',
  dtypes: ALL_DTYPES,
  inputs: ([tensors]) => (Array.isArray(tensors) ? tensors : []),
  forward: catForward,
  backward: (g, ctx) => {
    let at = 0;
    return ctx.attrs.sizes.map((len, i) => {
      const start = at;
      at += len;
      if (!ctx.needsGrad[i]) return null;
      return sliceCopy(g, { dim: ctx.attrs.dim, start, step: 1, count: len });
    });
  },
});

function catForward(tensors: readonly Tensor[], dim = 0) {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) fail('cat', 'expects a non-empty array of tensors');
  tensors.forEach((t, i) => expectTensor('cat', `tensors[${i}]`, t));
  const first = tensors[0];
  if (first.ndim === 0) fail('cat', 'cannot concatenate 0-d tensors (shape []); use stack, or unsqueeze them first');
  const d = normDim('cat', dim, first.ndim);
  for (const [i, t] of tensors.entries()) {
    if (t.dtype !== first.dtype) fail('cat', `tensors[${i}] has dtype ${t.dtype} but tensors[0] has ${first.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((v, k) => k !== d && v !== first.shape[k]))
      fail('cat', `tensors[${i}] has shape ${fmtShape(t.shape)}, which does not match tensors[0] ${fmtShape(first.shape)} outside dim ${d}`);
  }
  const sizes = tensors.map((t) => t.shape[d]);
  const outShape = first.shape.map((v, k) => (k === d ? sizes.reduce((a, b) => a + b, 0) : v));
  const out = emptyTensor('cat', outShape, first.dtype);
  const ost = stridesOf(outShape);
  let at = 0;
  for (const t of tensors) {
    stridedCopy('cat', out, t, t.shape, { offset: 0, strides: stridesOf(t.shape) }, { offset: at * ost[d], strides: ost });
    at += t.shape[d];
  }
  return { out, attrs: { dim: d, sizes } };
}

export const stack = defineOp({
  name: 'stack',
  composite: true,
  dtypes: ALL_DTYPES,
  forward: stackForward,
});

function stackForward(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) fail('stack', 'expects a non-empty array of tensors');
  tensors.forEach((t, i) => expectTensor('stack', `tensors[${i}]`, t));
  for (const [i, t] of tensors.entries()) {
    if (t.dtype !== tensors[0].dtype) fail('stack', `tensors[${i}] has dtype ${t.dtype} but tensors[0] has ${tensors[0].dtype}`);
    if (!sameShape(t.shape, tensors[0].shape))
      fail('stack', `all tensors must have the same shape: tensors[${i}] is ${fmtShape(t.shape)}, tensors[0] is ${fmtShape(tensors[0].shape)}`);
  }
  const d = newDim('stack', dim, tensors[0].shape);
  const parts = tensors.map((t) => unsqueeze(t, d));
  const out = cat(parts, d);
  for (const p of parts) p.dispose();
  return out;
}

/** A contiguous copy with its own storage. */
export const clone = defineOp({
  name: 'clone',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor) => {
    expectTensor('clone', 'input', x);
    const out = emptyTensor('clone', x.shape, x.dtype);
    const st = stridesOf(x.shape);
    stridedCopy('clone', out, x, x.shape, { offset: 0, strides: st }, { offset: 0, strides: st });
    return { out, attrs: undefined };
  },
  backward: (g) => [g.shareStorage()],
});
