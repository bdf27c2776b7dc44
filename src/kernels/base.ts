/**
 * The base every kernel file builds on, below the op files so that they do not import each other in a circle:
 * the reduction launcher (and sumToShape, which reduces a broadcast gradient back to an input's shape), the strided
 * copy every shape op materialises through, the fill kernel and the index range checks. Nothing here is an op:
 * nothing is recorded.
 */
import checkIndexWgsl from '../../shaders/check_index.wgsl';
import copyWgsl from '../../shaders/copy.wgsl';
import fillWgsl from '../../shaders/fill.wgsl';
import indexAssertWgsl from '../../shaders/index_assert.wgsl';
import reduceWgsl from '../../shaders/reduce.wgsl';
import { assertBuffer, checkHostIndices, indexSlot } from '../engine/device-asserts.js';
import { currentUserOp, fail, fmtShape } from '../engine/errors.js';
import { alignElements, bindingLimit, fitsBinding, requireBindable, window, windowElements } from '../engine/binding.js';
import { dispatch, grid1d, kernel, type BindTarget } from '../engine/runtime.js';
import { coalesce, pad8, sameShape, stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize, type DType } from '../engine/tensor.js';
import { ceilDiv, emptyTensor } from './common.js';

// ---- reductions ---------------------------------------------------------------------------------------------------

export type ReduceKind = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

/**
 * Invocations per ROW workgroup: its tree reduction takes one barrier per level, and on CPU adapters a barrier
 * switches every SIMD group of the workgroup (256 invocations: 9 levels x 32 switches per output, which made a conv
 * bias gradient's small sums cost ~1 ms each whatever their size).
 */
const ROW_WG = 64;

/** The reduce kernel of `kind` over `t`; `vec4`: the ROW sum over vec4s of f32 (shaders/reduce.wgsl). */
function kernelFor(kind: ReduceKind, t: DType, row: boolean, vec4 = false) {
  const arg = kind === 'argmax' || kind === 'argmin';
  const key = `reduce.${kind}.${t}.${row ? (vec4 ? 'row4' : 'row') : 'thread'}`;
  return kernel(
    key,
    () =>
      reduceWgsl
        .replaceAll('{{T}}', vec4 ? 'vec4<f32>' : t)
        .replaceAll('{{OUT_T}}', arg ? 'i32' : t)
        .replaceAll('{{OP}}', kind)
        .replace('{{IS_NAN}}', t === 'f32' && !vec4 ? 'is_nan_f32(v)' : 'false')
        .replace('{{BETTER}}', kind === 'max' || kind === 'argmax' ? 'b.v > a.v' : 'b.v < a.v')
        .replaceAll('{{RESULT}}', arg ? 'index_of' : vec4 ? 'sum_of_lanes' : 'value_of'),
    { defines: { ROW: row, SUM: kind === 'sum', VEC4: vec4 }, workgroupSize: row ? ROW_WG : undefined },
  );
}

/** Launches one reduction; returns a tensor of `outShape` (the kept dims, or with 1s where keepdim). */
export function reduceRaw(op: string, kind: ReduceKind, x: Tensor, dims: number[], outShape: readonly number[]): Tensor {
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
  if (nOut > 0 && !fitsBinding(x)) return reduceInBlocks(op, kind, x, dims, outShape);
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
  // sums over a contiguous innermost run of a multiple of 4 (every other offset then one too) read vec4s
  const last = red.shape.length - 1;
  const vec4 =
    kind === 'sum' &&
    x.dtype === 'f32' &&
    red.strides[0][last] === 1 &&
    red.shape[last] % 4 === 0 &&
    red.strides[0].every((s, i) => i === last || s % 4 === 0) &&
    keep.strides[0].every((s) => s % 4 === 0);
  const k = kernelFor(kind, x.dtype, true, vec4);
  const units = vec4 ? redSize / 4 : redSize;
  const rowUniforms = vec4
    ? {
        ...uniforms,
        redSize: units,
        keepStrides: pad8(keep.strides[0].map((s) => s / 4)),
        redShape: pad8(red.shape.map((n, i) => (i === last ? n / 4 : n))),
        redStrides: pad8(red.strides[0].map((s, i) => (i === last ? 1 : s / 4))),
      }
    : uniforms;
  const nSplit = arg || nOut >= 64 ? 1 : Math.min(256, Math.max(1, Math.floor(units / (64 * k.workgroupSize))));
  if (nSplit === 1) {
    dispatch(k, [out.buffer(op), x.buffer(op)], { ...rowUniforms, nSplit: 1, chunk: units }, grid1d(nOut));
    return out;
  }
  const chunk = ceilDiv(units, nSplit);
  const partial = emptyTensor(op, [nOut, nSplit], outDtype);
  dispatch(k, [partial.buffer(op), x.buffer(op)], { ...rowUniforms, nSplit, chunk }, grid1d(nOut * nSplit));
  const final = reduceRaw(op, kind, partial, [1], outShape);
  partial.dispose();
  out.dispose();
  return final;
}

/**
 * A reduction of a tensor past one binding: blocks of x (an index range along the outermost dim `a` whose one-index
 * slices fit, at each index of the dims before it) are copied out and reduced; their partial results land in a tensor
 * P that keeps dim `a` as one entry per block where it is reduced, and P is reduced in turn (when P would not be smaller,
 * a copy with the reduced dims last goes first). Sums change their order (partial sums); max and min do not.
 * argmax/argmin would need the blocks' offsets: they fail here.
 */
function reduceInBlocks(op: string, kind: ReduceKind, x: Tensor, dims: number[], outShape: readonly number[]): Tensor {
  const limit = bindingLimit();
  if (kind === 'argmax' || kind === 'argmin') requireBindable(op, { input: x }, 'Reduce over slabs of the tensor yourself and combine them.');
  const tail = (a: number) => shapeSize(x.shape.slice(a + 1));
  let a = 0;
  while (tail(a) * 4 > limit) a++;
  const perBlock = Math.max(1, Math.floor(limit / (tail(a) * 4)));
  const blocks = ceilDiv(x.shape[a], perBlock);
  const xSt = stridesOf(x.shape);
  if (dims.every((i) => x.shape[i] === 1)) {
    // nothing to combine: every output is its one input element
    const out = emptyTensor(op, outShape, x.dtype);
    stridedCopy(op, out, x, [x.size], { offset: 0, strides: [1] }, { offset: 0, strides: [1] });
    return out;
  }
  const reduced = (i: number) => dims.includes(i) && x.shape[i] > 1;
  const pShape = x.shape.map((n, i) => (i < a ? n : i === a ? (reduced(a) ? blocks : n) : reduced(i) ? 1 : n));
  if (shapeSize(pShape) >= x.size) {
    // the reduced dims all lie before the slab dim: a copy with the kept dims first brings them into every block
    const order = [...x.shape.keys()].filter((i) => !dims.includes(i)).concat(dims);
    const moved = emptyTensor(op, order.map((i) => x.shape[i]), x.dtype);
    stridedCopy(op, moved, x, moved.shape, { offset: 0, strides: order.map((i) => xSt[i]) }, { offset: 0, strides: stridesOf(moved.shape) });
    const out = reduceRaw(op, kind, moved, dims.map((_, j) => order.length - dims.length + j), outShape);
    moved.dispose();
    return out;
  }
  const partials = emptyTensor(op, pShape, x.dtype);
  const pSt = stridesOf(pShape);
  const prefixShape = x.shape.slice(0, a);
  for (let prefix = 0; prefix < shapeSize(prefixShape); prefix++) {
    let rem = prefix;
    let xAt = 0;
    let pAt = 0;
    for (let i = a - 1; i >= 0; i--) {
      const c = rem % x.shape[i];
      rem = Math.floor(rem / x.shape[i]);
      xAt += c * xSt[i];
      pAt += c * pSt[i];
    }
    for (let j = 0; j < blocks; j++) {
      const k0 = j * perBlock;
      const blockShape = x.shape.map((n, i) => (i < a ? 1 : i === a ? Math.min(perBlock, n - k0) : n));
      const block = emptyTensor(op, blockShape, x.dtype);
      stridedCopy(op, block, x, blockShape, { offset: xAt + k0 * xSt[a], strides: xSt }, { offset: 0, strides: stridesOf(blockShape) });
      const partShape = blockShape.map((n, i) => (reduced(i) ? 1 : n));
      const part = reduceRaw(op, kind, block, dims, partShape);
      const dst = pAt + (reduced(a) ? j : k0) * pSt[a];
      stridedCopy(op, partials, part, partShape, { offset: 0, strides: stridesOf(partShape) }, { offset: dst, strides: pSt });
      block.dispose();
      part.dispose();
    }
  }
  const out = reduceRaw(op, kind, partials, dims, outShape);
  partials.dispose();
  return out;
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

// ---- strided copy -------------------------------------------------------------------------------------------------

/**
 * Copies the block `shape` from x (at inOffset, inStrides) into out (at outOffset, outStrides). When either tensor is
 * larger than one binding, the block is copied in pieces (index ranges of its outermost dims) whose source and
 * destination spans each fit a window.
 */
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
  const scale = (st: number[]) => st.map((v, d) => (d === r ? v : v / w));
  const rank = m.shape.length;
  const k = kernel(`copy.r${rank}${vec4 ? '.v4' : ''}`, () => copySource(rank, vec4));
  const launch = (targets: [BindTarget, BindTarget], blockShape: number[], inOffset: number, outOffset: number) => {
    const count = shapeSize(blockShape) / w;
    dispatch(
      k,
      targets,
      {
        n: count,
        rank,
        inOffset: inOffset / w,
        outOffset: outOffset / w,
        shape: pad8(blockShape.map((v, d) => (d === r ? v / w : v))),
        inStrides: pad8(scale(m.inStrides)),
        outStrides: pad8(scale(m.outStrides)),
      },
      grid1d(ceilDiv(count, k.workgroupSize)),
    );
  };
  if (fitsBinding(out, x)) {
    launch([out.buffer(op), x.buffer(op)], m.shape, src.offset, dst.offset);
    return;
  }
  // windows: whole vec4s, and each piece's pieces along the innermost dim stay whole vec4s
  const maxSpan = Math.floor(windowElements() / 4) * 4;
  /** [lowest, highest + 1) element a block of dims from..r reaches from `offset`. */
  const span = (block: readonly number[], strides: readonly number[], offset: number, from: number): [number, number] => {
    let lo = offset;
    let hi = offset;
    for (let d = from; d <= r; d++) {
      const reach = (block[d] - 1) * strides[d];
      if (reach < 0) lo += reach;
      else hi += reach;
    }
    return [lo, hi + 1];
  };
  const piece = (block: number[], d: number, inOffset: number, outOffset: number) => {
    const [inLo, inHi] = span(block, m.inStrides, inOffset, d);
    const [outLo, outHi] = span(block, m.outStrides, outOffset, d);
    const wx = window(op, x, inLo, inHi);
    const wo = window(op, out, outLo, outHi);
    launch([wo.range, wx.range], block, inOffset - inLo + wx.shift, outOffset - outLo + wo.shift);
  };
  const visit = (d: number, inOffset: number, outOffset: number) => {
    const block = m.shape.map((v, e) => (e < d ? 1 : e === d ? 1 : v));
    const oneIn = span(block, m.inStrides, inOffset, d);
    const oneOut = span(block, m.outStrides, outOffset, d);
    const [inner, innerOut] = [oneIn[1] - oneIn[0], oneOut[1] - oneOut[0]];
    const n = m.shape[d];
    if (inner > maxSpan || innerOut > maxSpan) {
      for (let i = 0; i < n; i++) visit(d + 1, inOffset + i * m.inStrides[d], outOffset + i * m.outStrides[d]);
      return;
    }
    const fit = (one: number, stride: number) => (stride === 0 ? n : Math.floor((maxSpan - one) / Math.abs(stride)) + 1);
    let c = Math.min(n, fit(inner, m.inStrides[d]), fit(innerOut, m.outStrides[d]));
    if (d === r && vec4) c = Math.max(4, Math.floor(c / 4) * 4);
    for (let i0 = 0; i0 < n; i0 += c) {
      block[d] = Math.min(c, n - i0);
      piece(block, d, inOffset + i0 * m.inStrides[d], outOffset + i0 * m.outStrides[d]);
    }
  };
  visit(0, src.offset, dst.offset);
}

/** The block x[starts[d] : starts[d] + sizes[d]] (every dim d) as a new contiguous tensor: a slab a split op works on. */
export function sliceBlock(op: string, x: Tensor, starts: readonly number[], sizes: readonly number[]): Tensor {
  const out = emptyTensor(op, sizes, x.dtype);
  const st = stridesOf(x.shape);
  const offset = starts.reduce((o, s, d) => o + s * st[d], 0);
  stridedCopy(op, out, x, sizes, { offset, strides: st }, { offset: 0, strides: stridesOf(sizes) });
  return out;
}

/** Copies `part` into dst at `starts` (every dim): a split op's result slab. */
export function writeBlock(op: string, dst: Tensor, starts: readonly number[], part: Tensor): void {
  const st = stridesOf(dst.shape);
  const offset = starts.reduce((o, s, d) => o + s * st[d], 0);
  stridedCopy(op, dst, part, part.shape, { offset: 0, strides: stridesOf(part.shape) }, { offset, strides: st });
}

const axisStarts = (rank: number, axis: number, start: number) => Array.from({ length: rank }, (_, d) => (d === axis ? start : 0));

/** x[..., start:end, ...] along `axis` as a new contiguous tensor. */
export function sliceAxis(op: string, x: Tensor, axis: number, start: number, end: number): Tensor {
  return sliceBlock(op, x, axisStarts(x.ndim, axis, start), x.shape.map((n, d) => (d === axis ? end - start : n)));
}

/** Copies `part` into dst[..., start:start + part.shape[axis], ...] along `axis`. */
export function writeAxis(op: string, dst: Tensor, axis: number, start: number, part: Tensor): void {
  writeBlock(op, dst, axisStarts(dst.ndim, axis, start), part);
}

/**
 * Work over B independent rows (a [B, ...] layout: batch x channels for pooling and resampling) when a tensor is
 * larger than one binding: runs of rows whose slices of every output and input fit, each copied out (inputs), computed
 * by `run` into fresh run-sized outputs, and copied into place. Returns false, doing nothing, when every tensor fits
 * (the caller then binds them whole). `outs` are written wholly by `run`.
 */
export function inRowRuns(
  op: string,
  B: number,
  outs: readonly Tensor[],
  ins: readonly Tensor[],
  run: (outs: Tensor[], ins: Tensor[], rows: number) => void,
): boolean {
  if (fitsBinding(...outs, ...ins) || B === 0) return false;
  const rowBytes = Math.max(...[...outs, ...ins].map((t) => (t.size / B) * 4));
  const rows = Math.floor(bindingLimit() / rowBytes);
  if (rows === 0)
    fail(
      op,
      `one of its ${B} rows (batch x channel) takes ${rowBytes} bytes, more than one storage binding on this adapter ` +
        `(maxStorageBufferBindingSize ${bindingLimit()} bytes); crop or downsample the volume first`,
    );
  const rowView = (t: Tensor) => t.shareStorage([B, t.size / B]);
  const outViews = outs.map(rowView);
  const inViews = ins.map(rowView);
  for (let b0 = 0; b0 < B; b0 += rows) {
    const b1 = Math.min(B, b0 + rows);
    const runIns = inViews.map((t) => sliceAxis(op, t, 0, b0, b1));
    const runOuts = outViews.map((t) => emptyTensor(op, [b1 - b0, t.shape[1]], t.dtype));
    run(runOuts, runIns, b1 - b0);
    runOuts.forEach((t, i) => writeAxis(op, outViews[i], 0, b0, t));
    for (const t of [...runIns, ...runOuts]) t.dispose();
  }
  for (const t of [...outViews, ...inViews]) t.dispose();
  return true;
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

// ---- fill ---------------------------------------------------------------------------------------------------------

const bits = new DataView(new ArrayBuffer(4));

/** shaders/fill.wgsl; `per4`: value fills with 4 elements per invocation, as a vec4 or (any count) 4 guarded stores. */
export function fillKernel(dtype: DType, mode: 'value' | 'arange', per4: 'vec4' | 'quad' | null = null) {
  return kernel(`fill.${mode}.${dtype}${per4 === 'vec4' ? '.v4' : per4 === 'quad' ? '.q4' : ''}`, () => fillWgsl.replaceAll('{{T}}', dtype), {
    defines: {
      ARANGE_FLOAT: mode === 'arange' && dtype === 'f32',
      ARANGE_INT: mode === 'arange' && dtype !== 'f32',
      VEC4: per4 === 'vec4',
      QUAD: per4 === 'quad',
    },
  });
}

/** Overwrites every element of `t` with `value` (recorded on the GPU queue, no upload). */
export function fillInto(t: Tensor, value: number): void {
  if (t.size === 0) return;
  if (t.dtype === 'f32') bits.setFloat32(0, value, true);
  else if (t.dtype === 'i32') bits.setInt32(0, value, true);
  else bits.setUint32(0, value, true);
  const word = bits.getUint32(0, true);
  if (fitsBinding(t)) {
    const k = fillKernel(t.dtype, 'value', t.size % 4 === 0 ? 'vec4' : 'quad');
    const n = ceilDiv(t.size, 4);
    dispatch(k, [t.buffer('fill')], { n, bits: word, total: t.size }, grid1d(ceilDiv(n, k.workgroupSize)));
    return;
  }
  const k = fillKernel(t.dtype, 'value');
  // past one binding: runs of whole alignment units, each bound as a window
  const run = Math.floor(windowElements() / alignElements()) * alignElements();
  for (let start = 0; start < t.size; start += run) {
    const end = Math.min(t.size, start + run);
    dispatch(k, [window('fill', t, start, end).range], { n: end - start, bits: word }, grid1d(ceilDiv(end - start, k.workgroupSize)));
  }
}

// ---- index range checks -------------------------------------------------------------------------------------------

/** Checks a host-resident `index` against [lo, hi) (or `ignore`) now; false when it lives on the GPU (not checked). */
export function checkIndexOnHost(op: string, arg: string, index: Tensor, lo: number, hi: number, ignore: number | null = null): boolean {
  const host = index.storageFor(op).host;
  if (host) checkHostIndices(currentUserOp() ?? op, arg, host.subarray(0, index.size), lo, hi, ignore);
  return host !== null;
}

/**
 * The range check for a kernel that reads `index` (values must lie in [lo, hi), or equal `ignore`). Host-resident
 * indices are checked now, with a synchronous error; for GPU-resident ones the kernel records violations in the
 * returned device-side assertion slot, reported at the next read back. A host-checked index cannot violate, so the
 * slot it gets (0) is never written. The error names the op the user called.
 */
export function indexAssertSlot(op: string, arg: string, index: Tensor, lo: number, hi: number, ignore: number | null = null): number {
  if (checkIndexOnHost(op, arg, index, lo, hi, ignore)) return 0;
  return indexSlot(currentUserOp() ?? op, arg, lo, hi, index.dtype === 'i32', ignore);
}

/** A kernel's WGSL with the device-side assertion binding appended at `binding` (after the kernel's own). */
export function withIndexAssert(wgsl: string, binding: number): string {
  return wgsl + '\n' + indexAssertWgsl.replaceAll('{{ASSERT_BINDING}}', String(binding));
}

/** Checks `index` against [lo, hi) (or `ignore`) for ops whose kernels do not read it themselves (nllLoss targets). */
export function assertIndexRange(op: string, arg: string, index: Tensor, lo: number, hi: number, ignore: number | null = null): void {
  const slot = indexAssertSlot(op, arg, index, lo, hi, ignore);
  if (index.storageFor(op).host || index.size === 0) return;
  const k = kernel(`checkIndex.${index.dtype}`, () => withIndexAssert(checkIndexWgsl.replaceAll('{{I}}', index.dtype), 2));
  dispatch(
    k,
    [index.buffer(op), assertBuffer()],
    { n: index.size, lo, hi, ignore: ignore ?? lo - 1, assertSlot: slot },
    grid1d(ceilDiv(index.size, k.workgroupSize)),
  );
}
