// The semi-supervised segmentation backbones against PyTorch: VNet (UA-MT / DTC's V-Net, the papers' 3-D network)
// keys, shapes, parameter count and forward; UNet2DFeatures (the papers' 2-D UNet) sizes and its feature maps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);
const cases = loadFixtures('semiseg');
const countParams = (net) => net.parameters().reduce((s, p) => s + p.size, 0);

test('VNet at 16 filters: state-dict keys, shapes and parameter count are PyTorch\'s', () => {
  const c = cases.find((k) => k.kind === 'keys');
  const net = new vg.models.VNet({ filters: 16, numClasses: 2 });
  const sd = net.stateDict();
  assert.equal(Object.keys(sd), c.keys);
  assert.equal(Object.values(sd).map((t) => [...t.shape]), c.shapes);
  assert.is(countParams(net), c.parameters);
  net.dispose();
});

test('VNet forwardFeatures: logits and decoder maps match PyTorch in eval mode (weights loaded)', async () => {
  const c = cases.find((k) => k.kind === 'forward');
  const net = new vg.models.VNet({ filters: c.filters, numClasses: c.classes });
  const state = Object.fromEntries(Object.entries(c.state).map(([k, e]) => [k, fixtureRef(e).toTensor()]));
  net.loadStateDict(state, { strict: false });
  for (const t of Object.values(state)) t.dispose();
  net.eval();
  const x = fixtureRef(c.x).toTensor();
  const out = vg.noGrad(() => net.forwardFeatures(x));
  // 20 conv layers deep in f32
  const tol = { rtol: 1e-4, atol: 1e-5 };
  await assertClose(out.logits, fixtureRef(c.logits), { ...tol, msg: 'logits' });
  for (let i = 0; i < c.maps.length; i++) await assertClose(out.featureMaps[i], fixtureRef(c.maps[i]), { ...tol, msg: `map ${i}` });
  assert.is(out.latent, out.featureMaps[0]);
  assert.equal(out.featureMaps.map((m) => m.shape[1]), [8, 4, 2, 1, 1]);
  for (const t of [x, out.logits, ...out.featureMaps]) t.dispose();
  net.dispose();
});

test('VNet names the size it needs', () => {
  const net = new vg.models.VNet({ filters: 1 });
  const x = vg.zeros([1, 1, 16, 16, 12]);
  assertThrowsWith(() => net.forwardFeatures(x), ['VNet', 'multiples of 16', '[1, 1, 16, 16, 12]']);
  x.dispose();
  net.dispose();
});

test('UNet2DFeatures at the papers\' widths: transposed-conv up, 1,944,324 parameters (PyTorch\'s count), 496 feature channels', async () => {
  // the count is PyTorch's for test/fixtures/gen_models.py's UNet(1, 4, [16, 32, 64, 128, 256], bilinear=False)
  const net = new vg.models.UNet2DFeatures({ numClasses: 4 });
  assert.is(countParams(net), 1944324);
  assert.ok(Object.keys(net.stateDict()).includes('decoder.up1.up.weight'));
  assert.not.ok(Object.keys(net.stateDict()).some((k) => k.includes('conv1x1')));
  net.dispose();
});

test('UNet2DFeatures.forwardFeatures: logits equal forward (checked against PyTorch in models.test), maps coarse to fine', async () => {
  const net = new vg.models.UNet2DFeatures({ numClasses: 3, features: [2, 3, 4, 5, 6], seed: 3 }).eval();
  const r = rng(4);
  const x = Ref.random([2, 1, 32, 32], r).toTensor();
  const f = vg.noGrad(() => net.forwardFeatures(x));
  const plain = vg.noGrad(() => net.call(x));
  await assertClose(f.logits, new Ref(await plain.data(), plain.shape), { rtol: 0, atol: 0 });
  assert.equal(f.featureMaps.map((m) => [...m.shape]), [[2, 6, 2, 2], [2, 5, 4, 4], [2, 4, 8, 8], [2, 3, 16, 16], [2, 2, 32, 32]]);
  const dense = vg.noGrad(() => vg.models.concatFeatureMaps(f.featureMaps));
  assert.equal(dense.shape, [2, 20, 32, 32]);
  // channel 0 is the 2x2 bottleneck's first channel, bilinearly upsampled with align_corners: reference in float64
  const b = await f.featureMaps[0].data();
  const ref = [];
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < 32; i++)
      for (let j = 0; j < 32; j++) {
        const u = i / 31, v = j / 31;
        const at = (a, c) => b[n * 6 * 4 + a * 2 + c];
        ref.push((1 - u) * (1 - v) * at(0, 0) + (1 - u) * v * at(0, 1) + u * (1 - v) * at(1, 0) + u * v * at(1, 1));
      }
  const slice0 = vg.noGrad(() => vg.slice(dense, 1, 0, 1));
  await assertClose(slice0, new Ref(ref, [2, 1, 32, 32]), { rtol: 1e-5, atol: 1e-6, msg: 'upsampled bottleneck' });
  // the finest map enters unchanged (last 2 channels)
  const last = vg.noGrad(() => vg.slice(dense, 1, 18, 20));
  await assertClose(last, new Ref(await f.featureMaps[4].data(), f.featureMaps[4].shape), { rtol: 0, atol: 0 });
  for (const t of [x, f.logits, ...f.featureMaps, plain, dense, slice0, last]) t.dispose();
  net.dispose();
});

test.run();
