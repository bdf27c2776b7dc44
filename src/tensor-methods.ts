/**
 * Tensor methods mirror the functions (x.sum({ dim: 0 }), a.matmul(b)). They are attached here, after the
 * kernels exist, so the engine's Tensor class does not depend on the kernels layer.
 */
import { backward, noGrad } from './engine/autograd.js';
import { Tensor, type DType } from './engine/tensor.js';
import { setRequiresGrad } from './kernels/creation.js';
import * as ops from './ops.js';

type Operand = ops.Operand;

declare module './engine/tensor.js' {
  interface Tensor {
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
    sum(opts?: ops.ReduceOptions): Tensor;
    mean(opts?: ops.ReduceOptions): Tensor;
    max(opts?: ops.ReduceOptions): Tensor;
    min(opts?: ops.ReduceOptions): Tensor;
    argmax(opts?: { dim?: number; keepdim?: boolean }): Tensor;
    argmin(opts?: { dim?: number; keepdim?: boolean }): Tensor;
    var(opts?: ops.VarOptions): Tensor;
    std(opts?: ops.VarOptions): Tensor;
    logsumexp(opts?: ops.ReduceOptions): Tensor;
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
}

const P = Tensor.prototype as unknown as Record<string, unknown>;
const binaries = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
for (const name of binaries)
  P[name] = function (this: Tensor, other: Operand) {
    return ops[name](this, other);
  };
const unaries = [
  'neg', 'abs', 'sign', 'square', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid',
  'relu', 'silu', 'softplus', 'floor', 'ceil', 'round', 'clone',
] as const;
for (const name of unaries)
  P[name] = function (this: Tensor) {
    return ops[name](this);
  };
// methods whose arguments pass straight through after the tensor
const passthrough = [
  'gelu', 'leakyRelu', 'clamp', 'sum', 'mean', 'max', 'min', 'argmax', 'argmin', 'var', 'std', 'logsumexp', 'reshape',
  'view', 'flatten', 'squeeze', 'unsqueeze', 'permute', 'transpose', 'expand', 'slice', 'narrow', 'split', 'flip',
  'gather', 'scatterAdd', 'indexSelect', 'matmul', 'softmax', 'logSoftmax',
] as const;
for (const name of passthrough)
  P[name] = function (this: Tensor, ...args: unknown[]) {
    return (ops[name] as (...a: unknown[]) => unknown)(this, ...args);
  };

P.to = function (this: Tensor, dtype: DType) {
  return ops.cast(this, dtype);
};
P.detach = function (this: Tensor) {
  return this.shareStorage();
};
P.requiresGrad_ = function (this: Tensor, value = true) {
  return setRequiresGrad(this, value);
};
P.backward = function (this: Tensor, grad?: Tensor) {
  backward(this, grad);
};

export { noGrad };
