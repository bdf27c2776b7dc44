/**
 * itl: ITL's sequential multi-site training on the five phantom sites (vg.data.PHANTOM_SITES, in order A..E) with
 * ResILNet (a ResNet-18 encoder shared by a teacher and a student decoder). Every method runs K = 5 stages, the
 * first of `firstSteps` steps (the source site, trained from scratch), the others of `steps`, with the same optimiser
 * (Adam) and a poly learning-rate decay restarted at each stage:
 * - `itl`: stage k trains on site k only, with 0.5 (CE + Dice) + siteWeight(λ, k) · siteDistillationLoss(student,
 *   teacher); at the start of stage k ≥ 2 the teacher decoder becomes a frozen copy (eval mode) of the student's;
 * - `naive`: the same stages and schedule, the supervised loss only (sequential fine-tuning);
 * - `joint`: every stage samples its batches from all five sites together (the same total steps).
 * After each stage the student is scored on every site's held-out subjects (ED and ES frames): mean Dice over RV,
 * myocardium and LV → R[stage][site]; at the end backward transfer, the final average Dice, and per site Dice,
 * Jaccard, HD95 and ASD (mm), overlays.png and one prediction NIfTI per site in the run folder.
 */
import { noGrad } from '../engine/autograd.js';
import { fail } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { tensor } from '../kernels/creation.js';
import { indexSelect } from '../kernels/indexing.js';
import { add, mul } from '../kernels/math.js';
import { crossEntropy } from '../kernels/nn.js';
import { argmax } from '../kernels/reduce.js';
import { cat, permute, slice } from '../kernels/shape.js';
import { Rng, deriveSeed } from '../data/random.js';
import { PHANTOM_SITES, siteFrames } from '../data/sites.js';
import { figureGrid, overlay } from '../io/figures.js';
import { writeNifti } from '../io/nifti.js';
import { writePng } from '../io/png.js';
import { dice } from '../metrics/overlap.js';
import { ResILNet } from '../models/itl.js';
import { Adam } from '../optim/index.js';
import { evaluateCheckpoint } from '../train/checkpoint.js';
import { trainLoop } from '../train/loop.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../train/recipe.js';
import { runPath } from '../train/run-folder.js';
import { backwardTransfer, siteDistillationLoss, siteWeight } from './itl.js';
import { diceLoss } from './losses.js';
import { CARDIAC_STRUCTURES, phantomAugment } from './unet-phantom.js';
import { scorePrediction } from './scores.js';

const METHODS = ['itl', 'naive', 'joint'] as const;
type Method = (typeof METHODS)[number];

// Sized for a software adapter: ResNet-18's layout at a quarter of torchvision's width on 32² images (docs/methods/itl.md).
const defaults: Config = {
  method: 'itl',
  /** Steps of the first stage (site A, from scratch) and of each later stage: a run is firstSteps + 4 × steps. */
  firstSteps: 220,
  steps: 20,
  batchSize: 8,
  size: 32,
  width: 16,
  featureBase: 16,
  lr: 0.003,
  /** λ of the site-level loss (itl only). */
  lambda: 1,
  temperature: 2,
  /** Subjects per site (ED and ES frames each). */
  trainSubjects: 8,
  testSubjects: 4,
  augment: false,
  seed: 0,
  checkpointEvery: 100,
};

const SITES = PHANTOM_SITES.length;

function method(config: Config): Method {
  const m = setting<string>(config, defaults, 'method') as Method;
  if (!METHODS.includes(m)) fail('itl', `method must be one of ${METHODS.join(', ')}, got '${m}'`);
  return m;
}

function buildModel(config: Config): ResILNet {
  return new ResILNet({
    depth: 18,
    inChannels: 1,
    numClasses: 4,
    width: setting(config, defaults, 'width'),
    featureBase: setting(config, defaults, 'featureBase'),
    seed: setting<number>(config, defaults, 'seed') * 7919,
  });
}

/** Subjects of site k: training and held-out test subjects come from seed ranges that never overlap. */
const trainSeed = (seed: number, site: number) => seed * 100_000 + site * 1000;
const testSeed = (seed: number, site: number) => 10_000_000 + seed * 100_000 + site * 1000;

type SiteSet = { image: Tensor; label: Tensor; spacing: [number, number] };

function testSets(config: Config): SiteSet[] {
  const size = setting<number>(config, defaults, 'size');
  const seed = setting<number>(config, defaults, 'seed');
  return PHANTOM_SITES.map((s, k) => siteFrames(s, testSeed(seed, k), setting(config, defaults, 'testSubjects'), size));
}

function predict(model: ResILNet, image: Tensor): Tensor {
  return noGrad(() => tidy(() => argmax(model.call(image), { dim: 1 })));
}

/** Mean Dice over RV, myocardium and LV of the student on every site's test frames (one row of R). */
async function diceRow(model: ResILNet, sets: SiteSet[]): Promise<number[]> {
  model.eval();
  const row: number[] = [];
  for (const s of sets) {
    const pred = predict(model, s.image);
    row.push((await dice(pred, s.label, { labels: [1, 2, 3] })).mean);
    pred.dispose();
  }
  model.train();
  return row;
}

/** Per site Dice, Jaccard, HD95 and ASD of the student; overlays.png and prediction-<site>.nii.gz when outDir is set. */
async function finalScores(model: ResILNet, sets: SiteSet[], outDir: string | null): Promise<Record<string, unknown>> {
  model.eval();
  const perSite: Record<string, unknown> = {};
  const rows: { title: string; rgb: Tensor }[][] = [];
  for (let k = 0; k < SITES; k++) {
    const s = sets[k];
    const name = PHANTOM_SITES[k].name;
    const pred = predict(model, s.image);
    perSite[name] = await scorePrediction(pred, s.label, s.spacing, CARDIAC_STRUCTURES);
    if (outDir) {
      const nii = permute(pred, [2, 1, 0]);
      await writeNifti(runPath(outDir, `prediction-${name}.nii.gz`), nii, { spacing: [...s.spacing, 1] });
      nii.dispose();
      const [im, gt, pr] = tidy(() => [s.image.slice(0, 0, 1).squeeze(0).squeeze(0), s.label.slice(0, 0, 1).squeeze(0), pred.slice(0, 0, 1).squeeze(0)]);
      rows.push([
        { title: `site ${name} GT`, rgb: overlay(im, gt) },
        { title: `site ${name} pred`, rgb: overlay(im, pr) },
      ]);
      for (const t of [im, gt, pr]) t.dispose();
    }
    pred.dispose();
  }
  if (outDir) {
    const fig = figureGrid(rows);
    await writePng(runPath(outDir, 'overlays.png'), fig);
    fig.dispose();
    rows.flat().forEach((p) => p.rgb.dispose());
  }
  model.train();
  return perSite;
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const m = method(c);
  const seed = setting<number>(c, defaults, 'seed');
  const perStage = setting<number>(c, defaults, 'steps');
  const first = setting<number>(c, defaults, 'firstSteps');
  const size = setting<number>(c, defaults, 'size');
  const batchSize = setting<number>(c, defaults, 'batchSize');
  const baseLr = setting<number>(c, defaults, 'lr');
  const lambda = setting<number>(c, defaults, 'lambda');
  const temperature = setting<number>(c, defaults, 'temperature');
  const useAugment = setting<boolean>(c, defaults, 'augment');
  for (const [key, v] of [['firstSteps', first], ['steps', perStage]] as const)
    if (!(Number.isInteger(v) && v > 0)) fail('itl', `${key} must be a positive integer, got ${v}`);
  // stage k (0-based) spans steps [start(k), start(k) + length(k))
  const start = (k: number) => (k === 0 ? 0 : first + (k - 1) * perStage);
  const length = (k: number) => (k === 0 ? first : perStage);
  const stageOf = (step: number) => (step < first ? 0 : 1 + Math.floor((step - first) / perStage));
  const trainSets = PHANTOM_SITES.map((s, k) => siteFrames(s, trainSeed(seed, k), setting(c, defaults, 'trainSubjects'), size));
  const rowsPerSite = trainSets[0].image.shape[0];
  // joint samples rows of all sites: row r belongs to site ⌊r / rowsPerSite⌋
  const all = m === 'joint' ? { image: cat(trainSets.map((s) => s.image), 0), label: cat(trainSets.map((s) => s.label), 0) } : null;
  const tests = testSets(c);
  const model = buildModel(c);
  // the teacher decoder is never optimised: it is a frozen copy of the student's
  const optimizer = new Adam([...model.encoder.parameters(), ...model.student.parameters()], { lr: baseLr });
  const augment = phantomAugment(size);
  const matrix: number[][] = [];

  const result = await trainLoop(ctx, {
    model,
    optimizer,
    steps: start(SITES),
    checkpointEvery: setting(c, defaults, 'checkpointEvery'),
    state: { save: () => matrix, restore: (saved) => matrix.splice(0, matrix.length, ...(saved as number[][])) },
    evaluate: async () => {
      const row = await diceRow(model, tests);
      matrix.push(row);
      return {
        sites: PHANTOM_SITES.map((s) => s.name),
        diceMatrix: matrix,
        backwardTransfer: backwardTransfer(matrix),
        finalMeanDice: row.reduce((a, b) => a + b, 0) / SITES,
        perSite: await finalScores(model, tests, ctx.outDir),
      };
    },
    step: async (step) => {
      const stage = stageOf(step);
      if (step === start(stage) && stage > 0 && matrix.length < stage) {
        // the end of a stage: score every site (a row of R), then ITL's teacher becomes the student of that stage
        const row = await diceRow(model, tests);
        matrix.push(row);
        ctx.log?.(`after stage ${stage} (site ${PHANTOM_SITES[stage - 1].name}): Dice per site ${row.map((d) => d.toFixed(3)).join(' ')}`);
        if (m === 'itl') model.teacher.loadStateDict(model.student.stateDict());
      }
      // poly decay (power 0.9) restarted at each stage
      const lr = baseLr * (1 - (step - start(stage)) / length(stage)) ** 0.9;
      optimizer.paramGroups.forEach((g) => (g.lr = lr));
      const rng = new Rng(deriveSeed(seed, 1, step));
      const pool = all ?? trainSets[stage];
      const rows = Array.from({ length: batchSize }, () => rng.int(0, pool.image.shape[0]));
      const sitesSeen = all ? rows.reduce((mask, r) => mask | (1 << Math.floor(r / rowsPerSite)), 0) : 1 << stage;
      const idx = tensor(rows, [batchSize], { dtype: 'i32' });
      const bx = indexSelect(pool.image, 0, idx);
      const by = indexSelect(pool.label, 0, idx);
      idx.dispose();
      const [x, y] = useAugment ? augment([bx, by], { seed: seed * 1_000_003 + step }) : [bx, by];
      const weight = m === 'itl' ? siteWeight(lambda, stage + 1) : 0;
      const [loss, supervised, distill] = tidy(() => {
        const maps = model.encoder.encode(x);
        const logits = model.student.call(...maps);
        const sup = mul(add(crossEntropy(logits, y), diceLoss(logits, y)), 0.5);
        let total = sup;
        let kd: Tensor | null = null;
        // the distillation term is skipped where its weight is 0 (the first site; naive and joint)
        if (weight > 0) {
          model.teacher.eval();
          const teacher = noGrad(() => model.teacher.call(...maps));
          kd = siteDistillationLoss(logits, teacher, { temperature });
          total = add(sup, mul(kd, weight));
        }
        total.backward();
        return [total, sup, kd];
      });
      optimizer.step();
      optimizer.zeroGrad();
      const values: Record<string, number> = { loss: await loss.item(), supervised: await supervised.item(), lr, stage, sitesSeen };
      if (distill) values.distill = await distill.item();
      for (const t of new Set([loss, supervised, distill, x, y, bx, by])) t?.dispose();
      return values;
    },
  });
  for (const owned of [optimizer, model, ...trainSets.flatMap((s) => [s.image, s.label]), ...tests.flatMap((s) => [s.image, s.label]), all?.image, all?.label])
    owned?.dispose();
  return result;
}

export const itl = defineRecipe({
  name: 'itl',
  description: 'ITL (ResILNet, site-level distillation) vs naive sequential fine-tuning and joint training over the five phantom sites; per-site Dice matrix, backward transfer',
  defaults,
  train,
  evaluate: (ctx) =>
    evaluateCheckpoint(ctx.checkpoint, buildModel(ctx.config), async (model) => {
      const tests = testSets(ctx.config);
      const out = { sites: PHANTOM_SITES.map((s) => s.name), perSite: await finalScores(model, tests, null) };
      tests.forEach((s) => (s.image.dispose(), s.label.dispose()));
      return out;
    }),
});
