/**
 * ResNet-18/34/50 with torchvision's module layout, so state-dict keys are torchvision's (conv1.weight, bn1.*,
 * layer1.0.conv1.weight, layer2.0.downsample.0.weight, fc.weight, ...) and its ImageNet checkpoints load with
 * loadStateDict once converted to safetensors. Bottleneck blocks stride in their 3×3 conv (torchvision's "v1.5").
 * `encode` returns the five maps ITL's res_encoder hands its decoder: the stem conv's output before its BN (H/2), then
 * layer1..layer4 (H/4 .. H/32).
 */
import { fail } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { add, relu } from '../kernels/math.js';
import { adaptiveAvgPool2d } from '../kernels/pool.js';
import { flatten } from '../kernels/shape.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear, Sequential } from '../nn/layers.js';
import { MaxPool2d } from '../nn/pooling.js';
import { kaimingNormal_ } from '../nn/init.js';

export type ResNetDepth = 18 | 34 | 50;

const LAYOUT: Record<ResNetDepth, { blocks: number[]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
};

export interface ResNetOptions {
  inChannels?: number;
  /**
   * Channels of the stem and layer1, doubled per layer (torchvision: 64). Smaller widths keep the layout and keys
   * but not torchvision's shapes: for small images and a software adapter (ITL's phantom recipe).
   */
  width?: number;
  /** Outputs of the final fc layer (torchvision: 1000). */
  numClasses?: number;
  /** Base seed of the initialisers (torchvision's: Kaiming normal, fan_out, for the convs). */
  seed?: number;
}

type Seeds = () => number;

function conv(inC: number, outC: number, k: number, stride: number, seed: Seeds): Conv2d {
  const c = new Conv2d(inC, outC, k, { stride, padding: (k - 1) / 2, bias: false, seed: seed() });
  kaimingNormal_(c.weight, { mode: 'fan_out', nonlinearity: 'relu', seed: seed() });
  return c;
}

/** A residual block: BasicBlock (two 3×3) or Bottleneck (1×1, 3×3 with the stride, 1×1 to 4× the width). */
class Block extends Module {
  private readonly convs: Conv2d[] = [];
  private readonly bns: BatchNorm2d[] = [];
  private readonly downsample: Sequential | null;
  constructor(inC: number, planes: number, stride: number, bottleneck: boolean, seed: Seeds) {
    super();
    const outC = bottleneck ? planes * 4 : planes;
    const specs: [number, number, number, number][] = bottleneck
      ? [
          [inC, planes, 1, 1],
          [planes, planes, 3, stride],
          [planes, outC, 1, 1],
        ]
      : [
          [inC, planes, 3, stride],
          [planes, planes, 3, 1],
        ];
    specs.forEach(([i, o, k, s], n) => {
      const c = conv(i, o, k, s, seed);
      const bn = new BatchNorm2d(o);
      this.registerModule(`conv${n + 1}`, c);
      this.registerModule(`bn${n + 1}`, bn);
      this.convs.push(c);
      this.bns.push(bn);
    });
    this.downsample = stride !== 1 || inC !== outC ? new Sequential(conv(inC, outC, 1, stride, seed), new BatchNorm2d(outC)) : null;
    if (this.downsample) this.registerModule('downsample', this.downsample);
  }
  override forward(x: Tensor): Tensor {
    let h = x;
    this.convs.forEach((c, i) => {
      h = this.bns[i].call(c.call(h));
      if (i < this.convs.length - 1) h = relu(h);
    });
    return relu(add(h, this.downsample ? this.downsample.call(x) : x));
  }
}

export class ResNet extends Module {
  readonly depth: ResNetDepth;
  /** Channels of encode()'s five maps: [64, 64, 128, 256, 512] (18/34) or [64, 256, 512, 1024, 2048] (50) at width 64. */
  readonly skipChannels: number[];
  private readonly stemConv: Conv2d;
  private readonly stemBn: BatchNorm2d;
  private readonly pool: MaxPool2d;
  private readonly layers: Sequential[] = [];
  private readonly fc: Linear;

  constructor(depth: ResNetDepth, opts: ResNetOptions = {}) {
    super();
    const layout = LAYOUT[depth];
    if (!layout) fail('ResNet', `depth must be 18, 34 or 50, got ${String(depth)}`);
    this.depth = depth;
    let next = opts.seed ?? 0;
    const seed = () => next++;
    const width = opts.width ?? 64;
    if (!(Number.isInteger(width) && width > 0)) fail('ResNet', `width must be a positive integer, got ${String(width)}`);
    this.stemConv = conv(opts.inChannels ?? 3, width, 7, 2, seed);
    this.stemBn = new BatchNorm2d(width);
    this.pool = new MaxPool2d(3, { stride: 2, padding: 1 });
    this.registerModule('conv1', this.stemConv);
    this.registerModule('bn1', this.stemBn);
    const expansion = layout.bottleneck ? 4 : 1;
    let inC = width;
    layout.blocks.forEach((count, i) => {
      const planes = width * 2 ** i;
      const blocks: Module[] = [];
      for (let b = 0; b < count; b++) {
        blocks.push(new Block(inC, planes, b === 0 && i > 0 ? 2 : 1, layout.bottleneck, seed));
        inC = planes * expansion;
      }
      const layer = new Sequential(...blocks);
      this.registerModule(`layer${i + 1}`, layer);
      this.layers.push(layer);
    });
    this.skipChannels = [width, ...[0, 1, 2, 3].map((i) => width * 2 ** i * expansion)];
    this.fc = new Linear(inC, opts.numClasses ?? 1000, { seed: seed() });
    this.registerModule('fc', this.fc);
  }

  /** The five maps ITL's encoder returns: stem conv before BN (H/2), layer1 (H/4), layer2, layer3, layer4 (H/32). */
  encode(x: Tensor): Tensor[] {
    const stem = this.stemConv.call(x);
    const maps = [stem];
    let h = this.pool.call(relu(this.stemBn.call(stem)));
    for (const layer of this.layers) maps.push((h = layer.call(h)));
    return maps;
  }

  /** Class logits [N, numClasses] (global average pool + fc), as torchvision's forward. */
  override forward(x: Tensor): Tensor {
    const maps = this.encode(x);
    return this.fc.call(flatten(adaptiveAvgPool2d(maps[4], 1), 1));
  }
}
