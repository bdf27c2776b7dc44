/**
 * Shape ops. reshape/view/squeeze/unsqueeze share storage; permute, expand, slice, flip, cat and pad materialise
 * through one strided-copy kernel (shaders/copy.wgsl), and their backward rules are shape ops again.
 */
import copyWgsl from '../../shaders/copy.wgsl';
import { defineOp, record } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { broadcastShapes, checkShapeArg, normDim, normDims, pad8, sameShape, stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, emptyTensor, expectTensor } from './common.js';
import { fillInto, tensor } from './creation.js';
import { indexSelect } from './indexing.js';
import { sumToShape } from './reduce.js';

/** Copies the block `shape` from x (at inOffset, inStrides) into out (at outOffset, outStrides). */
export function stridedCopy(
  op: string,
  out: Tensor,
  x: Tensor,
  shape: readonly number[],
  src: { offset: number; strides: readonly number[] },
  dst: { offset: number; strides: readonly number[] },
): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const m = mergeCopyDims(shape, src.strides, dst.strides);
  // whole vec4 runs on both sides: move 16 bytes per invocation
  const r = m.shape.length - 1;
  const vec4 =
    m.inStrides[r] === 1 && m.outStrides[r] === 1 && m.shape[r] % 4 === 0 && src.offset % 4 === 0 && dst.offset % 4 === 0 &&
    m.inStrides.every((st, d) => d === r || st % 4 === 0) && m.outStrides.every((st, d) => d === r || st % 4 === 0);
  const w = vec4 ? 4 : 1;
  if (vec4) m.shape[r] /= 4;
  const scale = (st: number[]) => st.map((v, d) => (d === r ? v : v / w));
  const rank = m.shape.length;
  const k = kernel(`copy.r${rank}${vec4 ? '.v4' : ''}`, () => copySource(rank, vec4));
  dispatch(
    k,
    [out.buffer(op), x.buffer(op)],
    {
      n: n / w,
      rank,
      inOffset: src.offset / w,
      outOffset: dst.offset / w,
      shape: pad8(m.shape),
      inStrides: pad8(scale(m.inStrides)),
      outStrides: pad8(scale(m.outStrides)),
    },
    grid1d(ceilDiv(n / w, k.workgroupSize)),
  );
}

/** Drops size-1 dims and merges neighbours that are one contiguous run on both sides (at least one dim remains). */
function mergeCopyDims(shape: readonly number[], inSt: readonly number[], outSt: readonly number[]) {
  const m = { shape: [] as number[], inStrides: [] as number[], outStrides: [] as number[] };
  shape.forEach((size, d) => {
    if (size === 1) return;
    const last = m.shape.length - 1;
    if (last >= 0 && m.inStrides[last] === inSt[d] * size && m.outStrides[last] === outSt[d] * size) {
      m.shape[last] *= size;
      m.inStrides[last] = inSt[d];
      m.outStrides[last] = outSt[d];
    } else {
      m.shape.push(size);
      m.inStrides.push(inSt[d]);
      m.outStrides.push(outSt[d]);
    }
  });
  if (!m.shape.length) return { shape: [1], inStrides: [0], outStrides: [0] };
  return m;
}

function copySource(rank: number, vec4: boolean): string {
  const lines: string[] = [];
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${d >> 2}u][${d & 3}u]`;
    lines.push(d > 0 ? `  { let c = i32(rem % p.shape${at}); rem = rem / p.shape${at};` : '  { let c = i32(rem);');
    lines.push(`    src += c * p.inStrides${at};`, `    dst += c * p.outStrides${at};`, '  }');
  }
  return copyWgsl.replaceAll('{{ELEM}}', vec4 ? 'vec4<u32>' : 'u32').replace('{{RANK}}', String(rank)).replace('{{OFFSETS}}', lines.join('\n'));
}

// ---- reshape ------------------------------------------------------------------------------------------------------

const reshapeDef = defineOp({
  name: 'reshape',
  backward: (g, ctx) => [g.shareStorage(ctx.inputShapes[0])],
});

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

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  expectTensor('reshape', 'input', x);
  const s = resolveShape('reshape', x, shape);
  return record(reshapeDef, [x], x.shareStorage(s), undefined);
}

/** PyTorch's view; tensors here are always contiguous, so it is reshape. */
export const view = reshape;

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  expectTensor('flatten', 'input', x);
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim('flatten', startDim, x.ndim, 'startDim');
  const e = normDim('flatten', endDim, x.ndim, 'endDim');
  if (s > e) fail('flatten', `startDim (${startDim}) must not come after endDim (${endDim})`);
  const shape = [...x.shape.slice(0, s), shapeSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function squeeze(x: Tensor, dim?: number | number[]): Tensor {
  expectTensor('squeeze', 'input', x);
  const dims = dim === undefined ? x.shape.map((_, i) => i) : normDims('squeeze', dim, x.ndim);
  return reshape(x, x.shape.filter((d, i) => !(dims.includes(i) && d === 1)));
}

/** Position of a dim inserted into `shape` (0..rank; negative counts from the end), checked against the input shape. */
function newDim(op: string, dim: number, shape: readonly number[]): number {
  const r = shape.length;
  if (!Number.isInteger(dim) || dim < -r - 1 || dim > r)
    fail(op, `dim=${dim} is out of range for inserting a dim into shape ${fmtShape(shape)} (expected ${-r - 1} <= dim <= ${r})`);
  return dim < 0 ? dim + r + 1 : dim;
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  expectTensor('unsqueeze', 'input', x);
  const d = newDim('unsqueeze', dim, x.shape);
  const s = [...x.shape];
  s.splice(d, 0, 1);
  return reshape(x, s);
}

// ---- permute ------------------------------------------------------------------------------------------------------

const permuteDef = defineOp<{ dims: number[] }>({
  name: 'permute',
  backward: (g, ctx) => {
    const inv = new Array<number>(ctx.attrs.dims.length);
    ctx.attrs.dims.forEach((d, i) => (inv[d] = i));
    return [permute(g, inv)];
  },
});

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  expectTensor('permute', 'input', x);
  if (!Array.isArray(dims) || dims.length !== x.ndim)
    fail('permute', `dims must list all ${x.ndim} dimensions of a tensor of shape ${fmtShape(x.shape)}, got ${JSON.stringify(dims)}`);
  const nd = dims.map((d) => normDim('permute', d, x.ndim));
  if (new Set(nd).size !== nd.length) fail('permute', `dims ${JSON.stringify(dims)} repeat a dimension`);
  const outShape = nd.map((d) => x.shape[d]);
  if (nd.every((d, i) => d === i)) return record(reshapeDef, [x], x.shareStorage(), undefined);
  const st = stridesOf(x.shape);
  const out = emptyTensor('permute', outShape, x.dtype);
  stridedCopy('permute', out, x, outShape, { offset: 0, strides: nd.map((d) => st[d]) }, { offset: 0, strides: stridesOf(outShape) });
  return record(permuteDef, [x], out, { dims: nd });
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  expectTensor('transpose', 'input', x);
  const a = normDim('transpose', dim0, x.ndim, 'dim0');
  const b = normDim('transpose', dim1, x.ndim, 'dim1');
  const dims = x.shape.map((_, i) => i);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

// ---- expand -------------------------------------------------------------------------------------------------------

const expandDef = defineOp({
  name: 'expand',
  backward: (g, ctx) => [sumToShape(g.shareStorage(), ctx.inputShapes[0])],
});

/** Broadcasts to `shape` (-1 keeps a size), materialised. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  expectTensor('expand', 'input', x);
  if (!Array.isArray(shape) || shape.length < x.ndim)
    fail('expand', `shape ${JSON.stringify(shape)} must have at least as many dims as the input ${fmtShape(x.shape)}`);
  const lead = shape.length - x.ndim;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  checkShapeArg('expand', target);
  const outShape = broadcastShapes('expand', [x.shape, target]);
  if (!sameShape(outShape, target))
    fail('expand', `cannot expand a tensor of shape ${fmtShape(x.shape)} to ${fmtShape(shape)} (only size-1 dims can grow)`);
  if (sameShape(x.shape, target)) return record(reshapeDef, [x], x.shareStorage(), undefined);
  const st = stridesOf(x.shape);
  const inStrides = target.map((_, i) => (i < lead || x.shape[i - lead] === 1 ? 0 : st[i - lead]));
  const out = emptyTensor('expand', target, x.dtype);
  stridedCopy('expand', out, x, target, { offset: 0, strides: inStrides }, { offset: 0, strides: stridesOf(target) });
  return record(expandDef, [x], out, undefined);
}

export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return expand(x, shape);
}

// ---- slice / narrow -----------------------------------------------------------------------------------------------

interface SliceAttrs {
  dim: number;
  start: number;
  step: number;
  count: number;
}

const sliceDef = defineOp<SliceAttrs>({
  name: 'slice',
  backward: (g, ctx) => [embedSlice(g, ctx.inputShapes[0], ctx.attrs)],
});

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
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  expectDims('slice', x);
  const d = normDim('slice', dim, x.ndim);
  if (!Number.isInteger(step) || step <= 0) fail('slice', `step must be a positive integer, got ${step}`);
  if (!Number.isInteger(start) || !(end === undefined || end === null || Number.isInteger(end)))
    fail('slice', `start and end must be integers, got ${start} and ${end}`);
  const n = x.shape[d];
  const clampIdx = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
  const s = clampIdx(start);
  const e = end === undefined || end === null ? n : clampIdx(end);
  const count = Math.max(0, Math.ceil((e - s) / step));
  return sliceRaw(x, { dim: d, start: s, step, count });
}

function sliceRaw(x: Tensor, a: SliceAttrs): Tensor {
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
  return record(sliceDef, [x], out, a);
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  expectDims('narrow', x);
  const d = normDim('narrow', dim, x.ndim);
  const s = start < 0 ? start + x.shape[d] : start;
  if (!Number.isInteger(start) || !Number.isInteger(length) || length < 0 || s < 0 || s + length > x.shape[d])
    fail('narrow', `start ${start} and length ${length} do not fit dimension ${dim} of size ${x.shape[d]}`);
  return sliceRaw(x, { dim: d, start: s, step: 1, count: length });
}

/** Splits into chunks of `splitSize` (or the listed sizes) along `dim`. */
export function split(x: Tensor, splitSizeOrSections: number | readonly number[], dim = 0): Tensor[] {
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
    const t = sliceRaw(x, { dim: d, start: at, step: 1, count: len });
    at += len;
    return t;
  });
}

// ---- flip ---------------------------------------------------------------------------------------------------------

const flipDef = defineOp<{ dims: number[] }>({
  name: 'flip',
  backward: (g, ctx) => [flip(g, ctx.attrs.dims)],
});

export function flip(x: Tensor, dims: number | readonly number[]): Tensor {
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
  return record(flipDef, [x], out, { dims: nd });
}

// ---- cat / stack --------------------------------------------------------------------------------------------------

const catDef = defineOp<{ dim: number; sizes: number[] }>({
  name: 'cat',
  backward: (g, ctx) => {
    let at = 0;
    return ctx.attrs.sizes.map((len, i) => {
      const start = at;
      at += len;
      if (!ctx.needsGrad[i]) return null;
      return sliceRaw(g, { dim: ctx.attrs.dim, start, step: 1, count: len });
    });
  },
});

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
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
  return record(catDef, tensors, out, { dim: d, sizes });
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
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

// ---- pad ----------------------------------------------------------------------------------------------------------

interface PadAttrs {
  /** (before, after) per dim of the input, possibly negative (cropping). */
  widths: [number, number][];
}

const padDef = defineOp<PadAttrs>({
  name: 'pad',
  backward: (g, ctx) => {
    const inShape = ctx.inputShapes[0];
    const out = emptyTensor('pad.backward', inShape, g.dtype);
    fillInto(out, 0);
    copyOverlap('pad.backward', out, g, ctx.attrs.widths.map(([lo, hi]) => [-lo, -hi] as [number, number]));
    return [out];
  },
});

/** Copies the overlap of x into out, where out = x grown by `widths` (before, after) per dim. */
function copyOverlap(op: string, out: Tensor, x: Tensor, widths: [number, number][]): void {
  const ist = stridesOf(x.shape);
  const ost = stridesOf(out.shape);
  let srcOff = 0;
  let dstOff = 0;
  const block = x.shape.map((n, i) => {
    const [lo] = widths[i];
    const srcStart = Math.max(0, -lo);
    const dstStart = Math.max(0, lo);
    srcOff += srcStart * ist[i];
    dstOff += dstStart * ost[i];
    return Math.max(0, Math.min(n - srcStart, out.shape[i] - dstStart));
  });
  stridedCopy(op, out, x, block, { offset: srcOff, strides: ist }, { offset: dstOff, strides: ost });
}

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

export interface PadOptions {
  /** torch.nn.functional.pad's modes: 'constant' (value), 'reflect' (mirror, border not repeated), 'replicate', 'circular'. */
  mode?: PadMode;
  value?: number;
}

/** Source index along one dim of n for each of the n + before + after padded positions (non-constant modes). */
function padSourceIndices(n: number, before: number, after: number, mode: Exclude<PadMode, 'constant'>): Int32Array {
  const idx = new Int32Array(n + before + after);
  for (let j = 0; j < idx.length; j++) {
    const i = j - before;
    if (mode === 'replicate') idx[j] = Math.min(n - 1, Math.max(0, i));
    else if (mode === 'circular') idx[j] = ((i % n) + n) % n;
    else idx[j] = i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
  }
  return idx;
}

/**
 * torch.nn.functional.pad: `pad` lists (before, after) pairs starting from the last dim; negative values crop
 * (constant mode). The other modes gather along each padded dim with host-computed indices (indexSelect), so their
 * gradient is indexSelect's scatter-add; like PyTorch, reflect needs padding < size and circular padding <= size.
 */
export function pad(x: Tensor, padding: readonly number[], opts: PadOptions = {}): Tensor {
  expectTensor('pad', 'input', x);
  const mode = opts.mode ?? 'constant';
  if (!['constant', 'reflect', 'replicate', 'circular'].includes(mode))
    fail('pad', `mode must be 'constant', 'reflect', 'replicate' or 'circular', got '${String(mode)}'`);
  if (!Array.isArray(padding) || padding.length % 2 !== 0 || padding.length / 2 > x.ndim || !padding.every(Number.isInteger))
    fail('pad', `padding must be an even-length list of integers (before, after) for up to ${x.ndim} trailing dims, got ${JSON.stringify(padding)}`);
  const widths: [number, number][] = x.shape.map(() => [0, 0]);
  for (let i = 0; i < padding.length / 2; i++) widths[x.ndim - 1 - i] = [padding[2 * i], padding[2 * i + 1]];
  const outShape = x.shape.map((n, i) => n + widths[i][0] + widths[i][1]);
  if (outShape.some((n) => n < 0)) fail('pad', `padding ${JSON.stringify(padding)} crops shape ${fmtShape(x.shape)} below zero`);
  if (mode !== 'constant') {
    widths.forEach(([before, after], d) => {
      const n = x.shape[d];
      if (before < 0 || after < 0) fail('pad', `${mode} padding must be non-negative, got (${before}, ${after}) for dim ${d}`);
      if (mode === 'reflect' && (before >= n || after >= n) && before + after > 0)
        fail('pad', `reflect padding (${before}, ${after}) of dim ${d} must be smaller than its size ${n}; use 'replicate' or 'constant'`);
      if (mode === 'circular' && (before > n || after > n))
        fail('pad', `circular padding (${before}, ${after}) of dim ${d} must not exceed its size ${n}`);
    });
    return tidy(() => {
      let y = x;
      widths.forEach(([before, after], d) => {
        if (before + after === 0) return;
        const idx = padSourceIndices(x.shape[d], before, after, mode);
        y = indexSelect(y, d, tensor(idx, [idx.length], { dtype: 'i32' }));
      });
      return y === x ? clone(x) : y;
    });
  }
  const out = emptyTensor('pad', outShape, x.dtype);
  fillInto(out, opts.value ?? 0);
  copyOverlap('pad', out, x, widths);
  return record(padDef, [x], out, { widths });
}

/** A contiguous copy with its own storage. */
export function clone(x: Tensor): Tensor {
  expectTensor('clone', 'input', x);
  const out = emptyTensor('clone', x.shape, x.dtype);
  const st = stridesOf(x.shape);
  stridedCopy('clone', out, x, x.shape, { offset: 0, strides: st }, { offset: 0, strides: st });
  return record(reshapeDef, [x], out, undefined);
}
