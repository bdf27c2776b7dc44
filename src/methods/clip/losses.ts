/**
 * The losses of the robust-CLIP recipe: CLIP's symmetric contrastive loss (pretraining), CFR's calibration InfoNCE
 * (anchor against k positives, each with the same k hardest negatives) and the targeted supervised contrastive term
 * (TSC, Li et al. 2022, as CFR uses it: a queue of past keys, fixed maximally separated class targets, EMA class
 * centroids assigned to the targets by the Hungarian method).
 */
import { fail, fmtShape } from '../../engine/errors.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { noGrad } from '../../engine/autograd.js';
import { describe } from '../../kernels/common.js';
import { add, arange, cat, crossEntropy, div, expand, infoNCE, linear, logsumexp, mul, neg, normalize, reshape, sub, sum, tensor, transpose, unsqueeze } from '../../ops.js';
import { linearSumAssignment } from '../../metrics/assignment.js';

/** CLIP's loss: the mean of the cross-entropies of image→text and text→image logits [N, N] against the diagonal. */
export function clipContrastiveLoss(logitsPerImage: Tensor): Tensor {
  const op = 'clipContrastiveLoss';
  if (!(logitsPerImage instanceof Tensor) || logitsPerImage.ndim !== 2 || logitsPerImage.shape[0] !== logitsPerImage.shape[1])
    fail(op, `logitsPerImage must be a square [N, N] tensor (image i's caption is text i), got ${logitsPerImage instanceof Tensor ? fmtShape(logitsPerImage.shape) : describe(logitsPerImage)}`);
  return tidy(() => {
    const y = arange(logitsPerImage.shape[0]);
    return mul(add(crossEntropy(logitsPerImage, y), crossEntropy(transpose(logitsPerImage, 0, 1), y)), 0.5);
  });
}

/**
 * CFR's calibration loss: anchors [B, D], positives [B, P, D], negatives [B, M, D]; every vector is L2-normalised;
 * for each anchor and each of its positives, the InfoNCE (temperature τ, CFR: 1) of that positive against the
 * anchor's M negatives; the mean over anchors and positives.
 */
export function cfrContrastiveLoss(anchors: Tensor, positives: Tensor, negatives: Tensor, opts: { temperature?: number } = {}): Tensor {
  const op = 'cfrContrastiveLoss';
  for (const [name, t, nd] of [['anchors', anchors, 2], ['positives', positives, 3], ['negatives', negatives, 3]] as const)
    if (!(t instanceof Tensor) || t.ndim !== nd) fail(op, `${name} must be a ${nd}-D tensor, got ${t instanceof Tensor ? fmtShape(t.shape) : describe(t)}`);
  const [B, D] = anchors.shape;
  const [, P] = positives.shape;
  const [, M] = negatives.shape;
  if (positives.shape[0] !== B || negatives.shape[0] !== B || positives.shape[2] !== D || negatives.shape[2] !== D)
    fail(op, `expects anchors [B, D], positives [B, P, D], negatives [B, M, D] with the same B and D, got ${fmtShape(anchors.shape)}, ${fmtShape(positives.shape)}, ${fmtShape(negatives.shape)}`);
  const temperature = opts.temperature ?? 1;
  const index = new Int32Array(B * P * M);
  for (let b = 0; b < B; b++) for (let j = 0; j < P; j++) for (let m = 0; m < M; m++) index[(b * P + j) * M + m] = b * M + m;
  return tidy(() => {
    const a = normalize(anchors, { dim: 1 });
    const query = reshape(expand(unsqueeze(a, 1), [B, P, D]), [B * P, D]);
    const pos = reshape(normalize(positives, { dim: 2 }), [B * P, D]);
    const keys = reshape(normalize(negatives, { dim: 2 }), [B * M, D]);
    return infoNCE(query, keys, pos, { temperature, negativeIndex: tensor(index, [B * P, M], { dtype: 'i32' }) });
  });
}

/** C maximally separated unit vectors in D ≥ C − 1 dims: a regular simplex (C = 2: ±e₀). Row-major [C, D]. */
export function simplexTargets(C: number, D: number): Float64Array {
  if (!Number.isInteger(C) || C < 2 || !Number.isInteger(D) || D < C - 1) fail('simplexTargets', `needs C >= 2 classes and D >= C - 1 dims, got C = ${C}, D = ${D}`);
  const out = new Float64Array(C * D);
  if (C === 2) {
    out[0] = 1;
    out[D] = -1;
    return out;
  }
  // e_i − centroid in C dims has norm sqrt((C − 1) / C); with D < C the simplex lies in the hyperplane Σx = 0: rotate
  // into C − 1 dims by Gram–Schmidt on the differences e_i − e_0
  const basis: Float64Array[] = [];
  for (let i = 1; i < C && basis.length < Math.min(D, C - 1); i++) {
    const v = new Float64Array(C);
    v[i] = 1;
    v[0] = -1;
    for (const b of basis) {
      const d = v.reduce((s, x, k) => s + x * b[k], 0);
      for (let k = 0; k < C; k++) v[k] -= d * b[k];
    }
    const n = Math.hypot(...v);
    basis.push(v.map((x) => x / n));
  }
  const r = Math.sqrt((C - 1) / C);
  for (let i = 0; i < C; i++)
    basis.forEach((b, j) => {
      // coordinate of (e_i − 1/C) along b (b ⟂ the all-ones vector)
      out[i * D + j] = b[i] / r;
    });
  return out;
}

export interface TargetedSupConOptions {
  /** Keys kept from past batches (CFR: 1280). */
  queueSize?: number;
  /** Logit temperature (0.07). */
  temperature?: number;
  /** Weight of the target term (0.2). */
  targetWeight?: number;
  /** EMA weight of the old centroid (0.9). */
  centroidMomentum?: number;
}

/**
 * Targeted supervised contrastive loss with its state. `loss(features, labels)`: the features are L2-normalised
 * (q); each q's logits over [its own key (q·q = 1), the queued keys, the C targets] / T; the loss is
 * − mean_b [ mean over same-label queued keys of log p + targetWeight · log p(assigned target of its label) + log p(own key) ].
 * `update(features, labels)` (after the step): class centroids ← EMA of the batch class means (renormalised), the
 * centroid → target assignment that maximises the total cosine (Hungarian), and the keys enqueued (ring buffer).
 */
export class TargetedSupConLoss {
  readonly queueSize: number;
  readonly temperature: number;
  readonly targetWeight: number;
  readonly centroidMomentum: number;
  readonly targets: Float64Array;
  /** Queued keys [queueSize, D] (host copy) and their labels; `filled` entries are valid. */
  readonly queue: Float32Array;
  readonly queueLabels: Int32Array;
  filled = 0;
  private head = 0;
  /** Class centroids [C, D] (null until a class has been seen). */
  readonly centroids: (Float64Array | null)[];
  /** assignment[c] = the target of class c. */
  assignment: number[];

  constructor(readonly dim: number, readonly numClasses: number, opts: TargetedSupConOptions = {}) {
    this.queueSize = opts.queueSize ?? 1280;
    this.temperature = opts.temperature ?? 0.07;
    this.targetWeight = opts.targetWeight ?? 0.2;
    this.centroidMomentum = opts.centroidMomentum ?? 0.9;
    this.targets = simplexTargets(numClasses, dim);
    this.queue = new Float32Array(this.queueSize * dim);
    this.queueLabels = new Int32Array(this.queueSize);
    this.centroids = Array.from({ length: numClasses }, () => null);
    this.assignment = Array.from({ length: numClasses }, (_, c) => c);
  }

  private checkBatch(op: string, features: Tensor, labels: ArrayLike<number>): number {
    if (!(features instanceof Tensor) || features.ndim !== 2 || features.shape[1] !== this.dim)
      fail(op, `features must be [B, ${this.dim}], got ${features instanceof Tensor ? fmtShape(features.shape) : describe(features)}`);
    const B = features.shape[0];
    if (labels.length !== B) fail(op, `labels must hold one class per feature row (${B}), got ${labels.length}`);
    for (let b = 0; b < B; b++)
      if (!Number.isInteger(labels[b]) || labels[b] < 0 || labels[b] >= this.numClasses) fail(op, `labels[${b}] must be a class in [0, ${this.numClasses}), got ${labels[b]}`);
    return B;
  }

  loss(features: Tensor, labels: ArrayLike<number>): Tensor {
    const op = 'TargetedSupConLoss';
    const B = this.checkBatch(op, features, labels);
    const K = this.filled;
    const C = this.numClasses;
    const cols = 1 + K + C;
    // the weight of each log-probability in the loss, built on the host from the labels
    const w = new Float32Array(B * cols);
    for (let b = 0; b < B; b++) {
      const y = labels[b];
      w[b * cols] = 1;
      let same = 0;
      for (let j = 0; j < K; j++) same += this.queueLabels[j] === y ? 1 : 0;
      if (same) for (let j = 0; j < K; j++) if (this.queueLabels[j] === y) w[b * cols + 1 + j] = 1 / same;
      w[b * cols + 1 + K + this.assignment[y]] = this.targetWeight;
    }
    return tidy(() => {
      const q = normalize(features, { dim: 1 });
      const own = sum(mul(q, q.detach()), { dim: 1, keepdim: true });
      const bank = tensor(Float32Array.from([...this.queue.subarray(0, K * this.dim), ...this.targets]), [K + C, this.dim]);
      const logits = div(cat([own, linear(q, bank)], 1), this.temperature);
      const logp = sub(logits, logsumexp(logits, { dim: 1, keepdim: true }));
      return div(neg(sum(mul(logp, tensor(w, [B, cols])))), B);
    });
  }

  /** Centroid EMA, Hungarian re-assignment, enqueue (call after the optimiser step, with the same batch). */
  async update(features: Tensor, labels: ArrayLike<number>): Promise<void> {
    const B = this.checkBatch('TargetedSupConLoss.update', features, labels);
    const D = this.dim;
    const qT = noGrad(() => normalize(features, { dim: 1 }));
    const q = await qT.data();
    qT.dispose();
    for (let c = 0; c < this.numClasses; c++) {
      const mean = new Float64Array(D);
      let n = 0;
      for (let b = 0; b < B; b++)
        if (labels[b] === c) {
          n++;
          for (let d = 0; d < D; d++) mean[d] += q[b * D + d];
        }
      if (!n) continue;
      const old = this.centroids[c];
      const m = this.centroidMomentum;
      const next = old ? old.map((v, d) => m * v + ((1 - m) * mean[d]) / n) : mean.map((v) => v / n);
      const norm = Math.hypot(...next) || 1;
      this.centroids[c] = next.map((v) => v / norm);
    }
    const sim = this.centroids.map((cent) => Array.from({ length: this.numClasses }, (_, t) => (cent ? cent.reduce((s, v, d) => s + v * this.targets[t * D + d], 0) : 0)));
    const { rowInd, colInd } = linearSumAssignment(sim, { maximize: true });
    rowInd.forEach((c, i) => (this.assignment[c] = colInd[i]));
    for (let b = 0; b < B; b++) {
      this.queue.set(q.subarray(b * D, (b + 1) * D), this.head * D);
      this.queueLabels[this.head] = labels[b];
      this.head = (this.head + 1) % this.queueSize;
      this.filled = Math.min(this.filled + 1, this.queueSize);
    }
  }
}
