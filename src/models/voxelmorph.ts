/**
 * VoxelMorph (Balakrishnan et al. 2019, Dalca et al. 2019) as the PyTorch package voxelmorph/torch/networks.py builds
 * it, and as the registration papers fork it (Voldemort108X/hetero_uncertainty, Voldemort108X/AdaCS):
 * - VxmUnet (the official `Unet`): one 3x3 conv + LeakyReLU(0.2) per level, max-pool 2 down, nearest x2 up with skip
 *   concatenation, extra full-resolution convs; 2-D and 3-D.
 * - VxmDense: UNet on cat(source, target) → 3x3 flow head (N(0, 1e-5) weights, zero bias) → optional diffeomorphic
 *   integration at 1/intDownsize resolution (ResizeTransform + scaling and squaring) → backward warp.
 * - VarianceEstimator (hetero_uncertainty: log σ² head) and ScoringNet (AdaCS: sigmoid score head) on the same UNet.
 * Children carry the official names, so state-dict keys are the official ones (unet_model.encoder.0.0.main.weight,
 * flow.weight, log_sigma_I.weight, scoring_mask.weight, ...). Flows are in voxels, channel i along spatial axis i
 * (docs/conventions.md), which is VoxelMorph's own convention.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { cast, cat, conv2d, conv3d, interpolate, logicalOr, maxPool2d, maxPool3d, mul, neg, sigmoid } from '../ops.js';
import { integrateVelocity, spatialTransform } from '../kernels/spatial.js';
import { Module } from '../nn/module.js';
import { Conv2d, Conv3d, ModuleList } from '../nn/layers.js';
import { normal_, zeros_ } from '../nn/init.js';

/** [[encoder features], [decoder features]] (decoder entries beyond the encoder's count are full-resolution convs), or one int with nbLevels. */
export type VxmFeatures = number | readonly [readonly number[], readonly number[]];

/** The official default_unet_features(). */
export const DEFAULT_VXM_FEATURES: readonly [readonly number[], readonly number[]] = [
  [16, 32, 32, 32],
  [32, 32, 32, 32, 32, 16, 16],
];

export interface VxmUnetOptions {
  /** Default DEFAULT_VXM_FEATURES. */
  nbFeatures?: VxmFeatures;
  /** Levels, only with an int nbFeatures. */
  nbLevels?: number | null;
  /** Per-level feature multiplier, only with an int nbFeatures (default 1). */
  featMult?: number;
  /** Convs per level (default 1). */
  nbConvPerLevel?: number;
  /** Skip the last decoder upsampling: the output is at half resolution (default false). */
  halfRes?: boolean;
  /** Base seed of the layers' default initialisation (layer k gets seed + k); default: the global generator. */
  seed?: number;
}

/** The common options of the VxmUnet-based networks (official names, camelCase). */
export interface VxmBackboneOptions {
  nbUnetFeatures?: VxmFeatures;
  nbUnetLevels?: number | null;
  unetFeatMult?: number;
  nbUnetConvPerLevel?: number;
  unetHalfRes?: boolean;
  /** Base seed of the layers' initialisation; default: the global generator (vg.manualSeed). */
  seed?: number;
}

type Conv = Conv2d | Conv3d;

function checkInshape(op: string, inshape: unknown): number[] {
  if (!Array.isArray(inshape) || (inshape.length !== 2 && inshape.length !== 3) || !inshape.every((d) => Number.isInteger(d) && d > 0))
    fail(op, `inshape must list 2 or 3 positive integer spatial sizes ([H, W] or [D, H, W]), got ${describe(inshape)}`);
  return [...inshape];
}

function checkInt(op: string, name: string, v: unknown, min: number): number {
  if (!Number.isInteger(v) || (v as number) < min) fail(op, `${name} must be an integer >= ${min}, got ${describe(v)}`);
  return v as number;
}

const makeConv = (nd: number, cin: number, cout: number, seed: number | undefined): Conv =>
  nd === 2 ? new Conv2d(cin, cout, 3, { padding: 1, seed }) : new Conv3d(cin, cout, 3, { padding: 1, seed });

/** Hands out one seed per layer in construction order (undefined: the global generator). */
function seeder(base: number | undefined): () => number | undefined {
  let next = base;
  return () => (next === undefined ? undefined : next++);
}

/**
 * The official ConvBlock: conv 3x3 (stride 1, padding 1, bias) → LeakyReLU(0.2); keys main.weight, main.bias. The
 * activation is the conv's fused epilogue (the same values as main's output through leakyRelu, in one pass).
 */
class ConvBlock extends Module {
  readonly main: Conv;
  constructor(
    private readonly nd: number,
    cin: number,
    cout: number,
    seed: number | undefined,
  ) {
    super();
    this.main = makeConv(nd, cin, cout, seed);
  }
  override forward(x: Tensor): Tensor {
    const conv = this.nd === 2 ? conv2d : conv3d;
    return conv(x, this.main.weight, { padding: 1, bias: this.main.bias, activation: { kind: 'leakyRelu', negativeSlope: 0.2 } });
  }
}

/**
 * The official voxelmorph Unet. Input [N, infeats, *inshape], output [N, finalNf, *inshape] (half resolution with
 * halfRes). Each spatial size must be a multiple of 2^(nbLevels - 1).
 */
export class VxmUnet extends Module {
  readonly ndims: 2 | 3;
  readonly inshape: number[];
  readonly infeats: number;
  readonly nbLevels: number;
  readonly halfRes: boolean;
  /** Channels of the output. */
  readonly finalNf: number;
  private readonly encoder: ModuleList;
  private readonly decoder: ModuleList;
  private readonly remaining: ModuleList;

  constructor(inshape: readonly number[], infeats: number, opts: VxmUnetOptions = {}) {
    super();
    const op = 'VxmUnet';
    this.inshape = checkInshape(op, inshape);
    this.ndims = this.inshape.length as 2 | 3;
    this.infeats = checkInt(op, 'infeats', infeats, 1);
    this.halfRes = opts.halfRes ?? false;
    const nbConv = checkInt(op, 'nbConvPerLevel', opts.nbConvPerLevel ?? 1, 1);
    let nbFeatures = opts.nbFeatures ?? DEFAULT_VXM_FEATURES;
    if (typeof nbFeatures === 'number') {
      const levels = checkInt(op, 'nbLevels (required with an int nbFeatures)', opts.nbLevels, 2);
      const feats = Array.from({ length: levels }, (_, i) => Math.round(nbFeatures as number * (opts.featMult ?? 1) ** i));
      const repeat = (a: number[]) => a.flatMap((f) => new Array<number>(nbConv).fill(f));
      nbFeatures = [repeat(feats.slice(0, -1)), repeat([...feats].reverse())];
    } else if (opts.nbLevels !== undefined && opts.nbLevels !== null) {
      fail(op, `nbLevels can only be used with an int nbFeatures, got nbFeatures ${describe(nbFeatures)} and nbLevels ${opts.nbLevels}`);
    }
    const [encNf, decAll] = nbFeatures;
    if (!Array.isArray(encNf) || !Array.isArray(decAll) || ![...encNf, ...decAll].every((f) => Number.isInteger(f) && f > 0) || decAll.length < encNf.length || encNf.length % nbConv)
      fail(op, `nbFeatures must be [[encoder features], [decoder features]] of positive integers, the decoder list at least as long as the encoder's, and the encoder's a multiple of nbConvPerLevel (${nbConv}); got ${JSON.stringify(nbFeatures)}`);
    const nbDecConvs = encNf.length;
    const finalConvs = decAll.slice(nbDecConvs);
    const decNf = decAll.slice(0, nbDecConvs);
    this.nbLevels = nbDecConvs / nbConv + 1;
    const mult = 2 ** (this.nbLevels - 1);
    if (this.inshape.some((d) => d % mult))
      fail(op, `inshape ${fmtShape(this.inshape)} must be a multiple of ${mult} along every axis (${this.nbLevels - 1} max-poolings by 2); crop or pad the images`);

    const seed = seeder(opts.seed);
    let prevNf = this.infeats;
    const encoderNfs = [prevNf];
    this.encoder = new ModuleList();
    for (let level = 0; level < this.nbLevels - 1; level++) {
      const convs = new ModuleList();
      for (let c = 0; c < nbConv; c++) {
        const nf = encNf[level * nbConv + c];
        convs.append(new ConvBlock(this.ndims, prevNf, nf, seed()));
        prevNf = nf;
      }
      this.encoder.append(convs);
      encoderNfs.push(prevNf);
    }
    encoderNfs.reverse();
    this.decoder = new ModuleList();
    for (let level = 0; level < this.nbLevels - 1; level++) {
      const convs = new ModuleList();
      for (let c = 0; c < nbConv; c++) {
        const nf = decNf[level * nbConv + c];
        convs.append(new ConvBlock(this.ndims, prevNf, nf, seed()));
        prevNf = nf;
      }
      this.decoder.append(convs);
      if (!this.halfRes || level < this.nbLevels - 2) prevNf += encoderNfs[level];
    }
    this.remaining = new ModuleList();
    for (const nf of finalConvs) {
      this.remaining.append(new ConvBlock(this.ndims, prevNf, nf, seed()));
      prevNf = nf;
    }
    this.finalNf = prevNf;
  }

  override forward(x: Tensor): Tensor {
    const want = [this.infeats, ...this.inshape];
    if (!(x instanceof Tensor) || x.ndim !== this.ndims + 2 || x.shape.slice(1).join() !== want.join())
      fail('VxmUnet', `input must be [N, ${want.join(', ')}] (channels, then the inshape given at construction), got ${x instanceof Tensor ? fmtShape(x.shape) : describe(x)}`);
    const pool = this.ndims === 2 ? maxPool2d : maxPool3d;
    return tidy(() => {
      const history = [x];
      let h = x;
      for (const convs of this.encoder) {
        for (const conv of convs as ModuleList) h = conv.call(h);
        history.push(h);
        h = pool(h, 2);
      }
      let level = 0;
      for (const convs of this.decoder) {
        for (const conv of convs as ModuleList) h = conv.call(h);
        if (!this.halfRes || level < this.nbLevels - 2) h = cat([interpolate(h, { scaleFactor: 2, mode: 'nearest' }), history.pop() as Tensor], 1);
        level++;
      }
      for (const conv of this.remaining) h = conv.call(h);
      return h;
    });
  }
}

const unetOptions = (o: VxmBackboneOptions): VxmUnetOptions => ({
  nbFeatures: o.nbUnetFeatures,
  nbLevels: o.nbUnetLevels,
  featMult: o.unetFeatMult,
  nbConvPerLevel: o.nbUnetConvPerLevel,
  halfRes: o.unetHalfRes,
  seed: o.seed,
});

/** The layers' seeds after the UNet's: the UNet uses one per conv, the head the next. */
const headSeed = (unet: VxmUnet, seed: number | undefined) => (seed === undefined ? undefined : seed + unet.namedParameters().length / 2);

/**
 * The official ResizeTransform: resizes a displacement field by `factor` (interpolate with alignCorners true) and
 * scales its vectors by the same factor, so they stay in voxels of the new grid.
 */
function resizeFlow(flow: Tensor, factor: number): Tensor {
  const mode = flow.ndim === 4 ? 'bilinear' : 'trilinear';
  // the official resizes first when shrinking, and multiplies first when growing (less memory either way)
  if (factor < 1) return mul(interpolate(flow, { scaleFactor: factor, mode, alignCorners: true }), factor);
  return interpolate(mul(flow, factor), { scaleFactor: factor, mode, alignCorners: true });
}

/** Image tensors with the model's channels and inshape: [N, channels, *inshape]. */
function checkImage(op: string, arg: string, t: unknown, channels: number, inshape: readonly number[]): Tensor {
  const want = [channels, ...inshape];
  if (!(t instanceof Tensor) || t.ndim !== inshape.length + 2 || t.shape.slice(1).join() !== want.join())
    fail(op, `${arg} must be [N, ${want.join(', ')}] (${channels} channel(s), then the inshape given at construction), got ${t instanceof Tensor ? fmtShape(t.shape) : describe(t)}`);
  if (t.dtype !== 'f32') fail(op, `${arg} must be an f32 tensor, got ${t.dtype}`);
  return t;
}

export interface VxmDenseOptions extends VxmBackboneOptions {
  /** Scaling-and-squaring steps; 0 disables integration (the flow head's output is the displacement). Default 7. */
  intSteps?: number;
  /** The velocity is integrated at 1/intDownsize resolution (1: full resolution). Default 2. */
  intDownsize?: number;
  /** Also warp the target by the inverse (negated velocity) field. Default false. */
  bidir?: boolean;
  srcFeats?: number;
  trgFeats?: number;
}

/**
 * VxmDense's results. The official forward returns the tuple (y_source, y_target, preint_flow, mask_bgd) with bidir,
 * (y_source, preint_flow, mask_bgd) without, and (y_source, pos_flow, mask_bgd) with registration=True; here every
 * value is a named field.
 */
export interface VxmDenseOutput {
  /** source warped by `flow`: [N, srcFeats, *inshape]. */
  ySource: Tensor;
  /** target warped by the inverse field (bidir, not with registration: true); otherwise null. */
  yTarget: Tensor | null;
  /** The field before integration (at 1/intDownsize resolution when integrating): the smoothness loss's input. */
  preintFlow: Tensor;
  /** The full-resolution displacement (voxels, channel i along axis i) that warps the source: the official pos_flow. */
  flow: Tensor;
  /** (source != 0) | (target != 0) as 0/1 f32, shape of source: the losses' background mask (mask_bgd). */
  maskBgd: Tensor;
}

/** The official VxmDense: unsupervised deformable registration of source onto target. */
export class VxmDense extends Module {
  readonly inshape: number[];
  readonly ndims: 2 | 3;
  readonly intSteps: number;
  readonly intDownsize: number;
  readonly bidir: boolean;
  readonly srcFeats: number;
  readonly trgFeats: number;
  readonly unetModel: VxmUnet;
  readonly flow: Conv;
  private readonly resize: boolean;
  private readonly fullsize: boolean;

  constructor(inshape: readonly number[], opts: VxmDenseOptions = {}) {
    super();
    const op = 'VxmDense';
    this.inshape = checkInshape(op, inshape);
    this.ndims = this.inshape.length as 2 | 3;
    this.intSteps = checkInt(op, 'intSteps', opts.intSteps ?? 7, 0);
    this.intDownsize = checkInt(op, 'intDownsize', opts.intDownsize ?? 2, 1);
    this.bidir = opts.bidir ?? false;
    this.srcFeats = checkInt(op, 'srcFeats', opts.srcFeats ?? 1, 1);
    this.trgFeats = checkInt(op, 'trgFeats', opts.trgFeats ?? 1, 1);
    const halfRes = opts.unetHalfRes ?? false;
    if (halfRes && (this.intSteps === 0 || this.intDownsize !== 2))
      fail(op, `unetHalfRes needs integration at half resolution (intSteps > 0 and intDownsize 2), got intSteps ${this.intSteps} and intDownsize ${this.intDownsize}`);
    if (this.inshape.some((d) => d % this.intDownsize))
      fail(op, `inshape ${fmtShape(this.inshape)} must be a multiple of intDownsize (${this.intDownsize}) along every axis`);
    this.unetModel = new VxmUnet(this.inshape, this.srcFeats + this.trgFeats, unetOptions(opts));
    this.registerModule('unet_model', this.unetModel);
    const seed = headSeed(this.unetModel, opts.seed);
    this.flow = makeConv(this.ndims, this.unetModel.finalNf, this.ndims, seed);
    this.registerModule('flow', this.flow);
    // small initial displacements: weights N(0, 1e-5), zero bias
    normal_(this.flow.weight, { std: 1e-5, seed });
    zeros_(this.flow.bias as Tensor);
    const integrating = this.intSteps > 0 && this.intDownsize > 1;
    this.resize = integrating && !halfRes;
    this.fullsize = integrating;
  }

  /**
   * Official voxelmorph checkpoints (SpatialTransformer's sampling grid registered as a persistent buffer) carry the
   * identity grids 'transformer.grid' and 'integrate.transformer.grid'; voxgrad's warp needs no grid, so they are
   * accepted and ignored. stateDict() holds the parameters only, as newer voxelmorph versions save.
   */
  override loadStateDict(dict: Record<string, Tensor>, opts: { strict?: boolean } = {}) {
    const rest = { ...dict };
    delete rest['transformer.grid'];
    delete rest['integrate.transformer.grid'];
    return super.loadStateDict(rest, opts);
  }

  /**
   * Registers source [N, srcFeats, *inshape] onto target [N, trgFeats, *inshape]. registration: true skips the
   * inverse warp of bidirectional models (inference), returning yTarget null.
   */
  override forward(source: Tensor, target: Tensor, opts: { registration?: boolean } = {}): VxmDenseOutput {
    const op = 'VxmDense';
    checkImage(op, 'source', source, this.srcFeats, this.inshape);
    checkImage(op, 'target', target, this.trgFeats, this.inshape);
    if (source.shape[0] !== target.shape[0])
      fail(op, `source and target must have the same batch size, got ${fmtShape(source.shape)} and ${fmtShape(target.shape)}`);
    const bidir = this.bidir && !opts.registration;
    return tidy(() => {
      const features = this.unetModel.call(cat([source, target], 1));
      const maskBgd = cast(logicalOr(source, target), 'f32');
      let posFlow: Tensor = this.flow.call(features);
      if (this.resize) posFlow = resizeFlow(posFlow, 1 / this.intDownsize);
      const preintFlow = posFlow;
      let negFlow = bidir ? neg(posFlow) : null;
      if (this.intSteps > 0) {
        posFlow = integrateVelocity(posFlow, this.intSteps);
        negFlow = negFlow && integrateVelocity(negFlow, this.intSteps);
        if (this.fullsize) {
          posFlow = resizeFlow(posFlow, this.intDownsize);
          negFlow = negFlow && resizeFlow(negFlow, this.intDownsize);
        }
      }
      const ySource = spatialTransform(source, posFlow);
      const yTarget = negFlow && spatialTransform(target, negFlow);
      return { ySource, yTarget, preintFlow, flow: posFlow, maskBgd };
    });
  }
}

/**
 * hetero_uncertainty's VarianceEstimator: a VxmUnet on cat(warped source, target) (srcFeats + trgFeats channels) and
 * a 3x3 conv to one channel, no activation: the per-voxel log variance log σ² (key log_sigma_I). PyTorch's default
 * initialisation throughout.
 */
export class VarianceEstimator extends Module {
  readonly unetModel: VxmUnet;
  readonly logSigmaI: Conv;
  constructor(inshape: readonly number[], opts: VxmBackboneOptions & { srcFeats?: number; trgFeats?: number } = {}) {
    super();
    const op = 'VarianceEstimator';
    const shape = checkInshape(op, inshape);
    const infeats = checkInt(op, 'srcFeats', opts.srcFeats ?? 1, 1) + checkInt(op, 'trgFeats', opts.trgFeats ?? 1, 1);
    this.unetModel = new VxmUnet(shape, infeats, unetOptions(opts));
    this.registerModule('unet_model', this.unetModel);
    this.logSigmaI = makeConv(shape.length, this.unetModel.finalNf, 1, headSeed(this.unetModel, opts.seed));
    this.registerModule('log_sigma_I', this.logSigmaI);
  }
  /** x = cat([warped source, target], 1) → log σ² [N, 1, *inshape]. */
  override forward(x: Tensor): Tensor {
    return tidy(() => this.logSigmaI.call(this.unetModel.call(x)));
  }
}

/**
 * AdaCS's ScoringNet: a VxmUnet on the target image alone (srcFeats channels) and a 3x3 conv to one channel with a
 * sigmoid: the correspondence score in (0, 1) (key scoring_mask). The official constructor also takes VxmDense's
 * integration arguments, which it never uses; they are left out here.
 */
export class ScoringNet extends Module {
  readonly unetModel: VxmUnet;
  readonly scoringMask: Conv;
  constructor(inshape: readonly number[], opts: VxmBackboneOptions & { srcFeats?: number } = {}) {
    super();
    const op = 'ScoringNet';
    const shape = checkInshape(op, inshape);
    this.unetModel = new VxmUnet(shape, checkInt(op, 'srcFeats', opts.srcFeats ?? 1, 1), unetOptions(opts));
    this.registerModule('unet_model', this.unetModel);
    this.scoringMask = makeConv(shape.length, this.unetModel.finalNf, 1, headSeed(this.unetModel, opts.seed));
    this.registerModule('scoring_mask', this.scoringMask);
  }
  /** x (the target image) → score [N, 1, *inshape] in (0, 1). */
  override forward(x: Tensor): Tensor {
    return tidy(() => sigmoid(this.scoringMask.call(this.unetModel.call(x))));
  }
}
