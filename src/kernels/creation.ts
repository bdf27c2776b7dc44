/** Tensor creation: from JS data (one upload) or on the GPU (fill, arange). */
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, writeBuffer, type UniformValues } from '../engine/runtime.js';
import { checkShapeArg } from '../engine/shape.js';
import { Storage, Tensor, arrayTypeOf, cpuForwardThreshold, shapeSize, type DType, type NestedArray, type TypedArray } from '../engine/tensor.js';
import { fillInto, fillKernel } from './base.js';
import { ceilDiv, defineSource, emptyTensor, expectTensor } from './common.js';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/** Validates the dtype and requiresGrad options before anything is allocated (a throw must not leak a buffer). */
function checkDtype(op: string, dtype: unknown, requiresGrad?: boolean): DType {
  if (dtype === 'f16')
    fail(op, "dtype 'f16' is not supported yet for tensors; use 'f32' (kernels may compute in f16 internally)");
  if (dtype !== 'f32' && dtype !== 'i32' && dtype !== 'u32') fail(op, `dtype must be 'f32', 'i32' or 'u32', got ${String(dtype)}`);
  if (requiresGrad && dtype !== 'f32')
    fail(op, `requiresGrad needs dtype f32 (only floating-point tensors have gradients), got dtype ${dtype}`);
  return dtype;
}

const INT_RANGE: Record<'i32' | 'u32', readonly [number, number]> = { i32: [-(2 ** 31), 2 ** 31 - 1], u32: [0, 2 ** 32 - 1] };

/**
 * Integer dtypes take values as PyTorch does: fractions truncate toward zero, but NaN, ±Infinity and values outside
 * the dtype's range raise (a typed-array conversion would wrap 3e10 to -64771072 and NaN to 0 silently).
 */
function checkRepresentable(op: string, values: ArrayLike<number>, dtype: DType): void {
  if (dtype === 'f32') return;
  const [lo, hi] = INT_RANGE[dtype];
  for (let i = 0; i < values.length; i++) {
    const v = Math.trunc(values[i]);
    if (!(v >= lo && v <= hi))
      fail(op, `value ${values[i]} at flat index ${i} cannot be represented as ${dtype} (integers from ${lo} to ${hi}; NaN and Infinity are not integers)`);
  }
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let v: NestedArray = data;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

function flatten(op: string, data: NestedArray, shape: number[], out: number[], depth = 0): void {
  if (depth === shape.length) {
    if (typeof data !== 'number') fail(op, `data is ragged or holds a non-number (${typeof data}) at depth ${depth}`);
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth])
    fail(op, `data is ragged: expected ${shape[depth]} entries at depth ${depth} (shape ${fmtShape(shape)})`);
  for (const d of data) flatten(op, d, shape, out, depth + 1);
}

/** vg.tensor(data, shape?, { dtype, requiresGrad }): data is a number, nested arrays or a typed array. */
export const tensor = defineSource('tensor', tensorForward);

function tensorForward(data: NestedArray | TypedArray | readonly number[], shape?: readonly number[] | null, opts: CreateOptions = {}): Tensor {
  const op = 'tensor';
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as TypedArray;
    inferred = [flat.length];
  } else if (typeof data === 'number') {
    flat = [data];
    inferred = [];
  } else if (Array.isArray(data)) {
    inferred = inferShape(data as NestedArray);
    const f: number[] = [];
    flatten(op, data as NestedArray, inferred, f);
    flat = f;
  } else fail(op, `data must be a number, a (nested) array or a typed array, got ${typeof data}`);
  const dtype = checkDtype(op, opts.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32'), opts.requiresGrad);
  const finalShape = shape ?? inferred;
  checkShapeArg(op, finalShape);
  if (shapeSize(finalShape) !== flat.length)
    fail(op, `shape ${fmtShape(finalShape)} holds ${shapeSize(finalShape)} elements but data has ${flat.length}`);
  const Ctor = arrayTypeOf(dtype);
  if (!(flat instanceof Ctor)) checkRepresentable(op, flat, dtype);
  let t: Tensor;
  if (flat.length <= cpuForwardThreshold()) t = new Tensor(Storage.onHost(Ctor.from(flat)), [...finalShape], dtype);
  else {
    t = emptyTensor(op, [...finalShape], dtype);
    writeBuffer(t.buffer(op), flat instanceof Ctor ? flat : Ctor.from(flat));
  }
  t.requiresGrad = Boolean(opts.requiresGrad);
  return t;
}

/** A tensor of `shape` filled with `value` on the GPU. */
export const full = defineSource('full', fullForward);

function fullForward(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  return filled('full', shape, value, opts);
}

/** full() under the name of the op the user called, so that errors name it. */
function filled(op: string, shape: readonly number[], value: number, opts: CreateOptions): Tensor {
  checkShapeArg(op, shape);
  if (typeof value !== 'number') fail(op, `fill value must be a number, got ${typeof value}`);
  const dtype = checkDtype(op, opts.dtype ?? 'f32', opts.requiresGrad);
  checkRepresentable(op, [value], dtype);
  const n = shapeSize(shape);
  let t: Tensor;
  if (n <= cpuForwardThreshold()) t = new Tensor(Storage.onHost(new (arrayTypeOf(dtype))(n).fill(value)), shape, dtype);
  else {
    t = emptyTensor(op, shape, dtype);
    fillInto(t, value);
  }
  t.requiresGrad = Boolean(opts.requiresGrad);
  return t;
}

export const zeros = defineSource('zeros', zerosForward);

function zerosForward(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return filled('zeros', shape, 0, opts);
}

export const ones = defineSource('ones', onesForward);

function onesForward(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return filled('ones', shape, 1, opts);
}

/** The *Like forms: t's shape, and t's dtype unless opts names one. */
function filledLike(op: string, t: Tensor, value: number, opts: CreateOptions): Tensor {
  expectTensor(op, 'input', t);
  return filled(op, t.shape, value, { ...opts, dtype: opts.dtype ?? t.dtype });
}

export const zerosLike = defineSource('zerosLike', zerosLikeForward);

function zerosLikeForward(t: Tensor, opts: CreateOptions = {}): Tensor {
  return filledLike('zerosLike', t, 0, opts);
}

export const onesLike = defineSource('onesLike', onesLikeForward);

function onesLikeForward(t: Tensor, opts: CreateOptions = {}): Tensor {
  return filledLike('onesLike', t, 1, opts);
}

export const fullLike = defineSource('fullLike', fullLikeForward);

function fullLikeForward(t: Tensor, value: number, opts: CreateOptions = {}): Tensor {
  return filledLike('fullLike', t, value, opts);
}

/** arange(end) or arange(start, end, step?) as in PyTorch; dtype i32 when all arguments are integers. */
export const arange = defineSource('arange', arangeForward);

function arangeForward(start: number, end?: number | null, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined || end === null) [start, end] = [0, start];
  if (![start, end, step].every((v) => typeof v === 'number' && Number.isFinite(v)))
    fail('arange', `start, end and step must be finite numbers, got ${start}, ${end}, ${step}`);
  if (step === 0) fail('arange', 'step must be non-zero');
  const allInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = checkDtype('arange', opts.dtype ?? (allInt ? 'i32' : 'f32'), opts.requiresGrad);
  const n = Math.max(0, Math.ceil((end - start) / step));
  if (dtype !== 'f32' && n > 0) {
    if (!Number.isInteger(start) || !Number.isInteger(step))
      fail('arange', `start and step must be integers for dtype ${dtype}, got start ${start} and step ${step}`);
    const [lo, hi] = INT_RANGE[dtype];
    const last = start + (n - 1) * step;
    if (Math.min(start, last) < lo || Math.max(start, last) > hi)
      fail('arange', `values from ${start} to ${last} do not fit dtype ${dtype} (range ${lo} to ${hi})`);
  }
  const t = emptyTensor('arange', [n], dtype);
  if (n > 0) {
    const k = fillKernel(dtype, 'arange');
    // the integer path reads istart/istep (their bits, wrapping), the float path start/step
    const u: UniformValues = dtype === 'f32' ? { n, start, step } : { n, istart: start, istep: step };
    dispatch(k, [t.buffer('arange')], u, grid1d(ceilDiv(n, k.workgroupSize)));
  }
  t.requiresGrad = Boolean(opts.requiresGrad);
  return t;
}
