/**
 * UNet2D: the 2-D U-Net of the semi-supervised segmentation papers (ACTION, ACTION++, MONA build on SSL4MIS's UNet):
 * five levels of [conv3x3 → BN → LeakyReLU → Dropout → conv3x3 → BN → LeakyReLU], max-pool down, transposed-conv
 * (or bilinear) up with skip concatenation, a 3x3 output conv. Children are registered under SSL4MIS's names
 * (encoder.in_conv.conv_conv.0.weight, decoder.up1.up.weight, decoder.out_conv.weight, ...) so its checkpoints load.
 */
import type { Tensor } from '../engine/tensor.js';
import { fail, fmtShape } from '../engine/errors.js';
import { cat } from '../kernels/shape.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, LeakyReLU, Sequential } from '../nn/layers.js';
import { MaxPool2d, Upsample } from '../nn/pooling.js';
import { padToMultiple } from '../inference/pad.js';

export interface UNet2DOptions {
  inChannels?: number;
  numClasses?: number;
  /** Channels per level, five levels (SSL4MIS: [16, 32, 64, 128, 256]). */
  features?: readonly number[];
  /** Dropout per level (SSL4MIS: [0.05, 0.1, 0.2, 0.3, 0.5]). */
  dropout?: readonly number[];
  /** Upsample with a 1x1 conv + bilinear interpolation (default, as SSL4MIS's UNet) or a 2x2 transposed conv (false, its UNet_DS). */
  bilinear?: boolean;
  /** Base seed of the initialisers (each layer gets its own derived seed), so a model is reproducible. */
  seed?: number;
}

/** Hands out one seed per layer, in construction order. */
const seeds = (base: number) => {
  let next = base;
  return () => next++;
};

class ConvBlock extends Module {
  constructor(inC: number, outC: number, dropoutP: number, seed: () => number) {
    super();
    const convBlock = new Sequential(
      new Conv2d(inC, outC, 3, { padding: 1, seed: seed() }),
      new BatchNorm2d(outC),
      new LeakyReLU(),
      new Dropout({ p: dropoutP }),
      new Conv2d(outC, outC, 3, { padding: 1, seed: seed() }),
      new BatchNorm2d(outC),
      new LeakyReLU(),
    );
    this.registerModule('conv_conv', convBlock);
  }
  override forward(x: Tensor): Tensor {
    return this.namedChildren()[0][1].call(x);
  }
}

class UpBlock extends Module {
  private readonly up: Module;
  private readonly conv: ConvBlock;
  private readonly conv1x1: Module | null;
  constructor(inDeep: number, inSkip: number, outC: number, dropoutP: number, bilinear: boolean, seed: () => number) {
    super();
    if (bilinear) {
      this.conv1x1 = new Conv2d(inDeep, inSkip, 1, { seed: seed() });
      this.up = new Upsample({ scaleFactor: 2, mode: 'bilinear', alignCorners: true });
      this.registerModule('conv1x1', this.conv1x1);
    } else {
      this.conv1x1 = null;
      this.up = new ConvTranspose2d(inDeep, inSkip, 2, { stride: 2, seed: seed() });
    }
    this.registerModule('up', this.up);
    this.conv = new ConvBlock(inSkip * 2, outC, dropoutP, seed);
    this.registerModule('conv', this.conv);
  }
  override forward(deep: Tensor, skip: Tensor): Tensor {
    const up = this.up.call(this.conv1x1 ? this.conv1x1.call(deep) : deep);
    return this.conv.call(cat([skip, up], 1));
  }
}

export class UNet2D extends Module {
  readonly numClasses: number;
  /** The encoder needs height and width in multiples of this (four 2x poolings); forward pads other sizes itself. */
  readonly sizeMultiple = 16;
  private readonly encoderLevels: Module[];
  private readonly decoderLevels: UpBlock[];
  private readonly outConv: Conv2d;

  constructor(opts: UNet2DOptions = {}) {
    super();
    const inChannels = opts.inChannels ?? 1;
    this.numClasses = opts.numClasses ?? 4;
    const ft = opts.features ?? [16, 32, 64, 128, 256];
    const dp = opts.dropout ?? [0.05, 0.1, 0.2, 0.3, 0.5];
    if (ft.length !== 5 || dp.length !== 5)
      fail('UNet2D', `features and dropout must list 5 levels, got ${ft.length} features and ${dp.length} dropout rates`);
    const seed = seeds(opts.seed ?? 0);

    const encoder = new Module();
    this.encoderLevels = [new ConvBlock(inChannels, ft[0], dp[0], seed)];
    encoder.registerModule('in_conv', this.encoderLevels[0]);
    for (let i = 1; i < 5; i++) {
      const down = new Module();
      const maxpoolConv = new Sequential(new MaxPool2d(2), new ConvBlock(ft[i - 1], ft[i], dp[i], seed));
      down.registerModule('maxpool_conv', maxpoolConv);
      down.forward = (x: Tensor) => maxpoolConv.call(x);
      encoder.registerModule(`down${i}`, down);
      this.encoderLevels.push(down);
    }
    this.registerModule('encoder', encoder);

    const decoder = new Module();
    this.decoderLevels = [];
    for (let i = 1; i <= 4; i++) {
      const up = new UpBlock(ft[5 - i], ft[4 - i], ft[4 - i], 0, opts.bilinear ?? true, seed);
      decoder.registerModule(`up${i}`, up);
      this.decoderLevels.push(up);
    }
    this.outConv = new Conv2d(ft[0], this.numClasses, 3, { padding: 1, seed: seed() });
    decoder.registerModule('out_conv', this.outConv);
    this.registerModule('decoder', decoder);
  }

  /** The encoder's five feature maps, shallow to deep (the contrastive methods project the deepest); H and W must be multiples of sizeMultiple. */
  encode(x: Tensor): Tensor[] {
    if (x.ndim !== 4 || x.shape[2] % this.sizeMultiple || x.shape[3] % this.sizeMultiple)
      fail(
        'UNet2D',
        `input must be [N, C, H, W] with H and W multiples of ${this.sizeMultiple}, got ${fmtShape(x.shape)}; ` +
          'forward pads other sizes itself; for encode, pad with vg.inference.padToMultiple (and crop outputs back)',
      );
    const feats: Tensor[] = [];
    let h = x;
    for (const level of this.encoderLevels) feats.push((h = level.call(h)));
    return feats;
  }

  /** Logits [N, numClasses, H, W] from the encoder's features. */
  decode(feats: Tensor[]): Tensor {
    return this.decodeWithMaps(feats).logits;
  }

  /** The logits and the decoder's maps coarse to fine: the bottleneck, then each up level's output (MORSE fuses them). */
  decodeWithMaps(feats: Tensor[]): { logits: Tensor; maps: Tensor[] } {
    let h = feats[4];
    const maps = [h];
    this.decoderLevels.forEach((up, i) => maps.push((h = up.call(h, feats[3 - i]))));
    return { logits: this.outConv.call(h), maps };
  }

  /**
   * Logits [N, numClasses, H, W] for any H and W: sizes that are not multiples of sizeMultiple are padded
   * symmetrically with zeros (MONAI's DivisiblePad) and the logits cropped back, so outputs stay on the input's grid.
   */
  override forward(x: Tensor): Tensor {
    if (x.ndim === 4 && (x.shape[2] % this.sizeMultiple || x.shape[3] % this.sizeMultiple)) {
      const padded = padToMultiple(x, this.sizeMultiple);
      const logits = this.decode(this.encode(padded.tensor));
      const out = padded.cropBack(logits);
      padded.tensor.dispose();
      logits.dispose();
      return out;
    }
    return this.decode(this.encode(x));
  }
}
