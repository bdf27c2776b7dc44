/**
 * Tensor methods mirror the functions (x.sum({ dim: 0 }), a.matmul(b)): a method is a public op with the tensor as
 * its first argument. `TensorMethods` declares them (merged into the Tensor interface) and `methods` maps each to its
 * function; the compiler checks every entry against its declaration (a missing, extra or mistyped method does not
 * compile), and the prototype is filled from that table. They are attached here, above the kernels, so that the
 * engine's Tensor class does not depend on them.
 *
 * The declarations are written out rather than derived from the ops' inferred types: a mapped type over the ops, merged
 * into Tensor, makes TypeScript resolve those inferred types while it is still resolving Tensor itself (TS2310, TS2615).
 */
import { Tensor, type DType } from './engine/tensor.js';
import type { Operand, ReduceOptions, VarOptions } from './ops.js';
import * as ops from './ops.js';

export interface TensorMethods {
  add(other: Operand): Tensor;
  sub(other: Operand): Tensor;
  mul(other: Operand): Tensor;
  div(other: Operand): Tensor;
  pow(other: Operand): Tensor;
  maximum(other: Operand): Tensor;
  minimum(other: Operand): Tensor;
  eq(other: Operand): Tensor;
  ne(other: Operand): Tensor;
  lt(other: Operand): Tensor;
  le(other: Operand): Tensor;
  gt(other: Operand): Tensor;
  ge(other: Operand): Tensor;
  neg(): Tensor;
  abs(): Tensor;
  sign(): Tensor;
  square(): Tensor;
  exp(): Tensor;
  log(): Tensor;
  log1p(): Tensor;
  sqrt(): Tensor;
  rsqrt(): Tensor;
  reciprocal(): Tensor;
  sin(): Tensor;
  cos(): Tensor;
  tanh(): Tensor;
  sigmoid(): Tensor;
  relu(): Tensor;
  silu(): Tensor;
  softplus(): Tensor;
  floor(): Tensor;
  ceil(): Tensor;
  round(): Tensor;
  gelu(opts?: { approximate?: 'none' | 'tanh' }): Tensor;
  leakyRelu(opts?: { negativeSlope?: number }): Tensor;
  clamp(min?: Operand | { min?: Operand; max?: Operand } | null, max?: Operand | null): Tensor;
  sum(opts?: ReduceOptions): Tensor;
  mean(opts?: ReduceOptions): Tensor;
  max(opts?: ReduceOptions): Tensor;
  min(opts?: ReduceOptions): Tensor;
  argmax(opts?: { dim?: number; keepdim?: boolean }): Tensor;
  argmin(opts?: { dim?: number; keepdim?: boolean }): Tensor;
  var(opts?: VarOptions): Tensor;
  std(opts?: VarOptions): Tensor;
  logsumexp(opts?: ReduceOptions): Tensor;
  reshape(shape: readonly number[]): Tensor;
  view(shape: readonly number[]): Tensor;
  flatten(startDim?: number, endDim?: number): Tensor;
  squeeze(dim?: number | number[]): Tensor;
  unsqueeze(dim: number): Tensor;
  permute(dims: readonly number[]): Tensor;
  transpose(dim0: number, dim1: number): Tensor;
  expand(shape: readonly number[]): Tensor;
  slice(dim: number, start?: number, end?: number, step?: number): Tensor;
  narrow(dim: number, start: number, length: number): Tensor;
  split(splitSizeOrSections: number | readonly number[], dim?: number): Tensor[];
  flip(dims: number | readonly number[]): Tensor;
  gather(dim: number, index: Tensor): Tensor;
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
  indexSelect(dim: number, index: Tensor): Tensor;
  matmul(other: Tensor): Tensor;
  softmax(opts?: { dim?: number }): Tensor;
  logSoftmax(opts?: { dim?: number }): Tensor;
  clone(): Tensor;
  /** dtype conversion (x.to('i32')). */
  to(dtype: DType): Tensor;
  /** A tensor sharing this storage, outside the autodiff graph. */
  detach(): Tensor;
  /** Sets requiresGrad in place and returns this tensor (PyTorch's requires_grad_). */
  requiresGrad_(value?: boolean): Tensor;
  backward(grad?: Tensor): void;
}

declare module './engine/tensor.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the methods merge into the class's interface
  interface Tensor extends TensorMethods {}
}

/** Each method's function: the method's parameters after the tensor itself. */
type MethodTable = {
  [K in keyof TensorMethods]: (self: Tensor, ...args: Parameters<TensorMethods[K]>) => ReturnType<TensorMethods[K]>;
};

const methods: MethodTable = {
  add: ops.add,
  sub: ops.sub,
  mul: ops.mul,
  div: ops.div,
  pow: ops.pow,
  maximum: ops.maximum,
  minimum: ops.minimum,
  eq: ops.eq,
  ne: ops.ne,
  lt: ops.lt,
  le: ops.le,
  gt: ops.gt,
  ge: ops.ge,
  neg: ops.neg,
  abs: ops.abs,
  sign: ops.sign,
  square: ops.square,
  exp: ops.exp,
  log: ops.log,
  log1p: ops.log1p,
  sqrt: ops.sqrt,
  rsqrt: ops.rsqrt,
  reciprocal: ops.reciprocal,
  sin: ops.sin,
  cos: ops.cos,
  tanh: ops.tanh,
  sigmoid: ops.sigmoid,
  relu: ops.relu,
  silu: ops.silu,
  softplus: ops.softplus,
  floor: ops.floor,
  ceil: ops.ceil,
  round: ops.round,
  gelu: ops.gelu,
  leakyRelu: ops.leakyRelu,
  clamp: ops.clamp,
  sum: ops.sum,
  mean: ops.mean,
  max: ops.max,
  min: ops.min,
  argmax: ops.argmax,
  argmin: ops.argmin,
  var: ops.variance,
  std: ops.std,
  logsumexp: ops.logsumexp,
  reshape: ops.reshape,
  view: ops.view,
  flatten: ops.flatten,
  squeeze: ops.squeeze,
  unsqueeze: ops.unsqueeze,
  permute: ops.permute,
  transpose: ops.transpose,
  expand: ops.expand,
  slice: ops.slice,
  narrow: ops.narrow,
  split: ops.split,
  flip: ops.flip,
  gather: ops.gather,
  scatterAdd: ops.scatterAdd,
  indexSelect: ops.indexSelect,
  matmul: ops.matmul,
  softmax: ops.softmax,
  logSoftmax: ops.logSoftmax,
  clone: ops.clone,
  to: ops.cast,
  detach: (x) => x.shareStorage(),
  requiresGrad_: (x, value = true) => {
    x.requiresGrad = value;
    return x;
  },
  backward: ops.backward,
};

for (const [name, fn] of Object.entries(methods))
  Object.defineProperty(Tensor.prototype, name, {
    value(this: Tensor, ...args: unknown[]) {
      return Reflect.apply(fn, undefined, [this, ...args]);
    },
    writable: true,
    configurable: true,
  });
