// vg.metrics against independent references: the EDT against scipy.ndimage.distance_transform_edt and a float64 brute
// force; surface metrics against medpy's __surface_distances reproduced with scipy (test/fixtures/gen_metrics.py);
// Dice/Jaccard, per-label results and the empty-mask policies; Jacobian folding and log-Jacobian statistics against
// VoxelMorph's np.gradient determinant; group accuracies against JS counting; the paired t-test against scipy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const M = () => vg.metrics;
const cases = loadFixtures('metrics');
const ofKind = (k) => cases.filter((c) => c.kind === k);
// distances are square roots of f32 sums of a few squared integers times spacing^2: relative error ~ 1e-7
const TOL = { rtol: 1e-4, atol: 1e-5 };

function close(got, want, msg, { rtol = 1e-4, atol = 1e-5 } = {}) {
  if (want === got) return;
  assert.ok(Math.abs(got - want) <= atol + rtol * Math.abs(want), `${msg}: got ${got}, expected ${want}`);
}

async function rejectsWith(promiseFn, fragments, msg = '') {
  let err;
  try {
    await promiseFn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${msg} expected an error, none was thrown`);
  assert.instance(err, vg.VoxgradError, `${msg} expected a VoxgradError, got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `${msg} error message lacks "${f}": ${err.message}`);
}

const input = (e, dtype = 'i32') => fixtureRef(e).toTensor({ dtype });

// ---- distance transform ---------------------------------------------------------------------------------------------

test('distanceTransform matches scipy distance_transform_edt(~mask, sampling) in 1-D, 2-D and 3-D, both methods, i32 and f32 masks', async () => {
  const list = ofKind('edt');
  assert.is(list.length, 6);
  for (const c of list)
    for (const method of ['envelope', 'scan'])
      for (const dtype of ['i32', 'f32']) {
        const m = input(c.mask, dtype);
        const d = M().distanceTransform(m, { spacing: c.spacing, method });
        await assertClose(d, fixtureRef(c.expected), { ...TOL, msg: `edt ${c.mask.shape} ${c.spacing} ${method} ${dtype}` });
        m.dispose();
        d.dispose();
      }
});

test('distanceTransform: long lines vs a float64 brute force (anisotropic), -0.0 is background, no foreground gives +Infinity', async () => {
  const r = rng(3);
  const shape = [7, 300];
  const spacing = [3.1, 0.45];
  const mask = Array.from({ length: size(shape) }, () => (r.next() < 0.004 ? 1 : -0));
  mask[5] = 1;
  const fg = [];
  mask.forEach((v, i) => v && fg.push([Math.floor(i / 300), i % 300]));
  const want = new Ref(
    mask.map((_, i) => Math.min(...fg.map(([a, b]) => Math.hypot((Math.floor(i / 300) - a) * spacing[0], ((i % 300) - b) * spacing[1])))),
    shape,
  );
  for (const method of ['envelope', 'scan']) {
    const m = vg.tensor(Float32Array.from(mask), shape);
    const d = M().distanceTransform(m, { spacing, method });
    await assertClose(d, want, { ...TOL, msg: method });
    const z = M().distanceTransform(vg.zeros([4, 5]), { method });
    assert.ok((await z.data()).every((v) => v === Infinity), `${method}: empty mask`);
    for (const t of [m, d, z]) t.dispose();
  }
});

// ---- surface metrics ----------------------------------------------------------------------------------------------

test('hausdorff, hd95, asd, assd match medpy on 2-D and 3-D blobs with anisotropic spacing and connectivity 1..nd', async () => {
  const list = ofKind('surface');
  assert.is(list.length, 10);
  for (const c of list) {
    const [p, t] = [input(c.pred), input(c.target)];
    const o = { spacing: c.spacing, connectivity: c.connectivity };
    const msg = `${c.pred.shape} spacing ${c.spacing} connectivity ${c.connectivity}`;
    close(await M().hausdorff(p, t, o), c.hd, `hd ${msg}`);
    close(await M().hd95(p, t, o), c.hd95, `hd95 ${msg}`);
    close(await M().hd95(p, t, { ...o, combine: 'max' }), c.hd95max, `hd95 max ${msg}`);
    close(await M().asd(p, t, o), c.asd, `asd ${msg}`);
    close(await M().asd(t, p, o), c.asdReverse, `asd reversed ${msg}`);
    close(await M().assd(p, t, o), c.assd, `assd ${msg}`);
    close(await M().assd(p, t, { ...o, combine: 'concat' }), c.assdConcat, `assd concat ${msg}`);
    const d = await M().surfaceDistances(p, t, o);
    assert.is(d.predToTarget.length, c.nPred, `border voxels of pred ${msg}`);
    assert.is(d.targetToPred.length, c.nTarget, `border voxels of target ${msg}`);
    close(await M().dice(p, t), c.dice, `dice ${msg}`);
    close(await M().jaccard(p, t), c.jaccard, `jaccard ${msg}`);
    p.dispose();
    t.dispose();
  }
});

test('identical masks give distance 0 and Dice 1; one-voxel masks give their spacing-scaled distance', async () => {
  const c = ofKind('surface')[3];
  const p = input(c.pred, 'f32');
  for (const f of ['hausdorff', 'hd95', 'asd', 'assd']) assert.is(await M()[f](p, p, { spacing: c.spacing }), 0, f);
  assert.is(await M().dice(p, p), 1);
  assert.is(await M().jaccard(p, p), 1);
  p.dispose();
  const a = vg.zeros([6, 5, 7]);
  const b = vg.zeros([6, 5, 7]);
  const one = (t, i) => vg.tensor(Array.from({ length: t.size }, (_, k) => (k === i ? 3 : 0)), t.shape, { dtype: 'i32' });
  const [pa, pb] = [one(a, (1 * 5 + 4) * 7 + 2), one(b, (5 * 5 + 0) * 7 + 6)];
  const spacing = [1.5, 0.5, 2];
  const want = Math.hypot(4 * 1.5, 4 * 0.5, 4 * 2);
  for (const f of ['hausdorff', 'hd95', 'asd', 'assd']) close(await M()[f](pa, pb, { spacing }), want, `one voxel ${f}`);
  assert.is(await M().dice(pa, pb), 0);
  for (const t of [a, b, pa, pb]) t.dispose();
});

test('empty masks: explicit policies for one-sided and both-empty cases (surface and overlap)', async () => {
  const shape = [5, 8];
  const spacing = [2, 1];
  const empty = vg.zeros(shape);
  const full = vg.tensor(Array.from({ length: 40 }, (_, i) => (i === 9 ? 1 : 0)), shape);
  // one side empty
  assert.is(await M().hd95(full, empty), Infinity);
  assert.is(await M().hausdorff(empty, full, { spacing }), Infinity);
  close(await M().asd(empty, full, { spacing, empty: 'worst' }), Math.hypot(4 * 2, 7), 'worst = diagonal');
  assert.ok(Number.isNaN(await M().assd(full, empty, { empty: 'nan' })));
  await rejectsWith(() => M().hd95(full, empty, { empty: 'error' }), ['hd95', 'target mask is empty', "empty: 'inf'"]);
  assert.is(await M().dice(full, empty), 0);
  assert.is(await M().jaccard(empty, full), 0);
  // both empty
  assert.is(await M().hd95(empty, empty), 0);
  assert.ok(Number.isNaN(await M().hausdorff(empty, empty, { bothEmpty: 'nan' })));
  await rejectsWith(() => M().assd(empty, empty, { bothEmpty: 'error' }), ['assd', 'both empty', 'bothEmpty']);
  assert.is(await M().dice(empty, empty), 1);
  assert.is(await M().dice(empty, empty, { empty: 'zero' }), 0);
  assert.ok(Number.isNaN(await M().jaccard(empty, empty, { empty: 'nan' })));
  await rejectsWith(() => M().dice(empty, empty, { empty: 'error' }), ['dice', 'both empty', "empty: 'one'"]);
  for (const t of [empty, full]) t.dispose();
});

test('label maps: per-label Dice, Jaccard, HD, HD95, ASSD with a label missing in pred and one missing in both', async () => {
  const [c] = ofKind('labels');
  const [p, t] = [input(c.pred), input(c.target, 'f32')];
  const labels = c.labels;
  const d = await M().dice(p, t, { labels });
  const j = await M().jaccard(p, t, { labels });
  assert.equal(d.labels, labels);
  for (const l of labels) {
    const r = c.per[l];
    const wantD = r.pred + r.target ? (2 * r.both) / (r.pred + r.target) : 1;
    close(d.perLabel[l], wantD, `dice ${l}`);
    close(j.perLabel[l], r.pred + r.target ? r.both / (r.pred + r.target - r.both) : 1, `jaccard ${l}`);
  }
  close(d.mean, labels.reduce((s, l) => s + d.perLabel[l], 0) / 4, 'dice mean');
  const ds = await M().dice(p, t, { labels, empty: 'skip' });
  assert.equal(ds.skipped, [5]);
  close(ds.mean, (d.perLabel[1] + d.perLabel[2] + d.perLabel[3]) / 3, 'dice mean without the skipped label');
  const o = { spacing: c.spacing, labels };
  const hd = await M().hausdorff(p, t, o);
  const h95 = await M().hd95(p, t, { ...o, bothEmpty: 'skip' });
  const as = await M().assd(p, t, { ...o, empty: 'worst', bothEmpty: 'nan' });
  for (const l of [1, 2]) {
    close(hd.perLabel[l], c.per[l].hd, `hd ${l}`);
    close(h95.perLabel[l], c.per[l].hd95, `hd95 ${l}`);
    close(as.perLabel[l], c.per[l].assd, `assd ${l}`);
  }
  assert.is(hd.perLabel[3], Infinity);
  assert.is(hd.perLabel[5], 0);
  assert.is(hd.mean, Infinity, 'an empty prediction counts as the worst case in the mean');
  assert.is(h95.skipped.length, 1);
  close(as.perLabel[3], Math.hypot(8 * 2, 12, 10 * 0.8), 'worst = diagonal');
  assert.ok(Number.isNaN(as.perLabel[5]) && Number.isNaN(as.mean));
  // numClasses: labels 1..3 without the background, 0..3 with it
  const nc = await M().dice(p, t, { numClasses: 4 });
  assert.equal(nc.labels, [1, 2, 3]);
  const bg = await M().dice(p, t, { numClasses: 4, includeBackground: true });
  assert.equal(bg.labels, [0, 1, 2, 3]);
  const [pa, ta] = [await p.data(), await t.data()];
  let [np0, nt0, both0] = [0, 0, 0];
  for (let i = 0; i < pa.length; i++) {
    np0 += pa[i] === 0;
    nt0 += ta[i] === 0;
    both0 += pa[i] === 0 && ta[i] === 0;
  }
  close(bg.perLabel[0], (2 * both0) / (np0 + nt0), 'background dice');
  const h1 = await M().hd95(p, t, { spacing: c.spacing, numClasses: 3 });
  close(h1.perLabel[2], c.per[2].hd95, 'hd95 via numClasses');
  p.dispose();
  t.dispose();
});

// ---- registration -----------------------------------------------------------------------------------------------

test('jacobianFoldingFraction and logJacobianStats match the np.gradient determinant, with and without a mask', async () => {
  const list = ofKind('jacobian');
  assert.is(list.length, 2);
  for (const c of list) {
    const flow = input(c.flow, 'f32');
    const mask = input(c.mask);
    const msg = `flow ${c.flow.shape}`;
    close(await M().jacobianFoldingFraction(flow), c.folding, `folding ${msg}`, { rtol: 0, atol: 1e-12 });
    close(await M().jacobianFoldingFraction(flow, { mask }), c.foldingMasked, `masked folding ${msg}`, { rtol: 0, atol: 1e-12 });
    // log(1e-9) = -20.7 at folded voxels: f32 sums of O(10) terms
    const s = await M().logJacobianStats(flow);
    close(s.mean, c.logMean, `log mean ${msg}`, { rtol: 1e-4, atol: 1e-4 });
    close(s.std, c.logStd, `log std ${msg}`, { rtol: 1e-4, atol: 1e-4 });
    const sm = await M().logJacobianStats(flow, { mask: vg.reshape(mask, [1, 1, ...mask.shape]) });
    close(sm.mean, c.logMeanMasked, `masked log mean ${msg}`, { rtol: 1e-4, atol: 1e-4 });
    close(sm.std, c.logStdMasked, `masked log std ${msg}`, { rtol: 1e-4, atol: 1e-4 });
    close((await M().logJacobianStats(flow, { offset: 3 })).std, c.logStdOffset3, `Learn2Reg offset ${msg}`, { rtol: 1e-4, atol: 1e-4 });
    flow.dispose();
    mask.dispose();
  }
});

// ---- classification and statistics -----------------------------------------------------------------------------------

test('group accuracies from logits and from class indices vs JS counting; worst-group and weighted average accuracy', async () => {
  const r = rng(11);
  const n = 97;
  const C = 4;
  const logits = r.array(n * C);
  const label = Array.from({ length: n }, () => r.int(0, C));
  const group = Array.from({ length: n }, () => r.int(0, 5)).map((g) => (g === 3 ? 4 : g)); // group 3 absent
  const argmax = Array.from({ length: n }, (_, i) => {
    const row = logits.slice(i * C, i * C + C);
    return row.indexOf(Math.max(...row));
  });
  const per = {};
  const cnt = {};
  argmax.forEach((a, i) => {
    cnt[group[i]] = (cnt[group[i]] ?? 0) + 1;
    per[group[i]] = (per[group[i]] ?? 0) + (a === label[i] ? 1 : 0);
  });
  const acc = Object.fromEntries(Object.keys(cnt).map((g) => [g, per[g] / cnt[g]]));
  const [lt, yt, gt, it] = [vg.tensor(Float32Array.from(logits), [n, C]), vg.tensor(label, [n], { dtype: 'i32' }), vg.tensor(group, [n], { dtype: 'i32' }), vg.tensor(argmax, [n])];
  for (const pred of [lt, it]) {
    const res = await M().groupAccuracies(pred, yt, gt);
    assert.equal(Object.keys(res.perGroup), ['0', '1', '2', '4']);
    for (const g of Object.keys(acc)) close(res.perGroup[g], acc[g], `group ${g}`, { rtol: 0, atol: 1e-15 });
    close(res.worst, Math.min(...Object.values(acc)), 'worst');
    close(res.average, argmax.filter((a, i) => a === label[i]).length / n, 'average');
    close(await M().worstGroupAccuracy(pred, yt, gt), res.worst, 'worstGroupAccuracy');
  }
  close(await M().averageAccuracy(lt, yt), argmax.filter((a, i) => a === label[i]).length / n, 'averageAccuracy');
  const w = { 0: 0.5, 1: 0.2, 2: 0.2, 4: 0.1 };
  close(await M().averageAccuracy(lt, yt, { group: gt, groupWeights: w }), 0.5 * acc[0] + 0.2 * acc[1] + 0.2 * acc[2] + 0.1 * acc[4], 'weighted');
  await rejectsWith(() => M().groupAccuracies(vg.zeros([n + 1, C]), yt, gt), ['groupAccuracies', 'pred', `N = ${n}`]);
  await rejectsWith(() => M().averageAccuracy(lt, yt, { groupWeights: w }), ['averageAccuracy', 'groupWeights needs group']);
  for (const t of [lt, yt, gt, it]) t.dispose();
});

test('pairedTTest matches scipy.stats.ttest_rel (t, df, two-sided p); degenerate differences', () => {
  const list = ofKind('ttest');
  assert.is(list.length, 4);
  for (const c of list) {
    const r = M().pairedTTest(c.a, c.b);
    close(r.t, c.t, `t n=${c.a.length}`, { rtol: 1e-10, atol: 0 });
    assert.is(r.df, c.df);
    close(r.p, c.p, `p n=${c.a.length}`, { rtol: 1e-9, atol: 1e-300 });
  }
  const same = M().pairedTTest([1, 2, 3], [1, 2, 3]);
  assert.ok(Number.isNaN(same.t) && Number.isNaN(same.p));
  const shifted = M().pairedTTest([1, 2, 3], [0, 1, 2]);
  assert.is(shifted.t, Infinity);
  assert.is(shifted.p, 0);
  assertThrowsWith(() => M().pairedTTest([1, 2], [1]), ['pairedTTest', 'same length', '2 and 1']);
  assertThrowsWith(() => M().pairedTTest([1], [2]), ['pairedTTest', 'at least 2 pairs']);
});

test('pearsonCorrelation matches scipy.stats.pearsonr; auroc matches the Mann-Whitney U / (n+ n-) with ties', () => {
  const stats = loadFixtures('stats');
  const pearson = stats.filter((c) => c.kind === 'pearson');
  const roc = stats.filter((c) => c.kind === 'auroc');
  assert.ok(pearson.length === 3 && roc.length === 3);
  for (const c of pearson) close(M().pearsonCorrelation(c.a, c.b), c.r, `r n=${c.a.length}`, { rtol: 1e-12, atol: 1e-15 });
  for (const c of roc) close(M().auroc(c.scores, c.labels), c.auc, `auc n=${c.scores.length}`, { rtol: 1e-12, atol: 0 });
  assert.is(M().auroc([0.1, 0.9, 0.5], [0, 1, 0]), 1);
  assert.is(M().auroc([0.5, 0.5], [0, 1]), 0.5);
  assert.ok(Number.isNaN(M().auroc([1, 2], [1, 1])), 'one class only: NaN');
  assertThrowsWith(() => M().auroc([1, 2], [0, 2]), ['auroc', 'labels must be 0 or 1', 'index 1']);
  assertThrowsWith(() => M().pearsonCorrelation([1, 2, 3], [1, 2]), ['pearsonCorrelation', 'same length', '3 and 2']);
});

test('compareRuns: per-run means and scipy ttest_rel of each run against the baseline, cases matched by key', () => {
  const c = ofKind('ttest').find((x) => x.a.length >= 5);
  const n = c.a.length;
  const base = { name: 'mse', rows: c.b.map((v, i) => ({ pair: i, dice: v, dice_Myo: v / 2, hd95_Myo: i })) };
  // the method's rows in another order: matched by `pair`, not by position
  const order = Array.from({ length: n }, (_, i) => (i * 3 + 1) % n);
  assert.is(new Set(order).size, n);
  const method = { name: 'hetero', rows: order.map((i) => ({ pair: i, dice: c.a[i], dice_Myo: c.a[i] / 2, hd95_Myo: 2 * i })) };
  const table = M().compareRuns([base, method]);
  assert.equal(table.map((r) => r.run), ['mse', 'hetero']);
  assert.is(table[0].cases, n);
  close(table[0].dice, c.b.reduce((x, y) => x + y, 0) / n, 'baseline mean', { rtol: 1e-12, atol: 0 });
  close(table[1].hd95_Myo, (n - 1), 'method mean of 2i', { rtol: 1e-12, atol: 0 });
  assert.ok(!('p dice' in table[0]));
  close(table[1]['p dice'], c.p, 'p vs scipy', { rtol: 1e-9, atol: 1e-300 });
  close(table[1]['Δ dice'], c.a.reduce((x, y, i) => x + y - c.b[i], 0) / n, 'mean difference', { rtol: 1e-10, atol: 1e-15 });
  // halving both samples leaves t and p as they are
  close(table[1]['p dice_Myo'], c.p, 'p of the halved column', { rtol: 1e-9, atol: 1e-300 });
  assert.ok(!('p hd95_Myo' in table[1]), 'only Dice columns are tested by default');
  const other = M().compareRuns([base, method], { baseline: 'hetero', tested: ['hd95_Myo'] });
  close(other[0]['Δ hd95_Myo'], -(n - 1) / 2, 'baseline chosen by name', { rtol: 1e-12, atol: 0 });
  assertThrowsWith(() => M().compareRuns([base, method], { baseline: 'bim' }), ['compareRuns', "baseline 'bim'", "'mse', 'hetero'"]);
  assertThrowsWith(() => M().compareRuns([base, { name: 'short', rows: method.rows.slice(1) }]), ['compareRuns', "run 'short'", 'other cases', 'same test set']);
  assertThrowsWith(() => M().compareRuns([base, { name: 'nokey', rows: [{ dice: 1 }] }]), ['compareRuns', "'pair' column"]);
});

// ---- argument checks -------------------------------------------------------------------------------------------------

test('bad arguments name the op, the argument, expected and given', async () => {
  const a = vg.zeros([4, 5]);
  const b = vg.zeros([4, 6]);
  const c = vg.zeros([1, 1, 4, 5]);
  await rejectsWith(() => M().dice(a, b), ['dice', 'same shape', '[4, 5]', '[4, 6]']);
  await rejectsWith(() => M().hd95(c, c), ['hd95', '2-D', '[1, 1, 4, 5]', 'Squeeze']);
  await rejectsWith(() => M().hausdorff(a, a, { spacing: [1, 2, 3] }), ['hausdorff', 'spacing', 'one entry per spatial axis (2)', '3 entries']);
  await rejectsWith(() => M().asd(a, a, { spacing: [1, -2] }), ['asd', 'positive']);
  await rejectsWith(() => M().assd(a, a, { connectivity: 3 }), ['assd', 'connectivity', 'from 1 to 2', '3']);
  await rejectsWith(() => M().dice(a, a, { labels: [1], numClasses: 2 }), ['dice', 'either labels or numClasses']);
  await rejectsWith(() => M().jaccard(a, a, { numClasses: 1 }), ['jaccard', 'includeBackground']);
  await rejectsWith(() => M().hd95(a, a, { empty: 'zero' }), ['hd95', 'empty', "'inf'", 'zero']);
  assertThrowsWith(() => M().distanceTransform(a, { spacing: [1] }), ['distanceTransform', 'spacing', '(2)']);
  assertThrowsWith(() => M().distanceTransform(a, { method: 'fast' }), ['distanceTransform', 'method', "'envelope'"]);
  await rejectsWith(() => M().jacobianFoldingFraction(vg.zeros([1, 2, 4, 5]), { mask: vg.zeros([3, 5]) }), ['jacobianFoldingFraction', 'mask', '[4, 5]', '[3, 5]']);
  for (const t of [a, b, c]) t.dispose();
});

test.run();
