/**
 * TransMorph (Chen et al. 2022) as the official code builds it (junyuchen245/TransMorph_Transformer_for_Medical_Image_
 * Registration TransMorph/models/TransMorph.py) and as the registration papers fork it (Voldemort108X/hetero_uncertainty
 * src/transmorph/transmorph/torch/networks.py for 3-D, networks_2D.py for 2-D), in 2-D and 3-D:
 * - a Swin encoder on cat(source, target): PatchEmbed (conv k = s = 4 → LayerNorm), four stages of Swin blocks
 *   (vg.nn.TransformerBlock: W-MSA / SW-MSA alternating, shift = window // 2, relative position bias, feature maps
 *   zero-padded to whole windows, stochastic depth on a linear schedule), PatchMerging between stages (2^nd
 *   neighbours concatenated in the official order → LayerNorm → Linear to 2C, no bias), a LayerNorm per stage output;
 * - a conv decoder: DecoderBlocks (×2 bilinear/trilinear upsampling with alignCorners false, skip concatenated after
 *   the upsampled features, two Conv-InstanceNorm-LeakyReLU(0.01) with bias-free convs) fed by the stages 2, 1, 0
 *   and two conv skips from the input (avg-pool 3/2/1 → Conv-IN-LeakyReLU to embed/2 channels; full resolution →
 *   regHeadChan channels);
 * - RegistrationHead: a 3x3 conv to ndims channels, weights N(0, 1e-5), bias 0. Its output is the displacement (no
 *   integration), warped with VoxelMorph's SpatialTransformer (vg.spatialTransform: bilinear, align_corners=True).
 * Children carry the official names, so state-dict keys are the official ones (transformer.patch_embed.proj.weight,
 * transformer.layers.0.blocks.1.attn.relative_position_bias_table, up0.conv1.0.weight, c1.0.weight, reg_head.0.weight,
 * ...). Flows are in voxels, channel i along spatial axis i (docs/conventions.md).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { avgPool2d, avgPool3d, cast, cat, dropout, indexSelect, interpolate, logicalOr, neg, permute, reshape, tensor } from '../ops.js';
import { spatialTransform } from '../kernels/spatial.js';
import { Module } from '../nn/module.js';
import { Conv2d, Conv3d, InstanceNorm2d, InstanceNorm3d, LayerNorm, LeakyReLU, Linear, ModuleList, Sequential } from '../nn/layers.js';
import { TransformerBlock } from '../nn/attention.js';
import { normal_, zeros_ } from '../nn/init.js';

/** The official config (configs_2D.py / configs.py), camelCase. Options the official code has but TransMorph fixes are left out (see TransMorph). */
export interface TransMorphConfig {
  /** Input spatial size, [H, W] (2-D) or [D, H, W] (3-D); every axis a multiple of 32 (patch 4, then three 2x merges). */
  imgSize: number[];
  /** Must be 4: the decoder's conv skips sit at 1/2 and full resolution. */
  patchSize?: number;
  embedDim?: number;
  /** Swin blocks per stage; four stages. */
  depths?: number[];
  /** Attention heads per stage. */
  numHeads?: number[];
  /** Window per spatial axis (the same for every stage); default 8 per axis in 2-D, (5, 6, 7) in 3-D. */
  windowSize?: number[];
  mlpRatio?: number;
  qkvBias?: boolean;
  /** Dropout after the patch embedding, the attention projection and in the MLPs (drop_rate). */
  dropRate?: number;
  /** Largest stochastic-depth rate: block k of K gets dropPathRate · k / (K − 1) (Swin's linear rule). */
  dropPathRate?: number;
  /** LayerNorm after the patch embedding (patch_norm). */
  patchNorm?: boolean;
  /** Skips from the input convs c1, c2 into up3, up4 (if_convskip). */
  ifConvskip?: boolean;
  /** Skips from the Swin stages into up0, up1, up2 (if_transskip). */
  ifTransskip?: boolean;
  /** Channels of the last decoder block and the registration head's input. */
  regHeadChan?: number;
}

export interface TransMorphOptions {
  /** Also warp the target by the negated flow (the official bidir). Default false. */
  bidir?: boolean;
  /** Base seed of the layers' initialisation (each layer its own derived seed); default: the global generator. */
  seed?: number;
}

/** TransMorph's results: the official (y_source, y_target, pos_flow, mask_bgd) tuple as named fields. */
export interface TransMorphOutput {
  /** source warped by `flow`: [N, 1, *imgSize]. */
  ySource: Tensor;
  /** target warped by −flow (bidir, not with registration: true); otherwise null. */
  yTarget: Tensor | null;
  /** The displacement [N, ndims, *imgSize] in voxels, channel i along axis i: the official pos_flow. */
  flow: Tensor;
  /** The same tensor as flow (TransMorph does not integrate), so recipes can treat VxmDense and TransMorph alike. */
  preintFlow: Tensor;
  /** (source != 0) | (target != 0) as 0/1 f32: the losses' background mask (mask_bgd). */
  maskBgd: Tensor;
}

type Conv = Conv2d | Conv3d;
const makeConv = (nd: number, cin: number, cout: number, k: number, opts: { stride?: number; padding?: number; bias?: boolean; seed?: number }): Conv =>
  nd === 2 ? new Conv2d(cin, cout, k, opts) : new Conv3d(cin, cout, k, opts);

/** Hands out seeds in construction order, `n` per layer (undefined: the global generator). */
function seeder(base: number | undefined): (n?: number) => number | undefined {
  let next = base;
  return (n = 1) => {
    if (next === undefined) return undefined;
    const s = next;
    next += n;
    return s;
  };
}

/** The official Conv2dReLU / Conv3dReLU with use_batchnorm=False: conv (no bias) → InstanceNorm (no affine) → LeakyReLU(0.01); keys 0.weight. */
const convReLU = (nd: number, cin: number, cout: number, seed: number | undefined) =>
  new Sequential(makeConv(nd, cin, cout, 3, { padding: 1, bias: false, seed }), nd === 2 ? new InstanceNorm2d(cout) : new InstanceNorm3d(cout), new LeakyReLU());

/** The official DecoderBlock: ×2 upsampling (alignCorners false) → cat(x, skip) → conv1 → conv2. */
class DecoderBlock extends Module {
  readonly conv1: Sequential;
  readonly conv2: Sequential;
  constructor(private readonly nd: number, cin: number, cout: number, skip: number, seed: () => number | undefined) {
    super();
    this.conv1 = convReLU(nd, cin + skip, cout, seed());
    this.conv2 = convReLU(nd, cout, cout, seed());
  }
  override forward(x: Tensor, skip: Tensor | null): Tensor {
    let h = interpolate(x, { scaleFactor: 2, mode: this.nd === 2 ? 'bilinear' : 'trilinear', alignCorners: false });
    if (skip) h = cat([h, skip], 1);
    return this.conv2.call(this.conv1.call(h));
  }
}

/**
 * The official neighbour order of PatchMerging as indices into the [2]·nd offsets flattened row-major (dh, dw[, dt]):
 * 2-D x0..x3 = (0,0) (1,0) (0,1) (1,1); 3-D x0..x7 = (0,0,0) (1,0,0) (0,1,0) (0,0,1) (1,1,0) (0,1,1) (1,0,1) (1,1,1).
 */
const MERGE_ORDER: Record<number, number[]> = { 2: [0, 2, 1, 3], 3: [0, 4, 2, 1, 6, 3, 5, 7] };

/** PatchMerging on a token grid [B, *s, C] (every s even) → [B, *s/2, 2C]; keys reduction.weight, norm.*. */
class PatchMerging extends Module {
  readonly reduction: Linear;
  readonly norm: LayerNorm;
  constructor(private readonly nd: number, dim: number, seed: number | undefined) {
    super();
    // the official Linear(2^nd·C, (2^nd // pat_merg_rf)·C) with the configs' pat_merg_rf (2-D: 2, 3-D: 4) is always 2C
    this.reduction = new Linear(2 ** this.nd * dim, 2 * dim, { bias: false, seed });
    this.norm = new LayerNorm(2 ** this.nd * dim);
  }
  override forward(x: Tensor): Tensor {
    const nd = this.nd;
    const [B, C] = [x.shape[0], x.shape[x.ndim - 1]];
    const half = x.shape.slice(1, 1 + nd).map((s) => s / 2);
    const split = [B, ...half.flatMap((h) => [h, 2]), C];
    // [B, h0, 2, h1, 2, ..., C] → [B, h0, h1, ..., 2, 2, ..., C]: the 2^nd neighbours row-major along the offsets
    const perm = [0, ...half.map((_, i) => 1 + 2 * i), ...half.map((_, i) => 2 + 2 * i), 2 * nd + 1];
    const grouped = reshape(permute(reshape(x, split), perm), [B, ...half, 2 ** nd, C]);
    const ordered = indexSelect(grouped, nd + 1, tensor(MERGE_ORDER[nd], [2 ** nd], { dtype: 'i32' }));
    return this.reduction.call(this.norm.call(reshape(ordered, [B, ...half, 2 ** nd * C])));
  }
}

/** The official PatchEmbed: conv with kernel = stride = patchSize, then (patch_norm) LayerNorm over channels; returns a token grid [B, *s, C]. */
class PatchEmbed extends Module {
  readonly proj: Conv;
  readonly norm: LayerNorm | null;
  constructor(private readonly nd: number, patch: number, inChans: number, embed: number, patchNorm: boolean, seed: number | undefined) {
    super();
    this.proj = makeConv(nd, inChans, embed, patch, { stride: patch, seed });
    this.norm = patchNorm ? new LayerNorm(embed) : null;
    this.registerModule('proj', this.proj);
    if (this.norm) this.registerModule('norm', this.norm);
  }
  override forward(x: Tensor): Tensor {
    const h = permute(this.proj.call(x), [0, ...Array.from({ length: this.nd }, (_, i) => 2 + i), 1]);
    return this.norm ? this.norm.call(h) : h;
  }
}

/** One Swin stage (the official BasicLayer): blocks, then the PatchMerging of all but the last stage. */
class BasicLayer extends Module {
  readonly blocks: ModuleList;
  readonly downsample: PatchMerging | null;
  constructor(nd: number, dim: number, depth: number, heads: number, c: Required<Omit<TransMorphConfig, 'imgSize'>>, dpr: number[], last: boolean, seed: (n?: number) => number | undefined) {
    super();
    const w = c.windowSize;
    this.blocks = new ModuleList(
      Array.from({ length: depth }, (_, i) =>
        new TransformerBlock(dim, heads, {
          windowSize: w,
          shiftSize: i % 2 === 0 ? 0 : w.map((v) => Math.floor(v / 2)),
          mlpRatio: c.mlpRatio,
          qkvBias: c.qkvBias,
          dropout: c.dropRate,
          dropPath: dpr[i],
          seed: seed(10), // a TransformerBlock derives seeds seed … seed + 9
        }),
      ),
    );
    this.downsample = last ? null : new PatchMerging(nd, dim, seed());
    this.registerModule('blocks', this.blocks);
    if (this.downsample) this.registerModule('downsample', this.downsample);
  }
}

/** The official SwinTransformer: returns the four normalised stage outputs as [B, C_i, *s_i]. */
class SwinTransformer extends Module {
  readonly patchEmbed: PatchEmbed;
  readonly layers: ModuleList;
  readonly norms: LayerNorm[];
  constructor(private readonly nd: number, private readonly c: Required<Omit<TransMorphConfig, 'imgSize'>>, seed: (n?: number) => number | undefined) {
    super();
    this.patchEmbed = new PatchEmbed(nd, c.patchSize, 2, c.embedDim, c.patchNorm, seed());
    this.registerModule('patch_embed', this.patchEmbed);
    // torch.linspace(0, drop_path_rate, sum(depths)), split per stage
    const total = c.depths.reduce((a, b) => a + b, 0);
    const dpr = Array.from({ length: total }, (_, k) => (total > 1 ? (c.dropPathRate * k) / (total - 1) : 0));
    this.layers = new ModuleList();
    let k = 0;
    c.depths.forEach((depth, i) => {
      this.layers.append(new BasicLayer(nd, c.embedDim * 2 ** i, depth, c.numHeads[i], c, dpr.slice(k, k + depth), i === c.depths.length - 1, seed));
      k += depth;
    });
    this.registerModule('layers', this.layers);
    this.norms = c.depths.map((_, i) => new LayerNorm(c.embedDim * 2 ** i));
    this.norms.forEach((n, i) => this.registerModule(`norm${i}`, n));
  }
  override forward(x: Tensor): Tensor[] {
    let h = this.patchEmbed.call(x) as Tensor;
    if (this.c.dropRate > 0) h = dropout(h, { p: this.c.dropRate, training: this.training });
    const toChannelsFirst = [0, this.nd + 1, ...Array.from({ length: this.nd }, (_, i) => 1 + i)];
    const outs: Tensor[] = [];
    for (const [i, layer] of [...this.layers].entries()) {
      const stage = layer as BasicLayer;
      for (const blk of stage.blocks) h = blk.call(h);
      outs.push(permute(this.norms[i].call(h), toChannelsFirst));
      if (stage.downsample) h = stage.downsample.call(h);
    }
    return outs;
  }
}

function checkIntList(op: string, name: string, v: unknown, len: number, min: number): number[] {
  if (!Array.isArray(v) || v.length !== len || v.some((x) => !Number.isInteger(x) || x < min))
    fail(op, `config.${name} must list ${len} integers >= ${min}, got ${describe(v)}`);
  return [...(v as number[])];
}

/**
 * TransMorph: unsupervised deformable registration of source onto target (2-D or 3-D, from config.imgSize).
 * new TransMorph(config, { bidir, seed }); forward(source, target, { registration }) → TransMorphOutput.
 * The official options ape/spe (absolute / sinusoidal position embeddings, off in every registration config),
 * rpe (always on), in_chans (2: one source and one target channel), out_indices (all four stages),
 * use_checkpoint (memory only) and pat_merg_rf (its configs' values give 2C after every merge) are fixed.
 */
export class TransMorph extends Module {
  readonly config: Required<TransMorphConfig>;
  readonly ndims: 2 | 3;
  readonly bidir: boolean;
  readonly transformer: SwinTransformer;
  readonly up0: DecoderBlock;
  readonly up1: DecoderBlock;
  readonly up2: DecoderBlock;
  readonly up3: DecoderBlock;
  readonly up4: DecoderBlock;
  readonly c1: Sequential;
  readonly c2: Sequential;
  readonly regHead: Sequential;

  /** get_2DTransMorph_config() of configs_2D.py (the papers' 2-D model; img_size set to the input, 128² in the papers). */
  static defaultConfig2D(imgSize: number[] = [128, 128]): Required<TransMorphConfig> {
    return { ...TransMorph.paperConfig(), imgSize: [...imgSize], windowSize: [8, 8] };
  }

  /** The 3-D config (configs.py, TransMorph's window (5, 6, 7) for 160×192×224 volumes). */
  static defaultConfig3D(imgSize: number[] = [160, 192, 224]): Required<TransMorphConfig> {
    return { ...TransMorph.paperConfig(), imgSize: [...imgSize], windowSize: [5, 6, 7] };
  }

  private static paperConfig(): Omit<Required<TransMorphConfig>, 'imgSize' | 'windowSize'> {
    return {
      patchSize: 4,
      embedDim: 96,
      depths: [2, 2, 4, 2],
      numHeads: [4, 4, 8, 8],
      mlpRatio: 4,
      qkvBias: false,
      dropRate: 0,
      dropPathRate: 0.3,
      patchNorm: true,
      ifConvskip: true,
      ifTransskip: true,
      regHeadChan: 16,
    };
  }

  constructor(config: TransMorphConfig, opts: TransMorphOptions = {}) {
    super();
    const op = 'TransMorph';
    if (config === null || typeof config !== 'object') fail(op, `config must be an object (TransMorph.defaultConfig2D() / defaultConfig3D(), with changes), got ${describe(config)}`);
    const img = config.imgSize;
    if (!Array.isArray(img) || (img.length !== 2 && img.length !== 3) || img.some((d) => !Number.isInteger(d) || d < 1))
      fail(op, `config.imgSize must list 2 or 3 positive integer spatial sizes ([H, W] or [D, H, W]), got ${describe(img)}`);
    const nd = img.length as 2 | 3;
    const base = nd === 2 ? TransMorph.defaultConfig2D(img) : TransMorph.defaultConfig3D(img);
    const c: Required<TransMorphConfig> = { ...base, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) } as Required<TransMorphConfig>;
    if (c.patchSize !== 4) fail(op, `config.patchSize must be 4 (the decoder's conv skips sit at 1/2 and full resolution), got ${describe(c.patchSize)}`);
    if (!Number.isInteger(c.embedDim) || c.embedDim < 2 || c.embedDim % 2)
      fail(op, `config.embedDim must be an even integer >= 2 (up3 has embedDim / 2 channels), got ${describe(c.embedDim)}`);
    c.depths = checkIntList(op, 'depths', c.depths, 4, 1);
    c.numHeads = checkIntList(op, 'numHeads', c.numHeads, 4, 1);
    c.numHeads.forEach((h, i) => {
      if ((c.embedDim * 2 ** i) % h) fail(op, `config.numHeads[${i}] (${h}) must divide stage ${i}'s width embedDim·2^${i} = ${c.embedDim * 2 ** i}`);
    });
    c.windowSize = checkIntList(op, 'windowSize', c.windowSize, nd, 1);
    if (!Number.isInteger(c.regHeadChan) || c.regHeadChan < 1) fail(op, `config.regHeadChan must be a positive integer, got ${describe(c.regHeadChan)}`);
    if (img.some((d) => d % 32))
      fail(op, `config.imgSize ${fmtShape(img)} must be a multiple of 32 along every axis (patch 4, then three 2x patch merges whose outputs the decoder upsamples back); crop or pad the images`);
    for (const k of ['dropRate', 'dropPathRate'] as const)
      if (typeof c[k] !== 'number' || !(c[k] >= 0 && c[k] <= 1)) fail(op, `config.${k} must be a probability in [0, 1], got ${describe(c[k])}`);
    c.imgSize = [...img];
    this.config = c;
    this.ndims = nd;
    this.bidir = opts.bidir ?? false;

    const seed = seeder(opts.seed);
    const e = c.embedDim;
    this.transformer = new SwinTransformer(nd, c, seed);
    this.registerModule('transformer', this.transformer);
    const ts = c.ifTransskip;
    const cs = c.ifConvskip;
    this.up0 = new DecoderBlock(nd, e * 8, e * 4, ts ? e * 4 : 0, seed);
    this.up1 = new DecoderBlock(nd, e * 4, e * 2, ts ? e * 2 : 0, seed);
    this.up2 = new DecoderBlock(nd, e * 2, e, ts ? e : 0, seed);
    this.up3 = new DecoderBlock(nd, e, e / 2, cs ? e / 2 : 0, seed);
    this.up4 = new DecoderBlock(nd, e / 2, c.regHeadChan, cs ? c.regHeadChan : 0, seed);
    [this.up0, this.up1, this.up2, this.up3, this.up4].forEach((m, i) => this.registerModule(`up${i}`, m));
    // the official builds c1 and c2 whether or not the conv skips are used: they are in its state dict either way
    this.c1 = convReLU(nd, 2, e / 2, seed());
    this.c2 = convReLU(nd, 2, c.regHeadChan, seed());
    this.registerModule('c1', this.c1);
    this.registerModule('c2', this.c2);
    const headSeed = seed();
    const head = makeConv(nd, c.regHeadChan, nd, 3, { padding: 1, seed: headSeed });
    // small initial displacements: weights N(0, 1e-5), zero bias
    normal_(head.weight, { std: 1e-5, seed: headSeed });
    zeros_(head.bias as Tensor);
    this.regHead = new Sequential(head);
    this.registerModule('reg_head', this.regHead);
  }

  /**
   * Official checkpoints carry SpatialTransformer's identity grid 'spatial_trans.grid' (a persistent buffer);
   * voxgrad's warp needs no grid, so it is accepted and ignored.
   */
  override loadStateDict(dict: Record<string, Tensor>, opts: { strict?: boolean } = {}) {
    const rest = { ...dict };
    delete rest['spatial_trans.grid'];
    return super.loadStateDict(rest, opts);
  }

  /**
   * Registers source [N, 1, *imgSize] onto target [N, 1, *imgSize]. registration: true skips the inverse warp of
   * bidirectional models (inference), returning yTarget null.
   */
  override forward(source: Tensor, target: Tensor, opts: { registration?: boolean } = {}): TransMorphOutput {
    const op = 'TransMorph';
    const want = [1, ...this.config.imgSize];
    for (const [name, t] of [['source', source], ['target', target]] as const) {
      if (!(t instanceof Tensor) || t.ndim !== this.ndims + 2 || t.shape.slice(1).join() !== want.join())
        fail(op, `${name} must be [N, ${want.join(', ')}] (one channel, then the config's imgSize), got ${t instanceof Tensor ? fmtShape(t.shape) : describe(t)}`);
      if (t.dtype !== 'f32') fail(op, `${name} must be an f32 tensor, got ${t.dtype}`);
    }
    if (source.shape[0] !== target.shape[0])
      fail(op, `source and target must have the same batch size, got ${fmtShape(source.shape)} and ${fmtShape(target.shape)}`);
    const bidir = this.bidir && !opts.registration;
    return tidy(() => {
      const x = cat([source, target], 1);
      const maskBgd = cast(logicalOr(source, target), 'f32');
      let f4: Tensor | null = null;
      let f5: Tensor | null = null;
      if (this.config.ifConvskip) {
        const pooled = (this.ndims === 2 ? avgPool2d : avgPool3d)(x, 3, { stride: 2, padding: 1 });
        f4 = this.c1.call(pooled);
        f5 = this.c2.call(x);
      }
      const feats = this.transformer.call(x) as Tensor[];
      const ts = this.config.ifTransskip;
      let h = this.up0.call(feats[3], ts ? feats[2] : null);
      h = this.up1.call(h, ts ? feats[1] : null);
      h = this.up2.call(h, ts ? feats[0] : null);
      h = this.up3.call(h, f4);
      h = this.up4.call(h, f5);
      const flow = this.regHead.call(h) as Tensor;
      const ySource = spatialTransform(source, flow);
      const yTarget = bidir ? spatialTransform(target, neg(flow)) : null;
      return { ySource, yTarget, flow, preintFlow: flow, maskBgd };
    });
  }
}
