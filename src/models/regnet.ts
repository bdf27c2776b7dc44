/**
 * RegNet (Qin et al. 2018, "Joint learning of motion estimation and segmentation for cardiac MR image sequences") as
 * the biomechanics-informed registration paper uses it: Registration_Net of Voldemort108X/bioinformed_reg network.py.
 * - A Siamese VGG encoder with shared weights: five blocks of conv 3x3 (no bias) + BatchNorm + ReLU, widths 64, 128,
 *   256, 512, 512 (2, 2, 3, 3, 3 convs), blocks 2-5 start with a stride-2 conv.
 * - Per scale, the two streams' features are concatenated and fused by conv 3x3 + BN + ReLU to 64 channels, then
 *   upsampled bilinearly (alignCorners true) to full resolution; the five maps (320 channels) go through conv 1x1
 *   (320 → 64, bias), conv 1x1 + BN + ReLU, conv 1x1 (64 → 2) and tanh.
 * - The output is a displacement in normalised [-1, 1] coordinates (channel 0 along W / x, channel 1 along H / y),
 *   added to a linspace(-1, 1) identity grid and sampled with gridSample (bilinear, zeros, alignCorners false, the
 *   PyTorch default the official call gets). That identity is alignCorners-true style while the sampling is not, so a
 *   zero output scales the image by (n - 1) / n about its centre rather than reproducing it: the official behaviour,
 *   kept so trained weights transfer.
 * Keys are the official ones: conv_blocks.{block}.{conv}.{0: conv, 1: bn}, conv.{scale}.{0, 1}, conv6, conv7.{0, 1}, conv8.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { add, cat, gridSample, interpolate, permute, tanh, tensor } from '../ops.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, ReLU, Sequential } from '../nn/layers.js';

export interface RegNetOptions {
  /** Channels of each input image (the official n_ch). Default 1. */
  nCh?: number;
  /** Base seed of the layers' initialisation (layer k gets seed + k); default: the global generator. */
  seed?: number;
}

export interface RegNetOutput {
  /** The network's output [N, 2, H, W] in (-1, 1): normalised displacement, channel 0 along W (x), 1 along H (y). */
  flow: Tensor;
  /** The warped image: gridSample(image, identity + flow) (image defaults to source). */
  warped: Tensor;
}

/** The official conv(): conv (no bias) → BatchNorm2d → ReLU. */
const convBnRelu = (cin: number, cout: number, seed: number | undefined, k = 3, stride = 1, padding = 1) =>
  new Sequential(new Conv2d(cin, cout, k, { stride, padding, bias: false, seed }), new BatchNorm2d(cout), new ReLU());

/** The identity grid [1, H, W, 2] of the official generate_grid: (x, y) = (linspace(-1, 1, W)[w], linspace(-1, 1, H)[h]). */
function identityGrid(h: number, w: number): Tensor {
  const line = (n: number, i: number) => (n === 1 ? -1 : -1 + (2 * i) / (n - 1));
  const g = new Float32Array(h * w * 2);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      g[(i * w + j) * 2] = line(w, j);
      g[(i * w + j) * 2 + 1] = line(h, i);
    }
  return tensor(g, [1, h, w, 2]);
}

export class RegNet extends Module {
  readonly nCh: number;
  /** Height and width must be multiples of this (four stride-2 convs, and each scale upsampled back by 2^i). */
  readonly sizeMultiple = 16;
  private readonly convBlocks: Sequential;
  private readonly conv: Sequential;
  private readonly conv6: Conv2d;
  private readonly conv7: Sequential;
  private readonly conv8: Conv2d;

  constructor(opts: RegNetOptions = {}) {
    super();
    const nCh = opts.nCh ?? 1;
    if (!Number.isInteger(nCh) || nCh < 1) fail('RegNet', `nCh must be a positive integer, got ${describe(nCh)}`);
    this.nCh = nCh;
    let next = opts.seed;
    const seed = () => (next === undefined ? undefined : next++);
    const block = (cin: number, cout: number, n: number, stride: number) =>
      new Sequential(...Array.from({ length: n }, (_, i) => convBnRelu(i ? cout : cin, cout, seed(), 3, i ? 1 : stride)));
    this.convBlocks = new Sequential(block(nCh, 64, 2, 1), block(64, 128, 2, 2), block(128, 256, 3, 2), block(256, 512, 3, 2), block(512, 512, 3, 2));
    this.registerModule('conv_blocks', this.convBlocks);
    this.conv = new Sequential(...[128, 256, 512, 1024, 1024].map((c) => convBnRelu(c, 64, seed())));
    this.registerModule('conv', this.conv);
    this.conv6 = new Conv2d(64 * 5, 64, 1, { seed: seed() });
    this.registerModule('conv6', this.conv6);
    this.conv7 = convBnRelu(64, 64, seed(), 1, 1, 0);
    this.registerModule('conv7', this.conv7);
    this.conv8 = new Conv2d(64, 2, 1, { seed: seed() });
    this.registerModule('conv8', this.conv8);
  }

  private checkInput(arg: string, t: unknown, like?: Tensor): Tensor {
    const op = 'RegNet';
    if (!(t instanceof Tensor) || t.ndim !== 4 || t.shape[2] % this.sizeMultiple || t.shape[3] % this.sizeMultiple || (!like && t.shape[1] !== this.nCh))
      fail(op, `${arg} must be [N, ${like ? 'C' : this.nCh}, H, W] with H and W multiples of ${this.sizeMultiple}, got ${t instanceof Tensor ? fmtShape(t.shape) : describe(t)}; crop or pad with vg.inference.padToMultiple`);
    if (like && (t.shape[0] !== like.shape[0] || t.shape[2] !== like.shape[2] || t.shape[3] !== like.shape[3]))
      fail(op, `${arg} ${fmtShape(t.shape)} must have the batch size and spatial size of source ${fmtShape(like.shape)}`);
    return t;
  }

  /**
   * Registers source onto target (both [N, nCh, H, W], H and W multiples of 16) and warps `image` (default source;
   * the official x_img, e.g. a label map with mode 'nearest') by the predicted displacement.
   */
  override forward(source: Tensor, target: Tensor, image: Tensor = source, opts: { mode?: 'bilinear' | 'nearest' } = {}): RegNetOutput {
    this.checkInput('source', source);
    this.checkInput('target', target);
    if (target.shape.join() !== source.shape.join()) fail('RegNet', `source ${fmtShape(source.shape)} and target ${fmtShape(target.shape)} must have the same shape`);
    return tidy(() => {
      // the two streams run separately (not as one batch) so that training-mode BatchNorm sees each stream's own
      // statistics, as the official forward does
      let a = source;
      let b = target;
      const scales: Tensor[] = [];
      for (let i = 0; i < 5; i++) {
        const blockI = this.convBlocks.at(i);
        a = blockI.call(a);
        b = blockI.call(b);
        const fused: Tensor = this.conv.at(i).call(cat([a, b], 1));
        scales.push(i > 0 ? interpolate(fused, { scaleFactor: 2 ** i, mode: 'bilinear', alignCorners: true }) : fused);
      }
      const flow = tanh(this.conv8.call(this.conv7.call(this.conv6.call(cat(scales, 1)))));
      return { flow, warped: this.warp(image, flow, opts) };
    });
  }

  /** The official transform(): gridSample(image, identity + flow, alignCorners false, zeros); image [N, C, H, W]. */
  warp(image: Tensor, flow: Tensor, opts: { mode?: 'bilinear' | 'nearest' } = {}): Tensor {
    if (!(flow instanceof Tensor) || flow.ndim !== 4 || flow.shape[1] !== 2)
      fail('RegNet.warp', `flow must be [N, 2, H, W] (normalised x, y displacement), got ${flow instanceof Tensor ? fmtShape(flow.shape) : describe(flow)}`);
    if (!(image instanceof Tensor) || image.ndim !== 4 || image.shape[0] !== flow.shape[0] || image.shape[2] !== flow.shape[2] || image.shape[3] !== flow.shape[3])
      fail('RegNet.warp', `image must be [N, C, H, W] with flow's batch and spatial size ${fmtShape(flow.shape)}, got ${image instanceof Tensor ? fmtShape(image.shape) : describe(image)}`);
    return tidy(() => {
      const grid = add(identityGrid(flow.shape[2], flow.shape[3]), permute(flow, [0, 2, 3, 1]));
      return gridSample(image, grid, { mode: opts.mode ?? 'bilinear', paddingMode: 'zeros', alignCorners: false });
    });
  }
}
