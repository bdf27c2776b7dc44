// vg.models.TransMorph against PyTorch (test/fixtures/gen_transmorph.py, the official TransMorph rewritten over 2-D /
// 3-D with its module names): state-dict keys and shapes (reduced and paper configs), eval-mode outputs with the
// fixture's weights (read through vg.io.readSafetensors, as an official checkpoint: relative_position_index as I64 and
// spatial_trans.grid included), gradients of a weighted sum of the outputs w.r.t. parameters, and stochastic depth.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const cases = loadFixtures('transmorph');
const byName = Object.fromEntries(cases.map((c) => [c.name, c]));
const weightsPath = fileURLToPath(new URL('./fixtures/transmorph.safetensors', import.meta.url));
let allWeights;
const weights = async (prefix) => {
  allWeights ??= await vg.io.readSafetensors(weightsPath);
  return Object.fromEntries(Object.entries(allWeights).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
};
// ~20 layers (attention, LayerNorms, convs with InstanceNorm) and a warp in f32 against float64: as regmodels.test.mjs
const TOL = { rtol: 1e-4, atol: 1e-5 };
// A parameter gradient element is a sum over every position and layer above it: its f32 round-off scales with the
// tensor's largest entries, not its own. PyTorch's own f32 run of these fixture models misses their float64 gradients
// by up to 1.0e-5·max|g| (and fails the elementwise atol 1e-5 on 7 of the 16 tensors), so the absolute part is
// 1e-5·max|g| here; voxgrad's worst measured is 1.0e-5·max|g| too (the stage-3 bias table), typically 1e-6.
const gradTol = (ref) => ({ rtol: 1e-4, atol: 1e-5 * ref.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0) });
const keyShapes = (m) => Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]]);
// the official SpatialTransformer's identity grid (a persistent buffer): not held by voxgrad
const withoutGrid = (keys) => keys.filter(([k]) => k !== 'spatial_trans.grid');
const dispose = (...ts) => ts.flat().forEach((t) => t?.dispose());
const configOf = (c) => ({ ...c.config });

/** The generator's image formula (gen_transmorph.py image()): sums of sinusoids, min-max normalised, f32, zero rows. */
function image(shape, { freqs, phases, zero_rows: zeroRows }) {
  const sp = shape.slice(2);
  const n = sp.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  const idx = new Array(sp.length).fill(0);
  for (let i = 0; i < n; i++) {
    for (let d = sp.length - 1, r = i; d >= 0; d--) {
      idx[d] = r % sp[d];
      r = Math.floor(r / sp[d]);
    }
    for (let k = 0; k < freqs.length; k++) {
      let s = 0;
      for (let d = 0; d < sp.length; d++) s += freqs[k][d] * (idx[d] / sp[d]);
      v[i] += Math.sin(Math.PI * s + phases[k]);
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) [lo, hi] = [Math.min(lo, x), Math.max(hi, x)];
  const rowSize = n / sp[0];
  const one = v.map((x, i) => (i < zeroRows * rowSize ? 0 : Math.fround((x - lo) / (hi - lo))));
  const reps = shape[0] * shape[1];
  const all = new Float64Array(reps * n);
  for (let r = 0; r < reps; r++) all.set(one, r * n);
  return new Ref(all, shape);
}

/** The weighted sum's weights (gen_transmorph.py weights_formula): f32(sin(0.731 i + phase)). */
const lossWeights = (shape, phase) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Ref(Float64Array.from({ length: n }, (_, i) => Math.fround(Math.sin(0.731 * i + phase))), shape);
};

async function checkSampled(t, e, r, msg) {
  assert.equal([...t.shape], e.shape, `${msg} shape`);
  const got = await t.data();
  const index = fixtureRef(e.index).data;
  const sampled = new Ref(Array.from(index, (i) => got[i]), [index.length]);
  await assertClose(vg.tensor(Array.from(sampled.data), [index.length]), fixtureRef(e.values), { ...TOL, msg: `${msg} (sampled)` });
  if (r) {
    // the weighted sum covers every element; its bound is the f32 round-off of the summands' magnitude
    let s = 0;
    let mag = 0;
    got.forEach((x, i) => {
      s += x * r.data[i];
      mag += Math.abs(x * r.data[i]);
    });
    assert.ok(Math.abs(s - e.weightedSum) <= 1e-4 * mag, `${msg} weighted sum: got ${s}, expected ${e.weightedSum} (Σ|r·out| = ${mag})`);
  }
}

for (const name of ['tm2d', 'tm3d']) {
  const c = byName[name];
  const label = `TransMorph ${c.shape.length - 2}-D ${JSON.stringify(c.config.imgSize)}, batch ${c.shape[0]}${c.bidir ? ', bidir' : ''}`;

  test(`${label}: state-dict keys and shapes are the official code's`, () => {
    const net = new vg.models.TransMorph(configOf(c), { bidir: c.bidir, seed: 1 });
    assert.equal(keyShapes(net), withoutGrid(c.keys));
    net.dispose();
  });

  test(`${label}: eval-mode outputs and parameter gradients match PyTorch`, async () => {
    const net = new vg.models.TransMorph(configOf(c), { bidir: c.bidir, seed: 1 });
    const dict = await weights(c.prefix);
    assert.equal(dict['transformer.layers.0.blocks.0.attn.relative_position_index'].dtype, 'i32', 'I64 index read as i32');
    net.loadStateDict(dict);
    net.eval();
    const source = image(c.shape, c.images.source).toTensor();
    const target = image(c.shape, c.images.target).toTensor();
    const out = net.call(source, target);
    assert.equal(out.yTarget === null, !c.bidir, 'yTarget only with bidir');
    assert.ok(out.preintFlow === out.flow, 'preintFlow is the flow (no integration)');
    const rs = Object.fromEntries(Object.entries(c.lossPhases).map(([k, p]) => [k, lossWeights(c.out[k].shape, p)]));
    for (const [k, e] of Object.entries(c.out)) await checkSampled(out[k], e, rs[k], k);
    const rts = Object.entries(rs).map(([k, r]) => [k, r.toTensor()]);
    const loss = rts.map(([k, r]) => vg.sum(vg.mul(out[k], r))).reduce((a, b) => vg.add(a, b));
    loss.backward();
    const params = Object.fromEntries(net.namedParameters());
    for (const [k, e] of Object.entries(c.grads)) {
      const ref = fixtureRef(e);
      await assertClose(params[k].grad, ref, { ...gradTol(ref), msg: `grad ${k}` });
    }
    dispose(source, target, Object.values(out), rts.map(([, r]) => r), loss);
    net.dispose();
  });
}

test('TransMorph: registration: true gives the same flow and warp without the inverse branch', async () => {
  const c = byName.tm2d;
  const net = new vg.models.TransMorph(configOf(c), { bidir: true, seed: 3 }).eval();
  const source = image(c.shape, c.images.source).toTensor();
  const target = image(c.shape, c.images.target).toTensor();
  const a = net.call(source, target);
  const b = net.call(source, target, { registration: true });
  assert.is(b.yTarget, null);
  assert.equal(Array.from(await b.flow.data()), Array.from(await a.flow.data()));
  assert.equal(Array.from(await b.ySource.data()), Array.from(await a.ySource.data()));
  dispose(source, target, Object.values(a), Object.values(b));
  net.dispose();
});

test('TransMorph paper configs: keys and shapes of the official 2-D and 3-D models, parameter counts, defaults', () => {
  const d = byName.defaults;
  const count = (m) => m.parameters().reduce((s, t) => s + t.size, 0);
  const cfg2 = vg.models.TransMorph.defaultConfig2D();
  assert.equal(cfg2, {
    patchSize: 4, embedDim: 96, depths: [2, 2, 4, 2], numHeads: [4, 4, 8, 8], mlpRatio: 4, qkvBias: false, dropRate: 0, dropPathRate: 0.3,
    patchNorm: true, ifConvskip: true, ifTransskip: true, regHeadChan: 16, imgSize: [128, 128], windowSize: [8, 8],
  });
  const m2 = new vg.models.TransMorph(cfg2, { seed: 0 });
  assert.equal(keyShapes(m2), withoutGrid(d.default2d));
  assert.is(count(m2), d.params2d);
  // Swin's stochastic-depth rule: torch.linspace(0, 0.3, 10) over the blocks in order
  const rates = m2.transformer.layers.children().flatMap((l) => l.blocks.children().map((b) => b.dropPath));
  rates.forEach((p, k) => assert.ok(Math.abs(p - (0.3 * k) / 9) < 1e-12, `block ${k} drop path ${p}`));
  const head = m2.regHead.children()[0];
  assert.is(head.bias.size, 2);
  m2.dispose();
  const m3 = new vg.models.TransMorph(vg.models.TransMorph.defaultConfig3D(), { seed: 0 });
  assert.equal(m3.config.windowSize, [5, 6, 7]);
  assert.equal(keyShapes(m3), withoutGrid(d.default3d));
  assert.is(count(m3), d.params3d);
  m3.dispose();
});

test('TransMorph: the registration head starts near identity (N(0, 1e-5) weights, zero bias)', async () => {
  const cfg = { ...byName.tm2d.config };
  const net = new vg.models.TransMorph(cfg, { seed: 5 });
  const head = net.regHead.children()[0];
  const w = await head.weight.data();
  const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
  assert.ok(std > 0.5e-5 && std < 2e-5, `head weight std ${std}`);
  assert.ok((await head.bias.data()).every((x) => x === 0), 'head bias zero');
  net.dispose();
});

test('TransformerBlock dropPath (stochastic depth): per-sample branches dropped by the seeded global stream, scaled by 1/(1-p); eval exact', async () => {
  const B = 16;
  const p = 0.4;
  const block = new vg.nn.TransformerBlock(8, 2, { windowSize: [2, 2], shiftSize: 1, mlpRatio: 1, dropPath: p, seed: 4 });
  // a zero MLP output layer leaves one stochastic branch (attention), so each sample's output is x or x + branch / (1 - p)
  vg.nn.init.zeros_(block.mlp.fc2.weight);
  vg.nn.init.zeros_(block.mlp.fc2.bias);
  const x = vg.randn([B, 4, 4, 8], { seed: 9 });
  const evalOut = await block.eval().call(x).data();
  block.train();
  vg.manualSeed(123);
  const trainOut = await block.call(x).data();
  vg.manualSeed(123);
  const u = await vg.rand([B, 1, 1, 1]).data();
  const xs = await x.data();
  const per = xs.length / B;
  let kept = 0;
  for (let b = 0; b < B; b++) {
    const keep = u[b] >= Math.fround(p);
    kept += keep;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const want = keep ? xs[i] + (evalOut[i] - xs[i]) / (1 - p) : xs[i];
      assert.ok(Math.abs(trainOut[i] - want) <= 1e-5 * (1 + Math.abs(want)), `sample ${b} (${keep ? 'kept' : 'dropped'}) element ${i}: ${trainOut[i]} vs ${want}`);
    }
  }
  assert.ok(kept > 0 && kept < B, `both outcomes drawn (${kept} of ${B} kept)`);
  vg.manualSeed(123);
  assert.equal(Array.from(await block.call(x).data()), Array.from(trainOut), 'same seed, same draws');
  assertThrowsWith(() => new vg.nn.TransformerBlock(8, 2, { dropPath: 1.5 }), ['TransformerBlock', 'dropPath must be a probability in [0, 1]', '1.5']);
  x.dispose();
  block.dispose();
});

test('TransMorph: training mode applies stochastic depth; eval is deterministic', async () => {
  const c = byName.tm2d;
  const net = new vg.models.TransMorph({ ...configOf(c), dropPathRate: 0.5 }, { seed: 2 });
  // a head with weight so the flow reflects the encoder
  vg.nn.init.normal_(net.regHead.children()[0].weight, { std: 0.1, seed: 1 });
  const source = image(c.shape, c.images.source).toTensor();
  const target = image(c.shape, c.images.target).toTensor();
  net.eval();
  const e1 = await net.call(source, target).flow.data();
  const e2 = await net.call(source, target).flow.data();
  assert.equal(Array.from(e1), Array.from(e2), 'eval is deterministic');
  net.train();
  vg.manualSeed(7);
  const t1 = await net.call(source, target).flow.data();
  vg.manualSeed(7);
  const t2 = await net.call(source, target).flow.data();
  assert.equal(Array.from(t1), Array.from(t2), 'seeded training draws repeat');
  assert.ok(t1.some((v, i) => Math.abs(v - e1[i]) > 1e-4), 'training drops paths');
  dispose(source, target);
  net.dispose();
});

test('TransMorph: bad configs and inputs name the argument, the expectation and the value', () => {
  const cfg = { ...byName.tm2d.config };
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, imgSize: [64, 48] }), ['TransMorph', 'imgSize [64, 48] must be a multiple of 32']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, imgSize: [64] }), ['TransMorph', 'imgSize must list 2 or 3']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, numHeads: [1, 3, 2, 4] }), ['TransMorph', 'numHeads[1] (3) must divide', '8']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, depths: [2, 2, 2] }), ['TransMorph', 'config.depths must list 4 integers', 'array of length 3']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, windowSize: [4, 4, 4] }), ['TransMorph', 'config.windowSize must list 2 integers']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, patchSize: 2 }), ['TransMorph', 'patchSize must be 4', '2']);
  assertThrowsWith(() => new vg.models.TransMorph({ ...cfg, embedDim: 5 }), ['TransMorph', 'embedDim must be an even integer', '5']);
  const net = new vg.models.TransMorph(cfg, { seed: 0 });
  const ok = vg.zeros([1, 1, 64, 64]);
  const bad = vg.zeros([1, 2, 64, 64]);
  assertThrowsWith(() => net.call(bad, ok), ['TransMorph', 'source must be [N, 1, 64, 64]', '[1, 2, 64, 64]']);
  assertThrowsWith(() => net.call(ok, vg.zeros([2, 1, 64, 64])), ['TransMorph', 'same batch size']);
  dispose(ok, bad);
  net.dispose();
});

test.run();
