/**
 * dropout, dropout2d, dropout3d with PyTorch's semantics. The mask is never stored: the kernel draws it from Philox
 * (seed, offset), as vg.rand does, and backward draws the same mask again.
 */
import dropoutWgsl from '../../shaders/dropout.wgsl';
import philoxWgsl from '../../shaders/philox.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, composed, defineOp, type BackwardRule, type Composed, type Forward } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { ceilDiv, defineKey, describe, emptyTensor, expectFloat, expectTensor } from './common.js';
import { mul } from './math.js';
import { randomStream } from './random.js';
import { reshape } from './shape.js';

interface DropoutAttrs {
  seed: number;
  offset: number;
  group: number;
  drop: number;
  scale: number;
}

function dropoutRaw(op: string, x: Tensor, a: DropoutAttrs): Tensor {
  const out = emptyTensor(op, x.shape, 'f32');
  const n = x.size;
  if (n === 0) return out;
  const vec4 = n % 4 === 0 && (a.group === 1 || a.group % 4 === 0);
  const defines = { PHILOX_FUNCTIONS_ONLY: true, VEC4: vec4, CHANNELS: a.group > 1 };
  const k = kernel(`dropout.${defineKey(defines)}`, () => philoxWgsl + '\n' + dropoutWgsl, { defines });
  dispatch(
    k,
    [out.buffer(op), x.buffer(op)],
    { n, seedLo: a.seed >>> 0, seedHi: Math.floor(a.seed / 2 ** 32) >>> 0, offset: a.offset, group: a.group, drop: a.drop, scale: a.scale },
    grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)),
  );
  return out;
}

export interface DropoutOptions {
  p?: number;
  training?: boolean;
  seed?: number;
}

/** Shared by dropout / dropout2d / dropout3d: `group` consecutive elements share one draw. */
function dropoutForward(op: string, x: Tensor, group: number, opts: DropoutOptions): Forward<Tensor, DropoutAttrs> | Composed<Tensor> {
  const p = opts.p ?? 0.5;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1))
    fail(op, `p (the probability of an element being zeroed) must be in [0, 1], got ${describe(p)}`);
  if (!(opts.training ?? true) || p === 0 || x.size === 0) return composed(reshape(x, x.shape));
  if (p === 1) return composed(mul(x, 0));
  const { seed, offset } = randomStream(op, opts.seed);
  // the mask keeps u >= p (u on the 2^-24 grid of vg.rand), with p rounded to f32 as the kernel compares it
  const attrs = { seed, offset, group, drop: Math.fround(p), scale: Math.fround(1 / (1 - p)) };
  return { out: dropoutRaw(op, x, attrs), attrs };
}

/** The same mask, regenerated from (seed, offset). */
const dropoutBackward: BackwardRule<DropoutAttrs> = (g, ctx) => [dropoutRaw('dropout.backward', g, ctx.attrs)];

/**
 * dropout: zeroes each element with probability p and scales the others by 1 / (1 - p). Element i is kept when
 * vg.rand(x.shape, { seed })[i] >= p; without a seed the global generator (vg.manualSeed) is drawn from and advances.
 * Identity when training is false or p = 0; zeros when p = 1.
 */
export const dropout = defineOp({
  name: 'dropout',
  dtypes: FLOAT,
  inputs: ([x]) => [x],
  forward: (x: Tensor, opts: DropoutOptions = {}) => {
    expectTensor('dropout', 'input', x);
    expectFloat('dropout', 'input', x);
    return dropoutForward('dropout', x, 1, opts);
  },
  backward: dropoutBackward,
});

function channelDropout(op: string, x: Tensor, spatial: number, opts: DropoutOptions): Forward<Tensor, DropoutAttrs> | Composed<Tensor> {
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  if (x.ndim !== spatial + 1 && x.ndim !== spatial + 2) {
    const dims = spatial === 2 ? 'H, W' : 'D, H, W';
    fail(op, `input must have shape [N, C, ${dims}] or [C, ${dims}], got ${fmtShape(x.shape)}`);
  }
  return dropoutForward(op, x, shapeSize(x.shape.slice(x.ndim - spatial)), opts);
}

function channelDropoutOp(name: 'dropout2d' | 'dropout3d', spatial: number) {
  return defineOp({
    name,
    dtypes: FLOAT,
    inputs: ([x]) => [x],
    forward: (x: Tensor, opts: DropoutOptions = {}) => channelDropout(name, x, spatial, opts),
    backward: dropoutBackward,
  });
}

/** dropout2d: zeroes whole channels of [N, C, H, W] (or [C, H, W]); channel (n, c) is kept when vg.rand([N, C], { seed }) >= p. */
export const dropout2d = channelDropoutOp('dropout2d', 2);

/** dropout3d: zeroes whole channels of [N, C, D, H, W] (or [C, D, H, W]). */
export const dropout3d = channelDropoutOp('dropout3d', 3);
