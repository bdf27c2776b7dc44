/**
 * reg: unsupervised deformable registration with the three papers' methods on a chosen backbone and data set.
 *   method mse | ncc   the similarity baselines (+ λ·Grad smoothness), VoxelMorph's bidirectional training;
 *          hetero      heteroscedastic uncertainty (paper 1): a variance network trained with β-NLL, the displacement
 *                      loss weighted by the stop-gradient relative SNR map, alternating phases after a warm start;
 *          adacs       adaptive correspondence scoring (paper 2): a scoring network, the displacement loss weighted
 *                      by the stop-gradient score, the scoring loss with the (S−1)² prior and the momentum-weighted
 *                      TV term, the same warm-start schedule;
 *          bim         biomechanics-informed prior (paper 3): MSE + λ·linear-elastic strain energy (ν = 0.4),
 *                      optionally + soft Dice of the warped label maps.
 * The papers' intent where their code differs (docs/methods/): stop-gradients as the papers write them
 * (no leak of the auxiliary losses into the displacement network), the SNR weight as the paper writes it
 * (snrVariant 'code' for the released formula), the per-pixel strain energy (bimReshapeBug for the released one).
 * Data: the embedded phantom's ED→ES pairs in a nuisance variant (vg.data.phantomPairs), or `data: 'ch2'`: the brain
 * T1 warped by known random diffeomorphisms, 3-D (vg.data.ch2Deformations), or `data: 'acdc'` with `root` (the
 * papers' preprocessing, vg.data.acdcRegistrationPairs), or `data: 'camus'` with `root` (vg.data.camusRegistrationPairs,
 * both views, a seeded 60/20/20 patient split). The schedule is shortened for software adapters: lr 1e-3 instead of 1e-4 and `steps` steps (the
 * papers train 150–300 epochs of 100 steps).
 * `steps` counts the displacement network's updates, for every method: the two-network methods run their
 * auxiliary-only warm-start epochs on top (warmStartEpochs · stepsPerEpoch more steps, as AdaCS's `epochs + 2W`
 * schedule), so each method's displacement network trains exactly as long as the baseline's.
 */
import { noGrad } from '../../engine/autograd.js';
import { fail } from '../../engine/errors.js';
import { Tensor, keep, tidy } from '../../engine/tensor.js';
import { tensor } from '../../kernels/creation.js';
import { indexSelect, oneHot } from '../../kernels/indexing.js';
import { add, mul } from '../../kernels/math.js';
import { cat, stack } from '../../kernels/shape.js';
import { spatialTransform } from '../../kernels/spatial.js';
import { Rng, deriveSeed } from '../../data/random.js';
import { acdcRegistrationPairs, camusRegistrationPairs, ch2Deformations, CH2_DICE_STRUCTURES, phantomPairs, PHANTOM_VARIANTS, type PhantomVariant, type RegistrationPair } from '../../data/registration.js';
import type { Dataset } from '../../data/dataset.js';
import { files } from '../../io/files.js';
import { Module } from '../../nn/module.js';
import { ScoringNet, VarianceEstimator } from '../../models/voxelmorph.js';
import { Adam } from '../../optim/index.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { trainLoop } from '../../train/loop.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../../train/recipe.js';
import { makeBackbone, type Backbone, type RegistrationOutput } from './backbones.js';
import { CARDIAC_STRUCTURES, evaluateRegistration, type AuxiliaryMap } from './evaluate.js';
import {
  betaNLL, gradL2, linearElasticEnergy, localNCC, MomentumWeight, mse, scoringPrior, scoringTV, scoringWeightedMSE,
  snrWeight, softDice, weightedMSE,
} from './losses.js';

export const METHODS = ['mse', 'ncc', 'hetero', 'adacs', 'bim'] as const;
export type Method = (typeof METHODS)[number];

const defaults: Config = {
  backbone: 'voxelmorph',
  method: 'mse',
  data: 'phantom',
  variant: 'clean',
  root: '',
  size: 64,
  steps: 300,
  batchSize: 8,
  lr: 0.001,
  lambda: 0.01,
  bidir: true,
  intSteps: 7,
  intDownsize: 2,
  stepsPerEpoch: 50,
  warmStartEpochs: 1,
  gamma: 0.5,
  betaNll: 0.5,
  snrVariant: 'paper',
  alpha: 0.02,
  betaTv: 1.5,
  momentumScaling: 50,
  bimLambda: 0.02,
  nu: 0.4,
  bimReduction: 'mean',
  bimReshapeBug: false,
  bimDiceWeight: 0,
  trainPairs: 200,
  testPairs: 100,
  seed: 0,
  // the networks' initialisation and the batch order; -1: the data's `seed` (so runs differ only in training noise)
  trainSeed: -1,
  checkpointEvery: 100,
};

const get = <T extends number | string | boolean | number[]>(c: Config, k: string) => setting<T>(c, defaults, k);

function choice<T extends string>(c: Config, key: string, options: readonly T[]): T {
  const v = get<string>(c, key);
  if (!options.includes(v as T)) fail('reg', `${key} must be one of ${options.map((o) => `'${o}'`).join(', ')}, got '${v}'`);
  return v as T;
}

/** Every training pair stacked on the GPU once ([P, 1, H, W] images, [P, H, W] labels): small at 64–128². */
async function loadPairs(ds: Dataset<RegistrationPair>): Promise<{ moving: Tensor; fixed: Tensor; movingLabel: Tensor; fixedLabel: Tensor }> {
  const items: RegistrationPair[] = [];
  for (let i = 0; i < ds.length; i++) items.push(await ds.get(i));
  const out = tidy(() => ({
    moving: stack(items.map((p) => p.moving)),
    fixed: stack(items.map((p) => p.fixed)),
    movingLabel: stack(items.map((p) => p.movingLabel)),
    fixedLabel: stack(items.map((p) => p.fixedLabel)),
  }));
  for (const p of items) for (const t of Object.values(p)) if (t instanceof Tensor) t.dispose();
  return out;
}

async function dataset(c: Config, split: 'train' | 'test'): Promise<Dataset<RegistrationPair>> {
  const count = get<number>(c, split === 'train' ? 'trainPairs' : 'testPairs');
  const seed = get<number>(c, 'seed');
  const data = choice(c, 'data', ['phantom', 'ch2', 'acdc', 'camus'] as const);
  // ch2: the brain T1 warped by random smooth diffeomorphisms, 3-D (size³ voxels)
  if (data === 'ch2') return ch2Deformations({ count, split, size: get(c, 'size'), seed });
  if (data === 'acdc') {
    // the papers' ACDC protocol: every short-axis slice an ED→ES pair, 128² around the myocardium, the 100 training
    // patients to train and the 50 testing patients to test (root: the folder holding training/ and testing/)
    const root = get<string>(c, 'root');
    if (!root) fail('reg', "data 'acdc' needs root: the ACDC folder that holds training/ and testing/");
    return acdcRegistrationPairs(root, { split: split === 'train' ? 'training' : 'testing', size: get(c, 'size'), labels: 'all' });
  }
  if (data === 'camus') {
    // the papers' CAMUS protocol: both views' ED→ES pairs resized to 128², the patients split at random 60/20/20
    // (their 300/100/100 of 500); the split is seeded here, theirs is not published
    const root = get<string>(c, 'root');
    if (!root) fail('reg', "data 'camus' needs root: the CAMUS folder that holds the patientNNNN folders");
    const patients = (await files('reg').readdir(root)).filter((n) => /^patient\d{4}$/.test(n)).sort();
    if (patients.length < 5) fail('reg', `data 'camus': root ${root} holds ${patients.length} patientNNNN folders, needs at least 5 for a train/test split`);
    const order = new Rng(deriveSeed(seed, 11)).permutation(patients.length).map((i) => patients[i]);
    const nTrain = Math.round(0.6 * patients.length);
    const chosen = split === 'train' ? order.slice(0, nTrain) : order.slice(Math.round(0.8 * patients.length));
    return camusRegistrationPairs(root, { patients: chosen, size: get(c, 'size') });
  }
  const variant = choice<PhantomVariant>(c, 'variant', PHANTOM_VARIANTS);
  return phantomPairs({ count, split, size: get(c, 'size'), variant, seed });
}

/** The auxiliary network's map for the evaluation figure: log σ² of the variance network, or AdaCS's score. */
function auxiliaryMap(c: Config, aux: Module | null): AuxiliaryMap | undefined {
  if (!aux) return undefined;
  if (get<string>(c, 'method') === 'hetero') return { title: 'log var', compute: (_m, fixed, warped) => aux.call(cat([warped, fixed], 1)), checks: 'logVariance' };
  return { title: 'score', compute: (_m, fixed) => aux.call(fixed), range: { min: 0, max: 1 }, checks: 'score' };
}

/** The structures the evaluation reports: the phantom's three cardiac labels, or large AAL regions of ch2. */
function structuresOf(c: Config): Record<number, string> {
  const data = get<string>(c, 'data');
  if (data === 'camus') return { 1: 'Myo' }; // the papers evaluate CAMUS on the myocardium mask only
  return data === 'ch2' ? Object.fromEntries(CH2_DICE_STRUCTURES.map((s) => [s.label, s.name])) : CARDIAC_STRUCTURES;
}

/** The seed of the networks' initialisation and the batch order: `trainSeed`, or the data's `seed` when it is -1. */
function trainingSeed(c: Config): number {
  const t = get<number>(c, 'trainSeed');
  if (!(Number.isInteger(t) && t >= -1)) fail('reg', `trainSeed must be an integer ≥ 0, or -1 for the data's seed, got ${t}`);
  return t === -1 ? get<number>(c, 'seed') : t;
}

/** The networks of a method: the backbone, and the variance or scoring network; one module tree for checkpoints. */
function buildNets(c: Config, inshape: number[]): { backbone: Backbone; aux: Module | null; bundle: Module } {
  const method = choice<Method>(c, 'method', METHODS);
  const seed = trainingSeed(c);
  const backbone = makeBackbone(get<string>(c, 'backbone'), inshape, {
    bidir: get<boolean>(c, 'bidir') && get<string>(c, 'backbone') !== 'regnet',
    intSteps: get(c, 'intSteps'),
    intDownsize: get(c, 'intDownsize'),
    seed,
  });
  const aux = method === 'hetero' ? new VarianceEstimator(inshape, { seed: seed + 1000 }) : method === 'adacs' ? new ScoringNet(inshape, { seed: seed + 1000 }) : null;
  const bundle = new Module();
  bundle.registerModule('model', backbone.module);
  if (aux) bundle.registerModule(method === 'hetero' ? 'variance' : 'scoring', aux);
  return { backbone, aux, bundle };
}

/** (target, prediction) per direction: forward, and backward when bidirectional (each weighted ½). */
function directions(o: RegistrationOutput, source: Tensor, target: Tensor): [Tensor, Tensor][] {
  return o.inverseWarped ? [[target, o.warped], [source, o.inverseWarped]] : [[target, o.warped]];
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const method = choice<Method>(c, 'method', METHODS);
  const steps = get<number>(c, 'steps');
  const batch = get<number>(c, 'batchSize');
  const seed = trainingSeed(c);
  const data = await loadPairs(await dataset(c, 'train'));
  const inshape = data.moving.shape.slice(2);
  const { backbone, aux, bundle } = buildNets(c, inshape);
  // one Adam over both networks: a parameter without a gradient is skipped, and each phase gives gradients to one
  // network only, so this is the papers' two optimisers (same lr, per-parameter state)
  const optimizer = new Adam(bundle.parameters(), { lr: get(c, 'lr') });
  const lambda = get<number>(c, 'lambda');
  const perEpoch = get<number>(c, 'stepsPerEpoch');
  const warm = get<number>(c, 'warmStartEpochs');
  const momentum = new MomentumWeight({ beta: get(c, 'betaTv'), scaling: get(c, 'momentumScaling') });
  const pairs = data.moving.shape[0];
  const smooth = (o: RegistrationOutput) => gradL2(o.regFlow, { lossMult: backbone.gradMult });

  const step = async (s: number) => {
    // the papers' sampler: pairs drawn uniformly with replacement, here seeded by the step so a resumed run matches
    const rng = new Rng(deriveSeed(seed, 7, s));
    const idx = tensor(Array.from({ length: batch }, () => rng.int(0, pairs)), [batch], { dtype: 'i32' });
    const [src, tgt, srcLab, tgtLab] = tidy(() => [data.moving, data.fixed, data.movingLabel, data.fixedLabel].map((t) => indexSelect(t, 0, idx)));
    idx.dispose();
    const epoch = Math.floor(s / perEpoch);
    // warm start (papers 1 and 2): motion only, then the auxiliary network only, then both every step
    const auxOn = aux !== null && epoch >= warm;
    const motionOn = aux === null || epoch < warm || epoch >= 2 * warm;
    const values: Record<string, number> = {};
    const pending: [string, Tensor][] = [];
    if (motionOn) {
      const loss = tidy(() => {
        const o = backbone.run(src, tgt);
        const dirs = directions(o, src, tgt);
        const half = 1 / dirs.length;
        let data: Tensor;
        if (method === 'mse' || method === 'bim') data = dirs.map(([t, p]) => mul(mse(t, p, { mask: o.mask }), half)).reduce((a, b) => add(a, b));
        else if (method === 'ncc') data = dirs.map(([t, p]) => mul(localNCC(t, p, { mask: o.mask }), half)).reduce((a, b) => add(a, b));
        else {
          const terms = dirs.map(([t, p]) => {
            // before the auxiliary network has trained (warm start) the weight is 1: the masked MSE
            if (!aux || epoch < 2 * warm) return mul(mse(t, p, { mask: o.mask }), half);
            const w = noGrad(() => (method === 'hetero'
              ? snrWeight(t, aux.call(cat([p.detach(), t], 1)), o.mask, { gamma: get(c, 'gamma'), variant: choice(c, 'snrVariant', ['paper', 'code'] as const) })
              : aux.call(t)));
            return mul(weightedMSE(t, p, w, o.mask), half);
          });
          if (method === 'adacs') terms.forEach((t, i) => pending.push([`data${i}`, t]));
          data = terms.reduce((a, b) => add(a, b));
        }
        let l = add(data, mul(smooth(o), lambda));
        if (method === 'bim') {
          const energy = linearElasticEnergy(o.flow, { nu: get(c, 'nu'), reduction: choice(c, 'bimReduction', ['mean', 'norm'] as const), reshapeBug: get(c, 'bimReshapeBug') });
          l = add(l, mul(energy, get(c, 'bimLambda')));
          const dw = get<number>(c, 'bimDiceWeight');
          if (dw > 0) {
            // soft Dice of each structure's one-hot mask warped bilinearly (BIM's L_seg), differentiable in the flow
            if (get<string>(c, 'data') !== 'phantom') fail('reg', 'bimDiceWeight needs the phantom (its 3 cardiac labels)');
            const oneHots = (lab: Tensor) => oneHot(lab, 4).to('f32').permute([0, 3, 1, 2]);
            const warpedMasks = spatialTransform(oneHots(srcLab), o.flow);
            const structures = [1, 2, 3].map((k) => [warpedMasks.narrow(1, k, 1), oneHots(tgtLab).narrow(1, k, 1)]);
            l = add(l, mul(softDice(structures.map((x) => x[0]), structures.map((x) => x[1])), dw));
          }
        }
        l.backward();
        for (const [, t] of pending) keep(t);
        return l;
      });
      optimizer.step();
      optimizer.zeroGrad();
      values.loss = await loss.item();
      loss.dispose();
      if (method === 'adacs') {
        const dirLosses: number[] = [];
        for (const [, t] of pending) {
          dirLosses.push(await t.item());
          t.dispose();
        }
        values.tvWeight = momentum.observe(dirLosses, epoch);
      }
    }
    if (auxOn && aux) {
      const auxLoss = tidy(() => {
        const o = noGrad(() => backbone.run(src, tgt)); // the papers' stop-gradient: the motion network gets nothing
        const dirs = directions(o, src, tgt);
        const half = 1 / dirs.length;
        const terms = dirs.map(([t, p]) => {
          if (method === 'hetero') return mul(betaNLL(t, p, aux.call(cat([p, t], 1)), { beta: get(c, 'betaNll'), mask: o.mask }), half);
          const score = aux.call(t);
          const scoring = add(add(scoringWeightedMSE(t, p, score, o.mask), mul(scoringPrior(score, o.mask), get(c, 'alpha'))), mul(scoringTV(score), momentum.value));
          return mul(scoring, half);
        });
        const l = terms.reduce((a, b) => add(a, b));
        l.backward();
        return l;
      });
      optimizer.step();
      optimizer.zeroGrad();
      values.auxLoss = await auxLoss.item();
      auxLoss.dispose();
      values.loss ??= values.auxLoss;
    }
    for (const t of [src, tgt, srcLab, tgtLab]) t.dispose();
    return values;
  };

  const result = await trainLoop(ctx, {
    model: bundle,
    optimizer,
    steps: aux ? steps + warm * perEpoch : steps,
    checkpointEvery: get(c, 'checkpointEvery'),
    step,
    state: { save: () => ({ momentum: momentum.state() }), restore: (x) => x && momentum.setState((x as { momentum: ReturnType<MomentumWeight['state']> }).momentum) },
    evaluate: async () => {
      const test = await dataset(c, 'test');
      const ev = await evaluateRegistration(backbone, test, { outDir: ctx.outDir, log: ctx.log, structures: structuresOf(c), batch: get<string>(c, 'data') === 'ch2' ? 2 : 8, auxiliaryMap: auxiliaryMap(c, aux) });
      return ev.summary;
    },
  });
  for (const t of Object.values(data)) t.dispose();
  optimizer.dispose();
  bundle.dispose();
  return result;
}

export const reg = defineRecipe({
  name: 'reg',
  description: 'unsupervised registration: --backbone voxelmorph|transmorph|regnet --method mse|ncc|hetero|adacs|bim on phantom ED→ES pairs (--variant), ch2 (3-D) or ACDC/CAMUS (--data acdc|camus --root DIR)',
  defaults,
  train,
  async evaluate(ctx) {
    const test = await dataset(ctx.config, 'test');
    const first = await test.get(0);
    const inshape = first.moving.shape.slice(1);
    for (const t of Object.values(first)) if (t instanceof Tensor) t.dispose();
    const { backbone, aux, bundle } = buildNets(ctx.config, inshape);
    await loadCheckpoint(ctx.checkpoint, { model: bundle });
    const ev = await evaluateRegistration(backbone, test, {
      outDir: ctx.outDir, log: ctx.log, structures: structuresOf(ctx.config), batch: get<string>(ctx.config, 'data') === 'ch2' ? 2 : 8, auxiliaryMap: auxiliaryMap(ctx.config, aux),
    });
    bundle.dispose();
    return ev.summary;
  },
});
