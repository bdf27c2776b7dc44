// The `seg` recipe end to end at toy size: every method trains (pre-training and fine-tuning stages), logs its loss
// terms, evaluates Dice, Jaccard, HD95 and ASD per class, and writes the run folder (overlays, predicted NIfTI).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup, vg } from './helpers.mjs';

test.before(setup);
const tiny = { size: 16, features: [2, 2, 2, 2, 2], queries: 4, negatives: 8, globalDim: 8, repDim: 8, batchSize: 2, steps: 1, pretrainSteps: 2 };

const TERMS = {
  supervised: ['sup'],
  'mean-teacher': ['sup', 'unsup'],
  action: ['sup', 'unsup', 'anco'],
  actionpp: ['sup', 'unsup', 'anco', 'tsc'],
  mona: ['sup', 'unsup', 'contrast', 'nn', 'eqv'],
};

test('seg: every method runs its stages and logs its loss terms; the run folder holds overlays and the prediction', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vg-seg-'));
  for (const [method, terms] of Object.entries(TERMS)) {
    const out = join(dir, method);
    const live = vg.memory().liveTensors;
    const r = await vg.methods.seg.train({ config: { ...tiny, method }, outDir: out });
    // a forward's intermediates outside a tidy scope once outlived every step (~90 tensors a step)
    assert.is(vg.memory().liveTensors, live, `${method}: tensors left alive by a run`);
    const pre = method === 'action' || method === 'actionpp' || method === 'mona' ? 2 : 0;
    assert.is(r.history.length, pre + 1, method);
    if (pre) {
      // ACTION's stage i is the global term only; stage ii (and MONA throughout) adds local and supervised
      assert.ok('global' in r.history[0]);
      assert.is('local' in r.history[0], method === 'mona');
      assert.ok('local' in r.history[1] && 'sup' in r.history[1]);
    }
    const last = r.history[r.history.length - 1];
    for (const t of terms) assert.ok(Number.isFinite(last[t]), `${method}: ${t} = ${last[t]}`);
    assert.ok(Math.abs(last.loss - terms.reduce((s, t) => s + last[t], 0)) < 1e-5, `${method}: loss is the sum of its terms`);
    for (const k of ['dice', 'jaccard', 'hd95', 'asd']) assert.equal(Object.keys(r.evaluation[k]), ['RV', 'Myo', 'LV'], `${method} ${k}`);
    assert.ok(r.evaluation.meanDice >= 0 && r.evaluation.meanDice <= 1);
    for (const f of ['overlays.png', 'prediction.nii.gz', 'metrics.json', 'checkpoint.safetensors']) assert.ok(existsSync(join(out, f)), `${method}: ${f}`);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('seg: the 3-D phantom trains a VNet with mean teacher, ACTION and ACTION++; unsupported combinations and settings are named', async () => {
  const tiny3d = { data: 'phantom3d', size: 32, vnetFilters: 1, labeled: 2, steps: 1, pretrainSteps: 2, batchSize: 2, queries: 4, negatives: 8, globalDim: 8, repDim: 8 };
  for (const method of ['mean-teacher', 'action', 'actionpp']) {
    const live = vg.memory().liveTensors;
    const r = await vg.methods.seg.train({ config: { ...tiny3d, method } });
    assert.equal(Object.keys(r.evaluation.dice), ['LA'], method);
    assert.is(vg.memory().liveTensors, live, `${method}: tensors left alive by a 3-D run`);
    const last = r.history[r.history.length - 1];
    for (const t of TERMS[method]) assert.ok(Number.isFinite(last[t]), `3-D ${method}: ${t} = ${last[t]}`);
    // 3-D local distillation: 27 cubic patches of the logit map (the second pre-training step is stage ii)
    if (method !== 'mean-teacher') assert.ok(Number.isFinite(r.history[1].local), `3-D ${method}: local term ${r.history[1].local}`);
  }
  let err;
  try {
    await vg.methods.seg.train({ config: { method: 'mona', data: 'phantom3d', size: 16, vnetFilters: 1, labeled: 2 } });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof vg.VoxgradError && /method 'mona' is built for the 2-D UNet/.test(err.message), String(err));
  err = undefined;
  try {
    await vg.methods.seg.train({ config: { method: 'fixmatch' } });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof vg.VoxgradError && /method must be one of supervised, mean-teacher, action, actionpp, mona, got 'fixmatch'/.test(err.message), String(err));
  err = undefined;
  try {
    await vg.methods.seg.train({ config: { method: 'mona', equivarianceWarp: 'elastic' } });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof vg.VoxgradError && /equivarianceWarp must be 'tps' or 'affine', got 'elastic'/.test(err.message), String(err));
  for (const bad of ['cutmix,mixup', '']) {
    err = undefined;
    try {
      await vg.methods.seg.train({ config: { method: 'mean-teacher', strongView: bad } });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof vg.VoxgradError && /strongView must be 'none' or a comma-separated list of cutmix, jitter, blur, morph/.test(err.message), String(err));
  }
});

test.run();
