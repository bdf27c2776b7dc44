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

/** The run folder's embeddings: before/after [N, embedDim] unit rows, the test groups, and the PNG of their PCA. */
async function checkEmbeddings(outDir, evaluation) {
  const e = await vg.io.readSafetensors(path.join(outDir, 'embeddings.safetensors'));
  // the test split: testImages drawn, then fewer where a group runs short
  const N = e.groups.shape[0];
  assert.ok(N > 0 && N <= TINY.testImages, `test split of ${N}`);
  for (const k of ['before', 'after']) {
    assert.equal(e[k].shape, [N, 32], k);
    const v = await e[k].data();
    for (let i = 0; i < N; i++) {
      const n = Math.hypot(...v.subarray(i * 32, (i + 1) * 32));
      assert.ok(Math.abs(n - 1) < 1e-5, `${k}: row ${i} has norm ${n}, expected 1`);
    }
  }
  const groups = await e.groups.data();
  assert.equal(new Set(groups), new Set([0, 1, 2, 3]), 'every group in the test split');
  const png = fs.readFileSync(path.join(outDir, 'embeddings.png'));
  assert.equal([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  assert.ok(evaluation.test.worst <= evaluation.test.average);
  Object.values(e).forEach((t) => t.dispose());
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
  await checkEmbeddings(outDir, first.evaluation);

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
  // the ablation's settings (no TSC, no InfoNCE) and the figure of a CFR run (its "before" is the ERM head)
  const live = vg.memory().liveTensors;
  const outDir = path.join(root, 'runs', 'cfr-ablation');
  const r = await run({ cache, method: 'cfr', epochs: 2, cfrRegularCe: 1, cfrTscWeight: 0, cfrContrastWeight: 0 }, outDir);
  await checkEmbeddings(outDir, r.evaluation);
  assert.is(vg.memory().liveTensors, live, 'cfr without TSC and InfoNCE, with a run folder: live tensors after the run');
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
