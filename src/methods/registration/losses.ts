/**
 * Losses of the three registration papers and of VoxelMorph, the backbone they share (../shared/research/
 * registration.md §0-3): MSE, local NCC, soft Dice, Grad-l2, bending energy; the heteroscedastic-uncertainty weight
 * and β-NLL; AdaCS's scoring losses and momentum TV weight; BIM's linear-elastic strain energy.
 *
 * Every loss is a composite of GPU ops, so autodiff gives its gradients; stop-gradients are explicit (`detach`).
 * Conventions (docs/conventions.md): images [N, C, *spatial]; displacement fields [N, ndim, *spatial] in voxels, channel
 * i along spatial axis i (VoxelMorph's). Masks are multiplied in and means run over the whole tensor (divisor
 * N·C·voxels, not the mask count), as the official code does (its `mask_bgd = (source != 0) | (target != 0)`).
 */
import { fail, fmtShape } from '../../engine/errors.js';
import { noGrad } from '../../engine/autograd.js';
import { broadcastShapes, sameShape } from '../../engine/shape.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { describe, expectFloat, expectTensor } from '../../kernels/common.js';
import { conv1d, conv2d, conv3d } from '../../kernels/conv.js';
import { ones, tensor } from '../../kernels/creation.js';
import { cast } from '../../kernels/elementwise.js';
import { abs, add, div, eq, exp, mul, neg, pow, sigmoid, sqrt, square, sub } from '../../kernels/math.js';
import { matmul } from '../../kernels/matmul.js';
import { max, mean, min, sum } from '../../kernels/reduce.js';
import { pad } from '../../kernels/pad.js';
import { cat, reshape, slice, split } from '../../kernels/shape.js';
import { spatialGradient } from '../../kernels/spatial.js';

// ---- argument checks ------------------------------------------------------------------------------------------------

/** A float image/field [N, C, *spatial] with 1 to 3 spatial dims; returns the number of spatial dims. */
function expectImage(op: string, arg: string, t: unknown): number {
  const x = expectTensor(op, arg, t);
  expectFloat(op, arg, x);
  if (x.ndim < 3 || x.ndim > 5) fail(op, `${arg} must be [N, C, *spatial] with 1 to 3 spatial dims (rank 3 to 5), got shape ${fmtShape(x.shape)}`);
  return x.ndim - 2;
}

function expectSameShape(op: string, arg: string, t: unknown, like: Tensor, likeArg: string): Tensor {
  const x = expectTensor(op, arg, t);
  expectFloat(op, arg, x);
  if (!sameShape(x.shape, like.shape)) fail(op, `${arg} must have the shape of ${likeArg} ${fmtShape(like.shape)}, got ${fmtShape(x.shape)}`);
  return x;
}

/** The optional mask, as f32, checked to broadcast to `like` without enlarging it (e.g. [N, 1, *spatial]). */
function expectMask(op: string, mask: unknown, like: Tensor): Tensor | null {
  if (mask === undefined || mask === null) return null;
  const m = expectTensor(op, 'mask', mask);
  let ok = m.ndim <= like.ndim;
  if (ok) {
    try {
      ok = sameShape(broadcastShapes(op, [m.shape, like.shape]), like.shape);
    } catch {
      ok = false;
    }
  }
  if (!ok) fail(op, `mask must broadcast to the images' shape ${fmtShape(like.shape)} (e.g. [N, 1, *spatial]), got ${fmtShape(m.shape)}`);
  return m.dtype === 'f32' ? m : cast(m, 'f32');
}

function expectNumber(op: string, arg: string, v: unknown, ok: (v: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(op, `${arg} must be ${what}, got ${describe(v)}`);
  return v;
}

function expectChoice<T extends string>(op: string, arg: string, v: unknown, choices: readonly T[]): T {
  if (!choices.includes(v as T)) fail(op, `${arg} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(v)}`);
  return v as T;
}

const masked = (x: Tensor, m: Tensor | null) => (m ? mul(x, m) : x);
/** Stop-gradient: the same storage, outside the tape. */
const detach = (x: Tensor) => x.shareStorage();

// ---- image similarity -----------------------------------------------------------------------------------------------

export interface MaskOptions {
  /** Background mask, multiplied into both images (broadcast to their shape); the mean still runs over every voxel. */
  mask?: Tensor | null;
}

/** VoxelMorph's MSE as the papers' code uses it: mean((M·a − M·b)²) over the whole tensor. */
export function mse(a: Tensor, b: Tensor, opts: MaskOptions = {}): Tensor {
  const op = 'registration.mse';
  expectImage(op, 'a', a);
  expectSameShape(op, 'b', b, a, 'a');
  const m = expectMask(op, opts.mask, a);
  return tidy(() => mean(square(sub(masked(a, m), masked(b, m)))));
}

export interface LocalNCCOptions extends MaskOptions {
  /** Window edge, one number for every spatial dim or one per dim; odd (VoxelMorph's default 9). */
  win?: number | readonly number[];
  /** Added to the variance product in the denominator (VoxelMorph: 1e-5). */
  eps?: number;
}

/**
 * VoxelMorph's local (windowed) NCC loss, −mean(cc), for 1-D, 2-D and 3-D images. With box sums S· over the window
 * (zero padding, same size), u_I = S_I / n, u_J = S_J / n, n = window voxels:
 *   cross = S_IJ − u_J S_I − u_I S_J + u_I u_J n,  var_I = S_II − 2 u_I S_I + u_I² n  (same for J),
 *   cc = cross² / (var_I var_J + eps).
 * `mask` multiplies both images first (AdaCS's NCC). VoxelMorph's filter is single-channel; here each channel is
 * processed separately, so C > 1 gives the mean over channels. VoxelMorph pads every dim by floor(win[0] / 2); per-dim
 * padding floor(win[d] / 2) is the same for the usual cubic window and keeps the size for non-cubic ones.
 * The box sums are separable 1-D convolutions with ones (win[d] taps per axis instead of Π win[d]): the same sums.
 */
export function localNCC(a: Tensor, b: Tensor, opts: LocalNCCOptions = {}): Tensor {
  const op = 'registration.localNCC';
  const nd = expectImage(op, 'a', a);
  expectSameShape(op, 'b', b, a, 'a');
  const m = expectMask(op, opts.mask, a);
  const winOpt = opts.win ?? 9;
  const win = typeof winOpt === 'number' ? new Array<number>(nd).fill(winOpt) : [...winOpt];
  if (win.length !== nd || win.some((w) => !Number.isInteger(w) || w < 1 || w % 2 === 0))
    fail(op, `win must be an odd positive integer or ${nd} of them (one per spatial dim), got ${describe(winOpt)}`);
  const eps = expectNumber(op, 'eps', opts.eps ?? 1e-5, (v) => v >= 0, 'a non-negative number');
  const spatial = a.shape.slice(2);
  const n = win.reduce((p, w) => p * w, 1);
  const conv = [conv1d, conv2d, conv3d][nd - 1];
  return tidy(() => {
    const folded = [a.shape[0] * a.shape[1], 1, ...spatial];
    const I = reshape(masked(a, m), folded);
    const J = reshape(masked(b, m), folded);
    // one batch of the five maps, so each axis pass is one conv
    let s = cat([I, J, mul(I, I), mul(J, J), mul(I, J)], 0);
    for (let d = 0; d < nd; d++) {
      if (win[d] === 1) continue;
      const k = win.map((w, i) => (i === d ? w : 1));
      s = conv(s, ones([1, 1, ...k]), { padding: k.map((w) => (w - 1) / 2) });
    }
    const [sI, sJ, sII, sJJ, sIJ] = split(s, folded[0], 0);
    const uI = div(sI, n);
    const uJ = div(sJ, n);
    const cross = add(sub(sub(sIJ, mul(uJ, sI)), mul(uI, sJ)), mul(mul(uI, uJ), n));
    const varI = add(sub(sII, mul(mul(uI, 2), sI)), mul(mul(uI, uI), n));
    const varJ = add(sub(sJJ, mul(mul(uJ, 2), sJ)), mul(mul(uJ, uJ), n));
    const cc = div(mul(cross, cross), add(mul(varI, varJ), eps));
    return neg(mean(cc));
  });
}

export interface SoftDiceOptions {
  /** Added to numerator and denominator (BIM's DiceLoss: 1). */
  smooth?: number;
}

/**
 * BIM's DiceLoss: 1 − (2 Σ p·t + smooth) / (Σ p + Σ t + smooth), sums over the whole flattened batch (returns the
 * loss, not the Dice). Lists of structures give the mean of their losses (BIM: LV, RV and epicardium on ACDC; endo
 * and epi on LVQuan19). pred and target are soft or binary maps of the same shape (e.g. bilinearly warped masks).
 */
export function softDice(pred: Tensor | readonly Tensor[], target: Tensor | readonly Tensor[], opts: SoftDiceOptions = {}): Tensor {
  const op = 'registration.softDice';
  const smooth = expectNumber(op, 'smooth', opts.smooth ?? 1, (v) => v >= 0, 'a non-negative number');
  const preds = pred instanceof Tensor ? [pred] : [...pred];
  const targets = target instanceof Tensor ? [target] : [...target];
  if (preds.length === 0 || preds.length !== targets.length || (pred instanceof Tensor) !== (target instanceof Tensor))
    fail(op, `pred and target must be two tensors or two non-empty lists of the same length, got ${preds.length} and ${targets.length}`);
  preds.forEach((p, i) => {
    expectTensor(op, `pred[${i}]`, p);
    expectFloat(op, `pred[${i}]`, p);
    expectSameShape(op, `target[${i}]`, targets[i], p, `pred[${i}]`);
  });
  return tidy(() => {
    const losses = preds.map((p, i) => {
      const t = targets[i];
      const dice = div(add(mul(sum(mul(p, t)), 2), smooth), add(add(sum(p), sum(t)), smooth));
      return sub(1, dice);
    });
    return losses.length === 1 ? losses[0] : div(losses.reduce((s, l) => add(s, l)), losses.length);
  });
}

// ---- smoothness -----------------------------------------------------------------------------------------------------

export interface GradLossOptions {
  /** Multiplies the loss (VoxelMorph's loss_mult; the papers use int_downsize = 2 on the half-resolution velocity). */
  lossMult?: number;
  /** 'l2' squares the forward differences, 'l1' takes their absolute value. */
  penalty?: 'l2' | 'l1';
}

/**
 * VoxelMorph's Grad / Grad_2d: forward differences along each spatial axis (no padding), penalised, averaged per axis,
 * then averaged over the axes and multiplied by lossMult: lossMult · (1/nd) Σ_axes mean(|Δ_axis u|^p).
 */
export function gradL2(flow: Tensor, opts: GradLossOptions = {}): Tensor {
  const op = 'registration.gradL2';
  const nd = expectImage(op, 'flow', flow);
  const lossMult = expectNumber(op, 'lossMult', opts.lossMult ?? 1, () => true, 'a finite number');
  const penalty = expectChoice(op, 'penalty', opts.penalty ?? 'l2', ['l2', 'l1'] as const);
  if (flow.shape.slice(2).some((d) => d < 2)) fail(op, `every spatial dim of flow must have at least 2 voxels for forward differences, got ${fmtShape(flow.shape)}`);
  return tidy(() => {
    const terms = spatialGradient(flow).map((d) => mean(penalty === 'l2' ? square(d) : abs(d)));
    return mul(terms.reduce((s, t) => add(s, t)), lossMult / nd);
  });
}

/** MONAI's spatial_gradient: (x[i+1] − x[i−1]) / 2 along `dim`, every spatial dim cropped by one voxel at each end. */
function centralCropped(x: Tensor, dim: number): Tensor {
  let y = x;
  for (let d = 2; d < x.ndim; d++) if (d !== dim) y = slice(y, d, 1, x.shape[d] - 1);
  return mul(sub(slice(y, dim, 2), slice(y, dim, 0, x.shape[dim] - 2)), 0.5);
}

export interface BendingEnergyOptions {
  /** MONAI's `normalize`: derivatives rescaled by the axis lengths, making the energy roughly resolution-invariant. */
  normalize?: boolean;
  /** 'mean' (MONAI's default) over batch, channels and the cropped voxels; 'sum'; 'none' gives the map. */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * MONAI's BendingEnergyLoss of flow [N, ndim, *spatial] (every spatial dim > 4): with MONAI's central differences
 * ∂ (each application crops one voxel off both ends of every spatial dim, so the map is [N, ndim, *(spatial − 4)]),
 *   energy = Σ_i (∂_i ∂_i u)² + 2 Σ_{i<j} (∂_j ∂_i u)², reduced by `reduction`.
 * normalize (MONAI's definition, channel c of the first derivative along axis i scaled by n_i / n_c, then each second
 * derivative along axis j multiplied by n_j, n = spatial sizes): derivatives in units of the field of view.
 */
export function bendingEnergy(flow: Tensor, opts: BendingEnergyOptions = {}): Tensor {
  const op = 'registration.bendingEnergy';
  const nd = expectImage(op, 'flow', flow);
  if (flow.shape[1] !== nd) fail(op, `flow must have ${nd} channels (one per spatial dim), got ${flow.shape[1]} in ${fmtShape(flow.shape)}`);
  if (flow.shape.slice(2).some((d) => d <= 4)) fail(op, `every spatial dim of flow must be > 4 (MONAI's check), got ${fmtShape(flow.shape)}`);
  const reduction = expectChoice(op, 'reduction', opts.reduction ?? 'mean', ['mean', 'sum', 'none'] as const);
  const normalize = opts.normalize ?? false;
  const S = flow.shape.slice(2);
  return tidy(() => {
    let energy: Tensor | null = null;
    const acc = (t: Tensor) => (energy = energy ? add(energy, t) : t);
    for (let d1 = 2; d1 < flow.ndim; d1++) {
      let g = centralCropped(flow, d1);
      if (normalize) g = mul(g, tensor(S.map((n) => S[d1 - 2] / n), [1, nd, ...S.map(() => 1)]));
      const scale = (t: Tensor, d: number) => (normalize ? mul(t, S[d - 2]) : t);
      acc(square(scale(centralCropped(g, d1), d1)));
      for (let d2 = d1 + 1; d2 < flow.ndim; d2++) acc(mul(square(scale(centralCropped(g, d2), d2)), 2));
    }
    const e = energy as unknown as Tensor;
    return reduction === 'mean' ? mean(e) : reduction === 'sum' ? sum(e) : e;
  });
}

// ---- heteroscedastic uncertainty (paper 1) --------------------------------------------------------------------------

export interface SnrWeightOptions {
  /** Trust in the current noise estimate (the code always uses its default 0.5). */
  gamma?: number;
  /** 'code': T[(I / σ²)^γ] as released; 'paper': T[(I / σ)^{2γ}] as the poster writes it. */
  variant?: 'code' | 'paper';
}

/**
 * The relative-SNR weight of the displacement loss (paper 1), a stop-gradient map of target's shape. With s = logVar
 * = log σ̂² and M the mask (both multiplied in first, as compute_SNR_from_variance does):
 *   code:  r = ((M·I) / exp(M·s))^γ         = (I / σ̂²)^γ   (γ = 0.5: √I / σ̂)
 *   paper: r = ((M·I) / exp(M·s / 2))^{2γ}  = (I / σ̂)^{2γ} (γ = 0.5: I / σ̂)
 *   w = T[r] = sigmoid((r − min r) / (max r − min r)), min and max over the whole batch tensor (masked zeros
 *   included), so w ∈ [0.5, 0.731]. The intensities must be ≥ 0 (min-max normalised images), else r is NaN; a
 *   constant r (max = min) gives NaN, as in the code.
 */
export function snrWeight(target: Tensor, logVar: Tensor, mask: Tensor | null, opts: SnrWeightOptions = {}): Tensor {
  const op = 'registration.snrWeight';
  expectImage(op, 'target', target);
  expectSameShape(op, 'logVar', logVar, target, 'target');
  const m = expectMask(op, mask, target);
  const gamma = expectNumber(op, 'gamma', opts.gamma ?? 0.5, (v) => v > 0, 'a positive number');
  const variant = expectChoice(op, 'variant', opts.variant ?? 'code', ['code', 'paper'] as const);
  return noGrad(() =>
    tidy(() => {
      const I = masked(target, m);
      const s = masked(logVar, m);
      const r = variant === 'code' ? pow(div(I, exp(s)), gamma) : pow(div(I, exp(mul(s, 0.5))), 2 * gamma);
      const lo = min(r);
      return sigmoid(div(sub(r, lo), sub(max(r), lo)));
    }),
  );
}

/**
 * The weighted displacement data term (papers 1 and 2): mean((M·I − M·Î)² · M·⌊w⌋). The weight is detached, as in
 * the official WeightedMSE: pass snrWeight(...) (paper 1) or the score map (paper 2).
 */
export function weightedMSE(target: Tensor, pred: Tensor, weight: Tensor, mask?: Tensor | null): Tensor {
  const op = 'registration.weightedMSE';
  expectImage(op, 'target', target);
  expectSameShape(op, 'pred', pred, target, 'target');
  expectSameShape(op, 'weight', weight, target, 'target');
  const m = expectMask(op, mask, target);
  return tidy(() => mean(mul(square(sub(masked(target, m), masked(pred, m))), masked(detach(weight), m))));
}

export interface NllOptions extends MaskOptions {
  /** Detach target and prediction, so the loss trains only the variance (VarianceNLL); false: the naive joint NLL. */
  detachInputs?: boolean;
}

export interface BetaNllOptions extends NllOptions {
  /** Exponent of the stop-gradient σ̂^{2β} factor (Seitzer et al.); 0 gives the plain Gaussian NLL. */
  beta?: number;
}

/**
 * β-NLL of paper 1's variance network (the official VarianceNLL, Gaussian): with s = M·logVar and M multiplied into
 * target and prediction,
 *   e = ½ (M·I − M·Î)² exp(−s) + ½ s,   loss = mean(e · ⌊exp(s)⌋^β) = mean(e · ⌊σ̂^{2β}⌋).
 * detachInputs (default true): I and Î are detached, so only logVar receives a gradient; false is the official
 * NLLloss, the naive baselines "NLL" / "β-NLL" that train motion and variance jointly.
 */
export function betaNLL(target: Tensor, pred: Tensor, logVar: Tensor, opts: BetaNllOptions = {}): Tensor {
  const op = 'registration.betaNLL';
  expectImage(op, 'target', target);
  expectSameShape(op, 'pred', pred, target, 'target');
  expectSameShape(op, 'logVar', logVar, target, 'target');
  const m = expectMask(op, opts.mask, target);
  const beta = expectNumber(op, 'beta', opts.beta ?? 0.5, (v) => v >= 0, 'a non-negative number');
  const det = opts.detachInputs ?? true;
  return tidy(() => {
    const I = masked(det ? detach(target) : target, m);
    const P = masked(det ? detach(pred) : pred, m);
    const s = masked(logVar, m);
    let e = add(mul(mul(square(sub(I, P)), exp(neg(s))), 0.5), mul(s, 0.5));
    if (beta > 0) e = mul(e, exp(mul(detach(s), beta)));
    return mean(e);
  });
}

/**
 * The Gaussian negative log-likelihood with log-variance logVar (up to the constant ½ log 2π):
 * mean(½ (M·I − M·Î)² exp(−M·s) + ½ M·s), i.e. betaNLL with β = 0. It equals PyTorch's gaussian_nll_loss with
 * var = exp(s) (without its eps clamp). detachInputs defaults to false here (the joint "NLL" baseline).
 */
export function gaussianNLL(target: Tensor, pred: Tensor, logVar: Tensor, opts: NllOptions = {}): Tensor {
  return betaNLL(target, pred, logVar, { ...opts, beta: 0, detachInputs: opts.detachInputs ?? false });
}

// ---- AdaCS (paper 2) ------------------------------------------------------------------------------------------------

export interface ScoringWeightedMseOptions {
  /** Stop-gradient on the prediction (the paper's ⌊û⌋, default); false is the code's version, which leaks into g_θ. */
  detachPred?: boolean;
}

/** AdaCS's scoring data term L_ucs: mean((M·I − M·⌊Î⌋)² · M·S); the score S receives the gradient. */
export function scoringWeightedMSE(target: Tensor, pred: Tensor, score: Tensor, mask?: Tensor | null, opts: ScoringWeightedMseOptions = {}): Tensor {
  const op = 'registration.scoringWeightedMSE';
  expectImage(op, 'target', target);
  expectSameShape(op, 'pred', pred, target, 'target');
  expectSameShape(op, 'score', score, target, 'target');
  const m = expectMask(op, mask, target);
  const P = (opts.detachPred ?? true) ? detach(pred) : pred;
  return tidy(() => mean(mul(square(sub(masked(target, m), masked(P, m))), masked(score, m))));
}

/** AdaCS's prior L_reg against the trivial all-zero score: mean((M·S − M)²) (mean((S − 1)²) without a mask). */
export function scoringPrior(score: Tensor, mask?: Tensor | null): Tensor {
  const op = 'registration.scoringPrior';
  expectImage(op, 'score', score);
  const m = expectMask(op, mask, score);
  return tidy(() => mean(square(m ? sub(mul(score, m), m) : sub(score, 1))));
}

/**
 * AdaCS's smoothness term of the score map (ScoringTVLoss, unmasked): squared forward differences, mean per axis,
 * averaged over the axes, ½(mean((ΔxS)²) + mean((ΔyS)²)) in 2-D and the three-axis average in 3-D (gradL2's formula).
 */
export function scoringTV(score: Tensor): Tensor {
  return gradL2(score, { penalty: 'l2', lossMult: 1 });
}

export interface MomentumWeightOptions {
  /** AdaCS's β, the weight the momentum converges to for small residuals (default 1.5, the ACDC VoxelMorph value). */
  beta?: number;
  /** momentum_scaling s in cos(π s μ) (default 50). */
  scaling?: number;
  /** Cap on the decay γ_T (0.99). */
  maxDecay?: number;
}

/**
 * AdaCS's momentum weight of the TV term, updated after every displacement step:
 *   γ_T = min(1 − 1/(epoch + 1), 0.99),  m ← γ_T m + (1 − γ_T) β cos(π s μ),  m_0 = 0,
 * where μ is the running mean, over this epoch's displacement steps so far, of the logged per-direction data losses
 * averaged over the directions (`observe` keeps it). The code writes 3.14 for π: at s = 50 and the typical
 * μ ≈ 0.002–0.006 the weights differ by < 1e-3 relative, far below the step-to-step change, so Math.PI is used.
 */
export class MomentumWeight {
  readonly beta: number;
  readonly scaling: number;
  readonly maxDecay: number;
  /** The current weight m (0 before the first update). */
  value = 0;
  private epoch = -1;
  private total = 0;
  private steps = 0;

  constructor(opts: MomentumWeightOptions = {}) {
    const op = 'registration.MomentumWeight';
    this.beta = expectNumber(op, 'beta', opts.beta ?? 1.5, () => true, 'a finite number');
    this.scaling = expectNumber(op, 'scaling', opts.scaling ?? 50, () => true, 'a finite number');
    this.maxDecay = expectNumber(op, 'maxDecay', opts.maxDecay ?? 0.99, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  }

  /** The running state, for checkpoints (a resumed run continues with the same weight and epoch means). */
  state(): { value: number; epoch: number; total: number; steps: number } {
    return { value: this.value, epoch: this.epoch, total: this.total, steps: this.steps };
  }

  setState(st: { value: number; epoch: number; total: number; steps: number }): void {
    ({ value: this.value, epoch: this.epoch, total: this.total, steps: this.steps } = st);
  }

  /** One update with the residual μ at epoch `epoch` (0-based); returns the new weight. */
  update(mu: number, epoch: number): number {
    const op = 'registration.MomentumWeight.update';
    expectNumber(op, 'mu', mu, () => true, 'a finite number');
    expectNumber(op, 'epoch', epoch, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    const decay = Math.min(1 - 1 / (epoch + 1), this.maxDecay);
    this.value = decay * this.value + (1 - decay) * this.beta * Math.cos(Math.PI * this.scaling * mu);
    return this.value;
  }

  /**
   * Records one displacement step's data losses (one per direction, each already weighted as logged: 0.5·WMSE in
   * bidirectional training), sets μ to the mean over directions of their running means over the epoch, and updates.
   */
  observe(directionLosses: number | readonly number[], epoch: number): number {
    const losses = typeof directionLosses === 'number' ? [directionLosses] : [...directionLosses];
    if (losses.length === 0 || losses.some((l) => typeof l !== 'number' || !Number.isFinite(l)))
      fail('registration.MomentumWeight.observe', `directionLosses must be a finite number or a non-empty list of them, got ${describe(directionLosses)}`);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.total = 0;
      this.steps = 0;
    }
    this.total += losses.reduce((a, b) => a + b, 0) / losses.length;
    this.steps++;
    return this.update(this.total / this.steps, epoch);
  }
}

// ---- biomechanics-informed prior (paper 3) --------------------------------------------------------------------------

export interface LinearElasticOptions {
  /** Poisson's ratio ν (BIM: 0.4); in (−1, 0.5) so that C is positive definite. */
  nu?: number;
  /** Young's modulus E (BIM treats it as the constant 1); scales the energy linearly. */
  youngs?: number;
  /** 'norm': ‖p‖₂ over all pixels of the batch (the code's torch.norm); 'mean': mean |p| (the paper's 1/N Σ ‖p‖₂);
   * 'none': the per-voxel map p [N, *spatial]. */
  reduction?: 'norm' | 'mean' | 'none';
  /** 2-D only: reproduce the official `.view(B, H, W, 1, 3)` that pairs the wrong strain components. */
  reshapeBug?: boolean;
  /** Voxel size along each spatial axis (derivatives are divided by it); default 1. */
  spacing?: readonly number[];
  /** 2-D only: 'code' = the paper's matrix on [ε_xx, ε_yy, ε_xy] (default); 'strain' = plane strain (see below). */
  plane?: 'code' | 'strain';
}

/** Central difference (x[k+1] − x[k−1]) / 2 along `dim` with zero padding outside (BIM's helper.compute_strain). */
function centralZeroPad(x: Tensor, dim: number): Tensor {
  const n = x.shape[dim];
  const padding = new Array<number>(2 * (x.ndim - dim)).fill(0);
  padding[2 * (x.ndim - 1 - dim)] = 1;
  padding[2 * (x.ndim - 1 - dim) + 1] = 1;
  const p = pad(x, padding);
  return mul(sub(slice(p, dim, 2, n + 2), slice(p, dim, 0, n)), 0.5);
}

/** Isotropic stiffness on Voigt strain with engineering shears, for nd normal components then the shears. */
function isotropicStiffness(nd: 2 | 3, E: number, nu: number): number[][] {
  const lambda = (E * nu) / ((1 + nu) * (1 - 2 * nu));
  const G = E / (2 * (1 + nu));
  const k = nd === 3 ? 6 : 3;
  return Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => (i < nd && j < nd ? (i === j ? lambda + 2 * G : lambda) : i === j ? G : 0)),
  );
}

/**
 * BIM's linear-elastic strain energy of a displacement field (the biomechanics-informed prior), p = εᵀCε per voxel
 * (no ½: the code's convention, twice the energy density), reduced by `reduction`.
 *
 * Derivatives: central differences with zero padding, (u[k+1] − u[k−1]) / 2 and u = 0 outside the grid, divided by
 * `spacing`, as helper.compute_strain.
 *
 * 2-D, flow [N, 2, H, W] in voxgrad's convention (channel 0 along H, channel 1 along W). The official code takes
 * dvf channel 0 = u along W (x, width) and channel 1 = v along H (y); its dvf is flip(flow, [1]) here, and the strain
 * is built in its order, ε = [∂u/∂x, ∂v/∂y, ½(∂u/∂y + ∂v/∂x)] (tensor shear ε_xy), so `reshapeBug` scrambles exactly
 * as the code does. plane 'code': C = E·inv([[1, −ν, 0], [−ν, 1, 0], [0, 0, 2(1 + ν)]]), the code's matrix
 * (ν = 0.4: [[1.190, 0.476, 0], [0.476, 1.190, 0], [0, 0, 0.357]]): the plane-stress stiffness, whose shear entry G
 * belongs to the engineering shear 2ε_xy but is applied to ε_xy, so shear counts ¼ of its physical energy.
 * plane 'strain': plane-strain stiffness with engineering shear, p = (λ + 2G)(ε_xx² + ε_yy²) + 2λ ε_xx ε_yy +
 * G (2ε_xy)², λ = Eν/((1 + ν)(1 − 2ν)), G = E/(2(1 + ν)).
 *
 * 3-D, flow [N, 3, D, H, W] (channel i along axis i): Voigt strain with engineering shears in axis order,
 * ε = [ε_00, ε_11, ε_22, 2ε_12, 2ε_02, 2ε_01], ε_ij = ½(∂u_i/∂x_j + ∂u_j/∂x_i), and the isotropic stiffness
 * C = λ 1 1ᵀ + 2G on the normal block, G on the shears. For a field with no displacement along axis 0 and no variation
 * along it (e.g. D = 1), this is exactly the 2-D plane-strain energy (plane: 'strain') of the in-plane channels: a 3-D
 * body that cannot move out of plane is in plane strain. It differs from the code's 2-D matrix both in the normal
 * block (plane stress E/(1 − ν²) vs plane strain) and by the factor 4 on the shear term.
 */
export function linearElasticEnergy(flow: Tensor, opts: LinearElasticOptions = {}): Tensor {
  const op = 'registration.linearElasticEnergy';
  const x = expectTensor(op, 'flow', flow);
  expectFloat(op, 'flow', x);
  if ((x.ndim !== 4 && x.ndim !== 5) || x.shape[1] !== x.ndim - 2)
    fail(op, `flow must be [N, 2, H, W] or [N, 3, D, H, W] (one channel per spatial dim), got ${fmtShape(x.shape)}`);
  const nd = (x.ndim - 2) as 2 | 3;
  const nu = expectNumber(op, 'nu', opts.nu ?? 0.4, (v) => v > -1 && v < 0.5, 'in (-1, 0.5)');
  const E = expectNumber(op, 'youngs', opts.youngs ?? 1, (v) => v > 0, 'a positive number');
  const reduction = expectChoice(op, 'reduction', opts.reduction ?? 'norm', ['norm', 'mean', 'none'] as const);
  const plane = expectChoice(op, 'plane', opts.plane ?? 'code', ['code', 'strain'] as const);
  const bug = opts.reshapeBug ?? false;
  if (nd === 3 && (bug || opts.plane !== undefined)) fail(op, `reshapeBug and plane apply to 2-D flows only, got a 3-D flow ${fmtShape(x.shape)}`);
  const spacing = opts.spacing ?? new Array<number>(nd).fill(1);
  if (spacing.length !== nd || spacing.some((s) => typeof s !== 'number' || !(s > 0) || !Number.isFinite(s)))
    fail(op, `spacing must be ${nd} positive numbers (one per spatial dim), got ${describe(opts.spacing)}`);
  const [N, , ...S] = x.shape;
  return tidy(() => {
    const comps = split(x, 1, 1);
    // du[c][a] = ∂u_c / ∂x_a, each [N, 1, *S]
    const du = comps.map((u) => spatialDims(nd).map((a) => div(centralZeroPad(u, a + 2), spacing[a])));
    let strain: Tensor;
    let C: number[][];
    if (nd === 2) {
      // official order: u = channel 1 (along x = W = axis 1), v = channel 0 (along y = H = axis 0)
      strain = cat([du[1][1], du[0][0], mul(add(du[1][0], du[0][1]), 0.5)], 1);
      if (plane === 'code') {
        const k = E / (1 - nu * nu);
        C = [[k, k * nu, 0], [k * nu, k, 0], [0, 0, E / (2 * (1 + nu))]];
      } else {
        C = isotropicStiffness(2, E, nu);
        C[2][2] *= 4; // applied to the tensor shear ε_xy = γ_xy / 2
      }
    } else {
      const shear = (i: number, j: number) => add(du[i][j], du[j][i]);
      strain = cat([du[0][0], du[1][1], du[2][2], shear(1, 2), shear(0, 2), shear(0, 1)], 1);
      C = isotropicStiffness(3, E, nu);
    }
    const K = C.length;
    const Ct = tensor(C.flat(), [K, K]);
    // q = Cε per voxel; with the bug, C multiplies consecutive triples of the flat channels-first strain buffer
    const q = bug
      ? reshape(matmul(reshape(strain, [N, -1, K]), Ct), strain.shape)
      : (nd === 2 ? conv2d : conv3d)(strain, reshape(Ct, [K, K, ...S.map(() => 1)]));
    const p = sum(mul(q, strain), { dim: 1 });
    if (reduction === 'none') return p;
    if (reduction === 'mean') return mean(abs(p));
    // ‖p‖₂ with PyTorch's zero subgradient at p = 0 (sqrt'(0) would give NaN): shift the root argument off 0 there
    const ss = sum(square(p));
    const zero = cast(eq(ss, 0), 'f32');
    return sub(sqrt(add(ss, zero)), zero);
  });
}

const spatialDims = (nd: number) => Array.from({ length: nd }, (_, i) => i);
