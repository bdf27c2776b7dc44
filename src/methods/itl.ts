/**
 * ITL's training pieces that the paper does not publish, as chosen here (docs/methods/itl.md says why):
 * - the site-level incremental loss: at stage k (site k of K, in order) the student decoder is trained on site k with
 *   0.5 (CE + Dice) plus λ_k · τ² · mean over pixels of KL(softmax(t/τ) ‖ softmax(s/τ)), where t are the logits of the
 *   teacher decoder (a frozen snapshot of the student taken at the end of stage k − 1, reading the same shared encoder)
 *   on site k's images, and λ_k = λ · (k − 1)/k: the weight of what earlier sites taught grows with their share of
 *   the sites seen so far (0 at the first site);
 * - forgetting metrics over the per-site Dice matrix R (R[i][j]: Dice on site j after training stage i): backward
 *   transfer BWT = mean over j < K − 1 of (R[K−1][j] − R[j][j]) (Lopez-Paz & Ranzato's definition; negative =
 *   forgetting) and the final average Dice over all sites.
 */
import { fail, fmtShape } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/tensor.js';
import { logSoftmax, softmax } from '../kernels/nn.js';
import { mean, sum } from '../kernels/reduce.js';
import { mul, sub } from '../kernels/math.js';

export interface SiteDistillationOptions {
  /** Softening temperature τ (default 2). */
  temperature?: number;
}

/**
 * τ² · mean over pixels (and batch) of KL(softmax(teacher/τ) ‖ softmax(student/τ)) along the class dim 1; the
 * teacher is detached. Logits [N, C, ...spatial].
 */
export function siteDistillationLoss(student: Tensor, teacher: Tensor, opts: SiteDistillationOptions = {}): Tensor {
  const op = 'siteDistillationLoss';
  if (student.ndim < 2 || student.shape.join() !== teacher.shape.join())
    fail(op, `student and teacher logits must have the same [N, C, ...] shape, got ${fmtShape(student.shape)} and ${fmtShape(teacher.shape)}`);
  const tau = opts.temperature ?? 2;
  if (!(tau > 0)) fail(op, `temperature must be positive, got ${tau}`);
  return tidy(() => {
    const t = teacher.detach();
    const p = softmax(mul(t, 1 / tau), { dim: 1 });
    const kl = sum(mul(p, sub(logSoftmax(mul(t, 1 / tau), { dim: 1 }), logSoftmax(mul(student, 1 / tau), { dim: 1 }))), { dim: 1 });
    return mul(mean(kl), tau * tau);
  });
}

/** The distillation weight at stage k (1-based) of the site sequence: λ · (k − 1)/k. */
export function siteWeight(lambda: number, stage: number): number {
  if (!Number.isInteger(stage) || stage < 1) fail('siteWeight', `stage must be a positive integer (1 = the first site), got ${stage}`);
  return (lambda * (stage - 1)) / stage;
}

/** Backward transfer of a K × K matrix R[i][j] (score on site j after stage i): mean_{j<K−1} (R[K−1][j] − R[j][j]). */
export function backwardTransfer(r: readonly (readonly number[])[]): number {
  const k = r.length;
  if (k < 2 || r.some((row) => row.length !== k)) fail('backwardTransfer', `R must be a square matrix of at least 2 stages, got ${k} rows`);
  let s = 0;
  for (let j = 0; j < k - 1; j++) s += r[k - 1][j] - r[j][j];
  return s / (k - 1);
}
