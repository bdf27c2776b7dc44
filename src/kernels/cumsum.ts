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

type Layout = 'tiled' | 'thread' | 'addCarry';

/**
 * The tiled layout's shape: elements each invocation scans (ITEMS in the shader) and invocations per workgroup. On
 * CPU adapters each of the scan's 2 log2(workgroup) barriers switches every SIMD group of the workgroup, so they take
 * 32 invocations of 64 elements (2,048 per tile either way; on llvmpipe a 2.1M-element scan ran 2.1x faster than
 * with 256 of 8, 1.5x with 128 of 16).
 */
function tiling(): { items: number; workgroup: number } {
  return adapterKind() === 'gpu' ? { items: 8, workgroup: 256 } : { items: 64, workgroup: 32 };
}

function cumsumKernel(dtype: DType, layout: Layout) {
  const defines = { TILED: layout !== 'thread', ADD_CARRY: layout === 'addCarry' };
  const { items, workgroup } = tiling();
  const source = () => cumsumWgsl.replaceAll('{{T}}', dtype).replaceAll('{{ITEMS}}', String(items));
  return kernel(`cumsum.${dtype}.${layout}`, source, { defines, workgroupSize: layout === 'thread' ? undefined : workgroup });
}

/** [outer, n, inner] view of `shape` around `dim` (a 0-d tensor is one line of one element). */
function linesOf(shape: readonly number[], dim: number) {
  const n = shape.length ? shape[dim] : 1;
  const inner = shapeSize(shape.slice(dim + 1));
  return { n, inner, lines: shapeSize(shape.slice(0, dim)) * inner };
}

/**
 * Inclusive scan of x along dim (reversed: from each line's end). Long lines are scanned in tiles, whose totals are
 * scanned by the same function and added back, so any length takes 2 dispatches per level of ~2000× reduction.
 */
function scan(op: string, x: Tensor, dim: number, reverse: boolean): Tensor {
  const out = emptyTensor(op, x.shape, x.dtype);
  const { n, inner, lines } = linesOf(x.shape, dim);
  if (out.size === 0) return out;
  const uniforms = { lines, n, inner, reverse: reverse ? 1 : 0, tiles: 1 };
  // many lines side by side in memory (inner > 1), or short lines: one invocation per line reads coalesced
  if (n <= 32 || (inner > 1 && lines >= 4096)) {
    const k = cumsumKernel(x.dtype, 'thread');
    dispatch(k, [out.buffer(op), x.buffer(op)], uniforms, grid1d(ceilDiv(lines, k.workgroupSize)));
    return out;
  }
  const k = cumsumKernel(x.dtype, 'tiled');
  const tiles = ceilDiv(n, tiling().items * k.workgroupSize);
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
