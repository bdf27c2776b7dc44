/**
 * `voxgrad train clip --method zeroshot|erm|dfr|jtt|cfr`: group robustness of a small CLIP without group labels, on
 * the Waterbirds-like Fashion-MNIST set (vg.data.loadSpuriousFashion).
 * 1. Pretraining: a small ViT CLIP trained contrastively on captioned images of the pretraining split (the background
 *    agrees with the label 95% of the time, so the shortcut is in the data the model learns from). Cached (`cache`).
 * 2. The frozen image tower's features before the projection (ln_post of the class token) of train/val/test.
 * 3. The classifier of every method is CLIP's zero-shot head: per class, the mean of the normalised text embeddings of
 *    the prompt templates filled with the class word; logits = exp(s) · cos(z·proj, text). The methods retrain the
 *    image projection `proj` and s (CFR's "last layer"), with AdamW, model selection by validation worst-group
 *    accuracy (the group labels of the validation split are used for selection only, as in the papers):
 *    - zeroshot: no training;
 *    - erm: cross-entropy on the training split;
 *    - jtt: ERM for `jttEpochs`, then training from the pretrained projection with the ERM errors repeated `jttUpweight` times;
 *    - dfr: cross-entropy on a group-balanced half of the validation split (uses group labels: the upper reference),
 *      `dfrEpochs` passes, selection on the other half;
 *    - cfr: calibration set = training samples the ERM head misclassifies; per anchor, positives = k random correctly
 *      classified same-class samples (redrawn each step), negatives = the k opposite-class training samples most
 *      similar to it in feature space; loss a(e)·CE(calibration batch) + a(e)·InfoNCE(τ = 1) + TSC(regular batch),
 *      a(e) = 1 + 0.5·cos(2π e / E).
 * The released code's divergences are options: `cfrNegatives: 'release'` (random same-class negatives, as its
 * __getitem__ overwrites them) and `cfrWeight: 'release'` (a ≡ 1.5: its epoch is never passed). `cfrRegularCe` (default
 * 0, as paper and code) adds the regular batch's cross-entropy with that weight: without it the calibration CE sees
 * only the error set, mostly minority-group samples, and the head learns to predict against the background here.
 * `cfrContrastWeight` and `cfrTscWeight` (default 1) scale the InfoNCE and TSC terms, 0 leaving a term out (the ablation
 * in docs/results/robust-clip.md).
 * With an output folder (`--out`): evaluation.json, the test embeddings before and after (the starting head's and the
 * final head's normalised z·proj, and the groups) in embeddings.safetensors, and their PCA by group in embeddings.png.
 */
import { noGrad } from '../../engine/autograd.js';
import { fail } from '../../engine/errors.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { Rng, deriveSeed } from '../../data/random.js';
import { loadSpuriousFashion, SPURIOUS_ATTRIBUTE_WORDS, SPURIOUS_CAPTION_WORDS, SPURIOUS_LABEL_WORDS, ZERO_SHOT_TEMPLATES, type SpuriousSplit } from '../../data/spurious-fashion.js';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.js';
import { figureGrid, legend, scatterPlot } from '../../io/figures.js';
import { writePng } from '../../io/png.js';
import { pca } from '../../metrics/pca.js';
import { files } from '../../io/files.js';
import { WordTokenizer } from '../../io/tokenizer.js';
import { groupAccuracies, type GroupAccuracies } from '../../metrics/classification.js';
import { CLIP, VisionTransformer } from '../../models/clip.js';
import { AdamW } from '../../optim/index.js';
import { argmax, cat, cosineSimilarityMatrix, crossEntropy, exp, indexSelect, matmul, mean, mul, normalize, reshape, tensor, topk, add } from '../../ops.js';
import { writeJson } from '../../train/run-folder.js';
import { defineRecipe, setting, type Config, type RecipeRun, type TrainResult } from '../../train/recipe.js';
import { TargetedSupConLoss, cfrContrastiveLoss, clipContrastiveLoss } from './losses.js';

const defaults: Config = {
  method: 'cfr',
  seed: 0,
  pretrainSeed: 0,
  pretrainSteps: 60,
  pretrainBatch: 256,
  pretrainLr: 0.001,
  pretrainImages: 20000,
  trainImages: 10000,
  valImages: 4000,
  testImages: 4000,
  visionWidth: 64,
  visionLayers: 2,
  patchSize: 7,
  textWidth: 64,
  textLayers: 1,
  embedDim: 32,
  epochs: 10,
  batchSize: 128,
  lr: 0.01,
  k: 16,
  jttEpochs: 2,
  dfrEpochs: 100,
  jttUpweight: 20,
  cfrNegatives: 'hard',
  cfrWeight: 'cosine',
  cfrRegularCe: 0,
  cfrContrastWeight: 1,
  cfrTscWeight: 1,
  cache: '',
};

/** The settings that decide the pretrained CLIP: all of them name its cache file, so a changed one never loads a stale model. */
const PRETRAIN_SETTINGS = ['pretrainSeed', 'pretrainSteps', 'pretrainBatch', 'pretrainLr', 'pretrainImages', 'visionWidth', 'visionLayers', 'patchSize', 'textWidth', 'textLayers', 'embedDim'];

/** Where the recipe caches the CLIP pretrained with settings `config` under the folder `cache` (its losses beside it, `-losses.json`). */
export function pretrainedCacheFile(cache: string, config: Config): string {
  return `${cache}/clip-pretrained-${PRETRAIN_SETTINGS.map((k) => setting(config, defaults, k)).join('-')}.safetensors`;
}

const CONTEXT = 16;
const METHODS = ['zeroshot', 'erm', 'dfr', 'jtt', 'cfr'];

interface Features {
  z: Tensor;
  labels: Int32Array;
  groups: Int32Array;
}

/** The trainable head: the image projection and the logit scale. */
interface Head {
  proj: Tensor;
  logitScale: Tensor;
}

function clipConfig(c: Config) {
  return {
    embedDim: setting<number>(c, defaults, 'embedDim'),
    imageResolution: 28,
    visionLayers: setting<number>(c, defaults, 'visionLayers'),
    visionWidth: setting<number>(c, defaults, 'visionWidth'),
    visionPatchSize: setting<number>(c, defaults, 'patchSize'),
    visionHeads: 4,
    contextLength: CONTEXT,
    vocabSize: new WordTokenizer(SPURIOUS_CAPTION_WORDS).vocabSize,
    transformerWidth: setting<number>(c, defaults, 'textWidth'),
    transformerHeads: 4,
    transformerLayers: setting<number>(c, defaults, 'textLayers'),
  };
}

const imagesOf = (s: SpuriousSplit, idx: readonly number[]) => {
  const out = new Float32Array(idx.length * 3 * 784);
  idx.forEach((i, k) => out.set(s.images.subarray(i * 2352, (i + 1) * 2352), k * 2352));
  return tensor(out, [idx.length, 3, 28, 28]);
};

/** Contrastive pretraining on the pretraining split: random batches, AdamW, CLIP's loss. */
async function pretrain(model: CLIP, split: SpuriousSplit, c: Config, log: (m: string) => void): Promise<number[]> {
  const tok = new WordTokenizer(SPURIOUS_CAPTION_WORDS);
  const steps = setting<number>(c, defaults, 'pretrainSteps');
  const B = Math.min(setting<number>(c, defaults, 'pretrainBatch'), split.length);
  const opt = new AdamW(model.parameters(), { lr: setting<number>(c, defaults, 'pretrainLr'), weightDecay: 0.1 });
  const rng = new Rng(deriveSeed(setting<number>(c, defaults, 'pretrainSeed'), 7));
  const losses: number[] = [];
  model.train();
  for (let s = 0; s < steps; s++) {
    const idx = rng.permutation(split.length).slice(0, B);
    const img = imagesOf(split, idx);
    const text = tok.tokenize(idx.map((i) => split.captions[i]), { contextLength: CONTEXT });
    const loss = tidy(() => clipContrastiveLoss(model.call(img, text)[0]));
    opt.zeroGrad();
    loss.backward();
    opt.step();
    losses.push(await loss.item());
    [img, text, loss].forEach((t) => t.dispose());
    if (s % 10 === 0 || s === steps - 1) log(`pretrain step ${s + 1}/${steps}: loss ${losses[s].toFixed(4)}`);
  }
  opt.dispose();
  model.eval();
  return losses;
}

async function extract(model: CLIP, split: SpuriousSplit): Promise<Features> {
  const visual = model.visual as VisionTransformer;
  const parts: Tensor[] = [];
  for (let i = 0; i < split.length; i += 256) {
    const idx = Array.from({ length: Math.min(256, split.length - i) }, (_, k) => i + k);
    const img = imagesOf(split, idx);
    parts.push(noGrad(() => visual.features(img)));
    img.dispose();
    await parts[parts.length - 1].data();
  }
  const z = tidy(() => cat(parts, 0));
  parts.forEach((p) => p.dispose());
  return { z, labels: split.labels, groups: split.groups };
}

/** Per class: the normalised mean of the normalised embeddings of the prompts (templates × class word). */
function zeroShotHead(model: CLIP): Tensor {
  const tok = new WordTokenizer(SPURIOUS_CAPTION_WORDS);
  return noGrad(() =>
    tidy(() => {
      const rows = SPURIOUS_LABEL_WORDS.map((w) => {
        const text = tok.tokenize(ZERO_SHOT_TEMPLATES.map((t) => t.replace('{}', w)), { contextLength: CONTEXT });
        return mean(normalize(model.encodeText(text), { dim: 1 }), { dim: 0, keepdim: true });
      });
      return normalize(cat(rows, 0), { dim: 1 });
    }),
  );
}

const headLogits = (h: Head, z: Tensor, text: Tensor) => mul(cosineSimilarityMatrix(matmul(z, h.proj), text), exp(h.logitScale));

async function evaluate(h: Head, f: Features, text: Tensor, idx?: readonly number[]): Promise<GroupAccuracies> {
  const sel = idx ?? null;
  const [pred, y, g] = noGrad(() =>
    tidy(() => {
      const z = sel ? indexSelect(f.z, 0, tensor(Int32Array.from(sel), [sel.length], { dtype: 'i32' })) : f.z;
      const labels = sel ? Int32Array.from(sel, (i) => f.labels[i]) : f.labels;
      const groups = sel ? Int32Array.from(sel, (i) => f.groups[i]) : f.groups;
      return [argmax(headLogits(h, z, text), { dim: 1 }), tensor(labels, [labels.length], { dtype: 'i32' }), tensor(groups, [groups.length], { dtype: 'i32' })];
    }),
  );
  try {
    return await groupAccuracies(pred, y, g);
  } finally {
    [pred, y, g].forEach((t) => t.dispose());
  }
}

async function predictions(h: Head, f: Features, text: Tensor): Promise<Int32Array> {
  const pred = noGrad(() => tidy(() => argmax(headLogits(h, f.z, text), { dim: 1 })));
  const out = Int32Array.from(await pred.data());
  pred.dispose();
  return out;
}

/** A head's joint-space embeddings of the features: normalize(z · proj) [N, embedDim] (what its logits compare with the text). */
const embeddingsOf = (h: Head, f: Features) => noGrad(() => tidy(() => normalize(matmul(f.z, h.proj), { dim: 1 })));

/** Colours and names of the four groups (g = 2·label + background) in the embedding figures. */
const GROUP_LEGEND = [0, 1, 2, 3].map((g) => ({
  label: `g${g}: ${SPURIOUS_LABEL_WORDS[g >> 1]}, ${SPURIOUS_ATTRIBUTE_WORDS[g & 1]}`,
  color: ([[0, 114, 178], [86, 180, 233], [213, 94, 0], [230, 159, 0]] as const)[g],
}));

/**
 * Embeddings in 2-D, one panel per entry: the first two principal components (vg.metrics.pca, fitted on that panel's
 * rows, so each panel has its own axes) of the rows of `z`, coloured by group (blues: top, oranges: footwear; dark: land,
 * light: water), the share of variance the two axes hold in the title; a legend below. RGB [H, W, 3] in [0, 255].
 */
export async function embeddingFigure(panels: readonly { title: string; z: Tensor }[], groups: Int32Array, opts: { size?: number } = {}): Promise<Tensor> {
  const plots: { title: string; rgb: Tensor }[] = [];
  try {
    for (const p of panels) {
      const r = await pca(p.z, { components: 2 });
      const rgb = await scatterPlot(r.projected, groups, { size: opts.size ?? 256, colors: GROUP_LEGEND.map((g) => g.color) });
      [r.projected, r.components, r.mean].forEach((t) => t.dispose());
      const share = r.explainedVarianceRatio.reduce((a, b) => a + b, 0);
      plots.push({ title: `${p.title} (PC1-2: ${(100 * share).toFixed(0)}%)`, rgb });
    }
    const key = legend(GROUP_LEGEND);
    try {
      return figureGrid([plots, [{ rgb: key }]]);
    } finally {
      key.dispose();
    }
  } finally {
    plots.forEach((p) => p.rgb.dispose());
  }
}

const cloneHead = (h: Head): Head => noGrad(() => ({ proj: mul(h.proj, 1), logitScale: mul(h.logitScale, 1) }));
const disposeHead = (h: Head) => [h.proj, h.logitScale].forEach((t) => t.dispose());

interface TrainHeadOptions {
  /** Sample indices of one epoch (repeats allowed: JTT's upweighting). */
  indices: readonly number[];
  epochs: number;
  /** Selection: validation features and the indices to score (worst-group accuracy). */
  val: Features;
  valIndices?: readonly number[];
  /** Extra loss per step (CFR), given the step's head, epoch and batch. */
  extra?: (h: Head, epoch: number, batch: number[]) => Tensor;
  afterStep?: (h: Head, batch: number[]) => Promise<void>;
  /** Weight of the batch's cross-entropy (default 1; 0 leaves it out). */
  ceWeight?: number;
  /** 'best': the epoch (start included) with the best validation worst-group accuracy (default); 'last': the final head. */
  select?: 'best' | 'last';
}

/** Trains a copy of `init` with AdamW; returns the copy from the epoch with the best validation worst-group accuracy. */
async function trainHead(init: Head, f: Features, text: Tensor, c: Config, o: TrainHeadOptions): Promise<{ head: Head; bestEpoch: number; valWorst: number }> {
  const h = cloneHead(init);
  h.proj.requiresGrad = true;
  h.logitScale.requiresGrad = true;
  const opt = new AdamW([h.proj, h.logitScale], { lr: setting<number>(c, defaults, 'lr'), weightDecay: 1e-5 });
  const rng = new Rng(deriveSeed(setting<number>(c, defaults, 'seed'), 11));
  const B = setting<number>(c, defaults, 'batchSize');
  let best = { head: cloneHead(h), bestEpoch: 0, valWorst: (await evaluate(h, o.val, text, o.valIndices)).worst };
  for (let e = 0; e < o.epochs; e++) {
    const order = rng.permutation(o.indices.length).map((i) => o.indices[i]);
    for (let i = 0; i < order.length; i += B) {
      const batch = order.slice(i, i + B);
      const loss = tidy(() => {
        const terms: Tensor[] = [];
        if ((o.ceWeight ?? 1) !== 0) {
          const idx = tensor(Int32Array.from(batch), [batch.length], { dtype: 'i32' });
          const y = tensor(Int32Array.from(batch, (k) => f.labels[k]), [batch.length], { dtype: 'i32' });
          terms.push(mul(crossEntropy(headLogits(h, indexSelect(f.z, 0, idx), text), y), o.ceWeight ?? 1));
        }
        if (o.extra) terms.push(o.extra(h, e, batch));
        return terms.reduce((a, b) => add(a, b));
      });
      opt.zeroGrad();
      loss.backward();
      opt.step();
      loss.dispose();
      await o.afterStep?.(h, batch);
    }
    const worst = (await evaluate(h, o.val, text, o.valIndices)).worst;
    if (o.select === 'last' || worst > best.valWorst) {
      disposeHead(best.head);
      best = { head: cloneHead(h), bestEpoch: e + 1, valWorst: worst };
    }
  }
  opt.dispose();
  disposeHead(h);
  return best;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** CFR's calibration: the sets from the ERM head, then the joint objective on a regular + a calibration stream. */
async function cfr(init: Head, erm: Head, train: Features, val: Features, text: Tensor, c: Config) {
  const k = setting<number>(c, defaults, 'k');
  const pred = await predictions(erm, train, text);
  const n = train.labels.length;
  const wrong = range(n).filter((i) => pred[i] !== train.labels[i]);
  const correctOf = [0, 1].map((y) => range(n).filter((i) => train.labels[i] === y && pred[i] === y));
  const allOf = [0, 1].map((y) => range(n).filter((i) => train.labels[i] === y));
  if (!wrong.length) fail('clip', 'the ERM head misclassifies no training sample: CFR has an empty calibration set');
  const rng = new Rng(deriveSeed(setting<number>(c, defaults, 'seed'), 13));
  // hard negatives: the k opposite-class samples with the largest cosine to the anchor in feature space
  const negatives = new Int32Array(wrong.length * k);
  const release = setting<string>(c, defaults, 'cfrNegatives') === 'release';
  for (const y of [0, 1]) {
    const anchors = wrong.map((i, r) => [i, r]).filter(([i]) => train.labels[i] === y);
    if (!anchors.length) continue;
    if (release) {
      for (const [, r] of anchors) for (let j = 0; j < k; j++) negatives[r * k + j] = allOf[y][rng.int(0, allOf[y].length)];
      continue;
    }
    const pool = allOf[1 - y];
    const top = noGrad(() =>
      tidy(() => {
        const za = indexSelect(train.z, 0, tensor(Int32Array.from(anchors, ([i]) => i), [anchors.length], { dtype: 'i32' }));
        const zp = indexSelect(train.z, 0, tensor(Int32Array.from(pool), [pool.length], { dtype: 'i32' }));
        return topk(cosineSimilarityMatrix(za, zp), Math.min(k, pool.length), { dim: 1 }).indices;
      }),
    );
    const t = await top.data();
    top.dispose();
    const kk = t.length / anchors.length;
    anchors.forEach(([, r], a) => {
      for (let j = 0; j < k; j++) negatives[r * k + j] = pool[t[a * kk + (j % kk)]];
    });
  }
  const tsc = new TargetedSupConLoss(init.proj.shape[1], 2);
  const epochs = setting<number>(c, defaults, 'epochs');
  const weight = (e: number) => (setting<string>(c, defaults, 'cfrWeight') === 'release' ? 1.5 : 1 + 0.5 * Math.cos((2 * Math.PI * e) / epochs));
  const B = setting<number>(c, defaults, 'batchSize');
  const wContrast = setting<number>(c, defaults, 'cfrContrastWeight');
  const wTsc = setting<number>(c, defaults, 'cfrTscWeight');
  let cursor = 0;
  const idx = (list: readonly number[]) => tensor(Int32Array.from(list), [list.length], { dtype: 'i32' });
  const result = await trainHead(init, train, text, c, {
    // the regular stream feeds TSC (and its own CE when cfrRegularCe > 0); the calibration stream (cycled) feeds the CE
    // and the contrastive term
    indices: range(n),
    epochs,
    val,
    ceWeight: setting<number>(c, defaults, 'cfrRegularCe'),
    extra: (h, e, batch) => {
      const a = weight(e);
      const rows = Array.from({ length: Math.min(B, wrong.length) }, () => cursor++ % wrong.length);
      const cal = rows.map((r) => wrong[r]);
      const proj = (list: readonly number[]) => matmul(indexSelect(train.z, 0, idx(list)), h.proj);
      const y = tensor(Int32Array.from(cal, (i) => train.labels[i]), [cal.length], { dtype: 'i32' });
      let calLoss = crossEntropy(headLogits(h, indexSelect(train.z, 0, idx(cal)), text), y);
      if (wContrast !== 0) {
        const pos = cal.flatMap((i) => Array.from({ length: k }, () => correctOf[train.labels[i]][rng.int(0, correctOf[train.labels[i]].length)]));
        const neg = rows.flatMap((r) => Array.from(negatives.subarray(r * k, (r + 1) * k)));
        const E = h.proj.shape[1];
        const contra = cfrContrastiveLoss(proj(cal), reshape(proj(pos), [cal.length, k, E]), reshape(proj(neg), [cal.length, k, E]), { temperature: 1 });
        calLoss = add(calLoss, mul(contra, wContrast));
      }
      const loss = mul(calLoss, a);
      return wTsc === 0 ? loss : add(loss, mul(tsc.loss(proj(batch), Int32Array.from(batch, (i) => train.labels[i])), wTsc));
    },
    afterStep: async (h, batch) => {
      if (wTsc === 0) return;
      // the queue takes the batch's keys under the updated projection
      const keys = noGrad(() => tidy(() => matmul(indexSelect(train.z, 0, idx(batch)), h.proj)));
      await tsc.update(keys, Int32Array.from(batch, (i) => train.labels[i]));
      keys.dispose();
    },
  });
  return { ...result, calibrationSize: wrong.length };
}

export const clipRecipe = defineRecipe({
  name: 'clip',
  description: 'robust CLIP on Waterbirds-like Fashion-MNIST: pretraining, then zero-shot / ERM / DFR / JTT / CFR heads',
  defaults,
  async train(run: RecipeRun): Promise<TrainResult> {
    return runClip(run);
  },
  async evaluate(): Promise<Record<string, unknown>> {
    return fail('clip', 'evaluation is part of train (the heads are small): run voxgrad train clip --method ...');
  },
});

async function runClip(run: RecipeRun): Promise<TrainResult> {
  const c = run.config;
  const t0 = performance.now();
  const log = run.log ?? (() => undefined);
  const method = setting<string>(c, defaults, 'method');
  if (!METHODS.includes(method)) fail('clip', `method must be one of ${METHODS.join(', ')}, got '${method}'`);
  const data = await loadSpuriousFashion({
    pretrain: setting(c, defaults, 'pretrainImages'),
    train: setting(c, defaults, 'trainImages'),
    val: setting(c, defaults, 'valImages'),
    test: setting(c, defaults, 'testImages'),
    seed: setting(c, defaults, 'pretrainSeed'),
  });
  const model = new CLIP(clipConfig(c), { seed: setting<number>(c, defaults, 'pretrainSeed') });
  const cache = setting<string>(c, defaults, 'cache');
  const cached = cache ? pretrainedCacheFile(cache, c) : null;
  let pretrainLosses: number[] = [];
  if (cached && (await files('clip').exists(cached))) {
    const sd = await readSafetensors(cached);
    model.loadStateDict(sd);
    Object.values(sd).forEach((t) => t.dispose());
    model.eval();
    log(`loaded the pretrained CLIP from ${cached}`);
  } else {
    pretrainLosses = await pretrain(model, data.pretrain, c, log);
    if (cached) {
      await files('clip').mkdir(cache);
      await writeSafetensors(cached, model.stateDict());
      await writeJson(cached.replace(/\.safetensors$/, '-losses.json'), pretrainLosses);
    }
  }
  const splits = [data.train, data.val, data.test];
  // the frozen features depend only on the pretrained model and the split sizes: cached beside it
  const sizes = ['trainImages', 'valImages', 'testImages'].map((k) => setting<number>(c, defaults, k)).join('-');
  const featurePath = cached ? cached.replace(/\.safetensors$/, `-features-${sizes}.safetensors`) : null;
  let feats: Features[];
  if (featurePath && pretrainLosses.length === 0 && (await files('clip').exists(featurePath))) {
    const t = await readSafetensors(featurePath);
    feats = splits.map((s, i) => ({ z: t[`z${i}`], labels: s.labels, groups: s.groups }));
  } else {
    feats = [];
    for (const s of splits) feats.push(await extract(model, s));
    if (featurePath) await writeSafetensors(featurePath, Object.fromEntries(feats.map((f, i) => [`z${i}`, f.z])));
  }
  const [train, val, test] = feats;
  const text = zeroShotHead(model);
  const visual = model.visual as VisionTransformer;
  const init: Head = cloneHead({ proj: visual.proj, logitScale: model.logitScale });
  const epochs = setting<number>(c, defaults, 'epochs');
  let head: Head = init;
  const info: Record<string, unknown> = {};
  // for the figure (run.outDir): the test embeddings under the head the method starts from (JTT, CFR: the ERM head
  // that picks their samples; the others: the pretrained projection)
  let before: Tensor | null = null;
  if (method === 'erm' || method === 'jtt' || method === 'cfr') {
    // the ERM baseline is selected on validation worst-group accuracy; the ERM models that only pick samples (JTT's
    // identification model, CFR's calibration-set model) are the last epoch's, which uses no group label
    const select = method === 'erm' ? 'best' : 'last';
    const erm = await trainHead(init, train, text, c, { indices: range(train.labels.length), epochs: method === 'jtt' ? setting<number>(c, defaults, 'jttEpochs') : epochs, val, select });
    head = erm.head;
    info.ermBestEpoch = erm.bestEpoch;
    if (run.outDir && method !== 'erm') before = embeddingsOf(erm.head, test);
    if (method === 'jtt') {
      const pred = await predictions(erm.head, train, text);
      const errors = range(train.labels.length).filter((i) => pred[i] !== train.labels[i]);
      const up = setting<number>(c, defaults, 'jttUpweight');
      const indices = [...range(train.labels.length), ...errors.flatMap((i) => new Array(up - 1).fill(i))];
      const jtt = await trainHead(init, train, text, c, { indices, epochs, val });
      disposeHead(erm.head);
      head = jtt.head;
      info.errorSet = errors.length;
      info.bestEpoch = jtt.bestEpoch;
    }
    if (method === 'cfr') {
      const r = await cfr(init, erm.head, train, val, text, c);
      disposeHead(erm.head);
      head = r.head;
      info.calibrationSize = r.calibrationSize;
      info.bestEpoch = r.bestEpoch;
    }
  } else if (method === 'dfr') {
    // a group-balanced half of the validation split trains, the other half selects
    const rng = new Rng(deriveSeed(setting<number>(c, defaults, 'seed'), 17));
    const order = rng.permutation(val.labels.length);
    const half = order.slice(0, order.length >> 1);
    const rest = order.slice(order.length >> 1);
    const byGroup = [0, 1, 2, 3].map((g) => half.filter((i) => val.groups[i] === g));
    const m = Math.min(...byGroup.map((b) => b.length));
    const balanced = byGroup.flatMap((b) => b.slice(0, m));
    // the balanced set is small: DFR fits its head for dfrEpochs passes (its logistic regression runs to convergence)
    const dfr = await trainHead(init, val, text, c, { indices: balanced, epochs: setting<number>(c, defaults, 'dfrEpochs'), val, valIndices: rest });
    head = dfr.head;
    info.balancedPerGroup = m;
    info.bestEpoch = dfr.bestEpoch;
  }
  const evalOf = async (f: Features) => {
    const r = await evaluate(head, f, text);
    return { average: r.average, worst: r.worst, perGroup: r.perGroup };
  };
  const evaluation = { method, seed: setting<number>(c, defaults, 'seed'), val: await evalOf(val), test: await evalOf(test), ...info };
  log(`${method}: test average ${evaluation.test.average.toFixed(4)}, worst-group ${evaluation.test.worst.toFixed(4)}`);
  if (run.outDir) {
    await files('clip').mkdir(run.outDir);
    await writeJson(`${run.outDir}/evaluation.json`, { evaluation, pretrainLosses });
    before ??= embeddingsOf(init, test);
    const after = embeddingsOf(head, test);
    const groups = tensor(test.groups, [test.groups.length], { dtype: 'i32' });
    await writeSafetensors(`${run.outDir}/embeddings.safetensors`, { before, after, groups });
    const start = method === 'jtt' || method === 'cfr' ? 'ERM' : 'pretrained';
    const panels = method === 'zeroshot' ? [{ title: 'zero-shot', z: before }] : [{ title: `before: ${start}`, z: before }, { title: `after: ${method.toUpperCase()}`, z: after }];
    const fig = await embeddingFigure(panels, test.groups);
    await writePng(`${run.outDir}/embeddings.png`, fig, { min: 0, max: 255 });
    [before, after, groups, fig].forEach((t) => t.dispose());
  }
  if (head !== init) disposeHead(head);
  disposeHead(init);
  [train.z, val.z, test.z, text].forEach((t) => t.dispose());
  model.dispose();
  return { steps: pretrainLosses.length, finished: true, history: pretrainLosses.map((loss) => ({ loss })), evaluation, seconds: (performance.now() - t0) / 1000 };
}
