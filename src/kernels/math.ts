/** The public elementwise functions, thin wrappers over the table in elementwise.ts. */
import { fail } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { elementwise, type Operand } from './elementwise.js';

const unary = (name: Parameters<typeof elementwise>[0]) => (x: Tensor) => elementwise(name, [x]);
const binary = (name: Parameters<typeof elementwise>[0]) => (a: Operand, b: Operand) => elementwise(name, [a, b]);

export const neg = unary('neg');
export const abs = unary('abs');
export const sign = unary('sign');
export const square = unary('square');
export const exp = unary('exp');
export const log = unary('log');
export const log1p = unary('log1p');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const reciprocal = unary('reciprocal');
export const sin = unary('sin');
export const cos = unary('cos');
export const tanh = unary('tanh');
export const sigmoid = unary('sigmoid');
export const relu = unary('relu');
export const silu = unary('silu');
export const softplus = unary('softplus');
export const floor = unary('floor');
export const ceil = unary('ceil');
export const round = unary('round');
export const logicalNot = unary('logicalNot');

export const add = binary('add');
export const sub = binary('sub');
export const mul = binary('mul');
export const div = binary('div');
export const pow = binary('pow');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const eq = binary('eq');
export const ne = binary('ne');
export const lt = binary('lt');
export const le = binary('le');
export const gt = binary('gt');
export const ge = binary('ge');
export const logicalAnd = binary('logicalAnd');
export const logicalOr = binary('logicalOr');

/** GELU; `approximate: 'tanh'` selects the tanh form (PyTorch's option of the same name). */
export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  const a = opts.approximate ?? 'none';
  if (a !== 'none' && a !== 'tanh') fail('gelu', `approximate must be 'none' or 'tanh', got ${String(a)}`);
  return elementwise(a === 'tanh' ? 'geluTanh' : 'gelu', [x]);
}

export function leakyRelu(x: Tensor, opts: { negativeSlope?: number } = {}): Tensor {
  return elementwise('leakyRelu', [x, opts.negativeSlope ?? 0.01]);
}

/** clamp(x, { min, max }) or clamp(x, min, max); either bound may be omitted or be a tensor. */
export function clamp(x: Tensor, minOrOpts?: Operand | { min?: Operand; max?: Operand } | null, maxArg?: Operand | null): Tensor {
  let lo: Operand | null | undefined;
  let hi: Operand | null | undefined;
  if (minOrOpts !== null && typeof minOrOpts === 'object' && !(minOrOpts instanceof Tensor)) ({ min: lo, max: hi } = minOrOpts);
  else [lo, hi] = [minOrOpts, maxArg];
  const hasLo = lo !== undefined && lo !== null;
  const hasHi = hi !== undefined && hi !== null;
  if (hasLo && hasHi) return elementwise('clamp', [x, lo!, hi!]);
  if (hasLo) return elementwise('clampMin', [x, lo!]);
  if (hasHi) return elementwise('clampMax', [x, hi!]);
  fail('clamp', 'at least one of min and max must be given');
}

/** where(condition, x, y): x where condition is non-zero, else y (broadcast together). */
export function where(condition: Tensor, x: Operand, y: Operand): Tensor {
  if (!(condition instanceof Tensor)) fail('where', 'condition must be a Tensor');
  return elementwise('where', [condition, x, y]);
}
