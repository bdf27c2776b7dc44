// CASTformer (reconstructed): the multi-structure phantom, spectral normalisation (σ against a float64 largest
// singular value, torch's keys, the weight gradient against its float64 formula), the adversarial losses against
// float64 references with gradient checks, the CATformer generator and transformer discriminator (shapes, parameter
// keys, the class-aware module's start grid and the gradient to its sampling offsets), and a two-step recipe run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const host = async (t) => Float64Array.from(await t.data());

test('organPhantom: shapes, bit-exact per seed, every structure present in 10 subjects, CT-like intensity order', async () => {
  const p = vg.data.organPhantom({ seed: 5, size: 64 });
  assert.equal(p.image.shape, [64, 64]);
  assert.is(p.label.dtype, 'i32');
  const again = vg.data.organPhantomArrays({ seed: 5, size: 64 });
  assert.equal(new Uint32Array((await p.image.data()).buffer), new Uint32Array(again.image.buffer), 'image bits');
  assert.equal([...(await p.label.data())], [...again.label]);
  p.image.dispose();
  p.label.dispose();
  assert.equal(vg.data.ORGAN_PHANTOM_LABELS.length, 8);
  let differs = 0;
  for (let seed = 0; seed < 10; seed++) {
    const a = vg.data.organPhantomArrays({ seed, size: 64, noise: 0 });
    const count = new Array(8).fill(0);
    const sum = new Array(8).fill(0);
    a.label.forEach((l, i) => ((count[l] += 1), (sum[l] += a.image[i])));
    for (let l = 1; l < 8; l++) assert.ok(count[l] >= 8, `seed ${seed}: ${vg.data.ORGAN_PHANTOM_LABELS[l]} has ${count[l]} pixels`);
    const m = sum.map((s, l) => s / count[l]);
    // lungs < myocardium < liver < LV blood < vertebra (bone), as in contrast CT
    assert.ok(m[6] < m[2] && m[2] < m[5] && m[5] < m[1] && m[1] < m[7], `seed ${seed}: mean intensities ${m.map((v) => v.toFixed(2))}`);
    if (seed > 0) differs += a.label.some((l, i) => l !== vg.data.organPhantomArrays({ seed: 0, size: 64, noise: 0 }).label[i]);
  }
  assert.is(differs, 9, 'every seed is another subject');
  const s = vg.data.organPhantomSlices(3, 2, { size: 32 });
  assert.equal(s.image.shape, [2, 1, 32, 32]);
  assert.equal(s.label.shape, [2, 32, 32]);
  assert.equal([...(await s.label.data()).subarray(32 * 32)], [...vg.data.organPhantomArrays({ seed: 4, size: 32 }).label]);
  s.image.dispose();
  s.label.dispose();
  assertThrowsWith(() => vg.data.organPhantomArrays({ size: 8 }), ['organPhantom', 'size', '[16, 1024]', '8']);
});

/** Largest singular value of a [m, n] float64 matrix: power iteration on AᵀA to convergence. */
function sigmaMax(a, m, n) {
  let v = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
  let s = 0;
  for (let it = 0; it < 5000; it++) {
    const av = new Float64Array(m);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) av[i] += a[i * n + j] * v[j];
    const w = new Float64Array(n);
    for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) w[j] += a[i * n + j] * av[i];
    const norm = Math.hypot(...w);
    v = w.map((x) => x / norm);
    const prev = s;
    s = Math.sqrt(norm);
    if (Math.abs(s - prev) < 1e-13 * s) break;
  }
  return s;
}

test('spectralNorm: torch keys, σ converges to the float64 largest singular value, output = W/σ, eval keeps u', async () => {
  const lin = vg.nn.spectralNorm(new vg.nn.Linear(12, 7, { seed: 3 }), { seed: 9 });
  assert.equal(Object.keys(lin.stateDict()), ['bias', 'weight_orig', 'weight_u', 'weight_v']);
  assert.equal(lin.namedParameters().map(([k]) => k), ['bias', 'weight_orig']);
  const conv = vg.nn.spectralNorm(new vg.nn.Conv2d(3, 5, 3, { seed: 4 }), { seed: 1 });
  assert.equal(conv.weightV.shape, [27]);
  for (const [m, rows, cols] of [
    [lin, 7, 12],
    [conv, 5, 27],
  ]) {
    const sigma = sigmaMax(await host(m.weightOrig), rows, cols);
    const x = m === lin ? vg.randn([2, 12], { seed: 2 }) : vg.randn([1, 3, 6, 6], { seed: 2 });
    for (let i = 0; i < 60; i++) vg.noGrad(() => m.call(x)).dispose();
    const est = await vg.nn.spectralNormSigma(m);
    assert.ok(Math.abs(est - sigma) < 1e-4 * sigma, `σ ${est} vs float64 ${sigma}`);
    // eval: no power iteration, the output uses weight_orig / σ(u, v)
    m.eval();
    const u0 = await host(m.weightU);
    const y = vg.noGrad(() => m.call(x));
    assert.equal(await host(m.weightU), u0, 'eval does not move u');
    const ref = vg.noGrad(() => (m === lin ? vg.linear(x, m.weightOrig.div(est), m.bias) : vg.conv2d(x, m.weightOrig.div(est), { bias: m.bias })));
    await assertClose(y, new Ref(await ref.data(), ref.shape), { rtol: 1e-5, atol: 1e-6 });
    m.train();
    for (const t of [x, y, ref]) t.dispose();
  }
  assertThrowsWith(() => vg.nn.spectralNorm(lin), ['spectralNorm', 'trainable', 'weight']);
  assertThrowsWith(() => vg.nn.spectralNorm(new vg.nn.ConvTranspose2d(2, 3, 2)), ['spectralNorm', 'transposed']);
  lin.dispose();
  conv.dispose();
});

test('spectralNorm: the gradient of weight_orig is G/σ − ⟨G, W⟩/σ² · u vᵀ (u, v held constant), float64', async () => {
  const r = rng(5);
  const lin = vg.nn.spectralNorm(new vg.nn.Linear(6, 4, { seed: 1 }), { seed: 2 });
  lin.eval();
  const X = Ref.random([3, 6], r).f32();
  const R = Ref.random([3, 4], r).f32();
  const x = X.toTensor();
  const Rt = R.toTensor();
  const L = lin.call(x).mul(Rt).sum();
  L.backward();
  const W = await host(lin.weightOrig);
  const u = await host(lin.weightU);
  const v = await host(lin.weightV);
  let sigma = 0;
  for (let i = 0; i < 4; i++) for (let j = 0; j < 6; j++) sigma += u[i] * W[i * 6 + j] * v[j];
  // G = Rᵀ X: the gradient with respect to the effective weight W / σ
  const G = new Float64Array(24);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 6; j++) for (let b = 0; b < 3; b++) G[i * 6 + j] += R.data[b * 4 + i] * X.data[b * 6 + j];
  const gw = G.reduce((s, g, k) => s + g * W[k], 0);
  const expected = G.map((g, k) => g / sigma - (gw / sigma ** 2) * u[Math.floor(k / 6)] * v[k % 6]);
  await assertClose(lin.weightOrig.grad, new Ref(expected, [4, 6]), { rtol: 1e-4, atol: 1e-5 });
  for (const t of [x, Rt, L]) t.dispose();
  lin.dispose();
});

const softplus64 = (z) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
const meanOf = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const refLoss = {
  hinge: {
    d: (real, fake) => meanOf([...real.data].map((z) => Math.max(0, 1 - z))) + meanOf([...fake.data].map((z) => Math.max(0, 1 + z))),
    g: (fake) => -meanOf([...fake.data]),
  },
  nonsaturating: {
    d: (real, fake) => meanOf([...real.data].map((z) => softplus64(-z))) + meanOf([...fake.data].map((z) => softplus64(z))),
    g: (fake) => meanOf([...fake.data].map((z) => softplus64(-z))),
  },
};

test('adversarial losses (hinge, non-saturating) against float64, with float64 gradient checks', async () => {
  const r = rng(3);
  // scores spread over [-2.5, 2.5] so both hinge branches occur (kinks avoided by the f32 draw being off ±1)
  const real = Ref.random([6], r, -2.5, 2.5).f32();
  const fake = Ref.random([6], r, -2.5, 2.5).f32();
  for (const kind of ['hinge', 'nonsaturating']) {
    const [rt, ft] = [real.toTensor(), fake.toTensor()];
    const d = vg.methods.discriminatorLoss(rt, ft, kind);
    const g = vg.methods.generatorAdversarialLoss(ft, kind);
    await assertClose(d, new Ref([refLoss[kind].d(real, fake)], []), { rtol: 1e-6, atol: 1e-6, msg: `${kind} D` });
    await assertClose(g, new Ref([refLoss[kind].g(fake)], []), { rtol: 1e-6, atol: 1e-6, msg: `${kind} G` });
    for (const t of [rt, ft, d, g]) t.dispose();
    await gradcheck64(
      (a, b) => vg.methods.discriminatorLoss(a, b, kind).reshape([1]),
      (a, b) => new Ref([refLoss[kind].d(a, b)], [1]),
      [real, fake],
      { msg: `${kind} D` },
    );
    await gradcheck64((b) => vg.methods.generatorAdversarialLoss(b, kind).reshape([1]), (b) => new Ref([refLoss[kind].g(b)], [1]), [fake], { msg: `${kind} G` });
  }
  const t = vg.zeros([2]);
  assertThrowsWith(() => vg.methods.discriminatorLoss(t, t, 'wgan'), ['discriminatorLoss', 'hinge', 'nonsaturating', 'wgan']);
  t.dispose();
});

const small = { numClasses: 5, imageSize: 32, features: [4, 8, 16], embedDim: 16, depth: 1, heads: 2, camIterations: 3, seed: 1 };

test('CATformer: shapes, parameter keys with and without the class-aware module, the start grid', async () => {
  const g = new vg.models.CATformer(small);
  assert.is(g.grid, 8);
  const plain = new vg.models.CATformer({ ...small, classAware: false });
  const sd = g.stateDict();
  for (const [k, t] of Object.entries(plain.stateDict())) assert.equal(await host(t), await host(sd[k]), `${k}: shared layers start equal`);
  const x = vg.randn([2, 1, 32, 32], { seed: 4 });
  const out = g.run(x);
  assert.equal(out.logits.shape, [2, 5, 32, 32]);
  assert.is(out.points.length, 3, 'M = 3 iterations: the start grid and two offset steps');
  out.points.forEach((p) => assert.equal(p.shape, [2, 64, 2]));
  // zero-initialised offsets: every iteration samples the token grid's cell centres, x first
  const p0 = await host(out.points[2]);
  assert.equal([p0[0], p0[1], p0[2], p0[3], p0[2 * 9], p0[2 * 9 + 1]], [1 / 16, 1 / 16, 3 / 16, 1 / 16, 3 / 16, 3 / 16]);
  const keys = Object.keys(g.stateDict());
  for (const k of ['pos_embed', 'pyramid.0.0.weight', 'pyramid.2.1.3.weight', 'cam.source.weight', 'cam.posEnc.weight', 'cam.blocks.2.attn.qkv.weight', 'cam.offsets.1.weight', 'cam.grid0', 'encoder.0.mlp.fc2.weight', 'decoder.1.0.weight', 'head.weight'])
    assert.ok(keys.includes(k), `key ${k} in ${keys.join(', ')}`);
  assert.not.ok(keys.includes('cam.offsets.2.weight'), 'no offsets after the last iteration');
  assert.equal(
    Object.keys(plain.stateDict()),
    keys.filter((k) => !k.startsWith('cam.')),
    'no-cam: the same keys without cam.*',
  );
  const plainOut = plain.run(x);
  assert.is(plainOut.points.length, 0);
  plainOut.logits.dispose();
  assertThrowsWith(() => g.call(vg.zeros([1, 1, 16, 16])), ['CATformer', '[B, C, 32, 32]', '[1, 1, 16, 16]']);
  assertThrowsWith(() => new vg.models.CATformer({ ...small, imageSize: 34 }), ['CATformer', 'imageSize', 'multiple of 2^2', '34']);
  for (const t of [x, out.logits, ...out.points]) t.dispose();
  g.dispose();
  plain.dispose();
});

test('CATformer: the class-aware offsets get the finite-difference gradient through pointSample', async () => {
  const g = new vg.models.CATformer(small);
  g.eval();
  const off = g.cam.offsets.at(0);
  // non-zero offsets, so the points leave the grid and the sampled features depend on them
  vg.noGrad(() => {
    vg.nn.init.normal_(off.weight, { std: 0.3, seed: 8 });
    vg.nn.init.normal_(off.bias, { std: 0.3, seed: 9 });
  });
  const x = vg.randn([1, 1, 32, 32], { seed: 6 });
  const R = vg.randn([1, 5, 32, 32], { seed: 7 });
  const loss = () => g.call(x).mul(R).sum();
  const L = loss();
  L.backward();
  const grad = await host(off.bias.grad);
  assert.ok(grad.some((v) => Math.abs(v) > 1e-4), `offset gradient ${grad}`);
  const b0 = await host(off.bias);
  const eps = 1e-2;
  for (let k = 0; k < 2; k++) {
    const at = async (delta) => {
      const b = Float32Array.from(b0);
      b[k] += delta;
      g.loadStateDict({ 'cam.offsets.0.bias': vg.tensor(b, [2]) }, { strict: false });
      const l = vg.noGrad(loss);
      const v = await l.item();
      l.dispose();
      return v;
    };
    const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
    assert.ok(Math.abs(fd - grad[k]) <= 0.05 * Math.abs(fd) + 2e-3, `d/d offset bias[${k}]: backward ${grad[k]}, finite difference ${fd}`);
  }
  for (const t of [x, R, L]) t.dispose();
  g.dispose();
});

test('CastDiscriminator: a score per sample, spectral normalisation on every weight layer', async () => {
  const d = new vg.models.CastDiscriminator({ inChannels: 6, imageSize: 32, patchSize: 8, dim: 16, depth: 1, heads: 2, seed: 2 });
  const x = vg.randn([3, 6, 32, 32], { seed: 1 });
  const s = d.call(x);
  assert.equal(s.shape, [3]);
  const keys = Object.keys(d.stateDict());
  for (const layer of ['patchEmbed', 'blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.0.mlp.fc1', 'blocks.0.mlp.fc2', 'head'])
    for (const k of ['weight_orig', 'weight_u', 'weight_v']) assert.ok(keys.includes(`${layer}.${k}`), `${layer}.${k}`);
  assert.equal(keys.filter((k) => k.endsWith('.weight')), ['blocks.0.norm1.weight', 'blocks.0.norm2.weight', 'norm.weight'], 'only LayerNorms keep a plain weight');
  const plain = new vg.models.CastDiscriminator({ inChannels: 6, imageSize: 32, dim: 16, depth: 1, heads: 2, spectralNorm: false });
  assert.ok(Object.keys(plain.stateDict()).includes('head.weight'));
  for (const t of [x, s]) t.dispose();
  d.dispose();
  plain.dispose();
});

test('castformer recipe: two adversarial steps write a run folder with per-structure scores', async () => {
  const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/castformer-');
  const r = await vg.methods.recipes.castformer.train({
    config: { steps: 2, batchSize: 2, size: 32, features: [4, 8, 16], embedDim: 16, depth: 1, heads: 2, discriminatorDim: 16, discriminatorDepth: 1, trainSubjects: 2, testSubjects: 1, checkpointEvery: 2 },
    outDir: dir,
  });
  assert.is(r.history.length, 2);
  for (const k of ['loss', 'seg', 'adv', 'discriminator']) assert.ok(Number.isFinite(r.history[1][k]), `${k} logged`);
  assert.equal(Object.keys(r.evaluation.dice), vg.data.ORGAN_PHANTOM_LABELS.slice(1));
  for (const k of ['meanDice', 'meanJaccard', 'meanHd95Mm', 'meanAsdMm']) assert.ok(Number.isFinite(r.evaluation[k]), k);
  for (const f of ['overlays.png', 'prediction.nii.gz', 'metrics.json']) assert.ok(existsSync(`${dir}/${f}`), f);
  rmSync(dir, { recursive: true, force: true });
  let err;
  await vg.methods.recipes.castformer.train({ config: { variant: 'gan' } }).catch((e) => (err = e));
  assert.ok(err?.message.includes("variant must be one of full, no-adv, no-cam, got 'gan'"), String(err));
});

test.run();
