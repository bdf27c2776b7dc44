/**
 * The representation heads of ACTION, ACTION++ and MONA (the official model.py's ISD projector/predictor,
 * ProjectionHead, RepresentationHead). The paper calls the projectors "non-linear"; the official code stacks linear
 * layers with nothing in between. `nonlinear` (default true, the paper) puts a ReLU between the two layers; false is
 * the code's purely linear stack.
 */
import type { Tensor } from '../../engine/tensor.js';
import { adaptiveAvgPool2d, adaptiveAvgPool3d } from '../../kernels/pool.js';
import { flatten } from '../../kernels/shape.js';
import { relu } from '../../kernels/math.js';
import { Conv2d, Conv3d, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';

export interface HeadOptions {
  nonlinear?: boolean;
  seed?: number;
}

/** Two layers a → b (registered as `first` / `second`), a ReLU between them when nonlinear. */
class TwoLayer extends Module {
  constructor(
    protected readonly first: Module,
    protected readonly second: Module,
    private readonly nonlinear: boolean,
  ) {
    super();
  }
  override forward(x: Tensor): Tensor {
    const h = this.first.call(x);
    return this.second.call(this.nonlinear ? relu(h) : h);
  }
}

/** ISD's global projector g: global average pool of the bottleneck [N, C, ...] → Linear(C, hidden) → Linear(hidden, out). */
export class GlobalProjector extends TwoLayer {
  constructor(inDim: number, hidden: number, outDim: number, opts: HeadOptions = {}) {
    const s = opts.seed ?? 0;
    super(new Linear(inDim, hidden, { seed: s }), new Linear(hidden, outDim, { seed: s + 2 }), opts.nonlinear ?? true);
  }
  override forward(latent: Tensor): Tensor {
    const pooled = latent.ndim === 5 ? adaptiveAvgPool3d(latent, 1) : adaptiveAvgPool2d(latent, 1);
    return super.forward(flatten(pooled, 1));
  }
}

/** The student-only predictor h: Linear(d, d) → Linear(d, d). */
export class Predictor extends TwoLayer {
  constructor(dim: number, opts: HeadOptions = {}) {
    const s = opts.seed ?? 0;
    super(new Linear(dim, dim, { seed: s }), new Linear(dim, dim, { seed: s + 2 }), opts.nonlinear ?? true);
  }
}

/**
 * The local projector on patches of the logit map: adaptive average pool to `pool` (per spatial axis) → 1x1 conv
 * (C → 2C) → 1x1 conv (2C → C), flattened to C·pool^nd values per patch.
 */
export class LocalProjector extends TwoLayer {
  constructor(channels: number, readonly pool: number, readonly spatialDims: 2 | 3 = 2, opts: HeadOptions = {}) {
    const s = opts.seed ?? 0;
    const Conv = spatialDims === 3 ? Conv3d : Conv2d;
    super(new Conv(channels, 2 * channels, 1, { seed: s }), new Conv(2 * channels, channels, 1, { seed: s + 2 }), opts.nonlinear ?? true);
  }
  override forward(patches: Tensor): Tensor {
    const pooled = this.spatialDims === 3 ? adaptiveAvgPool3d(patches, this.pool) : adaptiveAvgPool2d(patches, this.pool);
    return flatten(super.forward(pooled), 1);
  }
}

/** The local predictor on projected patches: 1x1 conv (C → C) twice, applied to the [n, C·pool^nd] vectors as linears. */
export class LocalPredictor extends Predictor {}

/** The dense representation head H_r: 3x3 conv (in → out, no bias) → 1x1 conv (out → out), on [N, in, ...spatial]. */
export class RepresentationHead extends TwoLayer {
  constructor(inChannels: number, outChannels: number, readonly spatialDims: 2 | 3 = 2, opts: HeadOptions = {}) {
    const s = opts.seed ?? 0;
    const Conv = spatialDims === 3 ? Conv3d : Conv2d;
    super(
      new Conv(inChannels, outChannels, 3, { padding: 1, bias: false, seed: s }),
      new Conv(outChannels, outChannels, 1, { seed: s + 2 }),
      opts.nonlinear ?? true,
    );
  }
}
