// The robust-CLIP recipe end to end at a tiny size (Fashion-MNIST from Debian's dataset-fashion-mnist): it writes its
// run folder even when the folder does not exist yet, the same settings give the same evaluation bit for bit (fresh or
// from the pretrained-model cache), a changed pretraining setting never loads a model cached under other settings, and
// no method leaves tensors behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';

test.before(setup);

const TINY = { method: 'erm', pretrainSteps: 3, pretrainBatch: 64, pretrainImages: 512, trainImages: 256, valImages: 128, testImages: 128, epochs: 1 };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'voxgrad-clip-'));

async function run(config, outDir = null) {
  const logs = [];
  const r = await vg.methods.recipes.clip.train({ config: { ...TINY, ...config }, outDir, log: (m) => logs.push(m) });
  return { ...r, logs };
}

test('clip recipe: run folder created, results identical run to run and through the cache, stale cache never loaded', async () => {
  const live = vg.memory().liveTensors;
  const cache = path.join(root, 'cache');
  const outDir = path.join(root, 'runs', 'erm'); // neither folder exists yet
  const first = await run({ cache }, outDir);
  const written = JSON.parse(fs.readFileSync(path.join(outDir, 'evaluation.json'), 'utf8'));
  assert.equal(written.evaluation, first.evaluation);
  assert.is(first.history.length, 3, 'pretrained here: three losses');
  assert.ok(fs.existsSync(vg.methods.clip.pretrainedCacheFile(cache, { ...TINY })), 'the cache file is named by the settings');

  const fresh = await run({});
  assert.equal(fresh.evaluation, first.evaluation, 'same settings, no cache: the same evaluation');
  const fromCache = await run({ cache });
  assert.ok(fromCache.logs.some((m) => m.startsWith('loaded the pretrained CLIP')), fromCache.logs.join('\n'));
  assert.equal(fromCache.evaluation, first.evaluation, 'the cached model gives the same evaluation');

  const other = await run({ cache, pretrainSteps: 2 });
  assert.not.ok(other.logs.some((m) => m.startsWith('loaded the pretrained CLIP')), 'two pretraining steps must not load the three-step model');
  assert.is(other.history.length, 2);
  assert.is(vg.memory().liveTensors, live, 'every run releases what it made');
});

test('clip recipe: every method releases what it made (optimizer states, per-step index tensors)', async () => {
  const cache = path.join(root, 'cache'); // the pretrained model of the test above: no pretraining here
  for (const method of ['zeroshot', 'dfr', 'jtt', 'cfr']) {
    const live = vg.memory().liveTensors;
    const r = await run({ cache, method, epochs: 2, jttEpochs: 1, dfrEpochs: 2 });
    assert.ok(r.evaluation.test.average >= 0 && r.evaluation.test.average <= 1, `${method}: ${JSON.stringify(r.evaluation.test)}`);
    assert.is(vg.memory().liveTensors, live, `${method}: live tensors after the run`);
  }
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
