/** Losses the papers' recipes share (composites of GPU ops, so their gradients come from autodiff). */
import { fail, fmtShape } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { cast } from '../kernels/elementwise.js';
import { oneHot } from '../kernels/indexing.js';
import { add, div, mul, neg, relu, softplus, sub } from '../kernels/math.js';
import { softmax } from '../kernels/nn.js';
import { mean, sum } from '../kernels/reduce.js';
import { permute, slice } from '../kernels/shape.js';

export interface DiceLossOptions {
  /** Count class 0 too (SSL4MIS's DiceLoss does; MONAI's default includeBackground is also true). */
  includeBackground?: boolean;
  /** Added to numerator and denominator (SSL4MIS: 1e-5), so an absent class in prediction and target gives loss 0. */
  smooth?: number;
}

/**
 * Soft Dice loss of logits [N, C, ...spatial] against integer labels [N, ...spatial]: 1 - mean over classes of
 * (2·Σ p·t + smooth) / (Σ p + Σ t + smooth), sums over the batch and space (SSL4MIS's DiceLoss with softmax).
 */
export function diceLoss(logits: Tensor, target: Tensor, opts: DiceLossOptions = {}): Tensor {
  const op = 'diceLoss';
  if (logits.ndim < 3) fail(op, `logits must be [N, C, ...spatial], got ${fmtShape(logits.shape)}`);
  const spatial = logits.shape.slice(2);
  if (target.ndim !== logits.ndim - 1 || target.shape[0] !== logits.shape[0] || target.shape.slice(1).some((d, i) => d !== spatial[i]))
    fail(op, `target must be [N, ...spatial] = [${[logits.shape[0], ...spatial].join(', ')}] to match logits ${fmtShape(logits.shape)}, got ${fmtShape(target.shape)}`);
  const classes = logits.shape[1];
  const smooth = opts.smooth ?? 1e-5;
  const probs = softmax(logits, { dim: 1 });
  // one-hot [N, ...spatial, C] → [N, C, ...spatial]
  const order = [0, logits.ndim - 1, ...spatial.map((_, i) => i + 1)];
  const onehot = permute(cast(oneHot(target, classes), 'f32'), order);
  const dims = [0, ...spatial.map((_, i) => i + 2)];
  const inter = sum(mul(probs, onehot), { dim: dims });
  const denom = add(sum(probs, { dim: dims }), sum(onehot, { dim: dims }));
  let dice = div(add(mul(inter, 2), smooth), add(denom, smooth));
  if (!(opts.includeBackground ?? true)) dice = slice(dice, 0, 1, classes);
  return sub(1, mean(dice));
}

/** The adversarial objectives: hinge (SNGAN / SAGAN) or the non-saturating logistic loss (Goodfellow et al.). */
export type AdversarialLossKind = 'hinge' | 'nonsaturating';

function checkKind(op: string, kind: unknown): AdversarialLossKind {
  if (kind !== 'hinge' && kind !== 'nonsaturating') fail(op, `kind must be 'hinge' or 'nonsaturating', got ${JSON.stringify(kind)}`);
  return kind;
}

/**
 * The discriminator's loss from its scores (any shape) on real and generated inputs: hinge
 * mean(relu(1 − D(real))) + mean(relu(1 + D(fake))), or non-saturating mean(softplus(−D(real))) + mean(softplus(D(fake))).
 */
export function discriminatorLoss(real: Tensor, fake: Tensor, kind: AdversarialLossKind = 'hinge'): Tensor {
  if (checkKind('discriminatorLoss', kind) === 'hinge') return add(mean(relu(sub(1, real))), mean(relu(add(fake, 1))));
  return add(mean(softplus(neg(real))), mean(softplus(fake)));
}

/** The generator's adversarial loss from the discriminator's scores on generated inputs: hinge −mean(D(fake)), non-saturating mean(softplus(−D(fake))). */
export function generatorAdversarialLoss(fake: Tensor, kind: AdversarialLossKind = 'hinge'): Tensor {
  if (checkKind('generatorAdversarialLoss', kind) === 'hinge') return neg(mean(fake));
  return mean(softplus(neg(fake)));
}
