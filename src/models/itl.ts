/**
 * ITL (You et al., "Incremental Learning Meets Transfer Learning", MICCAI-DeCaF 2022): a site-agnostic ResNet encoder
 * and at most two decoder heads. The layout follows the networks released inside MORSE's network.py: `ItlDecoder` is
 * its residual `decoder` (five up stages of BN → ReLU → ConvTranspose 2×2 → Dropout, concatenation of the skip, a
 * 3×3 conv → Dropout and a residual block), `ResILNet` is `Res_IL_net`: one shared ResNet encoder, a teacher (source)
 * decoder and a student (multi-site) decoder, forward → [teacher logits, student logits].
 */
import type { Tensor } from '../engine/tensor.js';
import { add } from '../kernels/math.js';
import { cat } from '../kernels/shape.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, ModuleList, ReLU, Sequential } from '../nn/layers.js';
import { ResNet, type ResNetDepth } from './resnet.js';

type Seeds = () => number;

/** x + [BN → ReLU → 3×3 conv → Dropout] × 2 (network.py's ResidualBlock). */
class ResidualBlock extends Module {
  private readonly body: Sequential;
  constructor(channels: number, drop: number, seed: Seeds) {
    super();
    const unit = () => [new BatchNorm2d(channels), new ReLU(), new Conv2d(channels, channels, 3, { padding: 1, seed: seed() }), new Dropout({ p: drop })];
    this.body = new Sequential(...unit(), ...unit());
    this.registerModule('body', this.body);
  }
  override forward(x: Tensor): Tensor {
    return add(x, this.body.call(x));
  }
}

/** One up stage: BN → ReLU → ConvTranspose(2, 2) → Dropout, concat the skip, 3×3 conv → Dropout, residual block. */
class UpStage extends Module {
  private readonly up: Sequential;
  private readonly fuse: Sequential;
  private readonly res: ResidualBlock;
  constructor(inC: number, upC: number, skipC: number, outC: number, drop: number, seed: Seeds) {
    super();
    this.up = new Sequential(new BatchNorm2d(inC), new ReLU(), new ConvTranspose2d(inC, upC, 2, { stride: 2, seed: seed() }), new Dropout({ p: drop }));
    this.fuse = new Sequential(new Conv2d(upC + skipC, outC, 3, { padding: 1, seed: seed() }), new Dropout({ p: drop }));
    this.res = new ResidualBlock(outC, drop, seed);
    this.registerModule('up', this.up);
    this.registerModule('fuse', this.fuse);
    this.registerModule('res', this.res);
  }
  override forward(x: Tensor, skip: Tensor): Tensor {
    return this.res.call(this.fuse.call(cat([this.up.call(x), skip], 1)));
  }
}

export interface ItlDecoderOptions {
  /** Width of the last two stages (network.py's feature_base, 32). */
  featureBase?: number;
  /** Dropout after every conv (0.05). */
  drop?: number;
  seed?: number;
}

/**
 * network.py's residual decoder over a ResNet's five maps (H/2 .. H/32): four up stages with skips
 * (layer3, layer2, layer1, stem; the stem stage's conv narrows to featureBase: 2048 → 1024 → 512 → 256 → 64 + 64 → 32 for
 * ResNet-50, 512 → 256 → 128 → 64 → 64 + 64 → 32 for 18/34), then a skip-free up stage to full resolution
 * and BN → ReLU → 3×3 conv → numClasses.
 */
export class ItlDecoder extends Module {
  private readonly stages: ModuleList;
  private readonly final: Sequential;
  private readonly head: Sequential;
  constructor(skipChannels: readonly number[], numClasses: number, opts: ItlDecoderOptions = {}) {
    super();
    const base = opts.featureBase ?? 32;
    const drop = opts.drop ?? 0.05;
    let next = opts.seed ?? 0;
    const seed = () => next++;
    const [c0, c1, c2, c3, c4] = skipChannels;
    this.stages = new ModuleList([
      new UpStage(c4, c3, c3, c3, drop, seed),
      new UpStage(c3, c2, c2, c2, drop, seed),
      new UpStage(c2, c1, c1, c1, drop, seed),
      new UpStage(c1, c0, c0, base, drop, seed),
    ]);
    this.final = new Sequential(new BatchNorm2d(base), new ReLU(), new ConvTranspose2d(base, base, 2, { stride: 2, seed: seed() }), new Dropout({ p: drop }));
    this.head = new Sequential(new BatchNorm2d(base), new ReLU(), new Conv2d(base, numClasses, 3, { padding: 1, seed: seed() }));
    this.registerModule('stages', this.stages);
    this.registerModule('final', this.final);
    this.registerModule('head', this.head);
  }
  override forward(...maps: Tensor[]): Tensor {
    let h = maps[4];
    [3, 2, 1, 0].forEach((skip, i) => (h = this.stages.at(i).call(h, maps[skip])));
    return this.head.call(this.final.call(h));
  }
}

export interface ResILNetOptions extends ItlDecoderOptions {
  depth?: ResNetDepth;
  inChannels?: number;
  /** The encoder's base width (ResNet `width`, torchvision's 64). */
  width?: number;
  numClasses?: number;
}

/** Res_IL_net: a shared ResNet encoder with a teacher (source) and a student (multi-site) decoder. */
export class ResILNet extends Module {
  readonly encoder: ResNet;
  readonly teacher: ItlDecoder;
  readonly student: ItlDecoder;
  constructor(opts: ResILNetOptions = {}) {
    super();
    const seed = opts.seed ?? 0;
    this.encoder = new ResNet(opts.depth ?? 18, { inChannels: opts.inChannels ?? 3, width: opts.width, seed });
    const classes = opts.numClasses ?? 2;
    this.teacher = new ItlDecoder(this.encoder.skipChannels, classes, { ...opts, seed: seed + 10_000 });
    this.student = new ItlDecoder(this.encoder.skipChannels, classes, { ...opts, seed: seed + 20_000 });
    this.registerModule('encoder', this.encoder);
    this.registerModule('teacher_decoder', this.teacher);
    this.registerModule('student_decoder', this.student);
  }
  /** [teacher logits, student logits], each [N, numClasses, H, W] (H, W multiples of 32). */
  both(x: Tensor): [Tensor, Tensor] {
    const maps = this.encoder.encode(x);
    return [this.teacher.call(...maps), this.student.call(...maps)];
  }
  /** The student's logits: the multi-site model used after training. */
  override forward(x: Tensor): Tensor {
    return this.student.call(...this.encoder.encode(x));
  }
}
