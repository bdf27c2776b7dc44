/**
 * torch.nn.init: each initialiser overwrites the tensor's values in place (same storage, so modules and optimizers
 * holding it see the new values) with PyTorch's formulas for fan-in/fan-out and gain. With { seed } a draw is a pure
 * function of (seed, shape); without, it comes from the global generator (vg.manualSeed).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { noGrad } from '../engine/autograd.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { expectFloat, expectTensor } from '../kernels/common.js';
import { fillInto } from '../kernels/base.js';
import { normal, uniform } from '../kernels/random.js';
import { copyInto } from './module.js';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

/** PyTorch's calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d':
    case 'conv_transpose1d': case 'conv_transpose2d': case 'conv_transpose3d': case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      if (typeof slope !== 'number' || !Number.isFinite(slope)) fail('calculateGain', `negative slope must be a finite number, got ${String(param)}`);
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      return fail('calculateGain', `unsupported nonlinearity '${String(nonlinearity)}'; expected one of linear, conv*, sigmoid, tanh, relu, leaky_relu, selu`);
  }
}

/** PyTorch's _calculate_fan_in_and_fan_out: fanIn = size(1) * receptive field, fanOut = size(0) * receptive field. */
export function calculateFanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  expectTensor('calculateFanInAndFanOut', 'tensor', t);
  if (t.ndim < 2)
    fail('calculateFanInAndFanOut', `fan in and fan out need a tensor with at least 2 dims, got shape ${fmtShape(t.shape)}`);
  const receptive = shapeSize(t.shape.slice(2));
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

function target(op: string, t: Tensor): Tensor {
  expectTensor(op, 'tensor', t);
  expectFloat(op, 'tensor', t);
  return t;
}

function fill(op: string, t: Tensor, draw: () => Tensor): Tensor {
  noGrad(() => {
    const v = draw();
    copyInto(op, t, v);
    v.dispose();
  });
  return t;
}

function fanOf(op: string, t: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') fail(op, `mode must be 'fan_in' or 'fan_out', got ${String(mode)}`);
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const fan = mode === 'fan_in' ? fanIn : fanOut;
  if (fan === 0) fail(op, `cannot initialise a tensor of shape ${fmtShape(t.shape)}: its ${mode} is 0`);
  return fan;
}

export interface SeedOption {
  seed?: number;
}
export interface KaimingOptions extends SeedOption {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/** U(-b, b) with b = gain * sqrt(3 / fan), gain = calculateGain(nonlinearity, a). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const op = 'kaimingUniform_';
  target(op, t);
  const std = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0) / Math.sqrt(fanOf(op, t, opts.mode ?? 'fan_in'));
  const bound = Math.sqrt(3) * std;
  return fill(op, t, () => uniform(t.shape, -bound, bound, { seed: opts.seed }));
}

/** N(0, std^2) with std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const op = 'kaimingNormal_';
  target(op, t);
  const std = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0) / Math.sqrt(fanOf(op, t, opts.mode ?? 'fan_in'));
  return fill(op, t, () => normal(t.shape, 0, std, { seed: opts.seed }));
}

function xavierStd(op: string, t: Tensor, gain: number): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  if (fanIn + fanOut === 0) fail(op, `cannot initialise a tensor of shape ${fmtShape(t.shape)}: fanIn + fanOut is 0`);
  return gain * Math.sqrt(2 / (fanIn + fanOut));
}

/** U(-a, a) with a = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, opts: SeedOption & { gain?: number } = {}): Tensor {
  const op = 'xavierUniform_';
  target(op, t);
  const a = Math.sqrt(3) * xavierStd(op, t, opts.gain ?? 1);
  return fill(op, t, () => uniform(t.shape, -a, a, { seed: opts.seed }));
}

/** N(0, std^2) with std = gain * sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal_(t: Tensor, opts: SeedOption & { gain?: number } = {}): Tensor {
  const op = 'xavierNormal_';
  target(op, t);
  const std = xavierStd(op, t, opts.gain ?? 1);
  return fill(op, t, () => normal(t.shape, 0, std, { seed: opts.seed }));
}

export function uniform_(t: Tensor, opts: SeedOption & { a?: number; b?: number } = {}): Tensor {
  target('uniform_', t);
  return fill('uniform_', t, () => uniform(t.shape, opts.a ?? 0, opts.b ?? 1, { seed: opts.seed }));
}

export function normal_(t: Tensor, opts: SeedOption & { mean?: number; std?: number } = {}): Tensor {
  target('normal_', t);
  return fill('normal_', t, () => normal(t.shape, opts.mean ?? 0, opts.std ?? 1, { seed: opts.seed }));
}

export function constant_(t: Tensor, value: number): Tensor {
  target('constant_', t);
  if (typeof value !== 'number') fail('constant_', `value must be a number, got ${typeof value}`);
  fillInto(t, value);
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}
