// End to end: the unet-phantom recipe (the README's main job) trains a UNet2D on embedded phantom subjects with GPU
// augmentations, and segments held-out subjects (other seeds) with a Dice above 0.8 for every structure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';

test.before(setup);

test('UNet2D trained on the cardiac phantom segments held-out phantoms: Dice > 0.8 for RV, myocardium and LV', async () => {
  const recipe = vg.methods.recipes['unet-phantom'];
  const before = vg.memory().liveTensors;
  const result = await recipe.train({ config: { ...recipe.defaults }, outDir: null });
  assert.ok(result.finished);
  assert.is(result.history.length, recipe.defaults.steps);
  const { dice, meanDice, frames } = result.evaluation;
  assert.is(frames, 2 * recipe.defaults.testSubjects);
  for (const [structure, d] of Object.entries(dice)) assert.ok(d > 0.8, `${structure} Dice ${d}`);
  assert.ok(meanDice > 0.8, `mean Dice ${meanDice}`);
  // the loss fell and nothing the run made is left alive
  const first = result.history.slice(0, 5).reduce((a, h) => a + h.loss, 0) / 5;
  const last = result.history.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
  assert.ok(last < first / 4, `loss ${first} -> ${last}`);
  assert.is(vg.memory().liveTensors, before);
});

test.run();
