/** Parameter-free layers (torch.nn.MaxPool2d/3d, AvgPool2d/3d, Upsample): they hold their options so a model's
 * Sequential keeps PyTorch's child indices, and therefore its state-dict keys. */
import type { Tensor } from '../engine/tensor.js';
import { interpolate, type InterpolateOptions } from '../kernels/interpolate.js';
import { avgPool2d, avgPool3d, maxPool2d, maxPool3d, type AvgPoolOptions, type IntOrTuple, type MaxPoolOptions } from '../kernels/pool.js';
import { Module } from './module.js';

type PlainMaxPool = Omit<MaxPoolOptions, 'returnIndices'>;

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: IntOrTuple, readonly opts: PlainMaxPool = {}) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.opts);
  }
}

export class MaxPool3d extends Module {
  constructor(readonly kernelSize: IntOrTuple, readonly opts: PlainMaxPool = {}) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return maxPool3d(x, this.kernelSize, this.opts);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: IntOrTuple, readonly opts: AvgPoolOptions = {}) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.opts);
  }
}

export class AvgPool3d extends Module {
  constructor(readonly kernelSize: IntOrTuple, readonly opts: AvgPoolOptions = {}) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return avgPool3d(x, this.kernelSize, this.opts);
  }
}

export class Upsample extends Module {
  constructor(readonly opts: InterpolateOptions) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return interpolate(x, this.opts);
  }
}
