// The `itl` recipe end to end at toy size: five stages (one per phantom site), the per-site Dice matrix after each
// stage, backward transfer and the final per-site Dice/Jaccard/HD95/ASD; itl adds the weighted distillation from the
// second site on, naive trains on the supervised loss alone, joint draws its batches from every site.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);
const tiny = { size: 32, width: 4, featureBase: 4, firstSteps: 1, steps: 1, batchSize: 2, trainSubjects: 1, testSubjects: 1, checkpointEvery: 5 };
const SITES = ['A', 'B', 'C', 'D', 'E'];
let itlFirstStage = null;

test('itl: five stages, distillation weighted by siteWeight from the second site, Dice matrix, BWT and final scores; run folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vg-itl-'));
  vg.manualSeed(11);
  const r = await vg.methods.itl.train({ config: { ...tiny, method: 'itl', lambda: 2 }, outDir: dir });
  assert.equal(r.history.map((h) => h.stage), [0, 1, 2, 3, 4]);
  itlFirstStage = r.history[0];
  assert.equal(r.history.map((h) => h.sitesSeen), [1, 2, 4, 8, 16], 'stage k trains on site k only');
  assert.not.ok('distill' in r.history[0], 'no distillation on the first site');
  for (const h of r.history.slice(1)) {
    assert.ok(h.distill > 0 && Number.isFinite(h.distill), `stage ${h.stage}: distill = ${h.distill}`);
    const expected = h.supervised + vg.methods.siteWeight(2, h.stage + 1) * h.distill;
    assert.ok(Math.abs(h.loss - expected) < 1e-5 * Math.max(1, expected), `stage ${h.stage}: loss ${h.loss} = supervised + λ_k · distill (${expected})`);
  }
  const e = r.evaluation;
  assert.equal(e.sites, SITES);
  assert.is(e.diceMatrix.length, 5);
  for (const row of e.diceMatrix) assert.ok(row.length === 5 && row.every((d) => d >= 0 && d <= 1), `row ${row}`);
  assert.is(e.backwardTransfer, vg.methods.backwardTransfer(e.diceMatrix));
  assert.ok(Math.abs(e.finalMeanDice - e.diceMatrix[4].reduce((a, b) => a + b, 0) / 5) < 1e-12);
  assert.equal(Object.keys(e.perSite), SITES);
  for (const s of SITES)
    for (const k of ['meanDice', 'meanJaccard', 'meanHd95Mm', 'meanAsdMm']) assert.ok(Number.isFinite(e.perSite[s][k]), `site ${s} ${k} = ${e.perSite[s][k]}`);
  // the matrix's last row and the final per-site Dice score the same model on the same frames
  SITES.forEach((s, k) => assert.ok(Math.abs(e.perSite[s].meanDice - e.diceMatrix[4][k]) < 1e-9, `site ${s}`));
  for (const f of ['overlays.png', 'metrics.json', 'checkpoint.safetensors', ...SITES.map((s) => `prediction-${s}.nii.gz`)]) assert.ok(existsSync(join(dir, f)), f);
  const again = await vg.methods.itl.evaluate({ config: { ...tiny, method: 'itl', lambda: 2 }, checkpoint: join(dir, 'checkpoint.safetensors') });
  SITES.forEach((s) => assert.ok(Math.abs(again.perSite[s].meanDice - e.perSite[s].meanDice) < 1e-9, `checkpoint evaluation, site ${s}`));
  rmSync(dir, { recursive: true, force: true });
});

test('naive: the loss is the supervised loss alone, site by site; joint: batches from every site', async () => {
  // the same global generator (dropout masks) as the itl run above
  vg.manualSeed(11);
  const naive = await vg.methods.itl.train({ config: { ...tiny, method: 'naive' } });
  assert.equal(naive.history.map((h) => h.sitesSeen), [1, 2, 4, 8, 16]);
  // on the first site ITL is naive (λ_1 = 0): the results script trains that stage once for both
  assert.is(naive.history[0].loss, itlFirstStage.loss, 'the same first step as itl');
  for (const h of naive.history) {
    assert.not.ok('distill' in h, `stage ${h.stage}`);
    assert.is(h.loss, h.supervised, `stage ${h.stage}`);
  }
  const joint = await vg.methods.itl.train({ config: { ...tiny, method: 'joint', firstSteps: 2, batchSize: 6 } });
  assert.is(joint.history.length, 6, 'the same total steps: firstSteps + 4 × steps');
  assert.equal(joint.history.map((h) => h.stage), [0, 0, 1, 2, 3, 4]);
  assert.is(joint.history[1].lr, 0.003 * 0.5 ** 0.9, 'poly decay within a stage');
  assert.is(joint.history[2].lr, 0.003, 'restarted at the next stage');
  assert.is(joint.history.reduce((mask, h) => mask | h.sitesSeen, 0), 31, 'every site is sampled');
  assert.ok(joint.history.some((h) => h.sitesSeen & (h.sitesSeen - 1)), 'a batch mixes sites');
  for (const h of joint.history) assert.is(h.loss, h.supervised);
  assert.is(joint.evaluation.diceMatrix.length, 5);
});

test('itl: bad settings are named', async () => {
  const rejection = async (config) => {
    try {
      await vg.methods.itl.train({ config });
    } catch (e) {
      return e;
    }
    return null;
  };
  for (const [config, pattern] of [
    [{ method: 'lwf' }, /itl: method must be one of itl, naive, joint, got 'lwf'/],
    [{ steps: 0 }, /itl: steps must be a positive integer, got 0/],
  ]) {
    const err = await rejection(config);
    assert.ok(err instanceof vg.VoxgradError && pattern.test(err.message), String(err));
  }
  assertThrowsWith(() => new vg.models.ResNet(18, { width: 0 }), ['ResNet', 'width', 'positive integer', '0']);
  const narrow = new vg.models.ResNet(18, { width: 8, inChannels: 1 });
  assert.equal(narrow.skipChannels, [8, 8, 16, 32, 64]);
  narrow.dispose();
});

test.run();
