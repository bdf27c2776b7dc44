// The reg recipe: every method trains and evaluates on tiny phantom pairs without leaking tensors; the warm-start
// schedule runs motion, then the auxiliary network, then both; the auxiliary phase never changes the displacement
// network (the papers' stop-gradient); and a resumed AdaCS run (with its momentum state) ends bit-for-bit where an
// uninterrupted one ends.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';
import { decodePng } from './png.mjs';

test.before(setup);
const dir = mkdtempSync(join(tmpdir(), 'vg-reg-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const recipe = () => vg.methods.recipes.reg;
const TINY = { size: 32, trainPairs: 4, testPairs: 3, batchSize: 2, stepsPerEpoch: 2, warmStartEpochs: 1, checkpointEvery: 100 };
const config = (over) => ({ ...recipe().defaults, ...TINY, ...over });

async function tensorsOf(path) {
  const out = {};
  for (const [k, t] of Object.entries(await vg.io.readSafetensors(path))) {
    out[k] = Buffer.from((await t.data()).buffer).toString('base64');
    t.dispose();
  }
  return out;
}

for (const method of ['mse', 'ncc', 'hetero', 'adacs', 'bim'])
  test(`${method}: trains, evaluates (Dice, HD95, HD, ASD, folding per pair) and frees everything`, async () => {
    const before = vg.memory().liveTensors;
    const r = await recipe().train({ config: config({ method, steps: 6 }), outDir: null });
    assert.ok(r.finished);
    // the two-network methods add their auxiliary-only warm-start epoch (2 steps) to the 6 displacement steps
    assert.is(r.history.length, method === 'hetero' || method === 'adacs' ? 8 : 6);
    assert.ok(r.history.every((h) => Number.isFinite(h.loss)));
    const e = r.evaluation;
    assert.is(e.pairs, 3);
    for (const k of ['dice', 'dice0', 'dice_Myo', 'dice_LV', 'dice_RV']) assert.ok(e[k] >= 0 && e[k] <= 1, `${k} ${e[k]}`);
    assert.ok(e.folding >= 0 && e.folding <= 1 && e.hd95_Myo >= 0 && e.hd_Myo >= e.hd95_Myo);
    // ASD from the fixed surface (the papers' medpy asd(gt, pred)) is a mean, so at most the HD
    assert.ok(e.asd_Myo >= 0 && e.asd_Myo <= e.hd_Myo, `asd ${e.asd_Myo}`);
    assert.is(vg.memory().liveTensors, before);
  });

for (const backbone of ['transmorph', 'regnet'])
  test(`${backbone} backbone: trains with the papers' losses and reports voxel displacements for the metrics`, async () => {
    const before = vg.memory().liveTensors;
    const r = await recipe().train({ config: config({ backbone, method: backbone === 'regnet' ? 'bim' : 'hetero', steps: 5, testPairs: 1 }), outDir: null });
    assert.ok(r.finished && r.history.every((h) => Number.isFinite(h.loss)));
    assert.ok(r.evaluation.dice >= 0 && r.evaluation.dice <= 1 && r.evaluation.folding >= 0);
    assert.is(vg.memory().liveTensors, before);
  });

test("data 'acdc': the papers' ACDC slices (training/ to train, testing/ to test) from a folder in the release layout", async () => {
  const root = join(dir, 'acdc');
  const [X, Y, Z] = [20, 18, 2];
  const affine = [[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 8, 0], [0, 0, 0, 1]];
  // a ring of myocardium (2) around a cavity (3) beside a right ventricle (1), shrinking from ED to ES
  const labelAt = (i, j, r) => {
    const d = Math.hypot(i - 10, j - 9);
    return d < r ? 3 : d < r + 2 ? 2 : Math.hypot(i - 10, j - 2) < 3 ? 1 : 0;
  };
  for (const [split, n] of [['training', 1], ['training', 2], ['testing', 101]]) {
    const name = `patient${String(n).padStart(3, '0')}`;
    const folder = join(root, split, name);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'Info.cfg'), 'ED: 1\nES: 7\nGroup: NOR\nNbFrame: 10\n');
    for (const [f, r] of [[1, 5], [7, 4]]) {
      const lab = Int32Array.from({ length: X * Y * Z }, (_, q) => labelAt(Math.floor(q / (Y * Z)), Math.floor(q / Z) % Y, r));
      const img = Float32Array.from(lab, (l) => [20, 200, 90, 220][l] + n);
      const [a, l] = [vg.tensor(img, [X, Y, Z]), vg.tensor(lab, [X, Y, Z], { dtype: 'i32' })];
      await vg.io.writeNifti(join(folder, `${name}_frame0${f}.nii.gz`), a, { affine });
      await vg.io.writeNifti(join(folder, `${name}_frame0${f}_gt.nii.gz`), l, { affine });
      a.dispose();
      l.dispose();
    }
  }
  const r = await recipe().train({ config: config({ data: 'acdc', root, steps: 2 }), outDir: join(dir, 'acdc-run') });
  assert.ok(r.finished);
  // the one testing patient's two slices are the test set; the labels include RV, myocardium and LV
  assert.is(r.evaluation.pairs, Z);
  assert.ok(r.evaluation.dice0_Myo > 0 && r.evaluation.dice0_LV > 0 && r.evaluation.dice0_RV > 0);
});

test("data 'camus': both views' ED→ES pairs, a seeded 60/20/20 patient split, the myocardium evaluated", async () => {
  const root = join(dir, 'camus');
  const [X, Y] = [24, 20];
  const affine = [[0.3, 0, 0, 0], [0, 0.15, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  // a myocardial ring (2) around the cavity (1), an atrium (3) below; the ring thickens from ED to ES
  const labelAt = (i, j, r) => {
    const d = Math.hypot(i - 12, j - 8);
    return d < r ? 1 : d < 8 ? 2 : Math.hypot(i - 12, j - 17) < 3 ? 3 : 0;
  };
  for (let n = 1; n <= 5; n++) {
    const name = `patient${String(n).padStart(4, '0')}`;
    mkdirSync(join(root, name), { recursive: true });
    for (const view of ['2CH', '4CH']) {
      writeFileSync(join(root, name, `Info_${view}.cfg`), 'ED: 1\nES: 12\nNbFrame: 20\n');
      for (const [phase, r] of [['ED', 6], ['ES', 4]]) {
        const lab = Uint8Array.from({ length: X * Y }, (_, q) => labelAt(Math.floor(q / Y), q % Y, r));
        const img = Float32Array.from(lab, (l) => [10, 60, 200, 40][l] + n);
        const [a, l] = [vg.tensor(img, [X, Y]), vg.tensor(Int32Array.from(lab), [X, Y], { dtype: 'i32' })];
        await vg.io.writeNifti(join(root, name, `${name}_${view}_${phase}.nii.gz`), a, { affine });
        await vg.io.writeNifti(join(root, name, `${name}_${view}_${phase}_gt.nii.gz`), l, { datatype: 'uint8', affine });
        a.dispose();
        l.dispose();
      }
    }
  }
  const r = await recipe().train({ config: config({ data: 'camus', root, size: 16, steps: 2 }), outDir: join(dir, 'camus-run') });
  assert.ok(r.finished);
  // 5 patients: 3 train, 1 validation (unused), 1 test, both views each
  assert.is(r.evaluation.pairs, 2);
  assert.ok(r.evaluation.dice0_Myo > 0.3 && r.evaluation.dice_Myo >= 0);
  assert.ok(!('dice_LV' in r.evaluation), 'CAMUS is evaluated on the myocardium only');
  try {
    await recipe().train({ config: config({ data: 'camus', root: join(dir, 'acdc') }), outDir: null });
    assert.unreachable('no error for a root without patientNNNN folders');
  } catch (e) {
    assert.ok(e.message.includes("data 'camus'") && e.message.includes('0 patientNNNN folders'), e.message);
  }
});

test("RegNet's normalised output as a voxel displacement: warping with it reproduces RegNet's own gridSample warp", async () => {
  const [H, W] = [7, 10];
  const image = vg.rand([2, 1, H, W], { seed: 21 });
  const u = vg.tidy(() => vg.rand([2, 2, H, W], { seed: 22 }).sub(0.5).mul(0.4)); // channel 0 along W, 1 along H
  // RegNet's warp (official): identity from linspace(-1, 1) plus u, sampled with alignCorners false
  const grid = new Float32Array(2 * H * W * 2);
  const ud = await u.data();
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const o = ((n * H + i) * W + j) * 2;
        grid[o] = -1 + (2 * j) / (W - 1) + ud[((n * 2 + 0) * H + i) * W + j];
        grid[o + 1] = -1 + (2 * i) / (H - 1) + ud[((n * 2 + 1) * H + i) * W + j];
      }
  const g = vg.tensor(grid, [2, H, W, 2]);
  const want = vg.gridSample(image, g, { alignCorners: false });
  const flow = vg.methods.registration.regnetVoxelFlow(u);
  assert.equal(flow.shape, [2, 2, H, W]);
  const got = vg.spatialTransform(image, flow);
  const [a, b] = [await got.data(), await want.data()];
  // the same bilinear sample positions, reached through two f32 coordinate transforms
  for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-5, `element ${k}: ${a[k]} vs ${b[k]}`);
  for (const t of [image, u, g, want, flow, got]) t.dispose();
});

test('bad settings name the setting, the choices and what was given', async () => {
  const fails = async (over, fragments) => {
    try {
      await recipe().train({ config: config(over), outDir: null });
      assert.unreachable(`no error for ${JSON.stringify(over)}`);
    } catch (e) {
      for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    }
  };
  await fails({ method: 'nlll' }, ['method must be one of', "'hetero'", "got 'nlll'"]);
  await fails({ variant: 'noisy' }, ['variant must be one of', "'speckle'", "got 'noisy'"]);
  await fails({ data: 'acdc' }, ["data 'acdc' needs root"]);
  await fails({ backbone: 'unet' }, ["backbone must be 'voxelmorph', 'transmorph' or 'regnet'", "got 'unet'"]);
  await fails({ steps: '10' }, ["'steps' must be a number", '"10"']);
});

test('warm start: motion only, then the auxiliary network only, then both; as many displacement steps as the baseline', async () => {
  for (const method of ['hetero', 'adacs']) {
    const r = await recipe().train({ config: config({ method, steps: 6, testPairs: 1 }), outDir: null });
    // epochs of 2 steps: [0, 2) motion, [2, 4) auxiliary, [4, 8) both: 6 motion steps as `steps` says
    assert.equal(r.history.map((h) => 'auxLoss' in h), [false, false, true, true, true, true, true, true], method);
    const motion = r.history.map((h) => h.loss !== h.auxLoss);
    assert.equal(motion, [true, true, false, false, true, true, true, true], method);
    if (method === 'adacs') assert.equal(r.history.map((h) => 'tvWeight' in h), motion);
  }
});

test("the auxiliary phase leaves the displacement network untouched, and the motion phase the auxiliary network", async () => {
  for (const method of ['hetero', 'adacs']) {
    // the networks after the first `steps` steps of a 6-step run (stopped there; the stop writes the checkpoint)
    const snap = async (steps) => {
      const out = join(dir, `${method}-${steps}`);
      let n = 0;
      await recipe().train({ config: config({ method, steps: 6, testPairs: 1 }), outDir: out, shouldStop: () => n++ >= steps });
      return tensorsOf(join(out, 'checkpoint.safetensors'));
    };
    const [s2, s3] = [await snap(2), await snap(3)];
    const aux = method === 'hetero' ? 'variance.' : 'scoring.';
    const keys = Object.keys(s2);
    assert.ok(keys.some((k) => k.startsWith(aux)) && keys.some((k) => k.startsWith('model.')));
    // step 2 is auxiliary-only: the backbone's weights are bit-identical, the auxiliary network's moved
    for (const k of keys.filter((x) => x.startsWith('model.'))) assert.ok(s2[k] === s3[k], `${method}: ${k} changed in the auxiliary phase`);
    assert.ok(keys.filter((x) => x.startsWith(aux) && x.endsWith('weight')).some((k) => s2[k] !== s3[k]), `${method}: the auxiliary network did not train`);
    // steps 0-1 are motion-only: the auxiliary network is still at its initialisation after step 1
    const s0 = await snap(1);
    for (const k of keys.filter((x) => x.startsWith(aux))) assert.ok(s0[k] === s2[k], `${method}: ${k} changed in the motion phase`);
  }
});

test('the evaluation figure: a residual panel, and the variance or score map for the methods that have one', async () => {
  for (const method of ['mse', 'hetero', 'adacs']) {
    const out = join(dir, `figure-${method}`);
    const before = vg.memory().liveTensors;
    await recipe().train({ config: config({ method, steps: 2, testPairs: 1 }), outDir: out });
    assert.is(vg.memory().liveTensors, before, `${method}: the figure's tensors are freed`);
    const png = decodePng(readFileSync(join(out, 'figure.png')));
    // 2 rows × 4 columns of 32² panels, 4-pixel gaps, a 10-pixel title band above each row
    assert.is(png.W, 4 + 4 * 36);
    assert.is(png.H, 4 + 2 * 46);
    const cell = (r, c) => png.pixels.slice(4 + r * 46 + 10, 4 + r * 46 + 42).flatMap((row) => row.slice(3 * (4 + c * 36), 3 * (4 + c * 36 + 32)));
    assert.ok(cell(0, 3).some((v) => v !== 255), `${method}: residual panel empty`);
    // the bottom-right cell holds the auxiliary map, and is left blank without one
    assert.is(cell(1, 3).some((v) => v !== 255), method !== 'mse', method);
  }
});

test("the auxiliary map checked against the phantom's truth: AdaCS's score on the pixels without correspondence, the variance net's log σ² against the true noise variance", async () => {
  const out = join(dir, 'checks-adacs');
  await recipe().train({ config: config({ method: 'adacs', variant: 'missing-correspondence', steps: 2, testPairs: 2 }), outDir: out });
  const rows = await vg.io.readCsv(join(out, 'pairs.csv'));
  // recomputed here from the checkpoint's scoring network, apart from the evaluation's code path
  const net = new vg.models.ScoringNet([32, 32], { seed: 1 });
  const saved = await vg.io.readSafetensors(join(out, 'checkpoint.safetensors'));
  const scoring = Object.fromEntries(Object.entries(saved).filter(([k]) => k.startsWith('scoring.')).map(([k, t]) => [k.slice('scoring.'.length), t]));
  net.loadStateDict(scoring);
  for (const t of Object.values(saved)) t.dispose();
  const test = vg.data.phantomPairs({ count: 2, size: 32, split: 'test', variant: 'missing-correspondence' });
  for (let i = 0; i < 2; i++) {
    const a = test.arrays(i);
    const fixed = vg.tensor(a.fixed, [1, 1, 32, 32]);
    const score = await vg.noGrad(() => net.call(fixed)).data();
    const on = [], off = [];
    a.mask.forEach((m, k) => m > 0 && (a.missing[k] > 0.5 ? on : off).push(k));
    const mean = (idx) => idx.reduce((s, k) => s + score[k], 0) / idx.length;
    assert.ok(on.length > 0 && off.length > 0);
    assert.ok(Math.abs(rows[i].score_missing - mean(on)) < 1e-6 && Math.abs(rows[i].score_kept - mean(off)) < 1e-6, `pair ${i}`);
    // AUROC by counting every (missing, kept) pixel pair
    let wins = 0;
    for (const p of on) for (const q of off) wins += score[p] < score[q] ? 1 : score[p] === score[q] ? 0.5 : 0;
    assert.ok(Math.abs(rows[i].auroc_missing - wins / (on.length * off.length)) < 1e-9, `auroc ${i}`);
    fixed.dispose();
  }
  net.dispose();
  const het = join(dir, 'checks-hetero');
  const r = await recipe().train({ config: config({ method: 'hetero', variant: 'heteroscedastic', steps: 2, testPairs: 2 }), outDir: het });
  const corr = (await vg.io.readCsv(join(het, 'pairs.csv'))).map((row) => row.corr_logvar);
  assert.ok(corr.every((c) => c >= -1 && c <= 1), String(corr));
  assert.ok(Math.abs(r.evaluation.corr_logvar - (corr[0] + corr[1]) / 2) < 1e-12);
  // on the clean variant there is no noise variance to check against
  const clean = await recipe().train({ config: config({ method: 'hetero', steps: 2, testPairs: 1 }), outDir: null });
  assert.ok(Number.isNaN(clean.evaluation.corr_logvar));
});

test('trainSeed changes the initialisation and batch order, not the data; -1 is the data seed', async () => {
  const run = async (over, name) => {
    const out = join(dir, `seed-${name}`);
    const r = await recipe().train({ config: config({ steps: 2, testPairs: 2, seed: 4, ...over }), outDir: out });
    return { r, weights: await tensorsOf(join(out, 'checkpoint.safetensors')) };
  };
  const [dflt, same, other] = [await run({}, 'default'), await run({ trainSeed: 4 }, 'same'), await run({ trainSeed: 9 }, 'other')];
  assert.equal(dflt.weights, same.weights);
  assert.not.equal(other.weights, dflt.weights);
  // the same test pairs: the unregistered Dice is a property of the data only
  assert.is(other.r.evaluation.dice0, dflt.r.evaluation.dice0);
  try {
    await recipe().train({ config: config({ trainSeed: -2 }), outDir: null });
    assert.unreachable('no error for trainSeed -2');
  } catch (e) {
    assert.ok(e.message.includes('trainSeed must be an integer ≥ 0, or -1') && e.message.includes('-2'), e.message);
  }
});

test('displacement error where the truth is known: |flow + trueFlow(x + flow)| against a bilinear JS reference', async () => {
  const [H, W] = [9, 11];
  const r = (seed) => { let x = seed; return () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1; };
  const rnd = r(7);
  const trueFlow = Float32Array.from({ length: 2 * H * W }, () => 1.5 * rnd());
  const flow = Float32Array.from({ length: 2 * H * W }, () => 1.2 * rnd());
  const mask = Float32Array.from({ length: H * W }, (_, i) => (i % 5 === 0 ? 0 : 1));
  // bilinear sample of channel c of trueFlow at (y, x), coordinates clamped to the grid (border padding)
  const at = (c, y, x) => {
    const cy = Math.min(Math.max(y, 0), H - 1);
    const cx = Math.min(Math.max(x, 0), W - 1);
    const [y0, x0] = [Math.min(Math.floor(cy), H - 2), Math.min(Math.floor(cx), W - 2)];
    const [fy, fx] = [cy - y0, cx - x0];
    const v = (i, j) => trueFlow[c * H * W + i * W + j];
    return (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x0 + 1)) + fy * ((1 - fx) * v(y0 + 1, x0) + fx * v(y0 + 1, x0 + 1));
  };
  let epe = 0, epe0 = 0, n = 0;
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const q = i * W + j;
      if (!mask[q]) continue;
      const [dy, dx] = [flow[q], flow[H * W + q]];
      epe += Math.hypot(dy + at(0, i + dy, j + dx), dx + at(1, i + dy, j + dx));
      epe0 += Math.hypot(trueFlow[q], trueFlow[H * W + q]);
      n++;
    }
  const image = vg.rand([1, H, W], { seed: 3 });
  const labels = vg.tensor(Int32Array.from({ length: H * W }, (_, q) => (q % W > 4 ? 1 : 0)), [H, W], { dtype: 'i32' });
  const pair = () => ({ moving: image.clone(), fixed: image.clone(), movingLabel: labels.clone(), fixedLabel: labels.clone(), mask: vg.tensor(mask, [1, H, W]), trueFlow: vg.tensor(trueFlow, [2, H, W]) });
  const backbone = {
    name: 'voxelmorph',
    module: new vg.nn.Module(),
    gradMult: 1,
    run: (src) => ({ warped: src.clone(), inverseWarped: null, flow: vg.tensor(flow, [1, 2, H, W]), regFlow: null, mask: null }),
  };
  const ev = await vg.methods.registration.evaluateRegistration(backbone, { length: 1, get: async () => pair() }, { structures: { 1: 'A' } });
  assert.ok(Math.abs(ev.rows[0].epe - epe / n) < 1e-5, `epe ${ev.rows[0].epe} vs ${epe / n}`);
  assert.ok(Math.abs(ev.rows[0].epe0 - epe0 / n) < 1e-5, `epe0 ${ev.rows[0].epe0} vs ${epe0 / n}`);
  for (const t of [image, labels]) t.dispose();
});

test('a resumed AdaCS run (momentum weight included) ends bit-for-bit where an uninterrupted one ends', async () => {
  const full = join(dir, 'full');
  const a = await recipe().train({ config: config({ method: 'adacs', steps: 6, testPairs: 1 }), outDir: full });
  const part = join(dir, 'part');
  await recipe().train({ config: config({ method: 'adacs', steps: 6, testPairs: 1 }), outDir: part, shouldStop: (() => { let n = 0; return () => n++ >= 5; })() });
  const b = await recipe().train({ config: config({ method: 'adacs', steps: 6, testPairs: 1 }), outDir: part, resume: join(part, 'checkpoint.safetensors') });
  assert.equal(b.history.map((h) => h.tvWeight), a.history.slice(5).map((h) => h.tvWeight));
  assert.equal(await tensorsOf(join(part, 'checkpoint.safetensors')), await tensorsOf(join(full, 'checkpoint.safetensors')));
});

test.run();
