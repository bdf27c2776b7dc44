/**
 * unet-phantom: supervised 2-D segmentation of the embedded cardiac phantom (vg.data.cardiacPhantom: LV cavity,
 * myocardium, RV cavity in ACDC's label convention) with SSL4MIS's UNet, its 0.5·(CE + Dice) loss and Adam, with
 * flips, rotations, small affine and elastic warps and intensity jitter on the GPU. Evaluation: Dice per structure and
 * HD95 in mm (medpy's conventions, the phantom's pixel spacing) on held-out phantom subjects, ED and ES frames.
 */
import { noGrad } from '../engine/autograd.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { cardiacPhantom } from '../data/phantom.js';
import { DataLoader, TensorDataset } from '../data/loader.js';
import { compose, intensityJitter, randomAffine, randomElastic, randomFlip, randomRot90 } from '../data/augment.js';
import { argmax } from '../kernels/reduce.js';
import { crossEntropy } from '../kernels/nn.js';
import { add, mul } from '../kernels/math.js';
import { cat, unsqueeze } from '../kernels/shape.js';
import { dice } from '../metrics/overlap.js';
import { hd95 } from '../metrics/surface.js';
import { UNet2D } from '../models/unet.js';
import { Adam } from '../optim/index.js';
import { PolyLR } from '../optim/schedulers.js';
import { diceLoss } from './losses.js';
import { evaluateCheckpoint } from '../train/checkpoint.js';
import { trainLoop } from '../train/loop.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../train/recipe.js';

const defaults: Config = {
  steps: 150,
  batchSize: 8,
  size: 64,
  lr: 0.003,
  features: [8, 16, 32, 64, 128],
  trainSubjects: 32,
  testSubjects: 8,
  augment: true,
  seed: 0,
  checkpointEvery: 50,
};

// a type alias, not an interface: the loader's Collated<S> maps plain records field by field
export type Batch = { image: Tensor; label: Tensor };

/** The cardiac phantom's structures by label value (the recipes on it report them by these names). */
export const CARDIAC_STRUCTURES: Record<number, string> = { 1: 'RV', 2: 'myocardium', 3: 'LV' };

/** ED and ES frames of `count` phantom subjects from `firstSeed`: images [2·count, 1, S, S], labels [2·count, S, S]. */
export function phantomFrames(firstSeed: number, count: number, size: number): { image: Tensor; label: Tensor; spacing: [number, number] } {
  const images: Tensor[] = [];
  const labels: Tensor[] = [];
  let spacing: [number, number] = [1, 1];
  for (let i = 0; i < count; i++) {
    const p = cardiacPhantom({ size, frames: 2, seed: firstSeed + i });
    images.push(p.image);
    labels.push(p.label);
    spacing = p.spacing;
  }
  const out = tidy(() => ({ image: unsqueeze(cat(images, 0), 1), label: cat(labels, 0), spacing }));
  for (const t of [...images, ...labels]) t.dispose();
  return out;
}

function buildModel(config: Config): UNet2D {
  return new UNet2D({ inChannels: 1, numClasses: 4, features: setting<number[]>(config, defaults, 'features'), seed: setting(config, defaults, 'seed') });
}

/** Held-out subjects come from a seed range the training subjects never use. */
export const testSeed = (seed: number) => 1_000_000 + seed * 1000;

async function evaluateModel(model: UNet2D, config: Config): Promise<Record<string, unknown>> {
  const size = setting<number>(config, defaults, 'size');
  const { image, label, spacing } = phantomFrames(testSeed(setting(config, defaults, 'seed')), setting(config, defaults, 'testSubjects'), size);
  model.eval();
  const pred = noGrad(() => tidy(() => argmax(model.call(image), { dim: 1 })));
  const labels = Object.keys(CARDIAC_STRUCTURES).map(Number);
  const overlap = await dice(pred, label, { labels });
  // surface distances per frame (each a 2-D mask pair), then averaged as the papers report them
  const hd: number[][] = labels.map(() => []);
  const frames = image.shape[0];
  for (let f = 0; f < frames; f++) {
    const [p, t] = tidy(() => [pred.slice(0, f, f + 1).squeeze(0), label.slice(0, f, f + 1).squeeze(0)]);
    const r = await hd95(p, t, { labels, spacing });
    labels.forEach((l, i) => hd[i].push(r.perLabel[l]));
    p.dispose();
    t.dispose();
  }
  for (const t of [image, label, pred]) t.dispose();
  model.train();
  const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    frames,
    dice: Object.fromEntries(labels.map((l) => [CARDIAC_STRUCTURES[l], overlap.perLabel[l]])),
    meanDice: overlap.mean,
    hd95Mm: Object.fromEntries(labels.map((l, i) => [CARDIAC_STRUCTURES[l], meanOf(hd[i])])),
    pixelSpacingMm: spacing,
  };
}

/** The phantom recipes' augmentation: flips, rot90, small affine and elastic warps (image and label), intensity jitter. */
export function phantomAugment(size: number) {
  return compose([
    (t, s) => randomFlip(t, { seed: s }),
    (t, s) => randomRot90(t, { seed: s }),
    (t, s) => randomAffine(t, { rotate: 0.3, scale: 0.15, translate: size / 16, seed: s, prob: 0.5 }),
    (t, s) => randomElastic(t, { magnitude: size / 32, controlPoints: 5, seed: s, prob: 0.5 }),
    ([x, ...rest], s) => [intensityJitter(x, { brightness: 0.05, contrast: 0.2, gamma: [0.7, 1.5], seed: s }), ...rest],
  ]);
}

/**
 * Batches in (epoch, position) order, so step k always sees the same batch, resumed or not; closeIterator frees the
 * batch the epoch's iterator prefetched.
 */
export function batchStream(loader: DataLoader<Batch>) {
  let iterator: AsyncIterator<Batch> | null = null;
  const nextBatch = async (step: number): Promise<Batch> => {
    if (!iterator) {
      loader.setEpoch(Math.floor(step / loader.length));
      iterator = loader[Symbol.asyncIterator]();
      for (let skip = step % loader.length; skip > 0; skip--) {
        const b: Batch = (await iterator.next()).value;
        b.image.dispose();
        b.label.dispose();
      }
    }
    let r = await iterator.next();
    if (r.done) {
      iterator = loader[Symbol.asyncIterator]();
      r = await iterator.next();
    }
    return r.value;
  };
  const closeIterator = async () => {
    await (iterator as AsyncIterator<Batch> | null)?.return?.();
    iterator = null;
  };
  return { nextBatch, closeIterator };
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const size = setting<number>(c, defaults, 'size');
  const seed = setting<number>(c, defaults, 'seed');
  const steps = setting<number>(c, defaults, 'steps');
  const data = phantomFrames(seed * 1000, setting(c, defaults, 'trainSubjects'), size);
  const loader = new DataLoader(new TensorDataset<Batch>({ image: data.image, label: data.label }), {
    batchSize: setting(c, defaults, 'batchSize'),
    shuffle: true,
    seed,
    dropLast: true,
  });
  const augment = phantomAugment(size);
  const model = buildModel(c);
  const optimizer = new Adam(model.parameters(), { lr: setting(c, defaults, 'lr') });
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
      const loss = tidy(() => {
        const logits = model.call(x);
        const l = mul(add(crossEntropy(logits, y), diceLoss(logits, y)), 0.5);
        l.backward();
        return l;
      });
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      const value = await loss.item();
      const lr = optimizer.paramGroups[0].lr;
      for (const t of new Set([loss, x, y, batch.image, batch.label])) t.dispose();
      return { loss: value, lr };
    },
  });
  await closeIterator();
  for (const owned of [optimizer, model, data.image, data.label]) owned.dispose();
  return result;
}

export const unetPhantom = defineRecipe({
  name: 'unet-phantom',
  description: 'UNet2D segmentation of the embedded cardiac phantom (LV, myocardium, RV); Dice and HD95 on held-out subjects',
  defaults,
  train,
  evaluate: (ctx) => evaluateCheckpoint(ctx.checkpoint, buildModel(ctx.config), (model) => evaluateModel(model, ctx.config)),
});
