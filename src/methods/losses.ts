/** Losses the papers' recipes share (composites of GPU ops, so their gradients come from autodiff). */
import { fail, fmtShape } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { cast } from '../kernels/elementwise.js';
import { oneHot } from '../kernels/indexing.js';
import { add, div, mul, sub } from '../kernels/math.js';
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
