// Registration losses (vg.methods.registration): every loss and gradient against the PyTorch float64 references of
// test/fixtures/gen_reglosses.py (the official code's formulas), finite-difference gradient checks, the stop-gradients,
// the 3-D → 2-D plane-strain reduction of the elastic energy, AdaCS's momentum weight and bad arguments.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const R = () => vg.methods.registration;
const cases = loadFixtures('reglosses');
const byKind = (k) => cases.filter((c) => c.kind === k);
const T = (e, requiresGrad = false) => fixtureRef(e).toTensor({ requiresGrad });

/**
 * Outputs are means / norms of f32 maps built from a few f32 ops each (NCC: sums over 9^nd windows with
 * cancellation in cross and var), so values get rtol 1e-4; gradient entries are compared with an absolute floor of
 * 1e-5 of the largest reference entry, since entries near zero carry the round-off of their larger neighbours.
 */
async function close(t, e, msg) {
  const ref = fixtureRef(e);
  // fixture_io stores 0-d tensors as [1] (np.ascontiguousarray); the losses themselves are 0-d like PyTorch's
  if (t.ndim === 0 && ref.shape.length === 1 && ref.shape[0] === 1) t = t.reshape([1]);
  const scale = ref.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  await assertClose(t, ref, { rtol: 1e-4, atol: 1e-5 * scale + 1e-12, msg });
}

/** Runs loss(...tensors) on fixture inputs, backpropagates (through `upstream` for maps) and checks out + grads. */
async function check(c, fn, inputs, gradKeys, msg) {
  const ts = inputs.map(([e, g]) => T(e, g));
  const out = fn(...ts);
  await close(out, c.out, `${msg} forward`);
  const L = c.upstream ? out.mul(T(c.upstream)).sum() : out;
  L.backward();
  for (let i = 0; i < gradKeys.length; i++) {
    const k = gradKeys[i];
    if (!k) continue;
    if (c[k] === null) assert.ok(!ts[i].grad, `${msg} ${k}: no gradient expected (stop-gradient)`);
    else await close(ts[i].grad, c[k], `${msg} ${k}`);
  }
}

test('mse: masked as the official code, 2-D and 3-D, with gradients', async () => {
  for (const c of byKind('mse'))
    await check(c, (a, b, m) => R().mse(a, b, { mask: m }), [[c.a, true], [c.b, true], [c.mask]], ['gA', 'gB'], `mse ${c.a.shape}`);
});

test('localNCC: VoxelMorph NCC in 1-D, 2-D, 3-D, windows 9/5/3, AdaCS mask, two channels', async () => {
  const list = byKind('localNCC');
  assert.ok(list.length >= 6);
  for (const c of list) {
    const opts = (m) => ({ ...(c.win ? { win: c.win } : {}), ...(m ? { mask: m } : {}) });
    await check(c, (a, b, m) => R().localNCC(a, b, opts(m)), [[c.a, true], [c.b, true], ...(c.mask ? [[c.mask]] : [])], ['gA', 'gB'],
      `localNCC ${c.a.shape} win ${c.win ?? 9}`);
  }
});

test('softDice: BIM DiceLoss and the multi-structure mean', async () => {
  for (const c of byKind('softDice')) {
    const preds = c.pred.map((e) => T(e, true));
    const targets = c.target.map((e) => T(e));
    const out = c.pred.length === 1 ? R().softDice(preds[0], targets[0]) : R().softDice(preds, targets);
    await close(out, c.out, `softDice x${c.pred.length}`);
    out.backward();
    for (let i = 0; i < preds.length; i++) await close(preds[i].grad, c.gPred[i], `softDice grad ${i}`);
  }
});

test('gradL2: VoxelMorph Grad / Grad_2d, l2 and l1, lossMult', async () => {
  for (const c of byKind('gradL2'))
    await check(c, (u) => R().gradL2(u, { penalty: c.penalty, ...(c.lossMult ? { lossMult: c.lossMult } : {}) }), [[c.flow, true]], ['gFlow'],
      `gradL2 ${c.flow.shape} ${c.penalty} x${c.lossMult}`);
});

test('bendingEnergy: MONAI BendingEnergyLoss, 2-D and 3-D, normalize, every reduction', async () => {
  for (const c of byKind('bendingEnergy'))
    await check(c, (u) => R().bendingEnergy(u, { normalize: c.normalize, reduction: c.reduction }), [[c.flow, true]], ['gFlow'],
      `bendingEnergy ${c.flow.shape} normalize ${c.normalize} ${c.reduction}`);
});

test('snrWeight: code and paper variants, γ 0.5 and 1, 2-D and 3-D; no gradient reaches logVar', async () => {
  for (const c of byKind('snrWeight')) {
    const s = T(c.logVar, true);
    const w = R().snrWeight(T(c.target), s, T(c.mask), { variant: c.variant, gamma: c.gamma });
    await close(w, c.out, `snrWeight ${c.variant} γ ${c.gamma} ${c.target.shape}`);
    assert.is(w.requiresGrad, false, 'the weight is a stop-gradient');
  }
  // the weighted displacement loss with the SNR weight: d/d(logVar) is zero (nothing is recorded)
  const c = byKind('weightedMSE')[0];
  const s = T(byKind('betaNLL')[0].logVar, true);
  const pred = T(c.pred, true);
  const w = R().snrWeight(T(c.target), s, T(c.mask));
  const loss = R().weightedMSE(T(c.target), pred, w, T(c.mask));
  loss.backward();
  assert.ok(pred.grad, 'pred receives a gradient');
  assert.ok(!s.grad, 'logVar receives no gradient through the SNR weight');
});

test('weightedMSE: official WeightedMSE; the weight is detached', async () => {
  for (const c of byKind('weightedMSE')) {
    const w = T(c.weight, true);
    await check(c, (a, b, m) => R().weightedMSE(a, b, w, m), [[c.target, true], [c.pred, true], [c.mask]], ['gTarget', 'gPred'], `weightedMSE ${c.target.shape}`);
    assert.ok(!w.grad, 'the weight receives no gradient');
  }
});

test('betaNLL / gaussianNLL: VarianceNLL (detached inputs) and the joint NLL, β 0, 0.5, 1', async () => {
  const list = byKind('betaNLL');
  assert.ok(list.some((c) => c.detachInputs) && list.some((c) => !c.detachInputs));
  for (const c of list) {
    const fn = c.beta === 0 && !c.detachInputs
      ? (a, b, s, m) => R().gaussianNLL(a, b, s, { mask: m })
      : (a, b, s, m) => R().betaNLL(a, b, s, { beta: c.beta, mask: m, detachInputs: c.detachInputs });
    await check(c, fn, [[c.target, true], [c.pred, true], [c.logVar, true], [c.mask]], ['gTarget', 'gPred', 'gLogVar'],
      `betaNLL β ${c.beta} detach ${c.detachInputs} ${c.target.shape}`);
  }
});

test('AdaCS: scoringWeightedMSE (stop-gradient prediction or the code leak), scoringPrior, scoringTV', async () => {
  for (const c of byKind('scoringWeightedMSE'))
    await check(c, (a, b, s, m) => R().scoringWeightedMSE(a, b, s, m, { detachPred: c.detachPred }), [[c.target, true], [c.pred, true], [c.score, true], [c.mask]],
      ['gTarget', 'gPred', 'gScore'], `scoringWeightedMSE detach ${c.detachPred} ${c.target.shape}`);
  for (const c of byKind('scoringPrior'))
    await check(c, c.mask ? (s, m) => R().scoringPrior(s, m) : (s) => R().scoringPrior(s), [[c.score, true], ...(c.mask ? [[c.mask]] : [])], ['gScore'],
      `scoringPrior ${c.score.shape} mask ${!!c.mask}`);
  for (const c of byKind('scoringTV')) await check(c, (s) => R().scoringTV(s), [[c.score, true]], ['gScore'], `scoringTV ${c.score.shape}`);
});

test('linearElasticEnergy: BMIloss with and without the reshape bug, mean, spacing, plane strain, 3-D', async () => {
  const list = byKind('elastic');
  assert.ok(list.some((c) => c.reshapeBug) && list.some((c) => c.flow.shape.length === 5));
  for (const c of list) {
    const opts = { nu: c.nu, youngs: c.youngs, reduction: c.reduction };
    if (c.reshapeBug) opts.reshapeBug = true;
    if (c.spacing) opts.spacing = c.spacing;
    if (c.plane) opts.plane = c.plane;
    await check(c, (u) => R().linearElasticEnergy(u, opts), [[c.flow, true]], ['gFlow'], `elastic ${c.flow.shape} ${JSON.stringify(opts)}`);
  }
});

test('linearElasticEnergy: a 3-D field without out-of-plane motion is in plane strain (PyTorch reference)', async () => {
  // the 2-D plane-strain reference map of a fixture field; the same field as [N, 3, 1, H, W] with zero channel 0
  for (const c of byKind('elastic').filter((k) => k.plane === 'strain')) {
    const [N, , H, W] = c.flow.shape;
    const f2 = T(c.flow);
    const f3 = vg.cat([vg.zeros([N, 1, H, W]), f2], 1).reshape([N, 3, 1, H, W]);
    const p3 = R().linearElasticEnergy(f3, { nu: c.nu, youngs: c.youngs, reduction: 'none' });
    const ref = fixtureRef(c.out);
    await assertClose(p3, new Ref(ref.data, [N, 1, H, W]), { rtol: 1e-4, atol: 1e-7, msg: '3-D vs plane strain' });
    // the code's 2-D matrix (plane stress, tensor shear) is a different energy
    const pc = await R().linearElasticEnergy(f2, { nu: c.nu, youngs: c.youngs, reduction: 'none' }).data();
    const rel = pc.reduce((m, v, i) => Math.max(m, Math.abs(v - ref.data[i]) / Math.abs(ref.data[i])), 0);
    assert.ok(rel > 0.05, `plane 'code' should differ from plane strain, max relative difference ${rel}`);
  }
});

test('gradcheck: finite differences of every differentiable loss', async () => {
  const r = rng(5);
  const img = (shape, lo = 0, hi = 1) => Ref.random(shape, r, lo, hi).f32();
  const mask = new Ref([1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 5, 6]);
  const a = img([1, 1, 5, 6]);
  const b = img([1, 1, 5, 6]);
  const s = img([1, 1, 5, 6], -1, 1);
  const M = () => mask.toTensor();
  await gradcheck((x, y) => R().mse(x, y, { mask: M() }), [a, b], { msg: 'mse' });
  await gradcheck((x, y) => R().localNCC(x, y, { win: 3 }), [a, b], { msg: 'localNCC 2-D' });
  await gradcheck((x, y) => R().localNCC(x, y, { win: 3 }), [img([1, 1, 4, 4, 5]), img([1, 1, 4, 4, 5])], { msg: 'localNCC 3-D' });
  await gradcheck((x) => R().softDice(x, vg.gt(b.toTensor(), 0.5).to('f32')), [a], { msg: 'softDice' });
  await gradcheck((u) => R().gradL2(u, { lossMult: 2 }), [img([1, 2, 5, 6], -1, 1)], { msg: 'gradL2 2-D' });
  await gradcheck((u) => R().gradL2(u), [img([1, 3, 3, 4, 5], -1, 1)], { msg: 'gradL2 3-D' });
  await gradcheck((u) => R().bendingEnergy(u), [img([1, 2, 6, 7], -1, 1)], { msg: 'bendingEnergy 2-D' });
  await gradcheck((u) => R().bendingEnergy(u, { normalize: true }), [img([1, 3, 5, 5, 6], -1, 1)], { msg: 'bendingEnergy 3-D' });
  await gradcheck((y) => R().weightedMSE(a.toTensor(), y, vg.fullLike(a.toTensor(), 0.6), M()), [b], { msg: 'weightedMSE' });
  // β > 0 multiplies by the stop-gradient ⌊σ^{2β}⌋, so its gradient is by design not the derivative of its value
  // (the PyTorch fixtures check it); finite differences apply to β = 0
  await gradcheck((v) => R().betaNLL(a.toTensor(), b.toTensor(), v, { beta: 0, mask: M() }), [s], { msg: 'betaNLL β 0' });
  await gradcheck((x, y, v) => R().gaussianNLL(x, y, v, { mask: M() }), [a, b, s], { msg: 'gaussianNLL' });
  await gradcheck((sc) => R().scoringWeightedMSE(a.toTensor(), b.toTensor(), sc, M()), [img([1, 1, 5, 6])], { msg: 'scoringWeightedMSE' });
  await gradcheck((sc) => R().scoringPrior(sc, M()), [img([1, 1, 5, 6])], { msg: 'scoringPrior' });
  await gradcheck((sc) => R().scoringTV(sc), [img([1, 1, 5, 6])], { msg: 'scoringTV' });
  await gradcheck((u) => R().linearElasticEnergy(u), [img([1, 2, 5, 6], -1, 1)], { msg: 'elastic 2-D norm' });
  await gradcheck((u) => R().linearElasticEnergy(u, { reshapeBug: true, reduction: 'mean' }), [img([1, 2, 5, 6], -1, 1)], { msg: 'elastic 2-D bug' });
  await gradcheck((u) => R().linearElasticEnergy(u, { reduction: 'none', spacing: [1, 2, 0.5] }), [img([1, 3, 3, 4, 5], -1, 1)], { msg: 'elastic 3-D' });
});

test('stop-gradients: betaNLL (detachInputs) and scoringWeightedMSE (detachPred) leave the prediction alone', async () => {
  const r = rng(3);
  const [a, b, s] = [0, 1, 2].map(() => Ref.random([1, 1, 4, 5], r, 0, 1).toTensor({ requiresGrad: true }));
  R().betaNLL(a, b, s).backward();
  assert.ok(s.grad && !a.grad && !b.grad, 'betaNLL: only logVar gets a gradient');
  const [t, p, sc] = [0, 1, 2].map(() => Ref.random([1, 1, 4, 5], r, 0, 1).toTensor({ requiresGrad: true }));
  R().scoringWeightedMSE(t, p, sc).backward();
  assert.ok(sc.grad && t.grad && !p.grad, 'scoringWeightedMSE: no gradient to the prediction');
  // the zero field: ‖p‖ has PyTorch's zero subgradient, not NaN
  const z = vg.zeros([1, 2, 4, 4], { requiresGrad: true });
  R().linearElasticEnergy(z).backward();
  assert.ok((await z.grad.data()).every((v) => v === 0), 'zero gradient at the zero field');
});

test('MomentumWeight: the AdaCS recurrence and its per-epoch running mean', () => {
  const m = new (R().MomentumWeight)({ beta: 1.5, scaling: 50 });
  // float64 restatement of the code's loop (π for its 3.14): per step, μ = mean over this epoch's steps of the
  // per-direction logged losses averaged over directions; m ← γ m + (1 − γ) β cos(π s μ), γ = min(1 − 1/(e+1), 0.99)
  let ref = 0;
  const hist = {};
  const steps = [[0, [0.004, 0.006]], [0, [0.002, 0.003]], [1, [0.005, 0.001]], [1, [0.0, 0.01]], [150, [0.003, 0.003]]];
  for (const [epoch, losses] of steps) {
    (hist[epoch] ??= []).push(losses);
    const h = hist[epoch];
    const mu = [0, 1].reduce((acc, d) => acc + 0.5 * (h.reduce((s, l) => s + l[d], 0) / h.length), 0);
    const g = Math.min(1 - 1 / (epoch + 1), 0.99);
    ref = g * ref + (1 - g) * 1.5 * Math.cos(Math.PI * 50 * mu);
    const got = m.observe(losses, epoch);
    assert.ok(Math.abs(got - ref) <= 1e-15, `epoch ${epoch}: ${got} vs ${ref}`);
  }
  assert.is(m.value, ref);
  assert.ok(Math.abs(m.update(0, 0) - 1.5) < 1e-15, 'epoch 0 resets to β cos(π s μ)');
});

test('bad arguments name the op, the argument, expected and given', () => {
  const a = vg.zeros([1, 1, 8, 8]);
  const b = vg.zeros([1, 1, 8, 9]);
  const r = R();
  assertThrowsWith(() => r.mse(a, b), ['registration.mse', 'b', '[1, 1, 8, 8]', '[1, 1, 8, 9]']);
  assertThrowsWith(() => r.mse(a, a, { mask: vg.zeros([1, 2, 8, 8]) }), ['registration.mse', 'mask', '[1, 2, 8, 8]']);
  assertThrowsWith(() => r.localNCC(a, a, { win: 4 }), ['registration.localNCC', 'win', 'odd']);
  assertThrowsWith(() => r.localNCC(a, a, { win: [3, 3, 3] }), ['registration.localNCC', 'win', '2 of them']);
  assertThrowsWith(() => r.localNCC(vg.zeros([8, 8]), vg.zeros([8, 8])), ['registration.localNCC', 'a', 'rank 3 to 5', '[8, 8]']);
  assertThrowsWith(() => r.softDice([a], [a, a]), ['registration.softDice', '1 and 2']);
  assertThrowsWith(() => r.gradL2(a, { penalty: 'l3' }), ['registration.gradL2', 'penalty', "'l2'", 'l3']);
  assertThrowsWith(() => r.bendingEnergy(vg.zeros([1, 2, 4, 8])), ['registration.bendingEnergy', '> 4', '[1, 2, 4, 8]']);
  assertThrowsWith(() => r.bendingEnergy(vg.zeros([1, 3, 8, 8])), ['registration.bendingEnergy', '2 channels', '3']);
  assertThrowsWith(() => r.snrWeight(a, b, null), ['registration.snrWeight', 'logVar', '[1, 1, 8, 9]']);
  assertThrowsWith(() => r.snrWeight(a, a, null, { variant: 'poster' }), ['registration.snrWeight', 'variant', "'code'", 'poster']);
  assertThrowsWith(() => r.betaNLL(a, a, a, { beta: -1 }), ['registration.betaNLL', 'beta', 'non-negative', '-1']);
  assertThrowsWith(() => r.scoringWeightedMSE(a, a, b), ['registration.scoringWeightedMSE', 'score', '[1, 1, 8, 9]']);
  assertThrowsWith(() => r.linearElasticEnergy(vg.zeros([1, 3, 8, 8])), ['registration.linearElasticEnergy', 'flow', '[N, 2, H, W]', '[1, 3, 8, 8]']);
  assertThrowsWith(() => r.linearElasticEnergy(vg.zeros([1, 2, 8, 8]), { nu: 0.5 }), ['registration.linearElasticEnergy', 'nu', '(-1, 0.5)']);
  assertThrowsWith(() => r.linearElasticEnergy(vg.zeros([1, 3, 2, 8, 8]), { reshapeBug: true }), ['registration.linearElasticEnergy', 'reshapeBug', '2-D']);
  assertThrowsWith(() => r.linearElasticEnergy(vg.zeros([1, 2, 8, 8]), { spacing: [1] }), ['registration.linearElasticEnergy', 'spacing', '2 positive']);
  assertThrowsWith(() => new r.MomentumWeight({ maxDecay: 2 }), ['registration.MomentumWeight', 'maxDecay', '[0, 1]']);
  assertThrowsWith(() => new r.MomentumWeight().observe([], 0), ['registration.MomentumWeight.observe', 'directionLosses']);
});

test.run();
