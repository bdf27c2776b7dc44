/**
 * CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision") with OpenAI's
 * module names, so that `stateDict()` keys are those of OpenAI's released checkpoints:
 * - `visual`: a VisionTransformer (conv1 patch embedding without bias, class_embedding, positional_embedding,
 *   ln_pre, transformer.resblocks.*, ln_post on the class token, proj [width, embed]) or a ModifiedResNet (a 3-conv
 *   stem and a 2×2 average pool, four stages of bottlenecks whose stride is an average pool, attnpool: an
 *   AttentionPool2d whose single query is the mean of the grid);
 * - the text tower: token_embedding, positional_embedding, transformer.resblocks.* with a causal mask, ln_final, the
 *   features at each row's end-of-text token (the largest id of the row: argmax, then a gather), text_projection;
 * - logit_scale (a log temperature, initially log(1/0.07)).
 * Residual blocks are pre-norm (ln_1, attn, ln_2, mlp.c_fc → QuickGELU → mlp.c_proj); attn is torch.nn.MultiheadAttention
 * (in_proj_weight, in_proj_bias, out_proj). `loadClip` reads OpenAI state dicts in safetensors, and Hugging Face
 * CLIPModel ones (their keys mapped onto OpenAI's; ViT only, as Hugging Face has no ResNet CLIP).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import {
  add, argmax, arange, avgPool2d, cat, cosineSimilarityMatrix, exp, expand, indexSelect, linear, matmul, mean, mul, permute, relu, reshape,
  sigmoid, slice, softmax, tensor, transpose, zeros,
} from '../ops.js';
import { readSafetensors } from '../io/safetensors.js';
import { deriveSeed } from '../data/random.js';
import { normal_, zeros_ } from '../nn/init.js';
import { MultiheadAttention } from '../nn/attention.js';
import { BatchNorm2d, Conv2d, LayerNorm, Linear, Sequential } from '../nn/layers.js';
import { AvgPool2d } from '../nn/pooling.js';
import { Module } from '../nn/module.js';

export interface ClipConfig {
  /** Size of the joint embedding (the projections' output). */
  embedDim: number;
  imageResolution: number;
  /** A number: ViT depth. Four numbers: ModifiedResNet blocks per stage. */
  visionLayers: number | [number, number, number, number];
  /** ViT width, or the ResNet stem width (its attention pool works on 32 × that). */
  visionWidth: number;
  /** ViT patch size (ignored for ResNet). */
  visionPatchSize?: number;
  /** Attention heads of the image tower; default OpenAI's: width / 64 (ViT), 32 · width / 64 (ResNet). */
  visionHeads?: number;
  contextLength: number;
  vocabSize: number;
  transformerWidth: number;
  transformerHeads: number;
  transformerLayers: number;
}

export interface ClipOptions {
  /** Base seed of the initialisation (each tensor gets its own offset); default: the global generator. */
  seed?: number;
}

/** Seeds seed, seed + 1, ... in call order (undefined: the global generator). */
function seeds(base: number | undefined): () => number | undefined {
  let k = 0;
  return () => (base === undefined ? undefined : base + k++);
}

const param = (shape: number[]) => zeros(shape, { requiresGrad: true });

/** x · sigmoid(1.702 x): the GELU approximation CLIP was trained with. */
export class QuickGELU extends Module {
  override forward(x: Tensor): Tensor {
    return tidy(() => mul(x, sigmoid(mul(x, 1.702))));
  }
}

class ClipMlp extends Module {
  readonly cFc: Linear;
  readonly gelu = new QuickGELU();
  readonly cProj: Linear;
  /** `seed`: c_fc draws from seed and seed + 1 (weight, bias), c_proj from seed + 2 and seed + 3. */
  constructor(width: number, seed: number | undefined) {
    super();
    this.cFc = new Linear(width, 4 * width, { seed });
    this.cProj = new Linear(4 * width, width, { seed: seed === undefined ? undefined : seed + 2 });
    this.registerModule('c_fc', this.cFc);
    this.registerModule('gelu', this.gelu);
    this.registerModule('c_proj', this.cProj);
  }
  override forward(x: Tensor): Tensor {
    return this.cProj.call(this.gelu.call(this.cFc.call(x)));
  }
}

/** Pre-norm block on [N, L, D]: x + attn(ln_1(x)), then x + mlp(ln_2(x)); `mask` is an additive [L, L] mask. */
export class ResidualAttentionBlock extends Module {
  readonly attn: MultiheadAttention;
  readonly ln1: LayerNorm;
  readonly mlp: ClipMlp;
  readonly ln2: LayerNorm;
  /** `seed` makes the initialisation reproducible: the attention draws from seed..seed + 5, the MLP from seed + 6..seed + 9. */
  constructor(width: number, heads: number, seed?: number) {
    super();
    this.attn = new MultiheadAttention(width, heads, { batchFirst: true, seed });
    this.ln1 = new LayerNorm(width);
    this.mlp = new ClipMlp(width, seed === undefined ? undefined : seed + 6);
    this.ln2 = new LayerNorm(width);
    this.registerModule('attn', this.attn);
    this.registerModule('ln_1', this.ln1);
    this.registerModule('mlp', this.mlp);
    this.registerModule('ln_2', this.ln2);
  }
  override forward(x: Tensor, mask: Tensor | null = null): Tensor {
    return tidy(() => {
      const h = this.ln1.call(x) as Tensor;
      const y = add(x, this.attn.call(h, h, h, { attnMask: mask, needWeights: false })[0]);
      return add(y, this.mlp.call(this.ln2.call(y)));
    });
  }
}

/** transformer.resblocks.{i}. */
export class ClipTransformer extends Module {
  readonly resblocks: Sequential;
  /** `seed`: block i initialises from deriveSeed(seed, i), a stream apart from its neighbours' (undefined: the global generator). */
  constructor(readonly width: number, layers: number, heads: number, seed?: number) {
    super();
    this.resblocks = new Sequential(...Array.from({ length: layers }, (_, i) => new ResidualAttentionBlock(width, heads, seed === undefined ? undefined : deriveSeed(seed, i))));
  }
  override forward(x: Tensor, mask: Tensor | null = null): Tensor {
    return tidy(() => {
      let h = x;
      for (const block of this.resblocks) h = block.call(h, mask);
      return h;
    });
  }
}

export class VisionTransformer extends Module {
  readonly conv1: Conv2d;
  declare classEmbedding: Tensor;
  declare positionalEmbedding: Tensor;
  readonly lnPre: LayerNorm;
  readonly transformer: ClipTransformer;
  readonly lnPost: LayerNorm;
  declare proj: Tensor;
  readonly grid: number;
  constructor(readonly inputResolution: number, readonly patchSize: number, readonly width: number, layers: number, heads: number, outputDim: number, seed?: number) {
    super();
    const op = 'VisionTransformer';
    if (inputResolution % patchSize) fail(op, `imageResolution (${inputResolution}) must be a multiple of the patch size (${patchSize})`);
    const next = seeds(seed);
    this.grid = inputResolution / patchSize;
    this.conv1 = new Conv2d(3, width, patchSize, { stride: patchSize, bias: false, seed: next() });
    this.registerModule('conv1', this.conv1);
    const scale = width ** -0.5;
    this.registerParameter('class_embedding', normal_(param([width]), { std: scale, seed: next() }), 'classEmbedding');
    this.registerParameter('positional_embedding', normal_(param([this.grid ** 2 + 1, width]), { std: scale, seed: next() }), 'positionalEmbedding');
    this.lnPre = new LayerNorm(width);
    this.registerModule('ln_pre', this.lnPre);
    this.transformer = new ClipTransformer(width, layers, heads, next());
    this.registerModule('transformer', this.transformer);
    this.lnPost = new LayerNorm(width);
    this.registerModule('ln_post', this.lnPost);
    this.registerParameter('proj', normal_(param([width, outputDim]), { std: scale, seed: next() }));
  }
  /** The class token after ln_post [N, width]: the features `proj` maps into the joint space. */
  features(x: Tensor): Tensor {
    const op = 'VisionTransformer';
    const R = this.inputResolution;
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3 || x.shape[2] !== R || x.shape[3] !== R)
      fail(op, `image must be [N, 3, ${R}, ${R}], got ${x instanceof Tensor ? fmtShape(x.shape) : describe(x)}`);
    const N = x.shape[0];
    return tidy(() => {
      const patches = transpose(reshape(this.conv1.call(x), [N, this.width, this.grid ** 2]), 1, 2);
      const cls = expand(reshape(this.classEmbedding, [1, 1, this.width]), [N, 1, this.width]);
      let h = add(cat([cls, patches], 1), this.positionalEmbedding);
      h = this.transformer.call(this.lnPre.call(h));
      return this.lnPost.call(reshape(slice(h, 1, 0, 1), [N, this.width]));
    });
  }
  override forward(x: Tensor): Tensor {
    return tidy(() => matmul(this.features(x), this.proj));
  }
}

/** The bottleneck's shortcut when the shape changes: avg pool (key '-1'), 1×1 conv ('0'), BatchNorm ('1'). */
class Downsample extends Module {
  readonly pool: AvgPool2d;
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(inplanes: number, outplanes: number, stride: number, seed: number | undefined) {
    super();
    this.pool = new AvgPool2d(stride);
    this.conv = new Conv2d(inplanes, outplanes, 1, { bias: false, seed });
    this.bn = new BatchNorm2d(outplanes);
    this.registerModule('-1', this.pool);
    this.registerModule('0', this.conv);
    this.registerModule('1', this.bn);
  }
  override forward(x: Tensor): Tensor {
    return tidy(() => this.bn.call(this.conv.call(this.pool.call(x))));
  }
}

/** OpenAI's Bottleneck: 1×1, 3×3, (avg pool when strided), 1×1 ×4; downsample = avg pool ('-1'), 1×1 conv ('0'), BN ('1'). */
export class Bottleneck extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Downsample | null;
  constructor(inplanes: number, planes: number, readonly stride: number, next: () => number | undefined) {
    super();
    this.conv1 = new Conv2d(inplanes, planes, 1, { bias: false, seed: next() });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false, seed: next() });
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = new Conv2d(planes, 4 * planes, 1, { bias: false, seed: next() });
    this.bn3 = new BatchNorm2d(4 * planes);
    this.downsample = stride > 1 || inplanes !== 4 * planes ? new Downsample(inplanes, 4 * planes, stride, next()) : null;
  }
  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = relu(this.bn1.call(this.conv1.call(x)));
      h = relu(this.bn2.call(this.conv2.call(h)));
      if (this.stride > 1) h = avgPool2d(h, this.stride);
      h = this.bn3.call(this.conv3.call(h));
      return relu(add(h, this.downsample ? this.downsample.call(x) : x));
    });
  }
}

/** Attention pooling: tokens = [mean of the grid, grid...] + positional embedding; the mean token alone queries. */
export class AttentionPool2d extends Module {
  declare positionalEmbedding: Tensor;
  readonly kProj: Linear;
  readonly qProj: Linear;
  readonly vProj: Linear;
  readonly cProj: Linear;
  constructor(readonly spacialDim: number, readonly embedDim: number, readonly numHeads: number, outputDim: number, next: () => number | undefined) {
    super();
    if (embedDim % numHeads) fail('AttentionPool2d', `embedDim (${embedDim}) must be divisible by the number of heads (${numHeads})`);
    this.registerParameter('positional_embedding', normal_(param([spacialDim ** 2 + 1, embedDim]), { std: embedDim ** -0.5, seed: next() }), 'positionalEmbedding');
    this.kProj = new Linear(embedDim, embedDim, { seed: next() });
    this.qProj = new Linear(embedDim, embedDim, { seed: next() });
    this.vProj = new Linear(embedDim, embedDim, { seed: next() });
    this.cProj = new Linear(embedDim, outputDim, { seed: next() });
    this.registerModule('k_proj', this.kProj);
    this.registerModule('q_proj', this.qProj);
    this.registerModule('v_proj', this.vProj);
    this.registerModule('c_proj', this.cProj);
  }
  override forward(x: Tensor): Tensor {
    const [N, C, H, W] = x.shape;
    const s = this.spacialDim;
    if (x.ndim !== 4 || C !== this.embedDim || H !== s || W !== s)
      fail('AttentionPool2d', `input must be [N, ${this.embedDim}, ${s}, ${s}], got ${fmtShape(x.shape)}`);
    const heads = this.numHeads;
    const hd = C / heads;
    return tidy(() => {
      const grid = transpose(reshape(x, [N, C, H * W]), 1, 2);
      const t = add(cat([mean(grid, { dim: 1, keepdim: true }), grid], 1), this.positionalEmbedding);
      const split = (z: Tensor, L: number) => permute(reshape(z, [N, L, heads, hd]), [0, 2, 1, 3]);
      const q = split(this.qProj.call(slice(t, 1, 0, 1)), 1);
      const k = split(this.kProj.call(t), H * W + 1);
      const v = split(this.vProj.call(t), H * W + 1);
      const w = softmax(mul(matmul(q, transpose(k, 2, 3)), 1 / Math.sqrt(hd)), { dim: -1 });
      return this.cProj.call(reshape(matmul(w, v), [N, C]));
    });
  }
}

export class ModifiedResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly attnpool: AttentionPool2d;
  constructor(layers: readonly number[], outputDim: number, heads: number, readonly inputResolution: number, width: number, seed?: number) {
    super();
    const op = 'ModifiedResNet';
    if (inputResolution % 32) fail(op, `imageResolution must be a multiple of 32 (the tower downsamples 32×), got ${inputResolution}`);
    const next = seeds(seed);
    const half = width / 2;
    if (!Number.isInteger(half)) fail(op, `visionWidth must be even (the stem's first convs have width / 2 channels), got ${width}`);
    this.conv1 = new Conv2d(3, half, 3, { stride: 2, padding: 1, bias: false, seed: next() });
    this.bn1 = new BatchNorm2d(half);
    this.conv2 = new Conv2d(half, half, 3, { padding: 1, bias: false, seed: next() });
    this.bn2 = new BatchNorm2d(half);
    this.conv3 = new Conv2d(half, width, 3, { padding: 1, bias: false, seed: next() });
    this.bn3 = new BatchNorm2d(width);
    let inplanes = width;
    const stage = (i: number) => {
      const planes = width * 2 ** i;
      const blocks = Array.from({ length: layers[i] }, (_, j) => {
        const b = new Bottleneck(inplanes, planes, i > 0 && j === 0 ? 2 : 1, next);
        inplanes = 4 * planes;
        return b;
      });
      return new Sequential(...blocks);
    };
    this.layer1 = stage(0);
    this.layer2 = stage(1);
    this.layer3 = stage(2);
    this.layer4 = stage(3);
    this.attnpool = new AttentionPool2d(inputResolution / 32, 32 * width, heads, outputDim, next);
  }
  override forward(x: Tensor): Tensor {
    const R = this.inputResolution;
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3 || x.shape[2] !== R || x.shape[3] !== R)
      fail('ModifiedResNet', `image must be [N, 3, ${R}, ${R}], got ${x instanceof Tensor ? fmtShape(x.shape) : describe(x)}`);
    return tidy(() => {
      let h = relu(this.bn1.call(this.conv1.call(x)));
      h = relu(this.bn2.call(this.conv2.call(h)));
      h = avgPool2d(relu(this.bn3.call(this.conv3.call(h))), 2);
      for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) h = layer.call(h);
      return this.attnpool.call(h);
    });
  }
}

/** torch.nn.Embedding's parameter (key `weight`) and lookup, for the token embedding. */
export class TokenEmbedding extends Module {
  declare weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number) {
    super();
    this.registerParameter('weight', param([numEmbeddings, embeddingDim]));
  }
  /** ids [...] (i32) → [..., embeddingDim]. */
  override forward(ids: Tensor): Tensor {
    if (!(ids instanceof Tensor) || ids.dtype !== 'i32') fail('TokenEmbedding', `token ids must be an i32 Tensor, got ${ids instanceof Tensor ? ids.dtype : describe(ids)}`);
    return tidy(() => reshape(indexSelect(this.weight, 0, reshape(ids, [ids.size])), [...ids.shape, this.embeddingDim]));
  }
}

export class CLIP extends Module {
  readonly visual: VisionTransformer | ModifiedResNet;
  readonly transformer: ClipTransformer;
  readonly tokenEmbedding: TokenEmbedding;
  declare positionalEmbedding: Tensor;
  readonly lnFinal: LayerNorm;
  declare textProjection: Tensor;
  declare logitScale: Tensor;
  readonly config: Readonly<ClipConfig>;

  constructor(config: ClipConfig, opts: ClipOptions = {}) {
    super();
    const c = checkConfig(config);
    this.config = c;
    const next = seeds(opts.seed);
    if (Array.isArray(c.visionLayers)) {
      const heads = c.visionHeads ?? (c.visionWidth * 32) / 64;
      this.visual = new ModifiedResNet(c.visionLayers, c.embedDim, heads, c.imageResolution, c.visionWidth, next());
    } else {
      const heads = c.visionHeads ?? c.visionWidth / 64;
      this.visual = new VisionTransformer(c.imageResolution, c.visionPatchSize!, c.visionWidth, c.visionLayers as number, heads, c.embedDim, next());
    }
    this.transformer = new ClipTransformer(c.transformerWidth, c.transformerLayers, c.transformerHeads, next());
    this.tokenEmbedding = new TokenEmbedding(c.vocabSize, c.transformerWidth);
    this.registerModule('token_embedding', this.tokenEmbedding);
    this.registerParameter('positional_embedding', param([c.contextLength, c.transformerWidth]), 'positionalEmbedding');
    this.lnFinal = new LayerNorm(c.transformerWidth);
    this.registerModule('ln_final', this.lnFinal);
    this.registerParameter('text_projection', param([c.transformerWidth, c.embedDim]), 'textProjection');
    this.registerParameter('logit_scale', tensor([Math.log(1 / 0.07)], [], { requiresGrad: true }), 'logitScale');
    this.initializeParameters(next);
  }

  /** OpenAI's initialize_parameters: normal draws with the widths' standard deviations, bn3 gains zeroed. */
  private initializeParameters(next: () => number | undefined): void {
    const c = this.config;
    normal_(this.tokenEmbedding.weight, { std: 0.02, seed: next() });
    normal_(this.positionalEmbedding, { std: 0.01, seed: next() });
    if (this.visual instanceof ModifiedResNet) {
      const pool = this.visual.attnpool;
      const std = pool.cProj.inFeatures ** -0.5;
      for (const l of [pool.qProj, pool.kProj, pool.vProj, pool.cProj]) normal_(l.weight, { std, seed: next() });
      for (const layer of [this.visual.layer1, this.visual.layer2, this.visual.layer3, this.visual.layer4])
        for (const b of layer) zeros_((b as Bottleneck).bn3.weight!);
    }
    const w = c.transformerWidth;
    const projStd = w ** -0.5 * (2 * c.transformerLayers) ** -0.5;
    for (const b of this.transformer.resblocks) {
      const block = b as ResidualAttentionBlock;
      normal_(block.attn.inProjWeight!, { std: w ** -0.5, seed: next() });
      normal_(block.attn.outProj.weight, { std: projStd, seed: next() });
      normal_(block.mlp.cFc.weight, { std: (2 * w) ** -0.5, seed: next() });
      normal_(block.mlp.cProj.weight, { std: projStd, seed: next() });
    }
    normal_(this.textProjection, { std: w ** -0.5, seed: next() });
  }

  /** image [N, 3, R, R] → [N, embedDim] (not normalised). */
  encodeImage(image: Tensor): Tensor {
    return this.visual.call(image);
  }

  /** text [N, contextLength] i32 token ids (end-of-text = each row's largest id) → [N, embedDim] (not normalised). */
  encodeText(text: Tensor): Tensor {
    const c = this.config;
    if (!(text instanceof Tensor) || text.dtype !== 'i32' || text.ndim !== 2 || text.shape[1] !== c.contextLength)
      fail('CLIP.encodeText', `text must be i32 token ids [N, ${c.contextLength}], got ${text instanceof Tensor ? `${text.dtype} ${fmtShape(text.shape)}` : describe(text)}`);
    const [N, L] = text.shape;
    const D = c.transformerWidth;
    return tidy(() => {
      const mask = causalMask(L);
      let x = add(this.tokenEmbedding.call(text), this.positionalEmbedding);
      x = this.lnFinal.call(this.transformer.call(x, mask));
      const rows = add(argmax(text, { dim: -1 }), mul(arange(N), L));
      return matmul(indexSelect(reshape(x, [N * L, D]), 0, rows), this.textProjection);
    });
  }

  /** [logitsPerImage [N, M], logitsPerText [M, N]]: exp(logit_scale) times the cosine similarities. */
  override forward(image: Tensor, text: Tensor): [Tensor, Tensor] {
    return tidy(() => {
      const logits = mul(cosineSimilarityMatrix(this.encodeImage(image), this.encodeText(text)), exp(this.logitScale));
      return [logits, transpose(logits, 0, 1)];
    });
  }
}

/** Additive [L, L] mask: 0 on and below the diagonal, -inf above (a token sees itself and the tokens before it). */
function causalMask(L: number): Tensor {
  const m = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) m[i * L + j] = -Infinity;
  return tensor(m, [L, L]);
}

function checkConfig(c: ClipConfig): ClipConfig {
  const op = 'CLIP';
  if (c === null || typeof c !== 'object') fail(op, `config must be an object, got ${describe(c)}`);
  const posInt = (name: keyof ClipConfig, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 1) fail(op, `config.${name} must be a positive integer, got ${describe(v)}`);
  };
  for (const k of ['embedDim', 'imageResolution', 'visionWidth', 'contextLength', 'vocabSize', 'transformerWidth', 'transformerHeads', 'transformerLayers'] as const) posInt(k, c[k]);
  if (Array.isArray(c.visionLayers)) {
    if (c.visionLayers.length !== 4 || c.visionLayers.some((n) => !Number.isInteger(n) || n < 1))
      fail(op, `config.visionLayers must be a ViT depth or four ResNet stage depths (positive integers), got ${JSON.stringify(c.visionLayers)}`);
  } else {
    posInt('visionLayers', c.visionLayers);
    posInt('visionPatchSize', c.visionPatchSize);
  }
  if (c.visionHeads !== undefined) posInt('visionHeads', c.visionHeads);
  if (c.transformerWidth % c.transformerHeads) fail(op, `config.transformerWidth (${c.transformerWidth}) must be divisible by transformerHeads (${c.transformerHeads})`);
  return { ...c, visionLayers: Array.isArray(c.visionLayers) ? ([...c.visionLayers] as ClipConfig['visionLayers']) : c.visionLayers };
}

// ---- checkpoints ------------------------------------------------------------------------------------------------

/** True when the keys are Hugging Face CLIPModel's (text_model.*, vision_model.*). */
const isHuggingFace = (dict: Record<string, Tensor>) => Object.keys(dict).some((k) => k.startsWith('text_model.') || k.startsWith('vision_model.'));

const HF_BLOCK: [string, string][] = [
  ['self_attn.out_proj', 'attn.out_proj'],
  ['layer_norm1', 'ln_1'],
  ['layer_norm2', 'ln_2'],
  ['mlp.fc1', 'mlp.c_fc'],
  ['mlp.fc2', 'mlp.c_proj'],
];

const HF_PLAIN: Record<string, string> = {
  'text_model.embeddings.token_embedding.weight': 'token_embedding.weight',
  'text_model.embeddings.position_embedding.weight': 'positional_embedding',
  'text_model.final_layer_norm.weight': 'ln_final.weight',
  'text_model.final_layer_norm.bias': 'ln_final.bias',
  'vision_model.embeddings.class_embedding': 'visual.class_embedding',
  'vision_model.embeddings.patch_embedding.weight': 'visual.conv1.weight',
  'vision_model.embeddings.position_embedding.weight': 'visual.positional_embedding',
  // Hugging Face spells it pre_layrnorm
  'vision_model.pre_layrnorm.weight': 'visual.ln_pre.weight',
  'vision_model.pre_layrnorm.bias': 'visual.ln_pre.bias',
  'vision_model.post_layernorm.weight': 'visual.ln_post.weight',
  'vision_model.post_layernorm.bias': 'visual.ln_post.bias',
  logit_scale: 'logit_scale',
};

/**
 * A Hugging Face CLIPModel state dict with OpenAI's keys: q/k/v projections concatenated into in_proj_weight/bias,
 * text_projection and visual.proj transposed (Hugging Face stores them as Linear weights [embed, width]), the
 * position_ids buffers dropped. The returned tensors that were built here are new; the others are the input's.
 */
export function clipStateDictFromHuggingFace(dict: Record<string, Tensor>): Record<string, Tensor> {
  const op = 'clipStateDictFromHuggingFace';
  const out: Record<string, Tensor> = {};
  const used = new Set<string>();
  const take = (k: string) => {
    const t = dict[k];
    if (!(t instanceof Tensor)) fail(op, `the Hugging Face state dict lacks '${k}'`);
    used.add(k);
    return t;
  };
  for (const [hf, oa] of Object.entries(HF_PLAIN)) if (hf in dict) out[oa] = take(hf);
  const blocks = (src: string, dst: string) => {
    for (let i = 0; `${src}.encoder.layers.${i}.layer_norm1.weight` in dict; i++) {
      const s = `${src}.encoder.layers.${i}.`;
      const d = `${dst}.resblocks.${i}.`;
      for (const kind of ['weight', 'bias'])
        out[`${d}attn.in_proj_${kind}`] = cat(['q', 'k', 'v'].map((n) => take(`${s}self_attn.${n}_proj.${kind}`)), 0);
      for (const [a, b] of HF_BLOCK) for (const kind of ['weight', 'bias']) out[`${d}${b}.${kind}`] = take(`${s}${a}.${kind}`);
    }
  };
  blocks('text_model', 'transformer');
  blocks('vision_model', 'visual.transformer');
  out.text_projection = transpose(take('text_projection.weight'), 0, 1);
  out['visual.proj'] = transpose(take('visual_projection.weight'), 0, 1);
  const left = Object.keys(dict).filter((k) => !used.has(k) && !k.endsWith('position_ids'));
  if (left.length) fail(op, `unexpected Hugging Face keys (not a CLIPModel state dict?): ${left.slice(0, 8).map((k) => `'${k}'`).join(', ')}${left.length > 8 ? ` and ${left.length - 8} more` : ''}`);
  return out;
}

/** OpenAI's build_model: the configuration a state dict (OpenAI keys) implies. */
export function clipConfigFromStateDict(sd: Record<string, Tensor>): ClipConfig {
  const op = 'clipConfigFromStateDict';
  const need = (k: string) => {
    const t = sd[k];
    if (!(t instanceof Tensor)) fail(op, `the state dict lacks '${k}' (OpenAI CLIP keys expected)`);
    return t;
  };
  const count = (re: RegExp) => new Set(Object.keys(sd).map((k) => re.exec(k)?.[1]).filter((x) => x !== undefined)).size;
  const textProjection = need('text_projection');
  const tokens = need('token_embedding.weight');
  const pos = need('positional_embedding');
  const transformerWidth = need('ln_final.weight').shape[0];
  const base = {
    embedDim: textProjection.shape[1],
    contextLength: pos.shape[0],
    vocabSize: tokens.shape[0],
    transformerWidth,
    transformerHeads: transformerWidth / 64,
    transformerLayers: count(/^transformer\.resblocks\.(\d+)\./),
  };
  if ('visual.proj' in sd) {
    const width = need('visual.conv1.weight').shape[0];
    const patch = need('visual.conv1.weight').shape[3];
    const grid = Math.round(Math.sqrt(need('visual.positional_embedding').shape[0] - 1));
    return { ...base, visionWidth: width, visionLayers: count(/^visual\.transformer\.resblocks\.(\d+)\./), visionPatchSize: patch, imageResolution: patch * grid };
  }
  const layers = [1, 2, 3, 4].map((i) => count(new RegExp(`^visual\\.layer${i}\\.(\\d+)\\.`))) as [number, number, number, number];
  const width = need('visual.layer1.0.conv1.weight').shape[0];
  const grid = Math.round(Math.sqrt(need('visual.attnpool.positional_embedding').shape[0] - 1));
  return { ...base, visionWidth: width, visionLayers: layers, imageResolution: 32 * grid };
}

export interface LoadClipOptions {
  /** Overrides of the inferred configuration (e.g. heads, which a state dict does not record: OpenAI's are width / 64). */
  config?: Partial<ClipConfig>;
}

/**
 * A CLIP with the weights of a state dict (OpenAI keys, or Hugging Face CLIPModel keys, mapped), or of a safetensors
 * file holding one. The configuration is inferred from the shapes as OpenAI's build_model does; `config` overrides it.
 */
export async function loadClip(source: string | Uint8Array | ArrayBuffer | Record<string, Tensor>, opts: LoadClipOptions = {}): Promise<CLIP> {
  const raw = source instanceof Uint8Array || source instanceof ArrayBuffer || typeof source === 'string' ? await readSafetensors(source) : source;
  const hf = isHuggingFace(raw);
  const sd = hf ? clipStateDictFromHuggingFace(raw) : raw;
  try {
    const model = new CLIP({ ...clipConfigFromStateDict(sd), ...opts.config });
    model.loadStateDict(sd);
    return model;
  } finally {
    // the model holds copies: the tensors mapped here and those read from a file are no longer needed
    const given = new Set(Object.values(raw));
    for (const t of Object.values(sd)) if (!given.has(t)) t.dispose();
    if (raw !== source) for (const t of given) t.dispose();
  }
}
