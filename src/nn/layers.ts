/** torch.nn layers over the functional ops, with PyTorch's parameter names, shapes and default initialisation. */
import { noGrad } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { add, full, gelu, leakyRelu, ones, relu, sigmoid, tanh, zeros } from '../ops.js';
import { linear } from '../kernels/matmul.js';
import { conv1d, conv2d, conv3d, convTranspose2d, convTranspose3d, type ConvOptions, type ConvTransposeOptions } from '../kernels/conv.js';
import { dropout } from '../kernels/dropout.js';
import { batchNorm, groupNorm, instanceNorm, layerNorm } from '../kernels/norm.js';
import { kaimingUniform_, uniform_ } from './init.js';
import { Module, copyInto } from './module.js';

export interface InitSeed {
  /** Seeds this layer's initialisation (weight from seed, bias from seed + 1); default: the global generator. */
  seed?: number;
}

function checkPositiveInt(op: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) fail(op, `${name} must be a positive integer, got ${String(v)}`);
  return v as number;
}

/** PyTorch's reset_parameters of Linear and conv: kaiming_uniform(a = sqrt(5)), bias U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
function resetLinearLike(weight: Tensor, bias: Tensor | null, seed: number | undefined): void {
  kaimingUniform_(weight, { a: Math.sqrt(5), seed });
  if (bias) {
    const fanIn = weight.shape[1] * weight.shape.slice(2).reduce((a, b) => a * b, 1);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, { a: -bound, b: bound, seed: seed === undefined ? undefined : seed + 1 });
  }
}

function param(shape: number[]): Tensor {
  return zeros(shape, { requiresGrad: true });
}

export class Linear extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } & InitSeed = {}) {
    super();
    checkPositiveInt('Linear', 'inFeatures', inFeatures);
    checkPositiveInt('Linear', 'outFeatures', outFeatures);
    this.registerParameter('weight', param([outFeatures, inFeatures]));
    this.registerParameter('bias', opts.bias ?? true ? param([outFeatures]) : null);
    resetLinearLike(this.weight, this.bias, opts.seed);
  }
  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface ConvLayerOptions extends InitSeed {
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

function tuple(op: string, name: string, v: number | number[], n: number): number[] {
  const t = typeof v === 'number' ? new Array<number>(n).fill(v) : v;
  if (!Array.isArray(t) || t.length !== n || t.some((d) => !Number.isInteger(d) || d < 1))
    fail(op, `${name} must be a positive integer or ${n} of them, got ${JSON.stringify(v)}`);
  return t;
}

/** Conv and transposed conv layers: weight [out, in/groups, ...k] (transposed: [in, out/groups, ...k]). */
abstract class ConvNd extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly kernelSize: number[];
  protected readonly convOpts: ConvOptions & { outputPadding?: number | number[] };
  constructor(
    op: string,
    n: number,
    transposed: boolean,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | number[],
    opts: ConvLayerOptions & { outputPadding?: number | number[] },
  ) {
    super();
    checkPositiveInt(op, 'inChannels', inChannels);
    checkPositiveInt(op, 'outChannels', outChannels);
    const groups = checkPositiveInt(op, 'groups', opts.groups ?? 1);
    if (inChannels % groups || outChannels % groups)
      fail(op, `inChannels (${inChannels}) and outChannels (${outChannels}) must both be divisible by groups (${groups})`);
    this.kernelSize = tuple(op, 'kernelSize', kernelSize, n);
    const shape = transposed ? [inChannels, outChannels / groups, ...this.kernelSize] : [outChannels, inChannels / groups, ...this.kernelSize];
    this.registerParameter('weight', param(shape));
    this.registerParameter('bias', opts.bias ?? true ? param([outChannels]) : null);
    resetLinearLike(this.weight, this.bias, opts.seed);
    this.convOpts = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups, outputPadding: opts.outputPadding };
  }
  /** Transposed layers only accept numeric padding (their constructor type), so the result also fits ConvTransposeOptions. */
  protected args(): ConvOptions {
    return { ...this.convOpts, bias: this.bias };
  }
}

export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvLayerOptions = {}) {
    super('Conv1d', 1, false, inChannels, outChannels, kernelSize, opts);
  }
  override forward(x: Tensor): Tensor {
    return conv1d(x, this.weight, this.args());
  }
}

export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvLayerOptions = {}) {
    super('Conv2d', 2, false, inChannels, outChannels, kernelSize, opts);
  }
  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.args());
  }
}

export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvLayerOptions = {}) {
    super('Conv3d', 3, false, inChannels, outChannels, kernelSize, opts);
  }
  override forward(x: Tensor): Tensor {
    return conv3d(x, this.weight, this.args());
  }
}

export interface ConvTransposeLayerOptions extends InitSeed {
  stride?: number | number[];
  padding?: number | number[];
  outputPadding?: number | number[];
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

export class ConvTranspose2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvTransposeLayerOptions = {}) {
    super('ConvTranspose2d', 2, true, inChannels, outChannels, kernelSize, opts);
  }
  override forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.args() as ConvTransposeOptions);
  }
}

export class ConvTranspose3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvTransposeLayerOptions = {}) {
    super('ConvTranspose3d', 3, true, inChannels, outChannels, kernelSize, opts);
  }
  override forward(x: Tensor): Tensor {
    return convTranspose3d(x, this.weight, this.args() as ConvTransposeOptions);
  }
}

export interface NormLayerOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Shared state of BatchNorm and InstanceNorm: weight/bias (affine), running_mean/running_var/num_batches_tracked. */
abstract class NormBase extends Module {
  declare weight: Tensor | null;
  declare bias: Tensor | null;
  declare runningMean: Tensor | null;
  declare runningVar: Tensor | null;
  declare numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;
  constructor(op: string, readonly numFeatures: number, opts: NormLayerOptions, affine: boolean, track: boolean) {
    super();
    checkPositiveInt(op, 'numFeatures', numFeatures);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    if (typeof this.momentum !== 'number')
      fail(op, `momentum must be a number (cumulative averaging, PyTorch's momentum=None, is not supported), got ${String(opts.momentum)}`);
    this.registerParameter('weight', affine ? ones([numFeatures], { requiresGrad: true }) : null);
    this.registerParameter('bias', affine ? zeros([numFeatures], { requiresGrad: true }) : null);
    this.registerBuffer('running_mean', track ? zeros([numFeatures]) : null, 'runningMean');
    this.registerBuffer('running_var', track ? ones([numFeatures]) : null, 'runningVar');
    this.registerBuffer('num_batches_tracked', track ? zeros([], { dtype: 'i32' }) : null, 'numBatchesTracked');
  }
  /** PyTorch counts training forwards that update the running statistics. */
  protected countBatch(): void {
    const n = this.numBatchesTracked;
    if (!n) return;
    noGrad(() => {
      const next = add(n, full([], 1, { dtype: 'i32' }));
      copyInto('numBatchesTracked', n, next);
      next.dispose();
    });
  }
}

abstract class BatchNormNd extends NormBase {
  constructor(private readonly op: string, private readonly ranks: number[], numFeatures: number, opts: NormLayerOptions) {
    super(op, numFeatures, opts, opts.affine ?? true, opts.trackRunningStats ?? true);
  }
  override forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor) || !this.ranks.includes(x.ndim))
      fail(this.op, `expected input with ${this.ranks.join(' or ')} dims, got ${x instanceof Tensor ? fmtShape(x.shape) : typeof x}`);
    const training = this.training || !this.runningMean;
    const out = batchNorm(x, this.runningMean, this.runningVar, {
      weight: this.weight,
      bias: this.bias,
      training,
      momentum: this.momentum,
      eps: this.eps,
    });
    if (this.training) this.countBatch();
    return out;
  }
}

export class BatchNorm1d extends BatchNormNd {
  constructor(numFeatures: number, opts: NormLayerOptions = {}) {
    super('BatchNorm1d', [2, 3], numFeatures, opts);
  }
}

export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, opts: NormLayerOptions = {}) {
    super('BatchNorm2d', [4], numFeatures, opts);
  }
}

export class BatchNorm3d extends BatchNormNd {
  constructor(numFeatures: number, opts: NormLayerOptions = {}) {
    super('BatchNorm3d', [5], numFeatures, opts);
  }
}

/** PyTorch's InstanceNorm defaults: affine = false, trackRunningStats = false. */
abstract class InstanceNormNd extends NormBase {
  constructor(private readonly op: string, private readonly rank: number, numFeatures: number, opts: NormLayerOptions) {
    super(op, numFeatures, opts, opts.affine ?? false, opts.trackRunningStats ?? false);
  }
  override forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor) || x.ndim !== this.rank)
      fail(this.op, `expected input with ${this.rank} dims [N, C, spatial...], got ${x instanceof Tensor ? fmtShape(x.shape) : typeof x}`);
    // PyTorch's InstanceNorm leaves num_batches_tracked at 0 (only BatchNorm counts)
    return instanceNorm(x, {
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      weight: this.weight,
      bias: this.bias,
      useInputStats: this.training || !this.runningMean,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

export class InstanceNorm2d extends InstanceNormNd {
  constructor(numFeatures: number, opts: NormLayerOptions = {}) {
    super('InstanceNorm2d', 4, numFeatures, opts);
  }
}

export class InstanceNorm3d extends InstanceNormNd {
  constructor(numFeatures: number, opts: NormLayerOptions = {}) {
    super('InstanceNorm3d', 5, numFeatures, opts);
  }
}

export class GroupNorm extends Module {
  declare weight: Tensor | null;
  declare bias: Tensor | null;
  readonly eps: number;
  constructor(readonly numGroups: number, readonly numChannels: number, opts: { eps?: number; affine?: boolean } = {}) {
    super();
    checkPositiveInt('GroupNorm', 'numGroups', numGroups);
    checkPositiveInt('GroupNorm', 'numChannels', numChannels);
    if (numChannels % numGroups) fail('GroupNorm', `numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.registerParameter('weight', affine ? ones([numChannels], { requiresGrad: true }) : null);
    this.registerParameter('bias', affine ? zeros([numChannels], { requiresGrad: true }) : null);
  }
  override forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

export class LayerNorm extends Module {
  declare weight: Tensor | null;
  declare bias: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  constructor(normalizedShape: number | number[], opts: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.normalizedShape.forEach((d) => checkPositiveInt('LayerNorm', 'normalizedShape', d));
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.registerParameter('weight', affine ? ones(this.normalizedShape, { requiresGrad: true }) : null);
    this.registerParameter('bias', affine ? zeros(this.normalizedShape, { requiresGrad: true }) : null);
  }
  override forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

export class Dropout extends Module {
  readonly p: number;
  constructor(opts: { p?: number } = {}) {
    super();
    this.p = opts.p ?? 0.5;
    if (typeof this.p !== 'number' || !(this.p >= 0 && this.p <= 1))
      fail('Dropout', `p (the probability of an element being zeroed) must be in [0, 1], got ${String(this.p)}`);
  }
  override forward(x: Tensor): Tensor {
    return dropout(x, { p: this.p, training: this.training });
  }
}

export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module {
  readonly negativeSlope: number;
  constructor(opts: { negativeSlope?: number } = {}) {
    super();
    this.negativeSlope = opts.negativeSlope ?? 0.01;
  }
  override forward(x: Tensor): Tensor {
    return leakyRelu(x, { negativeSlope: this.negativeSlope });
  }
}

export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(opts: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = opts.approximate ?? 'none';
  }
  override forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** Children keyed '0', '1', ... (PyTorch's state-dict names). */
export class ModuleList extends Module {
  private readonly items: Module[] = [];
  constructor(modules: Module[] = []) {
    super();
    for (const m of modules) this.append(m);
  }
  append(m: Module): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  at(i: number): Module {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) fail(this.constructor.name, `index ${i} out of range for ${this.items.length} modules`);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.items[Symbol.iterator]();
  }
}

/** Runs its children in order, each on the previous output. */
export class Sequential extends ModuleList {
  constructor(...modules: Module[]) {
    super(modules);
  }
  override forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.call(y);
    return y;
  }
}
