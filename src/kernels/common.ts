/** Helpers every op definition uses: output allocation and argument checks with clear messages. */
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, NOT_DIFFERENTIABLE, defineOp } from '../engine/op.js';
import { checkRank } from '../engine/shape.js';
import { Storage, Tensor, shapeSize, type DType } from '../engine/tensor.js';

/** A fresh, uninitialised tensor for an op's output. */
export function emptyTensor(op: string, shape: readonly number[], dtype: DType): Tensor {
  checkRank(op, shape);
  return new Tensor(Storage.allocate(shapeSize(shape) * 4, op), shape, dtype);
}

export function expectTensor(op: string, arg: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) fail(op, `${arg} must be a Tensor, got ${describe(v)}`);
  v.storageFor(op);
  return v;
}

export function expectFloat(op: string, arg: string, t: Tensor): void {
  if (t.dtype !== 'f32') fail(op, `${arg} must be a floating-point (f32) tensor, got ${t.dtype}. Convert with x.to('f32').`);
}

export function expectInt(op: string, arg: string, t: Tensor): void {
  if (t.dtype === 'f32') fail(op, `${arg} must be an integer tensor (i32 or u32), got f32. Convert with x.to('i32').`);
}

export function expectRank(op: string, arg: string, t: Tensor, ranks: readonly number[]): void {
  if (!ranks.includes(t.ndim))
    fail(op, `${arg} must have rank ${ranks.join(' or ')}, got rank ${t.ndim} (shape ${fmtShape(t.shape)})`);
}

export function describe(v: unknown): string {
  if (v instanceof Tensor) return `Tensor ${fmtShape(v.shape)} ${v.dtype}`;
  if (Array.isArray(v)) return `array of length ${v.length}`;
  return v === null ? 'null' : typeof v === 'object' ? 'object' : `${typeof v} ${String(v)}`;
}

/** A pipeline-cache key from a kernel's boolean defines: the names of those that are on. */
export function defineKey(defines: Record<string, boolean>): string {
  return Object.entries(defines)
    .filter(([, v]) => v)
    .map(([d]) => d)
    .join('.');
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** Registers an op that makes a tensor from non-tensor arguments (zeros, randn): nothing to differentiate or record. */
export function defineSource<Args extends unknown[]>(name: string, make: (...args: Args) => Tensor): (...args: Args) => Tensor {
  return defineOp({
    name,
    dtypes: ALL_DTYPES,
    inputs: () => [],
    forward: (...args: Args) => ({ out: make(...args), attrs: undefined }),
    backward: NOT_DIFFERENTIABLE,
  });
}
