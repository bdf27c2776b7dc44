/**
 * `voxgrad train seg`: semi-supervised segmentation with the papers' methods on a labelled/unlabelled split.
 * --method supervised | mean-teacher | action | actionpp | mona; --labeled N training subjects with labels (the rest
 * of the training subjects unlabelled; supervised ignores them, so `--method supervised --labeled 70` is the fully
 * supervised bound); --data phantom (2-D cardiac phantom, UNet) | phantom3d (3-D left-atrium phantom, VNet) |
 * acdc | la (the releases' folders under --root; vg.data.acdcSemiSegSplit / laSemiSegSplit).
 *
 * Stages (action, actionpp, mona): `pretrainSteps` of relational distillation (ACTION stage i, the first half: the
 * global ISD term only; stage ii, the second half: supervised + global + local; MONA: supervised + global + local
 * throughout), then `steps` of fine-tuning, the teacher reset to the student at the stage boundary (ACTION's stage
 * iii). Each stage has its own poly learning-rate decay, as each official script restarts it. SGD, momentum 0.9,
 * weight decay 1e-4 (Nesterov in fine-tuning), EMA teacher m = 0.99 over the network and its heads.
 * Evaluation: held-out test subjects, per class Dice, Jaccard, HD95 and ASD in voxels (the papers' units), mean over
 * images; overlays.png and prediction.nii.gz in the run folder.
 */
import { noGrad } from '../../engine/autograd.js';
import { fail } from '../../engine/errors.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import { cast } from '../../kernels/elementwise.js';
import { tensor } from '../../kernels/creation.js';
import { normalize } from '../../kernels/contrastive.js';
import { indexSelect } from '../../kernels/indexing.js';
import { add, ge, gt, log, logicalAnd, mul, neg, where } from '../../kernels/math.js';
import { softmax } from '../../kernels/nn.js';
import { argmax, mean, sum } from '../../kernels/reduce.js';
import { cat, permute, reshape, slice, stack, unsqueeze } from '../../kernels/shape.js';
import { randomFlip, randomRot90, gaussianBlur, intensityJitter } from '../../data/augment.js';
import { Rng, deriveSeed } from '../../data/random.js';
import { acdcSemiSegSplit, cardiacPhantomSplit, laSemiSegSplit, leftAtriumPhantoms, splitSubjects, type SliceSet } from '../../data/semiseg.js';
import { figureGrid, overlay } from '../../io/figures.js';
import { writeNifti } from '../../io/nifti.js';
import { writePng } from '../../io/png.js';
import { dice, jaccard } from '../../metrics/overlap.js';
import { asd, hd95 } from '../../metrics/surface.js';
import { UNet2DFeatures, concatFeatureMaps } from '../../models/unet2d-features.js';
import { VNet } from '../../models/vnet.js';
import { Module } from '../../nn/module.js';
import { EMA } from '../../optim/ema.js';
import { SGD } from '../../optim/index.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { trainLoop } from '../../train/loop.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../../train/recipe.js';
import { runPath } from '../../train/run-folder.js';
import { MemoryBank } from './bank.js';
import { anatomicalContrast, memoryBankContrast, pixelRows } from './contrast.js';
import { assignCentres, atsTemperature, simplexCentres } from './geometry.js';
import { GlobalProjector, LocalPredictor, LocalProjector, Predictor, RepresentationHead } from './heads.js';
import { adaptiveAnatomicalContrast, confidenceWeightedCE, equivarianceKL, nearestNeighbourLoss, pseudoLabels, relationKL, supervisedSegLoss } from './losses.js';
import { randomAffineWarp, randomTpsWarp, strongView } from './augment.js';

const METHODS = ['supervised', 'mean-teacher', 'action', 'actionpp', 'mona'] as const;
type Method = (typeof METHODS)[number];

// Sized for a CPU (software WebGPU) run of the whole results table; the papers' sizes are in docs/methods/action.md.
const defaults: Config = {
  method: 'supervised',
  labeled: 3,
  /** phantom (2-D cardiac), phantom3d (3-D atrium), acdc or la (the releases' folders under --root). */
  data: 'phantom',
  root: '',
  /** Image size (2-D) or cube side (3-D). */
  size: 32,
  /** Cine frames per phantom subject (2-D images per subject; 2 = ED and ES, as ACDC annotates). */
  frames: 2,
  /** UNet widths (the papers: 16, 32, 64, 128, 256). */
  features: [4, 8, 16, 32, 64],
  /** VNet base filters (the papers: 16); 2 did not learn the 3-D phantom in 50 steps, 4 reaches Dice 0.92 in 200 labelled-only steps. */
  vnetFilters: 4,
  /** 200 fine-tuning steps: at 50 (the first table) even the fully supervised UNet stayed near Dice 0.4; at 300 it reaches 0.88. */
  steps: 200,
  pretrainSteps: 50,
  /** Labelled and unlabelled images per step (each; the papers' fine-tuning: 4 + 4). */
  batchSize: 2,
  /** The papers: 0.01 over 30k iterations; 0.1 learns within this table's budget (0.01 at 50 steps left RV and Myo at Dice 0). */
  lr: 0.1,
  emaDecay: 0.99,
  /** Embedding sizes (the papers: 512 global, 512/496 dense). */
  globalDim: 32,
  repDim: 16,
  bankSize: 36,
  /** Queries per class and negatives per query of the pixel contrasts (the papers: 256 and 512). */
  queries: 64,
  negatives: 128,
  /** MONA's equivariance warp: 'tps' (RandTPS: similarity + 5 x 5 control points jittered by 0.01, paper and code) or 'affine' (the similarity alone). */
  equivarianceWarp: 'tps',
  /** The parts of the unlabelled strong view (ablations): any of cutmix, jitter, blur, morph, comma-separated; 'none' feeds the plain images. */
  strongView: 'cutmix,jitter,blur,morph',
  /** The projectors' ReLU (the paper) or the code's linear stacks. */
  nonlinearHeads: true,
  seed: 0,
  checkpointEvery: 0,
};

/** The local projector's pooled side per patch (4² in 2-D as the code; 2³ in 3-D keeps 27 patches' vectors small). */
const LOCAL_POOL = { d2: 4, d3: 2 };
/** Values per projected logit patch: classes · pool^dims. */
const localDim = (classes: number, is3d: boolean) => (is3d ? classes * LOCAL_POOL.d3 ** 3 : classes * LOCAL_POOL.d2 ** 2);

/** The network and the heads one model (student or teacher) carries. */
class SegModel extends Module {
  readonly net: UNet2DFeatures | VNet;
  readonly globalProj: GlobalProjector;
  readonly localProj: LocalProjector;
  readonly rep: RepresentationHead;
  constructor(c: Config, seed: number) {
    super();
    const is3d = ['phantom3d', 'la'].includes(setting<string>(c, defaults, 'data'));
    const classes = is3d ? 2 : 4;
    const nonlinear = setting<boolean>(c, defaults, 'nonlinearHeads');
    if (is3d) {
      const f = setting<number>(c, defaults, 'vnetFilters');
      this.net = new VNet({ filters: f, numClasses: 2, seed });
      this.globalProj = new GlobalProjector(8 * f, 8 * f, setting(c, defaults, 'globalDim'), { nonlinear, seed: seed + 1000 });
      this.rep = new RepresentationHead(16 * f, setting(c, defaults, 'repDim'), 3, { nonlinear, seed: seed + 2000 });
      this.localProj = new LocalProjector(classes, LOCAL_POOL.d3, 3, { nonlinear, seed: seed + 3000 });
    } else {
      const ft = setting<number[]>(c, defaults, 'features');
      this.net = new UNet2DFeatures({ numClasses: classes, features: ft, seed });
      this.globalProj = new GlobalProjector(ft[4], ft[4], setting(c, defaults, 'globalDim'), { nonlinear, seed: seed + 1000 });
      this.rep = new RepresentationHead(ft.reduce((a, b) => a + b, 0), setting(c, defaults, 'repDim'), 2, { nonlinear, seed: seed + 2000 });
      this.localProj = new LocalProjector(classes, LOCAL_POOL.d2, 2, { nonlinear, seed: seed + 3000 });
    }
  }
}

class Predictors extends Module {
  readonly global: Predictor;
  readonly local: LocalPredictor;
  constructor(c: Config, localDim: number, seed: number) {
    super();
    const nonlinear = setting<boolean>(c, defaults, 'nonlinearHeads');
    this.global = new Predictor(setting(c, defaults, 'globalDim'), { nonlinear, seed });
    this.local = new LocalPredictor(localDim, { nonlinear, seed: seed + 10 });
  }
}

/** Everything a checkpoint holds: student, teacher and the student-only predictors. */
class SemiSegState extends Module {
  constructor(
    readonly student: SegModel,
    readonly teacher: SegModel,
    readonly predictors: Predictors,
  ) {
    super();
  }
}

interface Data {
  labeled: SliceSet;
  unlabeled: SliceSet;
  test: SliceSet;
  classes: number;
  is3d: boolean;
}

async function loadData(c: Config): Promise<Data> {
  const data = setting<string>(c, defaults, 'data');
  const labeled = setting<number>(c, defaults, 'labeled');
  const size = setting<number>(c, defaults, 'size');
  const root = setting<string>(c, defaults, 'root');
  if ((data === 'acdc' || data === 'la') && !root) fail('seg', `--data ${data} needs --root DIR (the release's folder)`);
  if (data === 'phantom') {
    // the split is fixed across training seeds (as the papers' lists are): the seed moves initialisation and sampling
    const s = cardiacPhantomSplit({ labeled, size, frames: setting(c, defaults, 'frames') });
    s.val.image.dispose();
    s.val.label.dispose();
    return { labeled: s.labeled, unlabeled: s.unlabeled, test: s.test, classes: 4, is3d: false };
  }
  if (data === 'phantom3d') {
    // 50 volumes: 35 training (labeled of them labelled), and the 15 others held out for evaluation
    const parts = splitSubjects(50, labeled);
    const shape = [size, size, size];
    return {
      labeled: leftAtriumPhantoms([...parts.labeled], { shape }),
      unlabeled: leftAtriumPhantoms([...parts.unlabeled], { shape }),
      test: leftAtriumPhantoms([...parts.val, ...parts.test], { shape }),
      classes: 2,
      is3d: true,
    };
  }
  if (data === 'acdc') return { ...(await acdcSemiSegSplit(root, { labeled, size })), classes: 4, is3d: false };
  if (data === 'la') return { ...(await laSemiSegSplit(root, { labeled, size })), classes: 2, is3d: true };
  return fail('seg', `data must be 'phantom', 'phantom3d', 'acdc' or 'la', got '${data}'`);
}

const STRONG_VIEW_PARTS = ['cutmix', 'jitter', 'blur', 'morph'];

/** The parts named by the strongView setting ('none': no part, the plain unlabelled images). */
function strongViewParts(value: string): Set<string> {
  const parts = value === 'none' ? [] : value.split(',').map((p) => p.trim());
  const bad = parts.filter((p) => !STRONG_VIEW_PARTS.includes(p));
  if (bad.length || (value !== 'none' && parts.length === 0))
    fail('seg', `strongView must be 'none' or a comma-separated list of ${STRONG_VIEW_PARTS.join(', ')}, got '${value}'`);
  return new Set(parts);
}

/** Poly decay within a stage: lr·(1 − t/T)^0.9. */
const poly = (lr: number, t: number, total: number) => lr * Math.pow(1 - Math.min(t, total - 1) / total, 0.9);

/**
 * Patches of side S/2 every S/4 along each spatial axis of a [N, C, ...S] logit map (MONA's 3 x 3 grid in 2-D, 3 x 3 x 3
 * in 3-D): [N·P, C, ...S/2] and P.
 */
function logitPatches(logits: Tensor): { patches: Tensor; count: number } {
  const [n, c, ...spatial] = logits.shape;
  let parts = [logits];
  spatial.forEach((side, axis) => {
    const next: Tensor[] = [];
    for (const p of parts) for (let o = 0; o + side / 2 <= side; o += side / 4) next.push(slice(p, axis + 2, o, o + side / 2));
    parts = next;
  });
  return { patches: reshape(stack(parts, 1), [n * parts.length, c, ...spatial.map((s) => s / 2)]), count: parts.length };
}

function pickRows(set: SliceSet, count: number, rng: Rng): { image: Tensor; label: Tensor } {
  const n = set.image.shape[0];
  const idx = tensor(Array.from({ length: count }, () => rng.int(0, n)), [count], { dtype: 'i32' });
  const out = { image: indexSelect(set.image, 0, idx), label: indexSelect(set.label, 0, idx) };
  idx.dispose();
  return out;
}

/** Per-image class Dice, Jaccard, HD95 and ASD (voxels), averaged over images, and the mean over classes. */
async function evaluateModel(model: SegModel, data: Data, outDir: string | null): Promise<Record<string, unknown>> {
  const net = model.net;
  net.eval();
  const n = data.test.image.shape[0];
  const preds: Tensor[] = [];
  for (let i = 0; i < n; i += 8) {
    const x = slice(data.test.image, 0, i, Math.min(n, i + 8));
    preds.push(noGrad(() => tidy(() => argmax(net.call(x), { dim: 1 }))));
    x.dispose();
  }
  const pred = cat(preds, 0);
  preds.forEach((p) => p.dispose());
  net.train();
  const labels = Array.from({ length: data.classes - 1 }, (_, i) => i + 1);
  const names = data.is3d ? { 1: 'LA' } : { 1: 'RV', 2: 'Myo', 3: 'LV' };
  const acc: Record<string, number[][]> = { dice: [], jaccard: [], hd95: [], asd: [] };
  for (let i = 0; i < n; i++) {
    const p = tidy(() => slice(pred, 0, i, i + 1).squeeze(0));
    const t = tidy(() => slice(data.test.label, 0, i, i + 1).squeeze(0));
    const o = { labels };
    const s = { labels, empty: 'worst' as const };
    acc.dice.push(Object.values((await dice(p, t, o)).perLabel));
    acc.jaccard.push(Object.values((await jaccard(p, t, o)).perLabel));
    acc.hd95.push(Object.values((await hd95(p, t, s)).perLabel));
    acc.asd.push(Object.values((await asd(p, t, s)).perLabel));
    p.dispose();
    t.dispose();
  }
  const per = (rows: number[][]) => labels.map((_, k) => rows.reduce((a, r) => a + r[k], 0) / rows.length);
  const result: Record<string, unknown> = { images: n };
  for (const [metric, rows] of Object.entries(acc)) {
    const v = per(rows);
    result[metric] = Object.fromEntries(labels.map((l, k) => [(names as Record<number, string>)[l], v[k]]));
    result[`mean${metric[0].toUpperCase()}${metric.slice(1)}`] = v.reduce((a, b) => a + b, 0) / v.length;
  }
  if (outDir) {
    const nii = tidy(() => (data.is3d ? permute(slice(pred, 0, 0, 1).squeeze(0), [2, 1, 0]) : permute(pred, [2, 1, 0])));
    await writeNifti(runPath(outDir, 'prediction.nii.gz'), nii);
    nii.dispose();
    const rows: { title: string; rgb: Tensor }[][] = [];
    for (let i = 0; i < Math.min(4, n); i++) {
      const img2d = (t: Tensor) => (data.is3d ? slice(t, 0, data.test.image.shape[2] / 2, data.test.image.shape[2] / 2 + 1).squeeze(0) : t);
      const im = tidy(() => img2d(slice(data.test.image, 0, i, i + 1).reshape(data.test.image.shape.slice(2))));
      const gt = tidy(() => img2d(slice(data.test.label, 0, i, i + 1).squeeze(0)));
      const pr = tidy(() => img2d(slice(pred, 0, i, i + 1).squeeze(0)));
      rows.push([
        { title: 'GT', rgb: overlay(im, gt) },
        { title: 'pred', rgb: overlay(im, pr) },
      ]);
      for (const t of new Set([im, gt, pr])) t.dispose();
    }
    const fig = figureGrid(rows);
    await writePng(runPath(outDir, 'overlays.png'), fig);
    fig.dispose();
    rows.flat().forEach((p) => p.rgb.dispose());
  }
  pred.dispose();
  return result;
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const method = setting<string>(c, defaults, 'method') as Method;
  if (!METHODS.includes(method)) fail('seg', `method must be one of ${METHODS.join(', ')}, got '${method}'`);
  // settings are checked before the data and models are built
  const equivarianceWarp = setting<string>(c, defaults, 'equivarianceWarp');
  if (!['tps', 'affine'].includes(equivarianceWarp)) fail('seg', `equivarianceWarp must be 'tps' or 'affine', got '${equivarianceWarp}'`);
  const viewParts = strongViewParts(setting<string>(c, defaults, 'strongView'));
  const seed = setting<number>(c, defaults, 'seed');
  const steps = setting<number>(c, defaults, 'steps');
  const pretrain = ['action', 'actionpp', 'mona'].includes(method) ? setting<number>(c, defaults, 'pretrainSteps') : 0;
  const data = await loadData(c);
  // MONA's affine equivariance warp and pooled nearest-neighbour embeddings are written for 2-D images
  if (data.is3d && method === 'mona') fail('seg', `method 'mona' is built for the 2-D UNet; 3-D data (phantom3d, la) takes supervised, mean-teacher, action or actionpp, got 'mona'`);
  const bl = setting<number>(c, defaults, 'batchSize');
  const bu = bl;
  const lr = setting<number>(c, defaults, 'lr');
  const bankSize = setting<number>(c, defaults, 'bankSize');
  const student = new SegModel(c, seed * 7919);
  const teacher = new SegModel(c, seed * 7919 + 1);
  const size = setting<number>(c, defaults, 'size');
  const patchCount = data.is3d ? 27 : 9;
  const patchDim = localDim(data.classes, data.is3d);
  const predictors = new Predictors(c, patchDim, seed * 7919 + 5000);
  const state = new SemiSegState(student, teacher, predictors);
  const params = [...student.parameters(), ...predictors.parameters()];
  const optimizer = new SGD(params, { lr, momentum: 0.9, weightDecay: 1e-4, nesterov: pretrain === 0 });
  let ema = new EMA(student, { teacher, decay: setting(c, defaults, 'emaDecay') });
  const globalBank = new MemoryBank(bankSize, setting(c, defaults, 'globalDim'), { init: 'random-unit', seed: deriveSeed(seed, 1) });
  const localBank = new MemoryBank(bankSize, patchCount * patchDim, { init: 'random-unit', seed: deriveSeed(seed, 2) });
  const repDim = setting<number>(c, defaults, 'repDim');
  // ACTION++: the TSC queue (the code's 12,288 = 256·3·4·4 scaled to this batch), centres and EMA class means
  const queue = new MemoryBank(256 * data.classes * 4, repDim, { labels: true });
  const centres = tensor(simplexCentres(data.classes, repDim).flatMap((v) => Array.from(v)), [data.classes, repDim]);
  const classMeans: Float64Array[] = simplexCentres(data.classes, repDim).map((_, k) => {
    const r = new Rng(deriveSeed(seed, 3, k));
    const v = Float64Array.from({ length: repDim }, () => r.normal());
    const nrm = Math.hypot(...v);
    return v.map((x) => x / nrm);
  });
  // MONA: per-class banks of teacher pixel features and the nearest-neighbour pool of pooled teacher embeddings
  const classBanks = Array.from({ length: data.classes }, () => new MemoryBank(2048, repDim));
  const nnPool = new MemoryBank(bankSize, repDim, { init: 'random-unit', seed: deriveSeed(seed, 4) });
  const queries = setting<number>(c, defaults, 'queries');
  const negatives = setting<number>(c, defaults, 'negatives');
  const supWeight = method === 'mona' ? 1 : 0.5;

  const augmentLabeled = (x: Tensor, y: Tensor, s: number): [Tensor, Tensor] => {
    const [xf, yf] = randomFlip([x, y], { seed: s });
    if (data.is3d) return [xf, yf];
    const out = randomRot90([xf, yf], { seed: s + 1 }) as [Tensor, Tensor];
    xf.dispose();
    yf.dispose();
    return out;
  };
  /** The photometric strong view of pre-training (jitter, then blur with p = 0.5): the student's; the teacher sees the plain image. */
  const photometric = (x: Tensor, s: number) =>
    tidy(() => {
      const r = new Rng(s);
      const j = intensityJitter(x, { brightness: 0.1, contrast: 0.25, gamma: [0.75, 1.25], seed: s });
      return r.next() < 0.5 ? gaussianBlur(j, r.uniform(0.15, 1.15)) : j;
    });

  const pretrainStep = async (k: number, rng: Rng, stepSeed: number) => {
    const globalOnly = method !== 'mona' && k < pretrain / 2;
    const tauS = method === 'actionpp' ? atsTemperature(k, pretrain, { tauMin: 0.1, tauMax: 1 }) : 0.1;
    const tauT = method === 'actionpp' ? atsTemperature(k, pretrain, { tauMin: 0.01, tauMax: 1 }) : 0.01;
    const l = pickRows(data.labeled, bl, rng);
    const u = pickRows(data.unlabeled, bu, rng);
    const [xl, yl] = augmentLabeled(l.image, l.label, stepSeed);
    const x = cat([xl, u.image], 0);
    const values: Record<string, number> = {};
    const loss = tidy(() => {
      const xs = photometric(x, stepSeed + 2);
      const fs = student.net.forwardFeatures(xs);
      const ft = noGrad(() => teacher.net.forwardFeatures(x));
      const zs = predictors.global.call(student.globalProj.call(fs.latent));
      const zt = noGrad(() => teacher.globalProj.call(ft.latent));
      let total = relationKL(zs, zt, globalBank.keys, { tauStudent: tauS, tauTeacher: tauT });
      const parts: Record<string, Tensor> = { global: total };
      let tLocal: Tensor | null = null;
      if (!globalOnly) {
        const ps = logitPatches(fs.logits);
        const sLocal = predictors.local.call(student.localProj.call(ps.patches));
        const tl = noGrad(() => teacher.localProj.call(logitPatches(ft.logits).patches));
        tLocal = tl;
        const n = x.shape[0];
        const byPatch = (t: Tensor) => permute(reshape(t, [n, ps.count, patchDim]), [1, 0, 2]);
        const bankByPatch = permute(reshape(localBank.keys, [bankSize, ps.count, patchDim]), [1, 0, 2]);
        parts.local = relationKL(byPatch(sLocal), byPatch(tl), bankByPatch, { tauStudent: tauS, tauTeacher: tauT });
        parts.sup = supervisedSegLoss(slice(fs.logits, 0, 0, bl), yl, { weight: supWeight });
        total = add(add(total, parts.local), parts.sup);
      }
      total.backward();
      noGrad(() => {
        globalBank.enqueue(normalize(zt, { dim: 1 }));
        if (tLocal) localBank.enqueue(reshape(normalize(reshape(tLocal, [-1, patchCount, patchDim]), { dim: 2 }), [-1, patchCount * patchDim]));
      });
      return { total, parts };
    });
    for (const [name, t] of Object.entries(loss.parts)) values[name] = await t.item();
    for (const t of new Set([loss.total, ...Object.values(loss.parts), x, xl, yl, l.image, l.label, u.image, u.label])) t.dispose();
    return values;
  };

  const finetuneStep = async (k: number, rng: Rng, stepSeed: number) => {
    const l = pickRows(data.labeled, bl, rng);
    const [xl, yl] = augmentLabeled(l.image, l.label, stepSeed);
    const values: Record<string, number> = {};
    const terms: Record<string, Tensor> = {};
    if (method === 'supervised') {
      terms.sup = tidy(() => supervisedSegLoss(student.net.call(xl), yl, { weight: 0.5 }));
      terms.sup.backward();
    } else {
      const u = pickRows(data.unlabeled, bu, rng);
      // every block below is tidied: a forward's intermediates would otherwise outlive the step (they leaked ~90 tensors a step)
      const pl = noGrad(() => tidy(() => pseudoLabels(teacher.net.call(u.image))));
      const sv = strongView(u.image, pl.label, pl.confidence, {
        seed: stepSeed + 3,
        cutmix: viewParts.has('cutmix'),
        jitter: viewParts.has('jitter'),
        blur: viewParts.has('blur'),
        morphProbability: viewParts.has('morph') ? 0.5 : 0,
      });
      const x = cat([xl, sv.image], 0);
      const tau = method === 'actionpp' ? atsTemperature(k, steps, { tauMin: 0.1, tauMax: 1 }) : 0.5;
      // the dense heads need the feature maps; mean teacher only the logits
      const f = tidy(() => (method === 'mean-teacher' ? { logits: student.net.call(x), featureMaps: [] as Tensor[] } : student.net.forwardFeatures(x)));
      terms.sup = tidy(() => supervisedSegLoss(slice(f.logits, 0, 0, bl), yl, { weight: supWeight }));
      terms.unsup = tidy(() => confidenceWeightedCE(slice(f.logits, 0, bl, bl + bu), sv.label, sv.confidence, { threshold: 0.97 }));
      const pending: Tensor[] = [x, u.image, u.label, pl.label, pl.confidence, pl.probs, sv.image, sv.label, sv.confidence];
      if (method !== 'mean-teacher') {
        const rep = tidy(() => student.rep.call(concatFeatureMaps(f.featureMaps)));
        pending.push(rep);
        const probs = noGrad(() => softmax(f.logits, { dim: 1 }));
        const weakLabels = noGrad(() => tidy(() => where(ge(sv.confidence, 0.7), sv.label, -1)));
        const contrastLabels = cat([yl, weakLabels], 0);
        pending.push(probs, weakLabels, contrastLabels);
        if (method === 'action' || method === 'actionpp') {
          const anco = await anatomicalContrast(rep, contrastLabels, probs, { queries, negatives, temperature: tau, seed: stepSeed + 5 });
          terms.anco = mul(anco.loss, 0.01);
          pending.push(anco.loss);
        }
        if (method === 'actionpp') {
          // SAACL on labelled pixels: 256 random pixels per class present (the code's random=True)
          const yHost = Int32Array.from(await yl.data());
          const byClass: number[][] = Array.from({ length: data.classes }, () => []);
          yHost.forEach((v, i) => byClass[v].push(i));
          const pick: number[] = [];
          const pickLab: number[] = [];
          byClass.forEach((m, cl) => {
            if (!m.length) return;
            for (let q = 0; q < 256; q++) {
              pick.push(m[rng.int(0, m.length)]);
              pickLab.push(cl);
            }
          });
          const idx = tensor(pick, [pick.length], { dtype: 'i32' });
          const labs = tensor(pickLab, [pick.length], { dtype: 'i32' });
          const sRows = tidy(() => indexSelect(pixelRows(slice(rep, 0, 0, bl)), 0, idx));
          const tRows = noGrad(() => tidy(() => normalize(indexSelect(pixelRows(teacher.rep.call(concatFeatureMaps(teacher.net.forwardFeatures(xl).featureMaps))), 0, idx), { dim: 1 })));
          // Hungarian on the EMA class means (η = 0.1), from this batch's normalised student features
          const sums = noGrad(() => tidy(() => normalize(sRows, { dim: 1 }).detach()));
          const sh = await sums.data();
          const acc = classMeans.map(() => new Float64Array(repDim));
          pickLab.forEach((cl, r) => {
            for (let d = 0; d < repDim; d++) acc[cl][d] += sh[r * repDim + d];
          });
          acc.forEach((a, cl) => {
            const nrm = Math.hypot(...a);
            if (!nrm) return;
            const m = classMeans[cl].map((v, d) => 0.9 * v + (0.1 * a[d]) / nrm);
            const mn = Math.hypot(...m);
            classMeans[cl] = m.map((v) => v / mn);
          });
          const psi = simplexCentres(data.classes, repDim);
          const assignment = assignCentres(classMeans.map((m) => psi.map((p) => p.reduce((s, v, d) => s + v * m[d], 0))));
          terms.tsc = tidy(() =>
            mul(
              adaptiveAnatomicalContrast(
                { student: sRows, teacher: tRows, labels: labs, queue: queue.keys, queueLabels: queue.labels!, centres, assignment },
                { temperature: atsTemperature(k, steps, { tauMin: 0.07, tauMax: 1 }), lambda: 0.2 },
              ),
              0.01,
            ),
          );
          queue.enqueue(tRows, labs);
          pending.push(idx, labs, sRows, tRows, sums);
        }
        if (method === 'mona') {
          const n = x.shape[0];
          const tf = noGrad(() => tidy(() => teacher.net.forwardFeatures(x)));
          const tRep = noGrad(() => tidy(() => teacher.rep.call(concatFeatureMaps(tf.featureMaps))));
          const tProbs = noGrad(() => softmax(tf.logits, { dim: 1 }));
          pending.push(tf.logits, ...tf.featureMaps, tRep, tProbs);
          // entropy of the student's prediction; α_t = 20·(1 − t/T) % lowest are reliable, highest unreliable
          const ent = noGrad(() => tidy(() => neg(sum(mul(probs, log(add(probs, 1e-10))), { dim: 1 }))));
          const eh = await ent.data();
          ent.dispose();
          const pixelsPer = eh.length / n;
          const unl = Array.from(eh.slice(bl * pixelsPer)).sort((a, b) => a - b);
          const alpha = 20 * (1 - k / steps);
          const q = (p: number) => unl[Math.min(unl.length - 1, Math.max(0, Math.round((p / 100) * (unl.length - 1))))];
          const [lowT, highT] = [q(alpha), q(100 - alpha)];
          const reliable = Uint8Array.from(eh, (v, i) => (i < bl * pixelsPer || v <= lowT ? 1 : 0));
          const unreliable = Uint8Array.from(eh, (v, i) => (i < bl * pixelsPer || v >= highT ? 1 : 0));
          const contrast = await memoryBankContrast(rep, tRep, contrastLabels, tProbs, reliable, classBanks, { queries, negatives, seed: stepSeed + 7 });
          terms.contrast = mul(contrast, 0.01);
          pending.push(contrast);
          // negatives for class c: unreliable pixels labelled ≠ c for which the teacher ranks c second or third
          const labHost = Int32Array.from(await contrastLabels.data());
          const tp = await tProbs.data();
          const tRows = noGrad(() => tidy(() => normalize(pixelRows(tRep), { dim: 1 })));
          const C = data.classes;
          for (let cl = 0; cl < C; cl++) {
            const cand: number[] = [];
            for (let i = 0; i < labHost.length; i++) {
              if (!unreliable[i] || labHost[i] === cl) continue;
              const b = Math.floor(i / pixelsPer);
              const p = i % pixelsPer;
              const pc = tp[(b * C + cl) * pixelsPer + p];
              let rank = 0;
              for (let o = 0; o < C; o++) if (tp[(b * C + o) * pixelsPer + p] > pc) rank++;
              if (rank >= 1 && rank <= 2) cand.push(i);
            }
            if (!cand.length) continue;
            const take = Array.from({ length: Math.min(256, cand.length) }, () => cand[rng.int(0, cand.length)]);
            const rowsC = tidy(() => indexSelect(tRows, 0, tensor(take, [take.length], { dtype: 'i32' })));
            classBanks[cl].enqueue(rowsC);
            rowsC.dispose();
          }
          tRows.dispose();
          // nearest-neighbour loss on pooled embeddings of the unlabelled images (the full maps of the code are ~GBs)
          const pooled = (t: Tensor) => tidy(() => mean(slice(t, 0, bl, n), { dim: [2, 3] }));
          const sEmb = pooled(rep);
          const tEmb = noGrad(() => pooled(tRep));
          terms.nn = tidy(() => nearestNeighbourLoss(sEmb, tEmb, nnPool.keys, 5));
          noGrad(() => tidy(() => nnPool.enqueue(normalize(tEmb, { dim: 1 }))));
          pending.push(sEmb, tEmb);
          // equivariance under a random affine warp T: student(T(x)) against T(student(x)), foreground confident pixels
          const warp = equivarianceWarp === 'tps' ? randomTpsWarp(n, size, size, stepSeed + 11) : randomAffineWarp(n, size, size, stepSeed + 11);
          const conf = noGrad(() => tidy(() => cat([cast(gt(yl, 0), 'f32'), cast(logicalAnd(gt(sv.label, 0), ge(sv.confidence, 0.7)), 'f32')], 0)));
          const mask = noGrad(() => tidy(() => warp(unsqueeze(conf, 1)).squeeze(1)));
          const target = noGrad(() => tidy(() => warp(f.logits.detach())));
          const xw = noGrad(() => tidy(() => warp(x)));
          terms.eqv = tidy(() => equivarianceKL(student.net.call(xw), target, mask));
          pending.push(conf, mask, target, xw);
        }
      }
      const total = tidy(() => Object.values(terms).reduce((a, b) => add(a, b)));
      total.backward();
      pending.push(total, f.logits, ...f.featureMaps);
      for (const t of new Set(pending)) t.dispose();
    }
    for (const [name, t] of Object.entries(terms)) {
      values[name] = await t.item();
      t.dispose();
    }
    for (const t of new Set([xl, yl, l.image, l.label])) t.dispose();
    return values;
  };

  let currentStage = -1;
  const result = await trainLoop(ctx, {
    model: state,
    optimizer,
    steps: pretrain + steps,
    checkpointEvery: setting<number>(c, defaults, 'checkpointEvery') || pretrain + steps,
    evaluate: async () => evaluateModel(student, data, ctx.outDir),
    step: async (step) => {
      const stage = step < pretrain ? 0 : 1;
      if (stage === 1 && currentStage === 0) {
        // ACTION stage iii: the teacher restarts from the pre-trained student; fine-tuning uses Nesterov
        ema = new EMA(student, { teacher, decay: setting(c, defaults, 'emaDecay') });
        optimizer.paramGroups[0].nesterov = true;
      }
      currentStage = stage;
      const k = stage === 0 ? step : step - pretrain;
      optimizer.paramGroups[0].lr = poly(lr, k, stage === 0 ? pretrain : steps);
      const rng = new Rng(deriveSeed(seed, 17, step));
      const stepSeed = deriveSeed(seed, 19, step);
      const values = stage === 0 ? await pretrainStep(k, rng, stepSeed) : await finetuneStep(k, rng, stepSeed);
      optimizer.step();
      optimizer.zeroGrad();
      ema.update();
      // the logged loss is the sum of the weighted terms (each also logged by name)
      const loss = Object.values(values).reduce((a, b) => a + b, 0);
      return { loss, ...values, lr: optimizer.paramGroups[0].lr };
    },
  });
  state.dispose();
  optimizer.dispose();
  for (const b of [globalBank, localBank, queue, nnPool, ...classBanks]) b.dispose();
  centres.dispose();
  for (const s of [data.labeled, data.unlabeled, data.test]) {
    s.image.dispose();
    s.label.dispose();
  }
  return result;
}

export const seg = defineRecipe({
  name: 'seg',
  seedsGlobalGenerator: true,
  description: 'semi-supervised segmentation: supervised, mean teacher, ACTION, ACTION++, MONA on the 2-D cardiac or 3-D atrium phantom',
  defaults,
  train,
  async evaluate(ctx) {
    const data = await loadData(ctx.config);
    const model = new SegModel(ctx.config, 0);
    const teacher = new SegModel(ctx.config, 1);
    const state = new SemiSegState(model, teacher, new Predictors(ctx.config, localDim(data.classes, data.is3d), 2));
    await loadCheckpoint(ctx.checkpoint, { model: state });
    const out = await evaluateModel(model, data, ctx.outDir);
    state.dispose();
    for (const s of [data.labeled, data.unlabeled, data.test]) {
      s.image.dispose();
      s.label.dispose();
    }
    return out;
  },
});
