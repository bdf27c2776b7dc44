/**
 * cumsum along one dim (shaders/cumsum.wgsl). Integer inputs keep their dtype (PyTorch promotes them to int64,
 * which WGSL lacks): i32/u32 sums wrap around on overflow. The backward of an inclusive cumsum is the reverse
 * cumsum of the gradient, the same kernel reading each line from its end.
 */
import cumsumWgsl from '../../shaders/cumsum.wgsl';
import { fail } from '../engine/errors.js';
import { ALL_DTYPES, defineOp } from '../engine/op.js';
import { adapterKind } from '../engine/device.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { normDim } from '../engine/shape.js';
import { Tensor, shapeSize, type DType } from '../engine/tensor.js';
import { ceilDiv, emptyTensor, expectTensor } from './common.js';

type Layout = 'tiled' | 'thread' | 'addCarry' | 'totals' | 'chunked';

/**
 * Elements each invocation scans (ITEMS in the shader) and, for the GPU's tiled layout, invocations per workgroup.
 * GPUs scan tiles of 2,048 in workgroup memory (coalesced loads, a tree over the invocations); CPU adapters take
 * the chunked layout, 64 consecutive elements per invocation and no barrier: on llvmpipe a barrier switches every
 * SIMD group of the workgroup and every element went through workgroup memory three times (the tiled layout there,
 * 32 invocations of 64, scanned 2.1M elements in 25-32 ms plus 8-10 ms adding the carries).
 */
function tiling(): { items: number; workgroup: number; chunked: boolean } {
  return adapterKind() === 'gpu' ? { items: 8, workgroup: 256, chunked: false } : { items: 64, workgroup: 64, chunked: true };
}

function cumsumKernel(dtype: DType, layout: Layout) {
  const defines = {
    TILED: layout === 'tiled' || layout === 'addCarry',
    ADD_CARRY: layout === 'addCarry',
    CHUNKED: layout === 'totals' || layout === 'chunked',
    TOTALS: layout === 'totals',
  };
  const { items, workgroup } = tiling();
  const source = () => cumsumWgsl.replaceAll('{{T}}', dtype).replaceAll('{{ITEMS}}', String(items));
  return kernel(`cumsum.${dtype}.${layout}`, source, { defines, workgroupSize: layout === 'tiled' || layout === 'addCarry' ? workgroup : undefined });
}

/** [outer, n, inner] view of `shape` around `dim` (a 0-d tensor is one line of one element). */
function linesOf(shape: readonly number[], dim: number) {
  const n = shape.length ? shape[dim] : 1;
  const inner = shapeSize(shape.slice(dim + 1));
  return { n, inner, lines: shapeSize(shape.slice(0, dim)) * inner };
}

/**
 * Inclusive scan of x along dim (reversed: from each line's end). Long lines are scanned in tiles (GPUs: ~2000
 * elements) or chunks (CPU adapters: 64), whose totals are scanned by the same function and carried in, so any
 * length takes 2 dispatches per level of reduction.
 */
function scan(op: string, x: Tensor, dim: number, reverse: boolean): Tensor {
  const out = emptyTensor(op, x.shape, x.dtype);
  const { n, inner, lines } = linesOf(x.shape, dim);
  if (out.size === 0) return out;
  const uniforms = { lines, n, inner, reverse: reverse ? 1 : 0, tiles: 1 };
  // many lines side by side in memory (inner > 1), or short lines: one invocation per line reads coalesced
  const { items, chunked } = tiling();
  const chunks = ceilDiv(n, items);
  if (n <= 32 || (inner > 1 && lines >= 4096) || (chunked && chunks === 1)) {
    const k = cumsumKernel(x.dtype, 'thread');
    dispatch(k, [out.buffer(op), x.buffer(op)], uniforms, grid1d(ceilDiv(lines, k.workgroupSize)));
    return out;
  }
  if (chunked) {
    const sums = emptyTensor(op, [lines, chunks], x.dtype);
    const totals = cumsumKernel(x.dtype, 'totals');
    const count = lines * chunks;
    dispatch(totals, [sums.buffer(op), x.buffer(op)], { ...uniforms, tiles: chunks }, grid1d(ceilDiv(count, totals.workgroupSize)));
    const scanned = scan(op, sums, 1, false);
    sums.dispose();
    const k = cumsumKernel(x.dtype, 'chunked');
    dispatch(k, [out.buffer(op), x.buffer(op), scanned.buffer(op)], { ...uniforms, tiles: chunks }, grid1d(ceilDiv(count, k.workgroupSize)));
    scanned.dispose();
    return out;
  }
  const k = cumsumKernel(x.dtype, 'tiled');
  const tiles = ceilDiv(n, items * k.workgroupSize);
  const sums = emptyTensor(op, [lines, tiles], x.dtype);
  dispatch(k, [out.buffer(op), x.buffer(op), sums.buffer(op)], { ...uniforms, tiles }, grid1d(lines * tiles));
  if (tiles > 1) {
    const scanned = scan(op, sums, 1, false);
    const add = cumsumKernel(x.dtype, 'addCarry');
    dispatch(add, [out.buffer(op), scanned.buffer(op)], { ...uniforms, tiles }, grid1d(lines * tiles));
    scanned.dispose();
  }
  sums.dispose();
  return out;
}

/** torch.cumsum(input, dim): out[..., j, ...] = sum of input[..., 0..j, ...] along dim. */
export const cumsum = defineOp({
  name: 'cumsum',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, dim: number) => {
    expectTensor('cumsum', 'input', x);
    if (dim === undefined) fail('cumsum', 'dim is required (as in torch.cumsum), e.g. vg.cumsum(x, -1)');
    const d = normDim('cumsum', dim, x.ndim);
    return { out: scan('cumsum', x, d, false), attrs: { dim: d } };
  },
  backward: (g, ctx) => [scan('cumsum.backward', g, ctx.attrs.dim, true)],
});
