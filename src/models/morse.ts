/**
 * MORSE (You et al., MICCAI 2023): segmentation as rendering. A backbone gives coarse logits and its decoder maps; a
 * mixture-of-experts head fuses the maps into one fine feature map; at uncertain points a point head (an MLP of
 * Conv1d k=1 layers) re-predicts the class from the fine features and the coarse logits there (plus, in the implicit
 * variant, a Fourier encoding of the point). Training samples points by PointRend's rule; inference replaces the
 * coarse logits at the most uncertain grid cells, `subdivisionSteps` times. The layout follows the released code:
 * the per-expert MLP, the gate with ReLU before its softmax, the stochastic dropping of r ~ U{0..U} experts without
 * renormalisation, the post-MLP with Dropout2d(0.1), the point heads' widths and initialisation. In 3-D (a VNet
 * backbone) every 2-D layer of the heads becomes its 3-D counterpart and the MoE head fuses three real decoder scales
 * (the released 3-D code feeds the last decoder map three times, which leaves the experts nothing to choose between).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { noGrad } from '../engine/autograd.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { tensor } from '../kernels/creation.js';
import { dropout2d, dropout3d } from '../kernels/dropout.js';
import { cast } from '../kernels/elementwise.js';
import { scatter } from '../kernels/indexing.js';
import { interpolate } from '../kernels/interpolate.js';
import { add, cos, mul, relu, sin, sub } from '../kernels/math.js';
import { matmul } from '../kernels/matmul.js';
import { crossEntropy, softmax } from '../kernels/nn.js';
import { pointSample, uncertainGridPoints, uncertainPoints } from '../kernels/points.js';
import { uniform } from '../kernels/random.js';
import { cat, expand, permute, reshape, slice, squeeze, unsqueeze } from '../kernels/shape.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, BatchNorm3d, Conv1d, Conv2d, Conv3d, ModuleList, ReLU, Sequential } from '../nn/layers.js';
import { kaimingNormal_, normal_, zeros_ } from '../nn/init.js';
import { Rng } from '../data/random.js';
import type { UNet2D } from './unet.js';
import { VNet } from './vnet.js';

export interface MoEHeadOptions {
  /** Width of every expert's per-pixel MLP and of the gate (the code: 256). */
  width?: number;
  /** Channels of the fused map handed to the point head (the code: 256). */
  outChannels?: number;
  /** U of the stochastic gating: while training, r ~ U{0..U} experts are dropped (0: plain MOEHead; the 2-D UNet code: 4). */
  dropExperts?: number;
  /** Spatial rank of the maps: 2 (Conv2d, BatchNorm2d, Dropout2d, bilinear) or 3 (their 3-D counterparts, trilinear). */
  dims?: 2 | 3;
  /** Seed of the initialisers and of the expert-dropping draws. */
  seed?: number;
}

/**
 * MORSE's MOEHead / MOEHead_random: maps [B, C_i, H_i, W_i] (coarse to fine) → [B, outChannels, H, W] at the finest
 * map's size ([B, C_i, D_i, H_i, W_i] → [B, outChannels, D, H, W] with dims 3). Expert i: 1×1 conv C_i→width, ReLU, 1×1 conv, ReLU, then bilinear resize. Gate: 3×3 conv (E·width →
 * width) + BN + ReLU, 3×3 conv (→ E) + BN + ReLU, softmax over the E experts (so the gate logits are ReLU'd first, as
 * mmcv's ConvModule does in the code). Fused h = Σ w_i g_i, then 1×1 conv, ReLU, 1×1 conv, ReLU, Dropout2d(0.1), 1×1
 * conv → outChannels.
 */
export class MoEHead extends Module {
  readonly dropExperts: number;
  readonly dims: 2 | 3;
  private readonly experts: ModuleList;
  private readonly gate: Sequential;
  private readonly post: Sequential;
  private readonly out: Conv2d | Conv3d;
  private readonly dropRng: Rng;

  constructor(inChannels: readonly number[], opts: MoEHeadOptions = {}) {
    super();
    const width = opts.width ?? 256;
    const e = inChannels.length;
    if (e < 1) fail('MoEHead', 'inChannels must list at least one map');
    this.dropExperts = opts.dropExperts ?? 0;
    if (!Number.isInteger(this.dropExperts) || this.dropExperts < 0 || this.dropExperts >= e)
      fail('MoEHead', `dropExperts must be an integer in [0, ${e - 1}] (at least one expert stays), got ${this.dropExperts}`);
    this.dims = opts.dims ?? 2;
    if (this.dims !== 2 && this.dims !== 3) fail('MoEHead', `dims must be 2 or 3, got ${String(opts.dims)}`);
    const Conv = this.dims === 3 ? Conv3d : Conv2d;
    const Norm = this.dims === 3 ? BatchNorm3d : BatchNorm2d;
    let seed = opts.seed ?? 0;
    const next = () => seed++;
    this.experts = new ModuleList(
      inChannels.map((c) => new Sequential(new Conv(c, width, 1, { seed: next() }), new ReLU(), new Conv(width, width, 1, { seed: next() }), new ReLU())),
    );
    this.gate = new Sequential(
      new Conv(e * width, width, 3, { padding: 1, bias: false, seed: next() }),
      new Norm(width),
      new ReLU(),
      new Conv(width, e, 3, { padding: 1, bias: false, seed: next() }),
      new Norm(e),
      new ReLU(),
    );
    this.post = new Sequential(new Conv(width, width, 1, { seed: next() }), new ReLU(), new Conv(width, width, 1, { seed: next() }), new ReLU());
    this.out = new Conv(width, opts.outChannels ?? 256, 1, { seed: next() });
    this.dropRng = new Rng(next());
    this.registerModule('experts', this.experts);
    this.registerModule('gate', this.gate);
    this.registerModule('post', this.post);
    this.registerModule('out', this.out);
  }

  /**
   * The experts kept in one training step: r ~ U{0..dropExperts} of them, chosen uniformly, get weight 0 (1 = kept).
   * Drawn on the host from the head's own seeded stream; all ones in eval mode or without dropping.
   */
  expertMask(): number[] {
    const e = this.experts.length;
    const keep = new Array<number>(e).fill(1);
    if (!this.training || this.dropExperts === 0) return keep;
    const r = this.dropRng.int(0, this.dropExperts + 1);
    for (const i of this.dropRng.permutation(e).slice(0, r)) keep[i] = 0;
    return keep;
  }

  /** The per-pixel gate weights [B, E, ...spatial] (softmax of ReLU'd gate logits, then the expert mask) and the resized expert maps. */
  gateAndExperts(maps: readonly Tensor[]): { weights: Tensor; experts: Tensor[] } {
    if (maps.length !== this.experts.length) fail('MoEHead', `expected ${this.experts.length} maps, got ${maps.length}`);
    const bad = maps.find((m) => m.ndim !== this.dims + 2);
    if (bad) fail('MoEHead', `maps must be [B, C, ${this.dims === 3 ? 'D, ' : ''}H, W] (dims ${this.dims}), got ${fmtShape(bad.shape)}`);
    const size = maps[maps.length - 1].shape.slice(2);
    const mode = this.dims === 3 ? 'trilinear' : 'bilinear';
    const experts = maps.map((m, i) => {
      const g = this.experts.at(i).call(m);
      return g.shape.slice(2).every((d: number, k: number) => d === size[k]) ? g : interpolate(g, { size, mode, alignCorners: false });
    });
    let weights = softmax(this.gate.call(cat(experts, 1)), { dim: 1 });
    const keep = this.expertMask();
    if (keep.includes(0)) weights = mul(weights, tensor(keep, [1, keep.length, ...size.map(() => 1)]));
    return { weights, experts };
  }

  override forward(...maps: Tensor[]): Tensor {
    const { weights, experts } = this.gateAndExperts(maps);
    const fused = experts.map((g, i) => mul(slice(weights, 1, i, i + 1), g)).reduce((a, b) => add(a, b));
    const drop = this.dims === 3 ? dropout3d : dropout2d;
    return this.out.call(drop(this.post.call(fused), { p: 0.1, training: this.training }));
  }
}

export interface PointHeadOptions {
  /** Hidden Conv1d layers (the code: 3). */
  numFc?: number;
  /** Hidden width of the standard head (the code: 256); the implicit head uses fineChannels + 2·frequencies. */
  fcDim?: number;
  /** Implicit head: Fourier features of the point, B ∈ R^{d × frequencies} drawn U[0, 1) (the code: 128). */
  frequencies?: number;
  /** Spatial rank of the points (2 or 3). */
  dims?: number;
  seed?: number;
}

/**
 * PointRend's StandardPointHead as MORSE uses it (implicit: false), or MORSE's ImplicitPointHead (implicit: true).
 * Input: fine features [B, F, N], coarse logits [B, C, N] and the points [B, N, d] in [0, 1]; output point logits
 * [B, C, N]. Every hidden layer is Conv1d k=1 + ReLU followed by a re-concatenation of the coarse logits.
 */
export class PointHead extends Module {
  readonly implicit: boolean;
  private readonly fcs: ModuleList;
  private readonly predictor: Conv1d;
  declare fourier: Tensor | null;

  constructor(fineChannels: number, numClasses: number, implicit: boolean, opts: PointHeadOptions = {}) {
    super();
    this.implicit = implicit;
    const numFc = opts.numFc ?? 3;
    const freqs = opts.frequencies ?? 128;
    const dims = opts.dims ?? 2;
    let seed = opts.seed ?? 0;
    const next = () => seed++;
    const width = implicit ? fineChannels + 2 * freqs : (opts.fcDim ?? 256);
    let inC = (implicit ? 2 * freqs : 0) + fineChannels + numClasses;
    const fcs: Conv1d[] = [];
    for (let i = 0; i < numFc; i++) {
      fcs.push(new Conv1d(inC, width, 1, { seed: next() }));
      inC = width + numClasses;
    }
    this.fcs = new ModuleList(fcs);
    this.predictor = new Conv1d(inC, numClasses, 1, { seed: next() });
    if (!implicit) {
      // detectron2's c2_msra_fill for the hidden layers, N(0, 0.001²) for the predictor, zero biases
      for (const fc of fcs) {
        kaimingNormal_(fc.weight, { mode: 'fan_out', nonlinearity: 'relu', seed: next() });
        zeros_(fc.bias!);
      }
      normal_(this.predictor.weight, { std: 0.001, seed: next() });
      zeros_(this.predictor.bias!);
    }
    this.registerModule('fc_layers', this.fcs);
    this.registerModule('predictor', this.predictor);
    this.registerBuffer('B', implicit ? uniform([dims, freqs], 0, 1, { seed: next() }) : null, 'fourier');
  }

  /** The Fourier encoding [sin(2π(2p−1)B), cos(2π(2p−1)B)] of points [B, N, d] → [B, 2·frequencies, N]. */
  encode(points: Tensor): Tensor {
    if (!this.fourier) fail('PointHead', 'only the implicit head encodes points');
    return tidy(() => {
      const proj = mul(matmul(sub(mul(points, 2), 1), this.fourier!), 2 * Math.PI);
      return permute(cat([sin(proj), cos(proj)], 2), [0, 2, 1]);
    });
  }

  override forward(fine: Tensor, coarse: Tensor, points?: Tensor): Tensor {
    if (fine.ndim !== 3 || coarse.ndim !== 3 || fine.shape[2] !== coarse.shape[2])
      fail('PointHead', `fine [B, F, N] and coarse [B, C, N] must share N, got ${fmtShape(fine.shape)} and ${fmtShape(coarse.shape)}`);
    const parts = [fine, coarse];
    if (this.implicit) {
      if (!points) fail('PointHead', 'the implicit head needs the points [B, N, d]');
      parts.unshift(this.encode(points));
    }
    let x = cat(parts, 1);
    for (const fc of this.fcs) x = cat([relu(fc.call(x)), coarse], 1);
    return this.predictor.call(x);
  }
}

export interface MorseOptions {
  numClasses: number;
  /** Channels of the backbone maps the MoE head fuses, coarse to fine. */
  mapChannels: readonly number[];
  moe?: MoEHeadOptions;
  /** The implicit point head (Fourier features) instead of the standard one. */
  implicit?: boolean;
  pointHead?: PointHeadOptions;
  /** Points per image in training (the code: 2048 at 256²). */
  trainPoints?: number;
  oversample?: number;
  importance?: number;
  /** Grid cells refined per subdivision step at inference (the code: 8192 at 256²) and the steps (2). */
  subdivisionPoints?: number;
  subdivisionSteps?: number;
  seed?: number;
}

/**
 * The VNet decoder maps the 3-D MoE head fuses, coarse to fine: the ¼- and ½-resolution decoder inputs and the last
 * decoder map (channels 4f, 2f, f for f base filters).
 */
export const VNET_MORSE_MAPS = [1, 2, 4] as const;

/**
 * MORSE on a 2-D UNet or a 3-D VNet backbone: coarse logits from the backbone, refined logits from the MoE head and
 * the point head.
 */
export class Morse extends Module {
  readonly backbone: UNet2D | VNet;
  readonly dims: 2 | 3;
  readonly moe: MoEHead;
  readonly head: PointHead;
  readonly opts: Required<Pick<MorseOptions, 'trainPoints' | 'oversample' | 'importance' | 'subdivisionPoints' | 'subdivisionSteps'>>;

  constructor(backbone: UNet2D | VNet, opts: MorseOptions) {
    super();
    const seed = opts.seed ?? 0;
    this.backbone = backbone;
    this.dims = backbone instanceof VNet ? 3 : 2;
    this.moe = new MoEHead(opts.mapChannels, { seed: seed + 10_000, ...opts.moe, dims: this.dims });
    const fine = opts.moe?.outChannels ?? 256;
    this.head = new PointHead(fine, opts.numClasses, opts.implicit ?? false, { seed: seed + 20_000, ...opts.pointHead, dims: this.dims });
    this.opts = {
      trainPoints: opts.trainPoints ?? 2048,
      oversample: opts.oversample ?? 3,
      importance: opts.importance ?? 0.75,
      subdivisionPoints: opts.subdivisionPoints ?? 8192,
      subdivisionSteps: opts.subdivisionSteps ?? 2,
    };
    this.registerModule('backbone', this.backbone);
    this.registerModule('moe', this.moe);
    this.registerModule('point_head', this.head);
  }

  /**
   * Coarse logits [B, C, ...spatial] and the fused fine map [B, F, ...spatial] (spatial sizes multiples of the
   * backbone's sizeMultiple).
   */
  features(x: Tensor): { coarse: Tensor; fine: Tensor } {
    if (this.backbone instanceof VNet) {
      const { logits, featureMaps } = this.backbone.forwardFeatures(x);
      return { coarse: logits, fine: this.moe.call(...VNET_MORSE_MAPS.map((i) => featureMaps[i])) };
    }
    const { logits, maps } = this.backbone.decodeWithMaps(this.backbone.encode(x));
    return { coarse: logits, fine: this.moe.call(...maps) };
  }

  /** The point head's logits [B, C, N] at points [B, N, d]; the coarse logits are sampled there too. */
  pointLogits(coarse: Tensor, fine: Tensor, points: Tensor): Tensor {
    return this.head.call(pointSample(fine, points), pointSample(coarse, points), points);
  }

  /**
   * The point loss of one training step: cross-entropy (mean over points) of the point logits at PointRend's
   * training points against the labels [B, ...spatial] read at those points with nearest sampling.
   */
  pointLoss(coarse: Tensor, fine: Tensor, label: Tensor, seed?: number): Tensor {
    return tidy(() => {
      const points = uncertainPoints(coarse.detach(), this.opts.trainPoints, { oversample: this.opts.oversample, importance: this.opts.importance, seed });
      const target = noGrad(() => cast(squeeze(pointSample(unsqueeze(cast(label, 'f32'), 1), points, { mode: 'nearest' }), 1), 'i32'));
      return crossEntropy(this.pointLogits(coarse, fine, points), target);
    });
  }

  /**
   * Inference: starting from the coarse logits, `subdivisionSteps` times take the most uncertain cells of the current
   * logits and overwrite them with the point head's logits there (the coarse logits fed to the head are always the
   * original ones, as in the code). Returns the refined logits [B, C, ...spatial].
   */
  refine(coarse: Tensor, fine: Tensor): Tensor {
    const [b, c, ...spatial] = coarse.shape;
    return tidy(() => {
      let s = reshape(coarse, [b, c, spatial.reduce((a, d) => a * d, 1)]);
      for (let step = 0; step < this.opts.subdivisionSteps; step++) {
        const { indices, coords } = uncertainGridPoints(reshape(s, coarse.shape), this.opts.subdivisionPoints);
        s = overwriteAt(s, indices, this.pointLogits(coarse, fine, coords));
      }
      return reshape(s, coarse.shape);
    });
  }

  /** Coarse logits (what the released test.py scores). */
  override forward(x: Tensor): Tensor {
    return this.features(x).coarse;
  }
}

/** flat [B, C, M] with the point logits [B, C, K] written at the distinct cell indices [B, K] (PyTorch's scatter_ along dim 2). */
function overwriteAt(flat: Tensor, indices: Tensor, values: Tensor): Tensor {
  const [b, c] = flat.shape;
  return scatter(flat, 2, expand(unsqueeze(indices, 1), [b, c, indices.shape[1]]), values);
}

/** The MORSE point-loss weight at step t of T: 0 in the first half, then (t − T/2) / T (0 → 0.5), as the 2-D train.py. */
export function morsePointWeight(step: number, total: number): number {
  return step < total / 2 ? 0 : (step - total / 2) / total;
}

