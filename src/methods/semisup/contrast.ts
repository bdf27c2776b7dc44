/**
 * The pixel contrasts of ACTION (anatomical contrast, ReCo-style hard sampling) and MONA (memory-bank contrast with
 * entropy-percentile masks, U2PL-style). Sampling decisions (which pixels are queries, which rows are negatives) are
 * made on the host from one readback of labels and probabilities: they are integer bookkeeping over at most a few
 * hundred thousand pixels, and a seeded host generator keeps runs reproducible. The loss itself is the fused
 * vg.infoNCE over indexed negatives, so the [queries, negatives, D] tensor of the official code is never built.
 */
import { noGrad } from '../../engine/autograd.js';
import { fail, fmtShape } from '../../engine/errors.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { infoNCE, normalize } from '../../kernels/contrastive.js';
import { tensor, zeros } from '../../kernels/creation.js';
import { gather, indexSelect } from '../../kernels/indexing.js';
import { add, clamp, div } from '../../kernels/math.js';
import { matmul } from '../../kernels/matmul.js';
import { permute, reshape, unsqueeze } from '../../kernels/shape.js';
import { Rng } from '../../data/random.js';
import type { MemoryBank } from './bank.js';

/** [N, D, ...spatial] → [N·spatial, D] rows (pixel order: image, then raster). */
export function pixelRows(rep: Tensor): Tensor {
  const order = [0, ...rep.shape.slice(2).map((_, i) => i + 2), 1];
  return reshape(permute(rep, order), [-1, rep.shape[1]]);
}

/** Each pixel's probability of its own label (labels < 0 read class 0; callers skip them). */
async function probabilityOfLabel(probs: Tensor, labels: Tensor): Promise<Float32Array> {
  const p = noGrad(() => tidy(() => gather(probs, 1, unsqueeze(clamp(labels, { min: 0 }), 1))));
  const out = Float32Array.from(await p.data());
  p.dispose();
  return out;
}

export interface ContrastSample {
  /** Pixel rows of the queries, their classes, and [queries, negatives] rows of the negative keys. */
  queryIndex: Int32Array;
  queryClass: Int32Array;
  negativeIndex: Int32Array;
  negatives: number;
  /** Classes that contributed queries. */
  classes: number[];
}

export interface AnatomicalContrastOptions {
  /** Queries per class (256). */
  queries?: number;
  /** Negative keys per query (512). */
  negatives?: number;
  /** τ of the contrast and of the class-relation softmax (0.5; ACTION++: the ATS schedule). */
  temperature?: number;
  /** Queries are drawn from pixels whose probability of their label is at most this (θ_s = 0.97). */
  strongThreshold?: number;
  seed: number;
}

/**
 * ACTION's anatomical contrast L_anco over dense features rep [N, D, ...sp] with labels [N, ...sp] (GT, or the
 * teacher's pseudo-labels above the weak threshold; −1 elsewhere) and the student's probabilities [N, C, ...sp]:
 * per class, `queries` hard pixels (probability of their class ≤ strongThreshold) drawn with replacement; positive =
 * the class prototype (mean feature, detached); negatives = `negatives` pixels drawn per query, first a class
 * v ≠ c with probability softmax_v(cos(proto_c, proto_v)/τ), then a pixel of v uniformly. Features are normalised
 * (cosine logits). The loss is the mean over queries (the classes contribute equally many) and 0 with fewer than two
 * classes present. Returns the sample too (tests rebuild the loss from it).
 */
export async function anatomicalContrast(rep: Tensor, labels: Tensor, probs: Tensor, opts: AnatomicalContrastOptions): Promise<{ loss: Tensor; sample: ContrastSample | null }> {
  const op = 'anatomicalContrast';
  if (labels.shape.join() !== [rep.shape[0], ...rep.shape.slice(2)].join())
    fail(op, `labels must be [N, ...spatial] = ${fmtShape([rep.shape[0], ...rep.shape.slice(2)])} to match rep ${fmtShape(rep.shape)}, got ${fmtShape(labels.shape)}`);
  const nq = opts.queries ?? 256;
  const nk = opts.negatives ?? 512;
  const tau = opts.temperature ?? 0.5;
  const thr = opts.strongThreshold ?? 0.97;
  const C = probs.shape[1];
  const lab = Int32Array.from(await labels.data());
  const pLab = await probabilityOfLabel(probs, labels);
  const members: number[][] = Array.from({ length: C }, () => []);
  lab.forEach((l, i) => l >= 0 && l < C && members[l].push(i));
  const present = members.map((m, c) => (m.length ? c : -1)).filter((c) => c >= 0);
  if (present.length < 2) return { loss: zeros([]), sample: null };
  const feats = tidy(() => normalize(pixelRows(rep), { dim: 1 }));
  // prototypes: class means of the (detached) normalised features, renormalised for cosine logits
  const protos = noGrad(() =>
    tidy(() => {
      const P = lab.length;
      const w = new Float32Array(C * P);
      members.forEach((m, c) => m.forEach((i) => (w[c * P + i] = 1 / m.length)));
      return normalize(matmul(tensor(w, [C, P]), feats.detach()), { dim: 1 });
    }),
  );
  const protoHost = await protos.data();
  const D = protos.shape[1];
  const cos = (a: number, b: number) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += protoHost[a * D + d] * protoHost[b * D + d];
    return s;
  };
  const rng = new Rng(opts.seed);
  const qIdx: number[] = [];
  const qCls: number[] = [];
  const negIdx: number[] = [];
  const used: number[] = [];
  for (const c of present) {
    const hard = members[c].filter((i) => pLab[i] <= thr);
    if (!hard.length) continue;
    used.push(c);
    const others = present.filter((v) => v !== c);
    const logits = others.map((v) => cos(c, v) / tau);
    const top = Math.max(...logits);
    const w = logits.map((l) => Math.exp(l - top));
    const total = w.reduce((a, b) => a + b, 0);
    for (let q = 0; q < nq; q++) {
      qIdx.push(hard[rng.int(0, hard.length)]);
      qCls.push(c);
      for (let j = 0; j < nk; j++) {
        let u = rng.next() * total;
        let k = 0;
        while (k < others.length - 1 && (u -= w[k]) > 0) k++;
        const pool = members[others[k]];
        negIdx.push(pool[rng.int(0, pool.length)]);
      }
    }
  }
  if (!used.length) {
    feats.dispose();
    protos.dispose();
    return { loss: zeros([]), sample: null };
  }
  const sample: ContrastSample = { queryIndex: Int32Array.from(qIdx), queryClass: Int32Array.from(qCls), negativeIndex: Int32Array.from(negIdx), negatives: nk, classes: used };
  const loss = tidy(() => {
    const queries = indexSelect(feats, 0, tensor(sample.queryIndex, [qIdx.length], { dtype: 'i32' }));
    const positives = indexSelect(protos, 0, tensor(sample.queryClass, [qIdx.length], { dtype: 'i32' }));
    const index = tensor(sample.negativeIndex, [qIdx.length, nk], { dtype: 'i32' });
    return infoNCE(queries, feats.detach(), positives, { temperature: tau, negativeIndex: index });
  });
  feats.dispose();
  protos.dispose();
  return { loss, sample };
}

export interface MemoryContrastOptions {
  queries?: number;
  negatives?: number;
  temperature?: number;
  seed: number;
}

/**
 * MONA's memory-bank contrast (U2PL's): queries are student features of "reliable" pixels of class c (label c and
 * teacher probability of c > 0.3, within the low-entropy mask), positive = the class prototype of the teacher
 * features over the same pixels (detached), negatives drawn uniformly from class c's memory bank of teacher features
 * (filled rows only). Features are normalised. Classes with an empty bank or no reliable pixel are skipped; 0 with
 * fewer than two classes contributing.
 */
export async function memoryBankContrast(
  student: Tensor,
  teacher: Tensor,
  labels: Tensor,
  teacherProbs: Tensor,
  reliable: Uint8Array,
  banks: readonly MemoryBank[],
  opts: MemoryContrastOptions,
): Promise<Tensor> {
  const nq = opts.queries ?? 256;
  const nk = opts.negatives ?? 512;
  const tau = opts.temperature ?? 0.5;
  const C = teacherProbs.shape[1];
  const lab = Int32Array.from(await labels.data());
  const pLab = await probabilityOfLabel(teacherProbs, labels);
  const rng = new Rng(opts.seed);
  const sFeats = tidy(() => normalize(pixelRows(student), { dim: 1 }));
  const tFeats = noGrad(() => tidy(() => normalize(pixelRows(teacher), { dim: 1 })));
  const losses: Tensor[] = [];
  for (let c = 0; c < C; c++) {
    const bank = banks[c];
    const pix: number[] = [];
    lab.forEach((l, i) => l === c && reliable[i] && pLab[i] > 0.3 && pix.push(i));
    if (!pix.length || !bank.filled) continue;
    const q = Int32Array.from({ length: nq }, () => pix[rng.int(0, pix.length)]);
    const neg = Int32Array.from({ length: nq * nk }, () => rng.int(0, bank.filled));
    losses.push(
      tidy(() => {
        const proto = noGrad(() => normalize(reshape(matmul(tensor(new Float32Array(pix.length).fill(1 / pix.length), [1, pix.length]), indexSelect(tFeats, 0, tensor(pix, [pix.length], { dtype: 'i32' }))), [-1]), { dim: 0 }));
        const queries = indexSelect(sFeats, 0, tensor(q, [nq], { dtype: 'i32' }));
        return infoNCE(queries, bank.keys, proto, { temperature: tau, negativeIndex: tensor(neg, [nq, nk], { dtype: 'i32' }) });
      }),
    );
  }
  sFeats.dispose();
  tFeats.dispose();
  if (losses.length < 2) {
    losses.forEach((l) => l.dispose());
    return zeros([]);
  }
  const out = tidy(() => div(losses.slice(1).reduce((a, b) => add(a, b), losses[0]), losses.length));
  losses.forEach((l) => l.dispose());
  return out;
}
