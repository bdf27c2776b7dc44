/**
 * The losses of the semi-supervised segmentation methods (mean teacher, ACTION, ACTION++, MONA), as composites of GPU
 * ops so that autodiff gives their gradients. Teacher-side inputs are expected detached (computed under noGrad).
 */
import { noGrad } from '../../engine/autograd.js';
import { fail, fmtShape } from '../../engine/errors.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { cast } from '../../kernels/elementwise.js';
import { cosineSimilarityMatrix, normalize } from '../../kernels/contrastive.js';
import { gather, indexSelect, oneHot } from '../../kernels/indexing.js';
import { add, div, eq, ge, gt, maximum, mul, ne, neg, sub } from '../../kernels/math.js';
import { crossEntropy, klDiv, logSoftmax, softmax } from '../../kernels/nn.js';
import { argmax, max, mean, sum } from '../../kernels/reduce.js';
import { cat, reshape, unsqueeze } from '../../kernels/shape.js';
import { ones, tensor, zeros } from '../../kernels/creation.js';
import { linear } from '../../kernels/matmul.js';
import { topk } from '../../kernels/sort.js';
import { diceLoss } from '../losses.js';

/** ACTION's supervised loss weight·(CE + Dice) (ACTION and ACTION++: 0.5; MONA's scripts: 1). Dice: SSL4MIS's, background included. */
export function supervisedSegLoss(logits: Tensor, labels: Tensor, opts: { weight?: number } = {}): Tensor {
  return tidy(() => mul(add(crossEntropy(logits, labels), diceLoss(logits, labels)), opts.weight ?? 0.5));
}

export interface PseudoLabels {
  /** argmax class [N, ...spatial] i32. */
  label: Tensor;
  /** max softmax probability [N, ...spatial] f32. */
  confidence: Tensor;
  /** softmax probabilities [N, C, ...spatial]. */
  probs: Tensor;
}

/** The teacher's pseudo-labels from its logits [N, C, ...] (no gradient). */
export function pseudoLabels(teacherLogits: Tensor): PseudoLabels {
  return noGrad(() =>
    tidy(() => {
      const probs = softmax(teacherLogits, { dim: 1 });
      return { probs, label: argmax(probs, { dim: 1 }), confidence: max(probs, { dim: 1 }) };
    }),
  );
}

/**
 * ACTION's unsupervised loss: per-pixel cross-entropy against pseudo-labels (label -1 ignored), each image weighted by
 * w_b = (its pixels with confidence >= threshold) / (its valid pixels), averaged over the pixels whose CE is > 0
 * (the official compute_unsupervised_loss: mean(masked_select(w · CE, CE > 0))).
 */
export function confidenceWeightedCE(logits: Tensor, label: Tensor, confidence: Tensor, opts: { threshold?: number } = {}): Tensor {
  const op = 'confidenceWeightedCE';
  if (label.shape.join() !== confidence.shape.join())
    fail(op, `label ${fmtShape(label.shape)} and confidence ${fmtShape(confidence.shape)} must have the same shape`);
  const threshold = opts.threshold ?? 0.97;
  return tidy(() => {
    const ce = crossEntropy(logits, label, { reduction: 'none', ignoreIndex: -1 });
    const weight = noGrad(() => {
      const valid = cast(ne(label, -1), 'f32');
      const dims = label.shape.map((_, i) => i).slice(1);
      const confident = sum(mul(cast(ge(confidence, threshold), 'f32'), valid), { dim: dims, keepdim: true });
      return div(confident, maximum(sum(valid, { dim: dims, keepdim: true }), 1));
    });
    const positive = cast(gt(ce, 0), 'f32');
    return div(sum(mul(mul(ce, weight), positive)), maximum(noGrad(() => sum(positive)), 1));
  });
}

/**
 * ISD's similarity distillation (ACTION's global and local losses): KL(p_t ‖ p_s) with p = softmax over the bank of
 * cos(embedding, bank row) / τ, averaged over the embeddings ("batchmean"). student/teacher [B, D] against bank
 * [K, D], or batched [P, B, D] against [P, K, D] (one bank per patch position; the mean is then over P·B).
 * The teacher is the target, as in the official code (its text's KL(u_s ‖ u_t) reads the other way).
 */
export function relationKL(student: Tensor, teacher: Tensor, bank: Tensor, opts: { tauStudent?: number; tauTeacher?: number } = {}): Tensor {
  const op = 'relationKL';
  if (student.shape.join() !== teacher.shape.join()) fail(op, `student ${fmtShape(student.shape)} and teacher ${fmtShape(teacher.shape)} embeddings must have the same shape`);
  const tauS = opts.tauStudent ?? 0.1;
  const tauT = opts.tauTeacher ?? 0.01;
  return tidy(() => {
    const k = bank.shape[bank.ndim - 2];
    const ls = reshape(div(cosineSimilarityMatrix(student, bank), tauS), [-1, k]);
    const pt = noGrad(() => softmax(reshape(div(cosineSimilarityMatrix(teacher, bank), tauT), [-1, k]), { dim: 1 }));
    return klDiv(logSoftmax(ls, { dim: 1 }), pt, { reduction: 'batchmean' });
  });
}

export interface AdaptiveContrastInputs {
  /** Student pixel features [n, D] (normalised inside). */
  student: Tensor;
  /** Teacher features of the same pixels [n, D] (detached; normalised inside). */
  teacher: Tensor;
  /** Their classes [n] i32. */
  labels: Tensor;
  /** Queue of earlier teacher features [Kq, D] (unit rows) and their labels [Kq] i32 (-1: empty slot, never positive). */
  queue: Tensor;
  queueLabels: Tensor;
  /** The class centres [C, D] (unit rows; ACTION++: the regular simplex). */
  centres: Tensor;
  /** Class c's centre is centres[assignment[c]] (the Hungarian step). */
  assignment: readonly number[];
}

/**
 * ACTION++'s supervised adaptive anatomical contrast (the official TSC loss): logits s_i·[t_i | queue | centres]/τ with a
 * softmax over all columns; positives M_cls = {own teacher view} ∪ {queue rows of the same class}, target = the
 * assigned centre; with P_i = |M_cls| + 1, L = −mean_i Σ_{M_cls} log p / P_i + λ·(−mean_i log p_{i,centre} / P_i).
 * λ: the paper's λ_a (0.2; the code's --lambda_tsc default 0.1).
 */
export function adaptiveAnatomicalContrast(x: AdaptiveContrastInputs, opts: { temperature?: number; lambda?: number } = {}): Tensor {
  const op = 'adaptiveAnatomicalContrast';
  const n = x.student.shape[0];
  const classes = x.centres.shape[0];
  if (x.assignment.length !== classes) fail(op, `assignment must give a centre for each of the ${classes} classes, got ${x.assignment.length}`);
  if (x.labels.ndim !== 1 || x.labels.shape[0] !== n) fail(op, `labels must be [${n}] (one per student feature), got ${fmtShape(x.labels.shape)}`);
  const tau = opts.temperature ?? 0.1;
  const lambda = opts.lambda ?? 0.2;
  return tidy(() => {
    const s = normalize(x.student, { dim: 1 });
    const t = normalize(x.teacher, { dim: 1 });
    const own = sum(mul(s, t), { dim: 1, keepdim: true });
    const logits = div(cat([own, linear(s, x.queue), linear(s, x.centres)], 1), tau);
    const logp = logSoftmax(logits, { dim: 1 });
    const masks = noGrad(() => {
      const sameClass = cast(eq(unsqueeze(x.queueLabels, 0), unsqueeze(x.labels, 1)), 'f32');
      const cls = cat([ones([n, 1]), sameClass, zeros([n, classes])], 1);
      const centreOf = indexSelect(tensor(x.assignment, [classes], { dtype: 'i32' }), 0, x.labels);
      const tgt = cat([zeros([n, 1 + x.queue.shape[0]]), cast(oneHot(centreOf, classes), 'f32')], 1);
      return { cls, tgt, count: add(sum(cls, { dim: 1 }), 1) };
    });
    const lossClass = mean(div(sum(mul(masks.cls, logp), { dim: 1 }), masks.count));
    const lossTarget = mean(div(sum(mul(masks.tgt, logp), { dim: 1 }), masks.count));
    return neg(add(lossClass, mul(lossTarget, lambda)));
  });
}

/**
 * MONA's nearest-neighbour loss in its gradient-carrying (mean-shift) form: the k nearest pool rows of the teacher
 * embedding (cosine), then mean over them of 2 − 2·cos(student, neighbour). (The official code picks neighbours with the
 * student and scores the teacher's distances, a term without gradient.) student/teacher [B, D], pool [K, D].
 */
export function nearestNeighbourLoss(student: Tensor, teacher: Tensor, pool: Tensor, k: number): Tensor {
  const op = 'nearestNeighbourLoss';
  if (!Number.isInteger(k) || k < 1 || k > pool.shape[0]) fail(op, `k must be an integer in [1, ${pool.shape[0]}] (the pool size), got ${String(k)}`);
  return tidy(() => {
    const idx = noGrad(() => topk(cosineSimilarityMatrix(teacher, pool), k, { dim: 1 }).indices);
    const sim = cosineSimilarityMatrix(student, pool);
    const picked = gather(sim, 1, idx);
    return mean(sub(2, mul(picked, 2)));
  });
}

/**
 * MONA's equivariance term: per image, Σ_px mask·KL(softmax(target) ‖ softmax(pred)) / Σ_px mask, averaged over the
 * images (target: the warped detached logits, pred: the logits of the warped input, mask [N, ...spatial] in [0, 1]).
 */
export function equivarianceKL(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  const op = 'equivarianceKL';
  if (pred.shape.join() !== target.shape.join()) fail(op, `pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} must have the same shape`);
  return tidy(() => {
    const pt = noGrad(() => softmax(target, { dim: 1 }));
    const kl = sum(klDiv(logSoftmax(pred, { dim: 1 }), pt, { reduction: 'none' }), { dim: 1 });
    const dims = kl.shape.map((_, i) => i).slice(1);
    return mean(div(sum(mul(kl, mask), { dim: dims }), maximum(noGrad(() => sum(mask, { dim: dims })), 1e-6)));
  });
}
