/**
 * CASTformer (CA-GANformer; You et al., NeurIPS 2022): the generator CATformer and the transformer discriminator.
 * No public code exists; every part below except the overall plan (a TransUNet-like generator with a CNN pyramid, a
 * transformer encoder and a cascaded upsampler; a class-aware module; a transformer discriminator; adversarial
 * training) is RECONSTRUCTED and configurable:
 * - [R1] CNN pyramid: levels of (conv3×3 → BN → ReLU) ×2, max-pool between them (the paper: an ImageNet ResNet-50).
 * - [R2] Naive tokens: the deepest level, 1×1-projected to embedDim, one token per cell, plus a learned position
 *   embedding (TransUNet's hybrid tokenisation with patch size 1).
 * - [R3] Class-aware module, after PS-ViT's progressive sampling: points p₀ = the token grid's cell centres in [0, 1];
 *   for t = 1..M: F_t = pointSample(S, p_{t−1}) of a finer pyramid level S (1×1-projected), T_t = Block_t(T_{t−1} + F_t
 *   + Linear(2p_{t−1} − 1)), and for t < M: p_t = p_{t−1} + Linear(LN(T_t)) / grid (offsets in cells, zero-initialised
 *   so training starts from the regular grid). T₀ = the naive tokens, so removing the module leaves the naive tokens.
 *   Offsets get their gradient through pointSample's gradient to the points.
 * - [R4] Transformer encoder: `depth` pre-norm ViT blocks, a final LayerNorm; tokens back on the grid.
 * - [R5] Cascaded upsampler (TransUNet's CUP): conv3×3 from embedDim, then per level ×2 bilinear upsampling, skip
 *   concatenation and a conv block; a 1×1 head to class logits.
 * - [R6] Discriminator: image ⊕ class probabilities (channel concatenation) → patch embedding (conv, stride = patch)
 *   → class token + learned position embedding → ViT blocks → LayerNorm → linear score from the class token; spectral
 *   normalisation (vg.nn.spectralNorm) on the patch embedding, every linear layer of the blocks and the head.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { tensor, zeros } from '../kernels/creation.js';
import { add, div, mul, sub } from '../kernels/math.js';
import { interpolate } from '../kernels/interpolate.js';
import { pointSample } from '../kernels/points.js';
import { cat, expand, reshape, slice, transpose } from '../kernels/shape.js';
import { normal_, zeros_ } from '../nn/init.js';
import { TransformerBlock } from '../nn/attention.js';
import { BatchNorm2d, Conv2d, LayerNorm, Linear, ModuleList, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { MaxPool2d } from '../nn/pooling.js';
import { spectralNorm } from '../nn/spectral-norm.js';

const seeds = (base: number) => {
  let next = base;
  return () => next++;
};

function positiveInt(op: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) fail(op, `${name} must be a positive integer, got ${describe(v)}`);
  return v as number;
}

/** [R1] (conv3×3 → BN → ReLU) ×2. */
function convBlock(inC: number, outC: number, seed: () => number): Sequential {
  return new Sequential(
    new Conv2d(inC, outC, 3, { padding: 1, seed: seed() }),
    new BatchNorm2d(outC),
    new ReLU(),
    new Conv2d(outC, outC, 3, { padding: 1, seed: seed() }),
    new BatchNorm2d(outC),
    new ReLU(),
  );
}

export interface CATformerOptions {
  inChannels?: number;
  numClasses?: number;
  /** Input height and width (square; a multiple of 2^(levels − 1)); fixes the token grid and its position embedding. Default 64. */
  imageSize?: number;
  /** Channels per pyramid level, fine to coarse (default [16, 32, 64, 128]: four levels, the token grid at imageSize / 8). */
  features?: readonly number[];
  /** Token width (default 64). */
  embedDim?: number;
  /** Transformer encoder blocks (default 2). */
  depth?: number;
  heads?: number;
  mlpRatio?: number;
  /** Use the class-aware module [R3] (default true); false: the naive tokens go straight to the encoder. */
  classAware?: boolean;
  /** Sampling iterations M of the class-aware module (default 3). */
  camIterations?: number;
  /** Pyramid level (0 = finest) the class-aware module samples (default: the one above the token grid). */
  camLevel?: number;
  seed?: number;
}

/** CATformer output with the class-aware module's sampling points per iteration ([B, N, 2] in [0, 1], x first). */
export interface CATformerOutput {
  logits: Tensor;
  points: Tensor[];
}

/** The class-aware module [R3]. */
class ClassAwareModule extends Module {
  readonly source: Conv2d;
  readonly posEnc: Linear;
  readonly blocks: ModuleList;
  readonly offsets: ModuleList;
  readonly offsetNorms: ModuleList;
  declare grid0: Tensor;
  constructor(inC: number, dim: number, heads: number, mlpRatio: number, readonly iterations: number, readonly grid: number, seed: () => number) {
    super();
    this.source = new Conv2d(inC, dim, 1, { seed: seed() });
    this.posEnc = new Linear(2, dim, { seed: seed() });
    this.blocks = new ModuleList(Array.from({ length: iterations }, () => new TransformerBlock(dim, heads, { mlpRatio, seed: seed() * 16 })));
    this.offsetNorms = new ModuleList(Array.from({ length: iterations - 1 }, () => new LayerNorm(dim)));
    this.offsets = new ModuleList(
      Array.from({ length: iterations - 1 }, () => {
        const l = new Linear(dim, 2, { seed: seed() });
        zeros_(l.weight);
        zeros_(l.bias!);
        return l;
      }),
    );
    const centres = new Float32Array(grid * grid * 2);
    for (let i = 0; i < grid; i++)
      for (let j = 0; j < grid; j++) {
        centres[(i * grid + j) * 2] = (j + 0.5) / grid;
        centres[(i * grid + j) * 2 + 1] = (i + 0.5) / grid;
      }
    this.registerBuffer('grid0', tensor(centres, [1, grid * grid, 2]));
  }
  /** Tokens [B, N, dim] refined by sampling `level` [B, C, H, W]; the points of every iteration. */
  override forward(tokens: Tensor, level: Tensor): { tokens: Tensor; points: Tensor[] } {
    const B = tokens.shape[0];
    const n = this.grid * this.grid;
    return tidy(() => {
      const src = this.source.call(level);
      let p = expand(this.grid0, [B, n, 2]);
      let t = tokens;
      const points: Tensor[] = [p];
      for (let k = 0; k < this.iterations; k++) {
        const sampled = transpose(pointSample(src, p), 1, 2);
        t = this.blocks.at(k).call(add(add(t, sampled), this.posEnc.call(sub(mul(p, 2), 1))));
        if (k < this.iterations - 1) {
          p = add(p, div(this.offsets.at(k).call(this.offsetNorms.at(k).call(t)), this.grid));
          points.push(p);
        }
      }
      return { tokens: t, points };
    });
  }
}

/** CATformer, the generator (see the file header): logits [B, numClasses, S, S] for images [B, inChannels, S, S]. */
export class CATformer extends Module {
  readonly numClasses: number;
  readonly imageSize: number;
  readonly grid: number;
  readonly classAware: boolean;
  /** The pyramid level the class-aware module samples (-1 without the module). */
  readonly camLevel: number = -1;
  private readonly levels: Module[];
  readonly tokenProj: Conv2d;
  declare posEmbed: Tensor;
  readonly cam: ClassAwareModule | null;
  readonly encoder: ModuleList;
  readonly encoderNorm: LayerNorm;
  readonly decoderIn: Sequential;
  private readonly ups: Module[];
  readonly head: Conv2d;

  constructor(opts: CATformerOptions = {}) {
    super();
    const op = 'CATformer';
    const inC = positiveInt(op, 'inChannels', opts.inChannels ?? 1);
    this.numClasses = positiveInt(op, 'numClasses', opts.numClasses ?? 8);
    const ft = opts.features ?? [16, 32, 64, 128];
    if (!Array.isArray(ft) || ft.length < 2) fail(op, `features must list at least 2 pyramid levels, got ${describe(ft)}`);
    ft.forEach((f) => positiveInt(op, 'features[i]', f));
    const L = ft.length;
    this.imageSize = positiveInt(op, 'imageSize', opts.imageSize ?? 64);
    if (this.imageSize % 2 ** (L - 1)) fail(op, `imageSize must be a multiple of 2^${L - 1} = ${2 ** (L - 1)} for ${L} levels, got ${this.imageSize}`);
    this.grid = this.imageSize / 2 ** (L - 1);
    const dim = positiveInt(op, 'embedDim', opts.embedDim ?? 64);
    const heads = positiveInt(op, 'heads', opts.heads ?? 4);
    if (dim % heads) fail(op, `embedDim (${dim}) must be divisible by heads (${heads})`);
    const depth = positiveInt(op, 'depth', opts.depth ?? 2);
    const mlpRatio = opts.mlpRatio ?? 2;
    this.classAware = opts.classAware ?? true;
    const seed = seeds(opts.seed ?? 0);

    this.levels = [convBlock(inC, ft[0], seed)];
    for (let i = 1; i < L; i++) this.levels.push(new Sequential(new MaxPool2d(2), convBlock(ft[i - 1], ft[i], seed)));
    this.registerModule('pyramid', new ModuleList(this.levels));
    this.tokenProj = new Conv2d(ft[L - 1], dim, 1, { seed: seed() });
    const n = this.grid * this.grid;
    this.registerParameter('pos_embed', normal_(zeros([1, n, dim], { requiresGrad: true }), { std: 0.02, seed: seed() }), 'posEmbed');
    if (this.classAware) {
      const iterations = positiveInt(op, 'camIterations', opts.camIterations ?? 3);
      const camLevel = opts.camLevel ?? L - 2;
      if (!Number.isInteger(camLevel) || camLevel < 0 || camLevel >= L) fail(op, `camLevel must be a pyramid level in [0, ${L - 1}], got ${describe(opts.camLevel)}`);
      this.camLevel = camLevel;
      // its own seed stream, so the layers shared with classAware: false start from the same weights
      this.cam = new ClassAwareModule(ft[camLevel], dim, heads, mlpRatio, iterations, this.grid, seeds((opts.seed ?? 0) + 1_000_003));
    } else this.cam = null;
    this.encoder = new ModuleList(Array.from({ length: depth }, () => new TransformerBlock(dim, heads, { mlpRatio, seed: seed() * 16 })));
    this.encoderNorm = new LayerNorm(dim);
    this.decoderIn = new Sequential(new Conv2d(dim, ft[L - 1], 3, { padding: 1, seed: seed() }), new BatchNorm2d(ft[L - 1]), new ReLU());
    this.ups = [];
    for (let i = L - 2; i >= 0; i--) this.ups.push(convBlock(ft[i + 1] + ft[i], ft[i], seed));
    this.registerModule('decoder', new ModuleList(this.ups));
    this.head = new Conv2d(ft[0], this.numClasses, 1, { seed: seed() });
  }

  /** The logits and the class-aware module's sampling points (empty without the module). */
  run(x: Tensor): CATformerOutput {
    const S = this.imageSize;
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[2] !== S || x.shape[3] !== S)
      fail('CATformer', `input must be [B, C, ${S}, ${S}] (imageSize ${S}), got ${x instanceof Tensor ? fmtShape(x.shape) : describe(x)}`);
    const B = x.shape[0];
    const g = this.grid;
    return tidy(() => {
      const feats: Tensor[] = [];
      let h = x;
      for (const level of this.levels) feats.push((h = level.call(h)));
      const dim = this.tokenProj.outChannels;
      let t = add(transpose(reshape(this.tokenProj.call(h), [B, dim, g * g]), 1, 2), this.posEmbed);
      let points: Tensor[] = [];
      if (this.cam) ({ tokens: t, points } = this.cam.call(t, feats[this.camLevel]));
      for (const block of this.encoder) t = block.call(t);
      t = this.encoderNorm.call(t);
      let d = this.decoderIn.call(reshape(transpose(t, 1, 2), [B, dim, g, g]));
      this.ups.forEach((up, k) => {
        const skip = feats[feats.length - 2 - k];
        d = up.call(cat([interpolate(d, { size: skip.shape.slice(2), mode: 'bilinear', alignCorners: false }), skip], 1));
      });
      return { logits: this.head.call(d), points };
    });
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => this.run(x).logits);
  }
}

export interface CastDiscriminatorOptions {
  /** Image channels + class channels (default 1 + 8). */
  inChannels?: number;
  imageSize?: number;
  /** Patch size of the embedding (default 8). */
  patchSize?: number;
  dim?: number;
  depth?: number;
  heads?: number;
  mlpRatio?: number;
  /** Spectral normalisation of every weight layer (default true). */
  spectralNorm?: boolean;
  seed?: number;
}

/** The transformer discriminator [R6]: a score [B] for each image ⊕ mask input [B, inChannels, S, S]. */
export class CastDiscriminator extends Module {
  readonly patchEmbed: Conv2d;
  declare clsToken: Tensor;
  declare posEmbed: Tensor;
  readonly blocks: ModuleList;
  readonly norm: LayerNorm;
  readonly head: Linear;
  readonly inChannels: number;
  readonly imageSize: number;
  readonly patchSize: number;

  constructor(opts: CastDiscriminatorOptions = {}) {
    super();
    const op = 'CastDiscriminator';
    this.inChannels = positiveInt(op, 'inChannels', opts.inChannels ?? 9);
    this.imageSize = positiveInt(op, 'imageSize', opts.imageSize ?? 64);
    this.patchSize = positiveInt(op, 'patchSize', opts.patchSize ?? 8);
    if (this.imageSize % this.patchSize) fail(op, `imageSize (${this.imageSize}) must be a multiple of patchSize (${this.patchSize})`);
    const dim = positiveInt(op, 'dim', opts.dim ?? 64);
    const heads = positiveInt(op, 'heads', opts.heads ?? 4);
    if (dim % heads) fail(op, `dim (${dim}) must be divisible by heads (${heads})`);
    const depth = positiveInt(op, 'depth', opts.depth ?? 2);
    const seed = seeds(opts.seed ?? 0);
    const n = (this.imageSize / this.patchSize) ** 2;
    this.patchEmbed = new Conv2d(this.inChannels, dim, this.patchSize, { stride: this.patchSize, seed: seed() });
    this.registerParameter('cls_token', normal_(zeros([1, 1, dim], { requiresGrad: true }), { std: 0.02, seed: seed() }), 'clsToken');
    this.registerParameter('pos_embed', normal_(zeros([1, n + 1, dim], { requiresGrad: true }), { std: 0.02, seed: seed() }), 'posEmbed');
    this.blocks = new ModuleList(Array.from({ length: depth }, () => new TransformerBlock(dim, heads, { mlpRatio: opts.mlpRatio ?? 2, seed: seed() * 16 })));
    this.norm = new LayerNorm(dim);
    this.head = new Linear(dim, 1, { seed: seed() });
    if (opts.spectralNorm ?? true) {
      let k = seed() * 16;
      for (const [, m] of this.namedModules()) if (m instanceof Linear || m instanceof Conv2d) spectralNorm(m, { seed: (k += 2) });
    }
  }

  override forward(x: Tensor): Tensor {
    const S = this.imageSize;
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== this.inChannels || x.shape[2] !== S || x.shape[3] !== S)
      fail('CastDiscriminator', `input must be [B, ${this.inChannels}, ${S}, ${S}], got ${x instanceof Tensor ? fmtShape(x.shape) : describe(x)}`);
    const B = x.shape[0];
    return tidy(() => {
      const e = this.patchEmbed.call(x);
      const dim = e.shape[1];
      const patches = transpose(reshape(e, [B, dim, e.shape[2] * e.shape[3]]), 1, 2);
      let t = add(cat([expand(this.clsToken, [B, 1, dim]), patches], 1), this.posEmbed);
      for (const block of this.blocks) t = block.call(t);
      return reshape(this.head.call(this.norm.call(slice(t, 1, 0, 1))), [B]);
    });
  }
}
