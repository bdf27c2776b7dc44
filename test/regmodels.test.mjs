// vg.models registration backbones against PyTorch (test/fixtures/gen_regmodels.py): VoxelMorph's VxmDense (2-D and
// 3-D, integration on and off, bidirectional), hetero_uncertainty's VarianceEstimator, AdaCS's ScoringNet and
// bioinformed_reg's RegNet. State-dict keys are the official ones; with the fixture's weights (read through
// vg.io.readSafetensors) every output, and the gradients of a weighted sum of them, match a float64 PyTorch run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const cases = loadFixtures('regmodels');
const byName = Object.fromEntries(cases.map((c) => [c.name, c]));
const weightsPath = fileURLToPath(new URL('./fixtures/regmodels.safetensors', import.meta.url));
let allWeights;
const weights = async (prefix) => {
  allWeights ??= await vg.io.readSafetensors(weightsPath);
  return Object.fromEntries(Object.entries(allWeights).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
};
// Some 15 conv layers, a warp and seven squaring steps in f32: round-off grows with depth (as in models.test.mjs)
const TOL = { rtol: 1e-4, atol: 1e-5 };
const keyShapes = (m) => Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]]);
// the official SpatialTransformer's identity grids (a persistent buffer in the forks' voxelmorph): not held by voxgrad
const withoutGrids = (keys) => keys.filter(([k]) => !k.endsWith('transformer.grid'));
const dispose = (...ts) => ts.flat().forEach((t) => t?.dispose());

const makeVxm = (c) => new vg.models.VxmDense(c.inshape, { ...c.opts, seed: 1 });

for (const name of ['vxm2d_int_bidir', 'vxm2d_noint', 'vxm3d_int_bidir']) {
  const c = byName[name];
  const label = `VxmDense ${c.inshape.length}-D ${JSON.stringify(c.inshape)}, intSteps ${c.opts.intSteps}${c.opts.bidir ? ', bidir' : ''}`;

  test(`${label}: state-dict keys and shapes are VoxelMorph's`, () => {
    const net = makeVxm(c);
    assert.equal(keyShapes(net), withoutGrids(c.keys));
    net.dispose();
  });

  test(`${label}: forward outputs and parameter gradients match PyTorch`, async () => {
    const net = makeVxm(c);
    net.loadStateDict(await weights(c.prefix));
    const source = fixtureRef(c.source).toTensor();
    const target = fixtureRef(c.target).toTensor();
    const out = net.call(source, target);
    assert.equal(out.yTarget === null, !c.opts.bidir, 'yTarget only with bidir');
    for (const [k, e] of Object.entries(c.out)) await assertClose(out[k], fixtureRef(e), { ...TOL, msg: k });
    // d/dθ of Σ_k <r_k, output_k> against torch.autograd.grad of the same sum
    const rs = Object.entries(c.lossWeights).map(([k, e]) => [k, fixtureRef(e).toTensor()]);
    const loss = rs.map(([k, r]) => vg.sum(vg.mul(out[k], r))).reduce((a, b) => vg.add(a, b));
    loss.backward();
    const params = Object.fromEntries(net.namedParameters());
    for (const [k, e] of Object.entries(c.grads)) await assertClose(params[k].grad, fixtureRef(e), { ...TOL, msg: `grad ${k}` });
    dispose(source, target, Object.values(out), rs.map(([, r]) => r), loss);
    net.dispose();
  });
}

test('VxmDense: registration: true returns the same flow and warp, without the inverse branch', async () => {
  const c = byName.vxm2d_int_bidir;
  const net = makeVxm(c);
  net.loadStateDict(await weights(c.prefix));
  const source = fixtureRef(c.source).toTensor();
  const target = fixtureRef(c.target).toTensor();
  const out = vg.noGrad(() => net.call(source, target, { registration: true }));
  assert.is(out.yTarget, null);
  await assertClose(out.flow, fixtureRef(c.out.flow), TOL);
  await assertClose(out.ySource, fixtureRef(c.out.ySource), TOL);
  dispose(source, target, Object.values(out));
  net.dispose();
});

test('VxmDense loads official checkpoints that carry the identity-grid buffers', async () => {
  const c = byName.vxm2d_int_bidir;
  const net = makeVxm(c);
  const grid = vg.zeros([1, 2, ...c.inshape]);
  const half = vg.zeros([1, 2, ...c.inshape.map((d) => d / 2)]);
  const res = net.loadStateDict({ ...(await weights(c.prefix)), 'transformer.grid': grid, 'integrate.transformer.grid': half });
  assert.equal(res, { missingKeys: [], unexpectedKeys: [] });
  dispose(grid, half);
  net.dispose();
});

test('the full-width defaults have the official keys (VxmDense 2-D/3-D, VarianceEstimator, ScoringNet)', () => {
  const d = byName.defaults;
  const nets = {
    VxmDense2d: new vg.models.VxmDense([32, 32]),
    VxmDense3d: new vg.models.VxmDense([16, 16, 16]),
    VarianceEstimator: new vg.models.VarianceEstimator([32, 32]),
    ScoringNet: new vg.models.ScoringNet([32, 32]),
  };
  for (const [k, net] of Object.entries(nets)) {
    assert.equal(keyShapes(net), withoutGrids(d[k]), k);
    net.dispose();
  }
});

for (const kind of ['VarianceEstimator', 'ScoringNet']) {
  test(`${kind}: keys and forward match PyTorch`, async () => {
    const c = byName[kind];
    const net = new vg.models[kind](c.inshape, c.opts);
    assert.equal(keyShapes(net), c.keys);
    net.loadStateDict(await weights(c.prefix));
    const x = fixtureRef(c.x).toTensor();
    const out = vg.noGrad(() => net.call(x));
    await assertClose(out, fixtureRef(c.out), TOL);
    dispose(x, out);
    net.dispose();
  });
}

test('VxmDense initialisation: flow head ~ N(0, 1e-5) with zero bias, seeded; VarianceEstimator keeps the default init', async () => {
  for (const inshape of [[32, 32], [16, 16, 16]]) {
    const a = new vg.models.VxmDense(inshape, { seed: 3 });
    const b = new vg.models.VxmDense(inshape, { seed: 3 });
    const w = Float64Array.from(await a.flow.weight.data());
    assert.equal(w.length, inshape.length * 16 * 3 ** inshape.length);
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / (w.length - 1));
    // 288 (2-D) or 1296 (3-D) draws: the sample std is within ~4% (2-D) of 1e-5 at one standard error
    assert.ok(Math.abs(std - 1e-5) < 0.15e-5, `flow weight std ${std}`);
    assert.ok(Math.abs(mean) < 0.2e-5, `flow weight mean ${mean}`);
    assert.ok((await a.flow.bias.data()).every((v) => v === 0), 'flow bias is zero');
    assert.equal(Array.from(await b.flow.weight.data()), Array.from(w.map(Math.fround)), 'same seed, same weights');
    a.dispose();
    b.dispose();
  }
  // PyTorch's default conv init (kaiming uniform, a = sqrt(5)): |w| <= 1/sqrt(fanIn), fanIn = 16 * 9
  const v = new vg.models.VarianceEstimator([32, 32], { seed: 3 });
  const lw = await v.logSigmaI.weight.data();
  const bound = 1 / Math.sqrt(16 * 9);
  assert.ok(lw.every((x) => Math.abs(x) <= bound) && Math.max(...lw.map(Math.abs)) > 0.5 * bound, 'log_sigma_I default init');
  v.dispose();
});

test('VoxelMorph nets reject bad shapes and options with clear errors', () => {
  assertThrowsWith(() => new vg.models.VxmDense([32]), ['VxmDense', 'inshape', '2 or 3']);
  assertThrowsWith(() => new vg.models.VxmDense([40, 32]), ['VxmUnet', 'multiple of 16', '[40, 32]']);
  assertThrowsWith(() => new vg.models.VxmDense([32, 32], { nbUnetFeatures: [[4, 8], [8]] }), ['VxmUnet', 'nbFeatures']);
  assertThrowsWith(() => new vg.models.VxmDense([32, 32], { intSteps: 0, unetHalfRes: true }), ['VxmDense', 'unetHalfRes', 'intSteps 0']);
  const net = new vg.models.VxmDense([32, 32], { nbUnetFeatures: [[2, 2, 2, 2], [2, 2, 2, 2, 2]] });
  const x = vg.zeros([1, 1, 32, 32]);
  const y = vg.zeros([1, 1, 32, 48]);
  const z = vg.zeros([2, 1, 32, 32]);
  assertThrowsWith(() => net.call(x, y), ['VxmDense', 'target', '[N, 1, 32, 32]', '[1, 1, 32, 48]']);
  assertThrowsWith(() => net.call(x, z), ['VxmDense', 'same batch size']);
  assertThrowsWith(() => net.unetModel.call(x), ['VxmUnet', '[N, 2, 32, 32]', '[1, 1, 32, 32]']);
  dispose(x, y, z);
  net.dispose();
});

// ---- RegNet: official widths (16M parameters), weights from the generator's integer hash -----------------------------
/** hash_uniform of gen_regmodels.py: u in [-1, 1), exact in f32, from (tensor index t, element j). */
function hashUniform(t, n) {
  const out = new Float64Array(n);
  const salt = Math.imul(t + 1, 0x85ebca77);
  for (let j = 0; j < n; j++) {
    let h = (Math.imul(j, 0x9e3779b1) + salt) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 0x2c1b3c6d) >>> 0;
    h = (h ^ (h >>> 12)) >>> 0;
    out[j] = (h >>> 8) / 2 ** 23 - 1;
  }
  return out;
}

/** gen_regmodels.py's hash_weights for the keys (in state-dict order) of the fixture. */
function hashWeights(keys) {
  return Object.fromEntries(
    keys.map(([k, shape], t) => {
      if (k.endsWith('num_batches_tracked')) return [k, vg.zeros(shape, { dtype: 'i32' })];
      const u = hashUniform(t, shape.reduce((a, b) => a * b, 1));
      let vals;
      if (shape.length === 4) {
        const s = Math.sqrt(6 / (shape[1] * shape[2] * shape[3])) * (k === 'conv8.weight' ? 0.05 : 1);
        vals = u.map((x) => x * s);
      } else if (k.endsWith('running_var')) vals = u.map((x) => 1 + 0.3 * x);
      else if (k.endsWith('weight')) vals = u.map((x) => 1 + 0.2 * x);
      else vals = u.map((x) => 0.1 * x);
      return [k, vg.tensor(Float32Array.from(vals), shape)];
    }),
  );
}

test('RegNet: official keys; flow and warped image match PyTorch in eval and train mode', async () => {
  const c = byName.regnet;
  const net = new vg.models.RegNet();
  assert.equal(keyShapes(net), c.keys);
  const state = hashWeights(c.keys);
  net.loadStateDict(state);
  dispose(Object.values(state));
  const source = fixtureRef(c.source).toTensor();
  const target = fixtureRef(c.target).toTensor();
  for (const mode of ['eval', 'train']) {
    net[mode]();
    const out = vg.noGrad(() => net.call(source, target));
    // 13 conv + BN layers per stream; train-mode BN normalises 2x2 maps at the deepest scale, where f32 variance
    // round-off is largest
    for (const k of ['flow', 'warped']) await assertClose(out[k], fixtureRef(c[mode][k]), { ...TOL, msg: `${mode} ${k}` });
    dispose(Object.values(out));
  }
  dispose(source, target);
  net.dispose();
});

test('RegNet.warp: zero flow is the official linspace identity; channel 0 moves along W; bad shapes are named', async () => {
  const net = new vg.models.RegNet({ seed: 1 });
  // an image that varies along W only; a flow of +2/(W-1) in channel 0 reads one column to the right (up to the
  // (n-1)/n scaling of the alignCorners-false sampling of a linspace grid)
  const H = 16, W = 16;
  const img = vg.tensor(Float32Array.from({ length: H * W }, (_, i) => i % W), [1, 1, H, W]);
  const flow = vg.cat([vg.full([1, 1, H, W], 2 / (W - 1)), vg.zeros([1, 1, H, W])], 1);
  const warped = await net.warp(img, flow).data();
  // sampled column p = ((g + 1) W - 1) / 2 with g = -1 + 2 (w + 1) / (W - 1)
  const p = (w) => ((2 * (w + 1)) / (W - 1) * W - 1) / 2;
  for (const w of [0, 5, 12]) assert.ok(Math.abs(warped[3 * W + w] - p(w)) < 1e-4, `column ${w}: ${warped[3 * W + w]} vs ${p(w)}`);
  assertThrowsWith(() => net.warp(img, vg.zeros([1, 3, H, W])), ['RegNet.warp', 'flow', '[1, 3, 16, 16]']);
  const bad = vg.zeros([1, 1, 24, 32]);
  assertThrowsWith(() => net.call(bad, bad), ['RegNet', 'source', 'multiples of 16', '[1, 1, 24, 32]']);
  dispose(img, flow, bad);
  net.dispose();
});

test.run();
