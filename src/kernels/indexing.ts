/** gather, scatterAdd, indexSelect, oneHot (torch semantics; indices are i32 or u32 tensors). */
import compactWgsl from '../../shaders/compact.wgsl';
import gatherWgsl from '../../shaders/gather.wgsl';
import oneHotWgsl from '../../shaders/one_hot.wgsl';
import scatterAddWgsl from '../../shaders/scatter_add.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, NOT_DIFFERENTIABLE, defineOp } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { broadcastShapes, coalesce, normDim, pad8, sameShape, stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize, tidy, type DType } from '../engine/tensor.js';
import { assertBuffer } from '../engine/device-asserts.js';
import { checkIndexOnHost, fillInto, indexAssertSlot, sliceAxis, stridedCopy, withIndexAssert } from './base.js';
import { ceilDiv, emptyTensor, expectInt, expectTensor } from './common.js';
import { cumsum } from './cumsum.js';
import { mapExpr } from './elementwise.js';
import { expand, reshape } from './shape.js';

function checkIndexShape(op: string, x: Tensor, dim: number, index: Tensor, extra?: Tensor): void {
  if (index.ndim !== x.ndim)
    fail(op, `index must have the same number of dims as input: index ${fmtShape(index.shape)}, input ${fmtShape(x.shape)}`);
  for (let d = 0; d < x.ndim; d++)
    if (d !== dim && index.shape[d] > x.shape[d])
      fail(op, `index ${fmtShape(index.shape)} is larger than input ${fmtShape(x.shape)} in dimension ${d} (only dim ${dim} may differ)`);
  if (extra && extra.ndim !== x.ndim)
    fail(op, `src must have the same number of dims as input: src ${fmtShape(extra.shape)}, input ${fmtShape(x.shape)}`);
  if (extra)
    for (let d = 0; d < x.ndim; d++)
      if (index.shape[d] > extra.shape[d])
        fail(op, `index ${fmtShape(index.shape)} is larger than src ${fmtShape(extra.shape)} in dimension ${d}`);
}

/** Size of the indexed dim; a 0-d tensor indexes like one element (torch.gather accepts index 0 there). */
const dimSizeOf = (t: Tensor, dim: number) => (t.ndim === 0 ? 1 : t.shape[dim]);

function gatherRaw(x: Tensor, dim: number, index: Tensor): Tensor {
  const dimSize = dimSizeOf(x, dim);
  const assertSlot = indexAssertSlot('gather', 'index', index, 0, dimSize);
  const out = emptyTensor('gather', index.shape, x.dtype);
  if (out.size === 0) return out;
  const k = kernel(`gather.${x.dtype}.${index.dtype}`, () => withIndexAssert(gatherWgsl.replaceAll('{{T}}', x.dtype).replaceAll('{{I}}', index.dtype), 4));
  const m = mergedGatherDims(x, dim, index);
  dispatch(
    k,
    [out.buffer('gather'), x.buffer('gather'), index.buffer('gather'), assertBuffer()],
    { n: out.size, rank: m.shape.length, dim: m.dim, dimSize, shape: pad8(m.shape), xStrides: pad8(m.xStrides), assertSlot },
    grid1d(ceilDiv(out.size, k.workgroupSize)),
  );
  return out;
}

/**
 * gather's index shape and input strides with the dims on each side of `dim` merged where both run contiguously
 * (and size-1 dims dropped): the kernel pays two integer divisions per dim and element, the dominant cost on CPU
 * adapters (an indexSelect of 2 of [P, 1, 64, 64, 64] along dim 0: rank 5 -> 2).
 */
function mergedGatherDims(x: Tensor, dim: number, index: Tensor): { shape: number[]; xStrides: number[]; dim: number } {
  if (x.ndim === 0) return { shape: [1], xStrides: [1], dim: 0 };
  const xs = stridesOf(x.shape);
  const is = stridesOf(index.shape);
  const side = (from: number, to: number) => {
    if (from >= to) return { shape: [] as number[], x: [] as number[] };
    const c = coalesce(index.shape.slice(from, to), [is.slice(from, to), xs.slice(from, to)]);
    return c.shape.length === 1 && c.shape[0] === 1 ? { shape: [], x: [] } : { shape: c.shape, x: c.strides[1] };
  };
  const before = side(0, dim);
  const after = side(dim + 1, x.ndim);
  return {
    shape: [...before.shape, index.shape[dim], ...after.shape],
    xStrides: [...before.x, xs[dim], ...after.x],
    dim: before.shape.length,
  };
}

/** out = copy of base; out[index along dim] += src (op 'scatter': = src). */
function scatterAddRaw(base: Tensor, dim: number, index: Tensor, src: Tensor, op: 'scatterAdd' | 'scatter' = 'scatterAdd'): Tensor {
  const dimSize = dimSizeOf(base, dim);
  const assertSlot = indexAssertSlot(op, 'index', index, 0, dimSize);
  // a plain copy: clone() would record an autodiff node that scatterAdd's own node then replaces (and leaks)
  const out = emptyTensor(op, base.shape, base.dtype);
  const st = stridesOf(base.shape);
  stridedCopy(op, out, base, base.shape, { offset: 0, strides: st }, { offset: 0, strides: st });
  if (index.size === 0) return out;
  const atomicT = base.dtype === 'i32' ? 'i32' : 'u32';
  const overwrite = op === 'scatter';
  const k = kernel(
    `${op}.${base.dtype}.${index.dtype}`,
    () => withIndexAssert(scatterAddWgsl.replaceAll('{{T}}', base.dtype).replaceAll('{{A}}', atomicT).replaceAll('{{I}}', index.dtype), 4),
    { defines: { FLOAT: base.dtype === 'f32', OVERWRITE: overwrite } },
  );
  dispatch(
    k,
    [out.buffer(op), src.buffer(op), index.buffer(op), assertBuffer()],
    {
      n: index.size,
      rank: base.ndim,
      dim,
      dimSize,
      assertSlot,
      shape: pad8(index.shape),
      outStrides: pad8(stridesOf(base.shape)),
      srcStrides: pad8(stridesOf(src.shape)),
    },
    grid1d(ceilDiv(index.size, k.workgroupSize)),
  );
  return out;
}

/**
 * torch.gather(input, dim, index). An index outside [0, size) raises: at once for a host-resident index, else at the
 * next read back (a device-side assertion; the kernel writes 0 there meanwhile).
 */
export const gather = defineOp({
  name: 'gather',
  dtypes: ALL_DTYPES,
  inputs: ([x, , index]) => [x, index],
  forward: (x: Tensor, dim: number, index: Tensor) => {
    expectTensor('gather', 'input', x);
    expectTensor('gather', 'index', index);
    expectInt('gather', 'index', index);
    const d = normDim('gather', dim, x.ndim);
    checkIndexShape('gather', x, d, index);
    return { out: gatherRaw(x, d, index), attrs: { dim: d }, save: () => [index] };
  },
  backward: (g, ctx) => {
    const [index] = ctx.saved;
    const zeros = emptyTensor('gather.backward', ctx.inputShapes[0], 'f32');
    fillInto(zeros, 0);
    const r = scatterAddRaw(zeros, ctx.attrs.dim, index, g);
    zeros.dispose();
    return [r, null];
  },
});

/** torch.scatter_add(input, dim, index, src): a copy of input with src added at the indexed positions. */
export const scatterAdd = defineOp({
  name: 'scatterAdd',
  dtypes: ALL_DTYPES,
  inputs: ([x, , index, src]) => [x, index, src],
  forward: (x: Tensor, dim: number, index: Tensor, src: Tensor) => {
    expectTensor('scatterAdd', 'input', x);
    expectTensor('scatterAdd', 'index', index);
    expectTensor('scatterAdd', 'src', src);
    expectInt('scatterAdd', 'index', index);
    if (src.dtype !== x.dtype) fail('scatterAdd', `src dtype ${src.dtype} must match input dtype ${x.dtype}`);
    const d = normDim('scatterAdd', dim, x.ndim);
    checkIndexShape('scatterAdd', x, d, index, src);
    return { out: scatterAddRaw(x, d, index, src), attrs: { dim: d }, save: () => [index] };
  },
  backward: (g, ctx) => {
    const [index] = ctx.saved;
    const gSrc = ctx.needsGrad[2] ? gatherRaw(g, ctx.attrs.dim, index) : null;
    // src may be larger than index; its extra elements get zero gradient
    const gSrcFull = gSrc && gSrc.shape.join() !== ctx.inputShapes[2].join() ? embed(gSrc, ctx.inputShapes[2]) : gSrc;
    return [ctx.needsGrad[0] ? g.shareStorage() : null, null, gSrcFull];
  },
});

/**
 * torch.scatter(input, dim, index, src): a copy of input with src written at the indexed positions (src a tensor,
 * or a number written everywhere index points). Where index repeats a position, which write lands is unspecified,
 * as in PyTorch; the gradient assumes distinct positions: the input's gradient is zero where something was written,
 * src's is the output gradient at the positions it went to.
 */
export const scatter = defineOp({
  name: 'scatter',
  dtypes: ALL_DTYPES,
  inputs: ([x, , index, src]) => [x, index, src instanceof Tensor ? src : null],
  forward: (x: Tensor, dim: number, index: Tensor, src: Tensor | number) => {
    expectTensor('scatter', 'input', x);
    expectTensor('scatter', 'index', index);
    expectInt('scatter', 'index', index);
    const d = normDim('scatter', dim, x.ndim);
    if (typeof src === 'number') {
      checkIndexShape('scatter', x, d, index);
      const value = emptyTensor('scatter', index.shape, x.dtype);
      fillInto(value, src);
      return { out: scatterAddRaw(x, d, index, value, 'scatter'), attrs: { dim: d }, save: () => [index], release: [value] };
    }
    expectTensor('scatter', 'src', src);
    if (src.dtype !== x.dtype) fail('scatter', `src dtype ${src.dtype} must match input dtype ${x.dtype}`);
    checkIndexShape('scatter', x, d, index, src);
    return { out: scatterAddRaw(x, d, index, src, 'scatter'), attrs: { dim: d }, save: () => [index] };
  },
  backward: (g, ctx) => {
    const [index] = ctx.saved;
    let gx: Tensor | null = null;
    if (ctx.needsGrad[0]) {
      const zeros = emptyTensor('scatter.backward', index.shape, 'f32');
      fillInto(zeros, 0);
      gx = scatterAddRaw(g, ctx.attrs.dim, index, zeros, 'scatter');
      zeros.dispose();
    }
    const gSrc = ctx.needsGrad[2] ? gatherRaw(g, ctx.attrs.dim, index) : null;
    const gSrcFull = gSrc && gSrc.shape.join() !== ctx.inputShapes[2].join() ? embed(gSrc, ctx.inputShapes[2]) : gSrc;
    return [gx, null, gSrcFull];
  },
});

/** Zeros of `shape` with t in its leading block (consumes t). */
function embed(t: Tensor, shape: readonly number[]): Tensor {
  const out = emptyTensor('scatterAdd.backward', shape, t.dtype);
  fillInto(out, 0);
  stridedCopy('scatterAdd.backward', out, t, t.shape, { offset: 0, strides: stridesOf(t.shape) }, { offset: 0, strides: stridesOf(shape) });
  t.dispose();
  return out;
}

/** torch.index_select(input, dim, index) with a 1-D index: shaders/gather.wgsl (SELECT); the gradient scatter-adds rows. */
export const indexSelect = defineOp({
  name: 'indexSelect',
  dtypes: ALL_DTYPES,
  inputs: ([x, , index]) => [x, index],
  forward: (x: Tensor, dim: number, index: Tensor) => {
    expectTensor('indexSelect', 'input', x);
    expectTensor('indexSelect', 'index', index);
    expectInt('indexSelect', 'index', index);
    if (index.ndim !== 1) fail('indexSelect', `index must be 1-D, got shape ${fmtShape(index.shape)}`);
    const d = normDim('indexSelect', dim, x.ndim);
    return { out: indexSelectRaw(x, d, index), attrs: { dim: d }, save: () => [index] };
  },
  backward: (g, ctx) => {
    const [index] = ctx.saved;
    const { dim } = ctx.attrs;
    const inShape = ctx.inputShapes[0];
    // gather's rule with the index broadcast over the other dims
    const full = tidy(() => expand(reshape(index, g.shape.map((v, i) => (i === dim ? v : 1))), g.shape));
    const zeros = emptyTensor('indexSelect.backward', inShape, 'f32');
    fillInto(zeros, 0);
    const gx = scatterAddRaw(zeros, dim, full, g);
    zeros.dispose();
    full.dispose();
    return [gx, null];
  },
});

function indexSelectRaw(x: Tensor, dim: number, index: Tensor): Tensor {
  const dimSize = dimSizeOf(x, dim);
  const assertSlot = indexAssertSlot('indexSelect', 'index', index, 0, dimSize);
  const outShape = x.ndim === 0 ? [] : x.shape.map((v, i) => (i === dim ? index.size : v));
  if (x.ndim === 0 && index.size !== 1) fail('indexSelect', `index of a 0-d input must have one element (as in torch.index_select), got ${index.size}`);
  const out = emptyTensor('indexSelect', outShape, x.dtype);
  if (out.size === 0) return out;
  const inner = x.ndim === 0 ? 1 : shapeSize(x.shape.slice(dim + 1));
  const vec4 = inner % 4 === 0;
  const T = vec4 ? `vec4<${x.dtype}>` : x.dtype;
  const k = kernel(
    `indexSelect.${x.dtype}.${index.dtype}${vec4 ? '.v4' : ''}`,
    () => withIndexAssert(gatherWgsl.replaceAll('{{T}}', T).replaceAll('{{I}}', index.dtype), 4),
    { defines: { SELECT: true } },
  );
  const total = vec4 ? out.size / 4 : out.size;
  dispatch(
    k,
    [out.buffer('indexSelect'), x.buffer('indexSelect'), index.buffer('indexSelect'), assertBuffer()],
    { n: index.size, inner: vec4 ? inner / 4 : inner, dimSize, assertSlot, total },
    grid1d(ceilDiv(total, k.workgroupSize)),
  );
  return out;
}

/** one_hot(index, numClasses) → i32 tensor of shape [...index.shape, numClasses]; indices must lie in [0, numClasses). */
export const oneHot = defineOp({
  name: 'oneHot',
  dtypes: ['i32', 'u32'],
  inputs: ([index]) => [index],
  forward: (index: Tensor, numClasses: number) => {
    expectTensor('oneHot', 'input', index);
    expectInt('oneHot', 'input', index);
    if (!Number.isInteger(numClasses) || numClasses <= 0)
      fail('oneHot', `numClasses must be a positive integer (it cannot be inferred without reading the GPU), got ${numClasses}`);
    const assertSlot = indexAssertSlot('oneHot', 'input', index, 0, numClasses);
    const out = emptyTensor('oneHot', [...index.shape, numClasses], 'i32');
    if (out.size === 0) return { out, attrs: undefined };
    const k = kernel(`oneHot.${index.dtype}`, () => withIndexAssert(oneHotWgsl.replaceAll('{{I}}', index.dtype), 3));
    dispatch(
      k,
      [out.buffer('oneHot'), index.buffer('oneHot'), assertBuffer()],
      { n: out.size, classes: numClasses, assertSlot },
      grid1d(ceilDiv(out.size, k.workgroupSize)),
    );
    return { out, attrs: undefined };
  },
  backward: NOT_DIFFERENTIABLE,
});

// ---- maskedSelect, nonzero: data-dependent sizes ------------------------------------------------------------------

/**
 * The inclusive prefix sum (i32) of the nonzero flags of t, flattened, and its last element (the count) read back:
 * the one read back that a data-dependent output size needs.
 */
async function selectionEnds(op: string, t: Tensor): Promise<{ ends: Tensor; count: number }> {
  if (t.size === 0) return { ends: emptyTensor(op, [0], 'i32'), count: 0 };
  const ends = tidy(() => {
    const flags = mapExpr(op, 'select(0, 1, a != CT(0))', [{ name: 'a', value: t }], t.dtype, 'i32');
    return cumsum(flags.shareStorage([t.size]), 0);
  });
  const last = sliceAxis(op, ends, 0, t.size - 1, t.size);
  const count = (await last.data())[0];
  last.dispose();
  return { ends, count };
}

function compactKernel(variant: 'SELECT' | 'NONZERO' | 'SCATTER', dtype: DType) {
  return kernel(`compact.${variant}.${dtype}`, () => compactWgsl.replaceAll('{{T}}', dtype), { defines: { [variant]: true } });
}

/** The compaction step of maskedSelect, given the prefix sum of the mask (same shape as x) and the count. */
const maskedSelectCompact = defineOp({
  name: 'maskedSelect',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, ends: Tensor, count: number) => {
    const out = emptyTensor('maskedSelect', [count], x.dtype);
    if (count > 0) {
      const k = compactKernel('SELECT', x.dtype);
      dispatch(k, [out.buffer('maskedSelect'), x.buffer('maskedSelect'), ends.buffer('maskedSelect')], { n: x.size, rank: 0, shape: pad8([]) }, grid1d(ceilDiv(x.size, k.workgroupSize)));
    }
    return { out, attrs: undefined, save: () => [ends] };
  },
  backward: (g, ctx) => {
    const [ends] = ctx.saved;
    const dx = emptyTensor('maskedSelect.backward', ctx.inputShapes[0], 'f32');
    if (dx.size > 0) {
      const k = compactKernel('SCATTER', 'f32');
      dispatch(k, [dx.buffer('maskedSelect'), g.buffer('maskedSelect'), ends.buffer('maskedSelect')], { n: dx.size, rank: 0, shape: pad8([]) }, grid1d(ceilDiv(dx.size, k.workgroupSize)));
    }
    return [dx];
  },
});

/**
 * torch.masked_select(x, mask): the elements of x where mask is nonzero, in row-major order, as a 1-D tensor (x and
 * mask broadcast against each other). Asynchronous: the output size is read back from the GPU (one 4-byte read).
 * Differentiable in x.
 */
export async function maskedSelect(x: Tensor, mask: Tensor): Promise<Tensor> {
  expectTensor('maskedSelect', 'input', x);
  expectTensor('maskedSelect', 'mask', mask);
  const shape = broadcastShapes(`maskedSelect: input ${fmtShape(x.shape)} and mask ${fmtShape(mask.shape)}`, [x.shape, mask.shape]);
  const xs = sameShape(x.shape, shape) ? x : expand(x, shape);
  const ms = sameShape(mask.shape, shape) ? mask : expand(mask, shape);
  const { ends, count } = await selectionEnds('maskedSelect', ms);
  const out = maskedSelectCompact(xs, ends, count);
  for (const t of [ends, ...(xs === x ? [] : [xs]), ...(ms === mask ? [] : [ms])]) t.dispose();
  return out;
}

const nonzeroCompact = defineOp({
  name: 'nonzero',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, ends: Tensor, count: number) => {
    const out = emptyTensor('nonzero', [count, x.ndim], 'i32');
    if (out.size > 0) {
      const k = compactKernel('NONZERO', 'i32');
      dispatch(k, [out.buffer('nonzero'), ends.buffer('nonzero')], { n: x.size, rank: x.ndim, shape: pad8(x.shape) }, grid1d(ceilDiv(x.size, k.workgroupSize)));
    }
    return { out, attrs: undefined };
  },
  backward: NOT_DIFFERENTIABLE,
});

/**
 * torch.nonzero(x): the coordinates of the nonzero elements, [count, x.ndim] i32, in row-major order. Asynchronous:
 * the count is read back from the GPU (one 4-byte read).
 */
export async function nonzero(x: Tensor): Promise<Tensor> {
  expectTensor('nonzero', 'input', x);
  const { ends, count } = await selectionEnds('nonzero', x);
  const out = nonzeroCompact(x, ends, count);
  ends.dispose();
  return out;
}
