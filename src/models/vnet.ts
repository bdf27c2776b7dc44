/**
 * VNet: the 3-D V-Net of UA-MT / DTC as used by ACTION, ACTION++ and MONA on LA (their networks/vnetWithArgs.py):
 * 16 base filters, stages of 1, 2, 3, 3, 3 [conv3x3x3 → BN → ReLU] with 2x2x2 strided-conv down-sampling, transposed
 * 2x2x2 up-sampling with additive skips, decoder stages of 3, 3, 2, 1 convs, Dropout3d(0.5) on the bottleneck and on
 * the last decoder map, a 1x1x1 output conv. State-dict keys are theirs (block_one.conv.0.weight, ..., out_conv.weight).
 */
import type { Tensor } from '../engine/tensor.js';
import { fail, fmtShape } from '../engine/errors.js';
import { dropout3d } from '../kernels/dropout.js';
import { add } from '../kernels/math.js';
import { Module } from '../nn/module.js';
import { BatchNorm3d, Conv3d, ConvTranspose3d, ReLU, Sequential } from '../nn/layers.js';

export interface VNetOptions {
  inChannels?: number;
  numClasses?: number;
  /** Base filters (16 in the papers); stage widths are 1, 2, 4, 8, 16 times this. */
  filters?: number;
  /** Dropout3d(0.5) on the bottleneck and the last decoder map in training mode (has_dropout; default true). */
  dropout?: boolean;
  seed?: number;
}

export interface VNetFeatures {
  logits: Tensor;
  /** x5_up, the first decoder map (the papers' `latent`). */
  latent: Tensor;
  /** [x5_up, x6_up, x7_up, x8_up, x9] (8 + 4 + 2 + 1 + 1 times the base filters: 256 channels at 16). */
  featureMaps: Tensor[];
}

/** `convs` × [Conv3d → BatchNorm3d → ReLU] in one Sequential named `conv` (kernel k, stride s; transposed for up). */
class Stage extends Module {
  private readonly conv: Sequential;
  constructor(convs: number, inC: number, outC: number, kind: 'same' | 'down' | 'up', seed: () => number) {
    super();
    const layers: Module[] = [];
    for (let i = 0; i < convs; i++) {
      const cin = i === 0 ? inC : outC;
      const conv =
        kind === 'same'
          ? new Conv3d(cin, outC, 3, { padding: 1, seed: seed() })
          : kind === 'down'
            ? new Conv3d(cin, outC, 2, { stride: 2, seed: seed() })
            : new ConvTranspose3d(cin, outC, 2, { stride: 2, seed: seed() });
      layers.push(conv, new BatchNorm3d(outC), new ReLU());
    }
    this.conv = new Sequential(...layers);
    this.registerModule('conv', this.conv);
  }
  override forward(x: Tensor): Tensor {
    return this.conv.call(x);
  }
}

export class VNet extends Module {
  readonly numClasses: number;
  /** Spatial sizes must be multiples of this (four 2x down-samplings). */
  readonly sizeMultiple = 16;
  private readonly useDropout: boolean;
  private readonly enc: Stage[];
  private readonly down: Stage[];
  private readonly dec: Stage[];
  private readonly up: Stage[];
  private readonly outConv: Conv3d;

  constructor(opts: VNetOptions = {}) {
    super();
    const f = opts.filters ?? 16;
    const inC = opts.inChannels ?? 1;
    this.numClasses = opts.numClasses ?? 2;
    this.useDropout = opts.dropout ?? true;
    if (!Number.isInteger(f) || f < 1) fail('VNet', `filters must be a positive integer, got ${String(opts.filters)}`);
    let next = opts.seed ?? 0;
    const seed = () => next++;
    const names = ['one', 'two', 'three', 'four', 'five'];
    const encConvs = [1, 2, 3, 3, 3];
    this.enc = [];
    this.down = [];
    // registration order follows the official constructor, so stateDict() keys come out in its order
    for (let i = 0; i < 5; i++) {
      const w = f * 2 ** i;
      const stage = new Stage(encConvs[i], i === 0 ? inC : w, w, 'same', seed);
      this.registerModule(`block_${names[i]}`, stage);
      this.enc.push(stage);
      if (i < 4) {
        const dw = new Stage(1, w, 2 * w, 'down', seed);
        this.registerModule(`block_${names[i]}_dw`, dw);
        this.down.push(dw);
      }
    }
    const decNames = ['five', 'six', 'seven', 'eight'];
    const decConvs = [3, 3, 2, 1];
    this.up = [];
    this.dec = [];
    for (let i = 0; i < 4; i++) {
      const w = f * 2 ** (4 - i);
      const up = new Stage(1, w, w / 2, 'up', seed);
      this.registerModule(`block_${decNames[i]}_up`, up);
      this.up.push(up);
      const stage = new Stage(decConvs[i], w / 2, w / 2, 'same', seed);
      this.registerModule(`block_${['six', 'seven', 'eight', 'nine'][i]}`, stage);
      this.dec.push(stage);
    }
    this.outConv = new Conv3d(f, this.numClasses, 1, { seed: seed() });
    this.registerModule('out_conv', this.outConv);
  }

  private drop(x: Tensor): Tensor {
    return this.useDropout && this.training ? dropout3d(x, { p: 0.5, training: true }) : x;
  }

  forwardFeatures(x: Tensor): VNetFeatures {
    if (x.ndim !== 5 || x.shape.slice(2).some((d) => d % this.sizeMultiple))
      fail('VNet', `input must be [N, C, D, H, W] with D, H and W multiples of ${this.sizeMultiple}, got ${fmtShape(x.shape)}`);
    const skips: Tensor[] = [];
    let h = x;
    for (let i = 0; i < 5; i++) {
      h = this.enc[i].call(h);
      if (i < 4) {
        skips.push(h);
        h = this.down[i].call(h);
      }
    }
    h = this.drop(h);
    const featureMaps: Tensor[] = [];
    for (let i = 0; i < 4; i++) {
      const up = add(this.up[i].call(h), skips[3 - i]);
      featureMaps.push(up);
      h = this.dec[i].call(up);
    }
    // featureMaps[4] = x9 after its dropout, as the official decoder returns it
    h = this.drop(h);
    featureMaps.push(h);
    return { logits: this.outConv.call(h), latent: featureMaps[0], featureMaps };
  }

  override forward(x: Tensor): Tensor {
    return this.forwardFeatures(x).logits;
  }
}
