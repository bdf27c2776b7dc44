/**
 * castformer: CASTformer (class-aware adversarial transformers; You et al., NeurIPS 2022) on the multi-structure
 * phantom (vg.data.organPhantom: LV cavity, myocardium, RV cavity, aorta, liver, lungs, vertebra). No public code
 * exists; the generator and discriminator are reconstructions (src/models/castformer.ts lists each part).
 * Variants: `full` (CATformer with the class-aware module, trained with CE + Dice + a small adversarial term against
 * the spectrally normalised transformer discriminator), `no-adv` (the same generator, CE + Dice only), `no-cam` (the
 * adversarial training of `full`, the generator without the class-aware module). One step updates the discriminator on
 * (image ⊕ one-hot label) vs (image ⊕ detached softmax), then the generator on 0.5·(CE + Dice) + advWeight·L_adv with
 * the hinge (or non-saturating) loss; no gradient penalty (no higher-order gradients in the engine). Evaluation: Dice,
 * Jaccard, HD95 and ASD (mm) per structure on held-out subjects; overlays.png and prediction.nii.gz in the run folder.
 */
import { noGrad } from '../engine/autograd.js';
import { fail } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { ORGAN_PHANTOM_LABELS, organPhantomSlices } from '../data/organ-phantom.js';
import { DataLoader, TensorDataset } from '../data/loader.js';
import { compose, intensityJitter, randomAffine } from '../data/augment.js';
import { cast } from '../kernels/elementwise.js';
import { oneHot } from '../kernels/indexing.js';
import { add, mul } from '../kernels/math.js';
import { crossEntropy, softmax } from '../kernels/nn.js';
import { argmax } from '../kernels/reduce.js';
import { cat, permute, slice } from '../kernels/shape.js';
import { figureGrid, overlay } from '../io/figures.js';
import { writeNifti } from '../io/nifti.js';
import { writePng } from '../io/png.js';
import { CATformer, CastDiscriminator } from '../models/castformer.js';
import { Adam } from '../optim/index.js';
import { PolyLR } from '../optim/schedulers.js';
import { diceLoss, discriminatorLoss, generatorAdversarialLoss, type AdversarialLossKind } from './losses.js';
import { scorePrediction } from './scores.js';
import { batchStream, type Batch } from './unet-phantom.js';
import { evaluateCheckpoint } from '../train/checkpoint.js';
import { trainLoop } from '../train/loop.js';
import { runPath } from '../train/run-folder.js';
import { defineRecipe, setting, type Config, type RecipeRun } from '../train/recipe.js';

const VARIANTS = ['full', 'no-adv', 'no-cam'] as const;

const defaults: Config = {
  variant: 'full',
  steps: 100,
  batchSize: 4,
  size: 48,
  lr: 0.005,
  discriminatorLr: 0.0002,
  features: [16, 32, 64, 128],
  embedDim: 64,
  depth: 2,
  heads: 4,
  camIterations: 3,
  discriminatorDim: 64,
  discriminatorDepth: 2,
  patchSize: 8,
  advWeight: 0.05,
  advLoss: 'hinge',
  trainSubjects: 48,
  testSubjects: 12,
  // off: the short schedules the phantom results use converge faster without it
  augment: false,
  seed: 0,
  checkpointEvery: 50,
};

const NUM_CLASSES = ORGAN_PHANTOM_LABELS.length;
const STRUCTURES: Record<number, string> = Object.fromEntries(ORGAN_PHANTOM_LABELS.map((n, i) => [i, n]).slice(1));

function variantOf(config: Config): (typeof VARIANTS)[number] {
  const v = setting<string>(config, defaults, 'variant');
  if (!(VARIANTS as readonly string[]).includes(v)) fail('castformer', `variant must be one of ${VARIANTS.join(', ')}, got '${v}'`);
  return v as (typeof VARIANTS)[number];
}

function buildGenerator(config: Config): CATformer {
  return new CATformer({
    inChannels: 1,
    numClasses: NUM_CLASSES,
    imageSize: setting(config, defaults, 'size'),
    features: setting<number[]>(config, defaults, 'features'),
    embedDim: setting(config, defaults, 'embedDim'),
    depth: setting(config, defaults, 'depth'),
    heads: setting(config, defaults, 'heads'),
    classAware: variantOf(config) !== 'no-cam',
    camIterations: setting(config, defaults, 'camIterations'),
    seed: setting(config, defaults, 'seed'),
  });
}

function buildDiscriminator(config: Config): CastDiscriminator {
  return new CastDiscriminator({
    inChannels: 1 + NUM_CLASSES,
    imageSize: setting(config, defaults, 'size'),
    patchSize: setting(config, defaults, 'patchSize'),
    dim: setting(config, defaults, 'discriminatorDim'),
    depth: setting(config, defaults, 'discriminatorDepth'),
    heads: setting(config, defaults, 'heads'),
    seed: setting<number>(config, defaults, 'seed') + 7919,
  });
}

/** Held-out subjects come from a seed range training never uses. */
const testSeed = (seed: number) => 2_000_000 + seed * 1000;

async function evaluateModel(model: CATformer, config: Config, outDir: string | null): Promise<Record<string, unknown>> {
  const size = setting<number>(config, defaults, 'size');
  const test = organPhantomSlices(testSeed(setting(config, defaults, 'seed')), setting(config, defaults, 'testSubjects'), { size });
  model.eval();
  const pred = noGrad(() => tidy(() => argmax(model.call(test.image), { dim: 1 })));
  model.train();
  const scores = await scorePrediction(pred, test.label, test.spacing, STRUCTURES);
  if (outDir) {
    // NIfTI axes (x, y, slice): the slices stacked along z
    const nii = permute(pred, [2, 1, 0]);
    await writeNifti(runPath(outDir, 'prediction.nii.gz'), nii);
    nii.dispose();
    const rows = Array.from({ length: Math.min(4, pred.shape[0]) }, (_, i) =>
      tidy(() => {
        const im = slice(test.image, 0, i, i + 1).reshape([size, size]);
        return [
          { title: 'GT', rgb: overlay(im, slice(test.label, 0, i, i + 1).squeeze(0)) },
          { title: 'pred', rgb: overlay(im, slice(pred, 0, i, i + 1).squeeze(0)) },
        ];
      }),
    );
    const fig = figureGrid(rows);
    await writePng(runPath(outDir, 'overlays.png'), fig);
    fig.dispose();
    rows.flat().forEach((p) => p.rgb.dispose());
  }
  for (const t of [test.image, test.label, pred]) t.dispose();
  return { slices: pred.shape[0], pixelSpacingMm: test.spacing, ...scores };
}

async function train(ctx: RecipeRun) {
  const c = ctx.config;
  const size = setting<number>(c, defaults, 'size');
  const seed = setting<number>(c, defaults, 'seed');
  const steps = setting<number>(c, defaults, 'steps');
  const variant = variantOf(c);
  const adversarial = variant !== 'no-adv';
  const kind = setting<string>(c, defaults, 'advLoss') as AdversarialLossKind;
  if (kind !== 'hinge' && kind !== 'nonsaturating') fail('castformer', `advLoss must be 'hinge' or 'nonsaturating', got '${kind}'`);
  const advWeight = setting<number>(c, defaults, 'advWeight');
  const data = organPhantomSlices(seed * 1000, setting(c, defaults, 'trainSubjects'), { size });
  const loader = new DataLoader(new TensorDataset<Batch>({ image: data.image, label: data.label }), {
    batchSize: setting(c, defaults, 'batchSize'),
    shuffle: true,
    seed,
    dropLast: true,
  });
  // no flips or quarter turns: the organs' left/right and front/back placement is part of what is learned
  const augment = compose([
    (t, s) => randomAffine(t, { rotate: 0.2, scale: 0.1, translate: size / 16, seed: s, prob: 0.7 }),
    ([x, ...rest], s) => [intensityJitter(x, { brightness: 0.05, contrast: 0.15, gamma: [0.8, 1.25], seed: s }), ...rest],
  ]);
  const model = buildGenerator(c);
  const disc = adversarial ? buildDiscriminator(c) : null;
  const optimizer = new Adam(model.parameters(), { lr: setting(c, defaults, 'lr') });
  // SNGAN / SAGAN's discriminator Adam (β1 = 0, β2 = 0.9)
  const optD = disc ? new Adam(disc.parameters(), { lr: setting(c, defaults, 'discriminatorLr'), betas: [0, 0.9] }) : null;
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
      return evaluateModel(model, c, ctx.outDir);
    },
    step: async (step) => {
      const batch = await nextBatch(step);
      const [x, y] = setting<boolean>(c, defaults, 'augment') ? augment([batch.image, batch.label], { seed: seed * 1_000_003 + step }) : [batch.image, batch.label];
      const losses = tidy(() => {
        const logits = model.call(x);
        const seg = mul(add(crossEntropy(logits, y), diceLoss(logits, y)), 0.5);
        if (!disc || !optD) {
          seg.backward();
          return { loss: seg, seg, adv: null, d: null };
        }
        const probs = softmax(logits, { dim: 1 });
        const real = cat([x, permute(cast(oneHot(y, NUM_CLASSES), 'f32'), [0, 3, 1, 2])], 1);
        const d = discriminatorLoss(disc.call(real), disc.call(cat([x, probs.detach()], 1)), kind);
        d.backward();
        optD.step();
        optD.zeroGrad();
        const adv = generatorAdversarialLoss(disc.call(cat([x, probs], 1)), kind);
        const loss = add(seg, mul(adv, advWeight));
        loss.backward();
        // the generator's adversarial backward also reached the discriminator: not its own objective, dropped
        optD.zeroGrad();
        return { loss, seg, adv, d };
      });
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      const logged: Record<string, number> = { loss: await losses.loss.item(), seg: await losses.seg.item(), lr: optimizer.paramGroups[0].lr };
      if (losses.adv && losses.d) (logged.adv = await losses.adv.item()), (logged.discriminator = await losses.d.item());
      for (const t of new Set([losses.loss, losses.seg, losses.adv, losses.d, x, y, batch.image, batch.label])) t?.dispose();
      return logged;
    },
  });
  await closeIterator();
  for (const owned of [optimizer, optD, model, disc, data.image, data.label]) owned?.dispose();
  return result;
}

export const castformer = defineRecipe({
  name: 'castformer',
  description: 'CASTformer (reconstructed: CATformer generator + transformer discriminator) on the multi-structure phantom; --variant full|no-adv|no-cam; Dice, Jaccard, HD95, ASD per structure',
  defaults,
  train,
  evaluate: (ctx) => evaluateCheckpoint(ctx.checkpoint, buildGenerator(ctx.config), (model) => evaluateModel(model, ctx.config, ctx.outDir)),
});
