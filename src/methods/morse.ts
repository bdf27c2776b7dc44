/**
 * morse: MORSE (implicit anatomical rendering with stochastic experts) on the 2-D UNet of unet-phantom, trained and
 * scored on the embedded cardiac phantom (`data: 'phantom'`), or on a 3-D VNet with the left-atrium phantom
 * (`data: 'phantom3d'`). `--method unet` trains the backbone alone with the same data, augmentation, optimiser and
 * schedule (the baseline); `--method morse` adds the MoE head and the point head with the point loss weighted 0 in the
 * first half of training and (t − T/2)/T after (MORSE's 2-D train.py). Evaluation scores the coarse output (what the
 * released test.py scores) and, for morse, the refined output: Dice, Jaccard, HD95 and ASD per structure on held-out
 * subjects (2-D: ED and ES frames, in mm; 3-D: one volume per subject, in voxels).
 */
import { noGrad } from '../engine/autograd.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { compose, intensityJitter, randomFlip } from '../data/augment.js';
import { DataLoader, TensorDataset } from '../data/loader.js';
import { leftAtriumPhantoms } from '../data/semiseg.js';
import { argmax } from '../kernels/reduce.js';
import { crossEntropy } from '../kernels/nn.js';
import { add, mul } from '../kernels/math.js';
import { UNet2D } from '../models/unet.js';
import { VNet } from '../models/vnet.js';
import { Morse, VNET_MORSE_MAPS, morsePointWeight } from '../models/morse.js';
import { Adam } from '../optim/index.js';
import { PolyLR } from '../optim/schedulers.js';
import { diceLoss } from './losses.js';
import { scorePrediction } from './scores.js';
import { CARDIAC_STRUCTURES, batchStream, phantomAugment, phantomFrames, testSeed, type Batch } from './unet-phantom.js';
import { evaluateCheckpoint } from '../train/checkpoint.js';
import { trainLoop } from '../train/loop.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../train/recipe.js';
import { fail } from '../engine/errors.js';

const defaults: Config = {
  method: 'morse',
  data: 'phantom',
  implicit: false,
  steps: 150,
  batchSize: 8,
  size: 64,
  lr: 0.003,
  features: [8, 16, 32, 64, 128],
  // base filters of the 3-D VNet (the code: 16)
  vnetFilters: 4,
  moeWidth: 32,
  moeOut: 32,
  // the 2-D head has 5 experts; the 3-D head's 3 drop at most 2
  dropExperts: 4,
  pointFc: 64,
  frequencies: 32,
  // PointRend's 2048 training points and 8192 subdivision points at 256², scaled to the phantom's 64² (÷16)
  trainPoints: 128,
  subdivisionPoints: 512,
  subdivisionSteps: 2,
  pointSchedule: 'ramp',
  trainSubjects: 32,
  testSubjects: 8,
  augment: true,
  seed: 0,
  checkpointEvery: 50,
};

const LEFT_ATRIUM = { 1: 'LA' };

/** True for the 3-D setting (VNet on the left-atrium phantom); fails on an unknown data name. */
function is3d(config: Config): boolean {
  const data = setting<string>(config, defaults, 'data');
  if (data !== 'phantom' && data !== 'phantom3d') fail('morse', `data must be 'phantom' or 'phantom3d', got '${data}'`);
  return data === 'phantom3d';
}

function buildModel(config: Config): Morse {
  const method = setting<string>(config, defaults, 'method');
  if (method !== 'morse' && method !== 'unet') fail('morse', `method must be 'morse' or 'unet', got '${method}'`);
  const seed = setting<number>(config, defaults, 'seed');
  let backbone: UNet2D | VNet;
  let mapChannels: number[];
  let dropExperts = setting<number>(config, defaults, 'dropExperts');
  if (is3d(config)) {
    const f = setting<number>(config, defaults, 'vnetFilters');
    backbone = new VNet({ filters: f, numClasses: 2, seed });
    // VNet's featureMaps are 8f, 4f, 2f, f and f channels wide
    mapChannels = VNET_MORSE_MAPS.map((i) => [8, 4, 2, 1, 1][i] * f);
    dropExperts = Math.min(dropExperts, mapChannels.length - 1);
  } else {
    const features = setting<number[]>(config, defaults, 'features');
    backbone = new UNet2D({ inChannels: 1, numClasses: 4, features, seed });
    // the bottleneck and the four up levels, coarse to fine
    mapChannels = [...features].reverse();
  }
  return new Morse(backbone, {
    numClasses: is3d(config) ? 2 : 4,
    mapChannels,
    moe: { width: setting(config, defaults, 'moeWidth'), outChannels: setting(config, defaults, 'moeOut'), dropExperts },
    implicit: setting(config, defaults, 'implicit'),
    pointHead: { fcDim: setting(config, defaults, 'pointFc'), frequencies: setting(config, defaults, 'frequencies') },
    trainPoints: setting(config, defaults, 'trainPoints'),
    subdivisionPoints: setting(config, defaults, 'subdivisionPoints'),
    subdivisionSteps: setting(config, defaults, 'subdivisionSteps'),
    seed,
  });
}

/**
 * `count` subjects from subject seed `first` on: 2-D cardiac phantom frames (ED and ES, spacing in mm) or 3-D
 * left-atrium phantom volumes (one per subject, spacing 1: scores in voxels).
 */
function subjects(config: Config, first: number, count: number): { image: Tensor; label: Tensor; spacing: number[]; structures: Record<number, string> } {
  const size = setting<number>(config, defaults, 'size');
  if (!is3d(config)) return { ...phantomFrames(first, count, size), structures: CARDIAC_STRUCTURES };
  const ids = Array.from({ length: count }, (_, i) => first + i);
  const { image, label } = leftAtriumPhantoms(ids, { shape: [size, size, size] });
  return { image, label, spacing: [1, 1, 1], structures: LEFT_ATRIUM };
}

/** 3-D augmentation: flips along each axis and the intensity jitter of the 2-D recipe (the code: RandomRotFlip). */
const volumeAugment = () =>
  compose([(t, s) => randomFlip(t, { seed: s, spatialAxis: [0, 1, 2] }), ([x, ...rest], s) => [intensityJitter(x, { brightness: 0.05, contrast: 0.2, gamma: [0.7, 1.5], seed: s }), ...rest]]);

async function evaluateModel(model: Morse, config: Config): Promise<Record<string, unknown>> {
  const { image, label, spacing, structures } = subjects(config, testSeed(setting(config, defaults, 'seed')), setting(config, defaults, 'testSubjects'));
  model.eval();
  const refineToo = setting<string>(config, defaults, 'method') === 'morse';
  const [coarse, refined] = noGrad(() =>
    tidy(() => {
      const { coarse: c, fine } = model.features(image);
      return [argmax(c, { dim: 1 }), refineToo ? argmax(model.refine(c, fine), { dim: 1 }) : null];
    }),
  );
  const unit = is3d(config) ? 'voxel' : 'mm';
  const out: Record<string, unknown> = { frames: image.shape[0], spacing, unit, coarse: await scorePrediction(coarse, label, spacing, structures) };
  if (refined) out.refined = await scorePrediction(refined, label, spacing, structures);
  for (const t of [image, label, coarse, refined]) t?.dispose();
  model.train();
  return out;
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const size = setting<number>(c, defaults, 'size');
  const seed = setting<number>(c, defaults, 'seed');
  const steps = setting<number>(c, defaults, 'steps');
  const morse = setting<string>(c, defaults, 'method') === 'morse';
  const schedule = setting<string>(c, defaults, 'pointSchedule');
  if (schedule !== 'ramp' && schedule !== 'constant') fail('morse', `pointSchedule must be 'ramp' or 'constant', got '${schedule}'`);
  const data = subjects(c, seed * 1000, setting(c, defaults, 'trainSubjects'));
  const loader = new DataLoader(new TensorDataset<Batch>({ image: data.image, label: data.label }), {
    batchSize: setting(c, defaults, 'batchSize'),
    shuffle: true,
    seed,
    dropLast: true,
  });
  const augment = is3d(c) ? volumeAugment() : phantomAugment(size);
  const model = buildModel(c);
  // the baseline trains (and counts) only the backbone's parameters
  const optimizer = new Adam(morse ? model.parameters() : model.backbone.parameters(), { lr: setting(c, defaults, 'lr') });
  const scheduler = new PolyLR(optimizer, { totalIters: steps, power: 0.9 });
  const { nextBatch, closeIterator } = batchStream(loader);

  const result = await trainLoop(ctx, {
    model,
    optimizer,
    scheduler,
    steps,
    checkpointEvery: setting(c, defaults, 'checkpointEvery'),
    evaluate: async () => {
      await closeIterator();
      return evaluateModel(model, c);
    },
    step: async (step) => {
      const batch = await nextBatch(step);
      const useAugment = setting<boolean>(c, defaults, 'augment');
      const [x, y] = useAugment ? augment([batch.image, batch.label], { seed: seed * 1_000_003 + step }) : [batch.image, batch.label];
      // the point term is skipped while its weight is 0 (its gradient would be 0)
      const weight = morse ? (schedule === 'ramp' ? morsePointWeight(step, steps) : 1) : 0;
      const [loss, pointLoss] = tidy(() => {
        let l: Tensor;
        let pl: Tensor | null = null;
        if (weight > 0) {
          const { coarse, fine } = model.features(x);
          l = mul(add(crossEntropy(coarse, y), diceLoss(coarse, y)), 0.5);
          pl = model.pointLoss(coarse, fine, y, seed * 1_000_003 + step);
          l = add(l, mul(pl, weight));
        } else {
          const logits = model.backbone.call(x);
          l = mul(add(crossEntropy(logits, y), diceLoss(logits, y)), 0.5);
        }
        l.backward();
        return [l, pl];
      });
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      const value = await loss.item();
      const point = pointLoss ? await pointLoss.item() : null;
      const lr = optimizer.paramGroups[0].lr;
      for (const t of new Set([loss, pointLoss, x, y, batch.image, batch.label])) t?.dispose();
      const logged: Record<string, number> = { loss: value, lr };
      if (point !== null) logged.pointLoss = point;
      return logged;
    },
  });
  await closeIterator();
  for (const owned of [optimizer, model, data.image, data.label]) owned.dispose();
  return result;
}

export const morse = defineRecipe({
  name: 'morse',
  seedsGlobalGenerator: true,
  description: 'MORSE (MoE head + point head on UNet2D, or on VNet with --data phantom3d) or its backbone alone (--method unet) on the cardiac or left-atrium phantom; Dice, Jaccard, HD95, ASD of coarse and refined outputs',
  defaults,
  train,
  evaluate: (ctx) => evaluateCheckpoint(ctx.checkpoint, buildModel(ctx.config), (model) => evaluateModel(model, ctx.config)),
});
