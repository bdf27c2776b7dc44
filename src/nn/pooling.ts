/** Parameter-free layers (torch.nn.MaxPool2d/3d, AvgPool2d/3d, Upsample): they hold their options so a model's
 * Sequential keeps PyTorch's child indices, and therefore its state-dict keys. */
import type { Tensor } from '../engine/tensor.js';
import { interpolate, type InterpolateOptions } from '../kernels/interpolate.js';
import { avgPool2d, avgPool3d, maxPool2d, maxPool3d, type AvgPoolOptions, type IntOrTuple, type MaxPoolOptions } from '../kernels/pool.js';
import { Module } from './module.js';

/** A layer class around a pooling function (kernelSize, then its options). */
function poolLayer<O>(pool: (x: Tensor, kernelSize: IntOrTuple, opts: O) => Tensor) {
  return class extends Module {
    constructor(
      readonly kernelSize: IntOrTuple,
      readonly opts: O = {} as O,
    ) {
      super();
    }
    override forward(x: Tensor): Tensor {
      return pool(x, this.kernelSize, this.opts);
    }
  };
}

type PlainMaxPool = Omit<MaxPoolOptions, 'returnIndices'>;
export const MaxPool2d = poolLayer<PlainMaxPool>((x, k, o) => maxPool2d(x, k, o));
export const MaxPool3d = poolLayer<PlainMaxPool>((x, k, o) => maxPool3d(x, k, o));
export const AvgPool2d = poolLayer<AvgPoolOptions>(avgPool2d);
export const AvgPool3d = poolLayer<AvgPoolOptions>(avgPool3d);
export type MaxPool2d = InstanceType<typeof MaxPool2d>;
export type MaxPool3d = InstanceType<typeof MaxPool3d>;
export type AvgPool2d = InstanceType<typeof AvgPool2d>;
export type AvgPool3d = InstanceType<typeof AvgPool3d>;

export class Upsample extends Module {
  constructor(readonly opts: InterpolateOptions) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return interpolate(x, this.opts);
  }
}
