/**
 * Tensor methods mirror the functions (x.sum({ dim: 0 }), a.matmul(b)): one table maps each method to its function,
 * the tensor as the first argument. The Tensor interface gets the methods' types from that table (a mapped type merged
 * by declaration merging) and the prototype is filled from it, so a method cannot exist on one side only, and each
 * entry's call to its function is type-checked. They are attached here, above the kernels, so that the engine's Tensor
 * class does not depend on them.
 *
 * Each entry states its parameters and result rather than being the function itself: a mapped type over the ops' own
 * types (inferred from their definitions) makes TypeScript resolve them while it is still resolving Tensor (TS2310,
 * TS2615); annotated entries need nothing from Tensor's members.
 */
import { Tensor, type DType } from './engine/tensor.js';
import type { MultinomialOptions, Operand, QuantileOptions, ReduceOptions, SortOptions, SortResult, TopkOptions, VarOptions } from './ops.js';
import * as ops from './ops.js';

const methods = {
  add: (x: Tensor, other: Operand): Tensor => ops.add(x, other),
  sub: (x: Tensor, other: Operand): Tensor => ops.sub(x, other),
  mul: (x: Tensor, other: Operand): Tensor => ops.mul(x, other),
  div: (x: Tensor, other: Operand): Tensor => ops.div(x, other),
  pow: (x: Tensor, other: Operand): Tensor => ops.pow(x, other),
  maximum: (x: Tensor, other: Operand): Tensor => ops.maximum(x, other),
  minimum: (x: Tensor, other: Operand): Tensor => ops.minimum(x, other),
  eq: (x: Tensor, other: Operand): Tensor => ops.eq(x, other),
  ne: (x: Tensor, other: Operand): Tensor => ops.ne(x, other),
  lt: (x: Tensor, other: Operand): Tensor => ops.lt(x, other),
  le: (x: Tensor, other: Operand): Tensor => ops.le(x, other),
  gt: (x: Tensor, other: Operand): Tensor => ops.gt(x, other),
  ge: (x: Tensor, other: Operand): Tensor => ops.ge(x, other),
  neg: (x: Tensor): Tensor => ops.neg(x),
  abs: (x: Tensor): Tensor => ops.abs(x),
  sign: (x: Tensor): Tensor => ops.sign(x),
  square: (x: Tensor): Tensor => ops.square(x),
  exp: (x: Tensor): Tensor => ops.exp(x),
  log: (x: Tensor): Tensor => ops.log(x),
  log1p: (x: Tensor): Tensor => ops.log1p(x),
  sqrt: (x: Tensor): Tensor => ops.sqrt(x),
  rsqrt: (x: Tensor): Tensor => ops.rsqrt(x),
  reciprocal: (x: Tensor): Tensor => ops.reciprocal(x),
  sin: (x: Tensor): Tensor => ops.sin(x),
  cos: (x: Tensor): Tensor => ops.cos(x),
  tanh: (x: Tensor): Tensor => ops.tanh(x),
  sigmoid: (x: Tensor): Tensor => ops.sigmoid(x),
  relu: (x: Tensor): Tensor => ops.relu(x),
  silu: (x: Tensor): Tensor => ops.silu(x),
  softplus: (x: Tensor): Tensor => ops.softplus(x),
  floor: (x: Tensor): Tensor => ops.floor(x),
  ceil: (x: Tensor): Tensor => ops.ceil(x),
  round: (x: Tensor): Tensor => ops.round(x),
  gelu: (x: Tensor, opts?: { approximate?: 'none' | 'tanh' }): Tensor => ops.gelu(x, opts),
  leakyRelu: (x: Tensor, opts?: { negativeSlope?: number }): Tensor => ops.leakyRelu(x, opts),
  clamp: (x: Tensor, min?: Operand | { min?: Operand; max?: Operand } | null, max?: Operand | null): Tensor => ops.clamp(x, min, max),
  sum: (x: Tensor, opts?: ReduceOptions): Tensor => ops.sum(x, opts),
  mean: (x: Tensor, opts?: ReduceOptions): Tensor => ops.mean(x, opts),
  max: (x: Tensor, opts?: ReduceOptions): Tensor => ops.max(x, opts),
  min: (x: Tensor, opts?: ReduceOptions): Tensor => ops.min(x, opts),
  argmax: (x: Tensor, opts?: { dim?: number; keepdim?: boolean }): Tensor => ops.argmax(x, opts),
  argmin: (x: Tensor, opts?: { dim?: number; keepdim?: boolean }): Tensor => ops.argmin(x, opts),
  var: (x: Tensor, opts?: VarOptions): Tensor => ops.variance(x, opts),
  std: (x: Tensor, opts?: VarOptions): Tensor => ops.std(x, opts),
  logsumexp: (x: Tensor, opts?: ReduceOptions): Tensor => ops.logsumexp(x, opts),
  reshape: (x: Tensor, shape: readonly number[]): Tensor => ops.reshape(x, shape),
  view: (x: Tensor, shape: readonly number[]): Tensor => ops.view(x, shape),
  flatten: (x: Tensor, startDim?: number, endDim?: number): Tensor => ops.flatten(x, startDim, endDim),
  squeeze: (x: Tensor, dim?: number | number[]): Tensor => ops.squeeze(x, dim),
  unsqueeze: (x: Tensor, dim: number): Tensor => ops.unsqueeze(x, dim),
  permute: (x: Tensor, dims: readonly number[]): Tensor => ops.permute(x, dims),
  transpose: (x: Tensor, dim0: number, dim1: number): Tensor => ops.transpose(x, dim0, dim1),
  expand: (x: Tensor, shape: readonly number[]): Tensor => ops.expand(x, shape),
  slice: (x: Tensor, dim: number, start?: number, end?: number, step?: number): Tensor => ops.slice(x, dim, start, end, step),
  narrow: (x: Tensor, dim: number, start: number, length: number): Tensor => ops.narrow(x, dim, start, length),
  split: (x: Tensor, splitSizeOrSections: number | readonly number[], dim?: number): Tensor[] => ops.split(x, splitSizeOrSections, dim),
  flip: (x: Tensor, dims: number | readonly number[]): Tensor => ops.flip(x, dims),
  gather: (x: Tensor, dim: number, index: Tensor): Tensor => ops.gather(x, dim, index),
  scatterAdd: (x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor => ops.scatterAdd(x, dim, index, src),
  scatter: (x: Tensor, dim: number, index: Tensor, src: Tensor | number): Tensor => ops.scatter(x, dim, index, src),
  maskedSelect: (x: Tensor, mask: Tensor): Promise<Tensor> => ops.maskedSelect(x, mask),
  nonzero: (x: Tensor): Promise<Tensor> => ops.nonzero(x),
  indexSelect: (x: Tensor, dim: number, index: Tensor): Tensor => ops.indexSelect(x, dim, index),
  matmul: (x: Tensor, other: Tensor): Tensor => ops.matmul(x, other),
  softmax: (x: Tensor, opts?: { dim?: number }): Tensor => ops.softmax(x, opts),
  logSoftmax: (x: Tensor, opts?: { dim?: number }): Tensor => ops.logSoftmax(x, opts),
  cumsum: (x: Tensor, dim: number): Tensor => ops.cumsum(x, dim),
  sort: (x: Tensor, opts?: SortOptions): SortResult => ops.sort(x, opts),
  argsort: (x: Tensor, opts?: SortOptions): Tensor => ops.argsort(x, opts),
  topk: (x: Tensor, k: number, opts?: TopkOptions): SortResult => ops.topk(x, k, opts),
  quantile: (x: Tensor, q: number | readonly number[], opts?: QuantileOptions): Tensor => ops.quantile(x, q, opts),
  multinomial: (x: Tensor, numSamples: number, opts?: MultinomialOptions): Tensor => ops.multinomial(x, numSamples, opts),
  clone: (x: Tensor): Tensor => ops.clone(x),
  /** dtype conversion (x.to('i32')). */
  to: (x: Tensor, dtype: DType): Tensor => ops.cast(x, dtype),
  /** A tensor sharing this storage, outside the autodiff graph. */
  detach: (x: Tensor): Tensor => x.shareStorage(),
  /** Sets requiresGrad in place and returns this tensor (PyTorch's requires_grad_). */
  requiresGrad_: (x: Tensor, value: boolean = true): Tensor => {
    x.requiresGrad = value;
    return x;
  },
  backward: (x: Tensor, grad?: Tensor): void => ops.backward(x, grad),
};

/** The method form of a function whose first parameter is the tensor. */
type AsMethod<F> = F extends (self: Tensor, ...args: infer P) => infer R ? (...args: P) => R : never;

export type TensorMethods = { [K in keyof typeof methods]: AsMethod<(typeof methods)[K]> };

declare module './engine/tensor.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the methods merge into the class's interface
  interface Tensor extends TensorMethods {}
}

for (const [name, fn] of Object.entries(methods))
  Object.defineProperty(Tensor.prototype, name, {
    value(this: Tensor, ...args: unknown[]) {
      return Reflect.apply(fn, undefined, [this, ...args]);
    },
    writable: true,
    configurable: true,
  });
