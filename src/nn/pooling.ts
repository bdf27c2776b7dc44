/** Parameter-free layers (torch.nn.MaxPool2d/3d, AvgPool2d/3d, Upsample): they hold their options so a model's
 * Sequential keeps PyTorch's child indices, and therefore its state-dict keys. */
import type { Tensor } from '../engine/tensor.js';
import { interpolate, type InterpolateOptions } from '../kernels/interpolate.js';
import { avgPool2d, avgPool3d, maxPool2d, maxPool3d, type AvgPoolOptions, type IntOrTuple, type MaxPoolOptions } from '../kernels/pool.js';
import { Module } from './module.js';

/** A pooling layer: the kernel size and options of its functional op. */
abstract class PoolNd<O> extends Module {
  constructor(
    readonly kernelSize: IntOrTuple,
    readonly opts: O = {} as O,
  ) {
    super();
  }
  protected abstract pool(x: Tensor): Tensor;
  override forward(x: Tensor): Tensor {
    return this.pool(x);
  }
}

type PlainMaxPool = Omit<MaxPoolOptions, 'returnIndices'>;

export class MaxPool2d extends PoolNd<PlainMaxPool> {
  protected pool = (x: Tensor) => maxPool2d(x, this.kernelSize, this.opts);
}
export class MaxPool3d extends PoolNd<PlainMaxPool> {
  protected pool = (x: Tensor) => maxPool3d(x, this.kernelSize, this.opts);
}
export class AvgPool2d extends PoolNd<AvgPoolOptions> {
  protected pool = (x: Tensor) => avgPool2d(x, this.kernelSize, this.opts);
}
export class AvgPool3d extends PoolNd<AvgPoolOptions> {
  protected pool = (x: Tensor) => avgPool3d(x, this.kernelSize, this.opts);
}

export class Upsample extends Module {
  constructor(readonly opts: InterpolateOptions) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return interpolate(x, this.opts);
  }
}
