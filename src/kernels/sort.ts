/**
 * sort, argsort and topk along one dim (shaders/sort.wgsl): a bitonic network over (key, index) pairs, so the sort
 * is stable (equal values keep their input order, PyTorch's stable=True) in both directions, NaN sorts as the
 * largest value (first when descending), and -0 equals +0. Rows that fit one workgroup's memory are sorted there in
 * one dispatch; longer rows add one dispatch per global compare-exchange step (log² of the row length in all).
 * topk with k up to half the (padded) row selects instead of sorting the whole row (see sortRaw); bench/sort.mjs
 * times it beside a full sort of the same row and beside tfjs's topk.
 * Indices are i32. values are differentiable: the gradient goes back to the source positions of the indices.
 */
import sortWgsl from '../../shaders/sort.wgsl';
import { gpu } from '../engine/device.js';
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, NOT_DIFFERENTIABLE, defineMultiOutputOp, defineOp, type BackwardContext } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { normDim } from '../engine/shape.js';
import { Tensor, shapeSize, type DType } from '../engine/tensor.js';
import { fillInto } from './base.js';
import { ceilDiv, defineKey, describe, emptyTensor, expectTensor } from './common.js';
import { scatterAdd } from './indexing.js';

export interface SortOptions {
  /** The dim to sort along (default -1, the last). */
  dim?: number;
  /** Largest first (NaN first). Default false. */
  descending?: boolean;
  /** Accepted for PyTorch compatibility; the sort is always stable. */
  stable?: boolean;
}

export interface TopkOptions {
  dim?: number;
  /** The k largest (default) or the k smallest. */
  largest?: boolean;
  /** Accepted for PyTorch compatibility; the k values always come sorted (largest first when largest). */
  sorted?: boolean;
}

/** PyTorch's named tuple (values, indices): indices are i32 positions along dim. (A type, not an interface: the
 * registry's named outputs need its implicit index signature.) */
export type SortResult = { values: Tensor; indices: Tensor };

/** Pairs in workgroup memory: the largest power of two whose (key, index) pairs fit the adapter's limit, ≤ 4096. */
function blockCapacity(): number {
  const fit = Math.floor(gpu().limits.maxComputeWorkgroupStorageSize / 8);
  return Math.min(4096, 2 ** Math.floor(Math.log2(fit)));
}

type Layout = 'global' | 'local' | 'halve';

function sortKernel(dtype: DType, layout: Layout, load = false, store = false) {
  const capacity = blockCapacity();
  const defines = {
    GLOBAL: layout === 'global',
    HALVE: layout === 'halve',
    LOAD: load,
    STORE: store,
    FLOAT: dtype === 'f32',
    SIGNED: dtype === 'i32',
  };
  return kernel(`sort.${dtype}.${layout}.${defineKey(defines)}.${capacity}`, () => sortWgsl.replaceAll('{{T}}', dtype).replaceAll('{{B}}', String(capacity)), {
    defines,
  });
}

const pow2Ceil = (v: number) => 2 ** Math.ceil(Math.log2(v));

/**
 * The first kOut positions of x sorted along dim: values (x's dtype) and indices (i32), shape with dim = kOut.
 * Each line is padded to `padded` = 2^m pairs. A full sort runs the bitonic stages up to `padded`. When kOut needs
 * fewer (topk with k ≤ padded / 2), the stages stop at runs of `keep` = 2^⌈log2 k⌉ and selection rounds follow:
 * each halves every line, keeping the smaller half of two neighbouring runs, then sorts the surviving runs (one
 * stage) — log2(padded / keep) rounds on ever shorter lines instead of the remaining stages on the whole line.
 */
function sortRaw(op: string, x: Tensor, dim: number, descending: boolean, kOut: number): SortResult {
  const shape = x.ndim ? x.shape : [1];
  const n = shape[dim];
  const inner = shapeSize(shape.slice(dim + 1));
  const lines = shapeSize(shape.slice(0, dim)) * inner;
  const outShape = x.ndim ? x.shape.map((s, i) => (i === dim ? kOut : s)) : [];
  const values = emptyTensor(op, outShape, x.dtype);
  const indices = emptyTensor(op, outShape, 'i32');
  if (values.size === 0) return { values, indices };
  const padded = pow2Ceil(n);
  const keep = Math.min(padded, pow2Ceil(kOut));
  const capacity = blockCapacity();
  // short lines: several share one block; a block never splits a line unless the line is longer than a block
  const block = Math.min(capacity, pow2Ceil(lines * padded));
  const blocks = ceilDiv(lines * padded, block);
  const total = blocks * block;
  const base = { lines, n, inner, padded, block, kOut, descending: descending ? 1 : 0, total, j: 0, kFirst: 0, kLast: 0 };
  const outputs = [x.buffer(op), values.buffer(op), indices.buffer(op)];
  if (padded <= block && keep === padded) {
    dispatch(sortKernel(x.dtype, 'local', true, true), outputs, { ...base, kFirst: 2, kLast: padded }, grid1d(blocks));
    return { values, indices };
  }
  // selection rounds write each halved set of lines into a second pair buffer, of the full size: the workgroup-memory
  // stages read and write whole blocks, past the halved length (an out-of-range write could land anywhere in a buffer)
  const pairs = [emptyTensor(op, [total * 2], 'u32')];
  if (keep < padded) pairs.push(emptyTensor(op, [total * 2], 'u32'));
  let cur = 0;
  const step = sortKernel(x.dtype, 'global');
  /** Stage k of the network on the current pairs, the lines being `line` long and `positions` in all. */
  const stage = (k: number, line: number, positions: number, last: boolean) => {
    const geometry = { ...base, padded: line, total: positions, block: Math.min(block, pow2Ceil(positions)) };
    for (let j = k / 2; j >= geometry.block; j /= 2)
      dispatch(step, [pairs[cur].buffer(op)], { ...geometry, kFirst: k, j }, grid1d(ceilDiv(positions / 2, step.workgroupSize)));
    // the steps j < block stay inside one block: finish the stage in workgroup memory
    const groups = grid1d(ceilDiv(positions, geometry.block));
    if (last)
      dispatch(sortKernel(x.dtype, 'local', false, true), [pairs[cur].buffer(op), ...outputs], { ...geometry, kFirst: k, kLast: k }, groups);
    else dispatch(sortKernel(x.dtype, 'local'), [pairs[cur].buffer(op)], { ...geometry, kFirst: k, kLast: k }, groups);
  };
  // runs of `keep` (the whole line for a full sort): stages up to one block in workgroup memory, then stage by stage
  dispatch(sortKernel(x.dtype, 'local', true, false), [x.buffer(op), pairs[0].buffer(op)], { ...base, kFirst: 2, kLast: Math.min(keep, block) }, grid1d(blocks));
  for (let k = 2 * block; k <= keep; k *= 2) stage(k, padded, total, k === padded);
  const halve = sortKernel(x.dtype, 'halve');
  for (let line = padded, positions = total; line > keep; ) {
    line /= 2;
    positions /= 2;
    dispatch(halve, [pairs[cur].buffer(op), pairs[1 - cur].buffer(op)], { ...base, kFirst: keep, total: positions }, grid1d(ceilDiv(positions, halve.workgroupSize)));
    cur = 1 - cur;
    stage(keep, line, positions, line === keep);
  }
  for (const t of pairs) t.dispose();
  return { values, indices };
}

/** values[..., j, ...] = x[..., indices[j], ...]: the gradient lands on the source positions (indices are distinct). */
function valuesBackward(g: Tensor, ctx: BackwardContext<{ dim: number }>): Tensor[] {
  const [indices] = ctx.saved;
  const base = emptyTensor('sort.backward', ctx.inputShapes[0], 'f32');
  fillInto(base, 0);
  const gx = scatterAdd(base, ctx.attrs.dim, indices, g);
  base.dispose();
  return [gx];
}

function checkOptions(op: string, opts: unknown, allowed: readonly string[]): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    fail(op, `options must be an object like { ${allowed[0]}: -1 }, got ${describe(opts)}`);
  for (const key of Object.keys(opts))
    if (!allowed.includes(key)) fail(op, `unknown option '${key}' (expected ${allowed.join(', ')})`);
  for (const key of allowed.slice(1)) {
    const v = (opts as Record<string, unknown>)[key];
    if (v !== undefined && typeof v !== 'boolean') fail(op, `${key} must be true or false, got ${describe(v)}`);
  }
}

const SORT_OPTIONS = ['dim', 'descending', 'stable'] as const;

/** torch.sort(input, dim=-1, descending=False, stable=True): { values, indices }. */
export const sort = defineMultiOutputOp({
  name: 'sort',
  dtypes: ALL_DTYPES,
  differentiableOutput: 'values',
  inputs: ([x]) => [x],
  forward: (x: Tensor, opts: SortOptions = {}) => {
    expectTensor('sort', 'input', x);
    checkOptions('sort', opts, SORT_OPTIONS);
    const dim = normDim('sort', opts.dim ?? -1, x.ndim);
    const out: SortResult = sortRaw('sort', x, dim, opts.descending ?? false, x.ndim ? x.shape[dim] : 1);
    return { out, attrs: { dim }, save: () => [out.indices] };
  },
  backward: valuesBackward,
});

/** torch.argsort(input, dim=-1, descending=False, stable=True): the indices of sort (i32, not differentiable). */
export const argsort = defineOp({
  name: 'argsort',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, opts: SortOptions = {}) => {
    expectTensor('argsort', 'input', x);
    checkOptions('argsort', opts, SORT_OPTIONS);
    const dim = normDim('argsort', opts.dim ?? -1, x.ndim);
    const { values, indices } = sortRaw('argsort', x, dim, opts.descending ?? false, x.ndim ? x.shape[dim] : 1);
    return { out: indices, attrs: undefined, release: [values] };
  },
  backward: NOT_DIFFERENTIABLE,
});

/**
 * torch.topk(input, k, dim=-1, largest=True, sorted=True): the k largest (or smallest) values along dim and their
 * indices, largest first. Among equal values the lower index comes first; NaN counts as the largest value.
 */
export const topk = defineMultiOutputOp({
  name: 'topk',
  dtypes: ALL_DTYPES,
  differentiableOutput: 'values',
  inputs: ([x]) => [x],
  forward: (x: Tensor, k: number, opts: TopkOptions = {}) => {
    expectTensor('topk', 'input', x);
    checkOptions('topk', opts, ['dim', 'largest', 'sorted']);
    const dim = normDim('topk', opts.dim ?? -1, x.ndim);
    const size = x.ndim ? x.shape[dim] : 1;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0)
      fail('topk', `k must be a non-negative integer, got ${describe(k)}`);
    if (k > size) fail('topk', `k=${k} is larger than the size ${size} of dim ${dim} (input shape ${fmtShape(x.shape)})`);
    const out: SortResult = sortRaw('topk', x, dim, opts.largest ?? true, k);
    return { out, attrs: { dim }, save: () => [out.indices] };
  },
  backward: valuesBackward,
});
