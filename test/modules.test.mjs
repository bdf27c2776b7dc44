// vg.nn: module registration and PyTorch's state-dict keys/shapes (key lists written from torch 1.13's state_dict()
// of the same layers), forward against the functional ops, stateDict round trips and strict errors, BatchNorm2d
// running statistics against a float64 reference, train()/eval(), backward reaching every parameter, dispose, and
// vg.nn.init's formulas and statistics.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const nn = () => vg.nn;
const shapes = (m) => Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape], t.dtype]);
const count = (m) => m.parameters().reduce((a, t) => a + t.size, 0);
const exact = async (a, b, msg) => assertClose(a, new Ref(await b.data(), b.shape), { rtol: 0, atol: 0, msg });

test('layer state-dict keys, shapes and parameter counts match PyTorch', () => {
  const { Linear, Conv1d, Conv2d, ConvTranspose2d, ConvTranspose3d, BatchNorm1d, BatchNorm2d, InstanceNorm2d, GroupNorm, LayerNorm } = nn();
  // num_batches_tracked is int64 in PyTorch; i32 here (WGSL has no 64-bit integers)
  const cases = [
    [new Linear(3, 5), [['weight', [5, 3], 'f32'], ['bias', [5], 'f32']], 20],
    [new Conv1d(4, 6, 3, { groups: 2 }), [['weight', [6, 2, 3], 'f32'], ['bias', [6], 'f32']], 42],
    [new Conv2d(3, 8, [3, 2], { bias: false }), [['weight', [8, 3, 3, 2], 'f32']], 144],
    [new ConvTranspose2d(4, 6, 3, { groups: 2 }), [['weight', [4, 3, 3, 3], 'f32'], ['bias', [6], 'f32']], 114],
    [new ConvTranspose3d(3, 2, [2, 3, 1]), [['weight', [3, 2, 2, 3, 1], 'f32'], ['bias', [2], 'f32']], 38],
    [
      new BatchNorm1d(7),
      [['weight', [7], 'f32'], ['bias', [7], 'f32'], ['running_mean', [7], 'f32'], ['running_var', [7], 'f32'], ['num_batches_tracked', [], 'i32']],
      14,
    ],
    [new BatchNorm2d(3, { affine: false }), [['running_mean', [3], 'f32'], ['running_var', [3], 'f32'], ['num_batches_tracked', [], 'i32']], 0],
    [new InstanceNorm2d(3), [], 0],
    [new GroupNorm(3, 6), [['weight', [6], 'f32'], ['bias', [6], 'f32']], 12],
    [new LayerNorm([4, 5], { elementwiseAffine: false }), [], 0],
  ];
  for (const [m, keys, n] of cases) {
    assert.equal(shapes(m), keys, m.constructor.name);
    assert.is(count(m), n, `${m.constructor.name} parameter count`);
    m.dispose();
  }
});


function makeNet(seed = 11) {
  const { Module, Conv3d, BatchNorm3d, Sequential, Linear, ReLU, Dropout, ModuleList, LayerNorm, GroupNorm, InstanceNorm3d } = nn();
  class Nested extends Module {
    constructor() {
      super();
      this.conv = new Conv3d(2, 4, [3, 1, 2], { bias: false, seed });
      this.bn = new BatchNorm3d(4);
      this.layers = new Sequential(new Linear(5, 6, { seed: seed + 2 }), new ReLU(), new Dropout({ p: 0.1 }), new Linear(6, 3, { seed: seed + 4 }));
      this.heads = new ModuleList([new LayerNorm([3]), new GroupNorm(2, 4), new InstanceNorm3d(4, { affine: true, trackRunningStats: true })]);
    }
    forward(x) {
      return this.layers.call(x);
    }
  }
  return new Nested();
}

test('nested model: PyTorch keys in PyTorch order, namedParameters, children', () => {
  const m = makeNet();
  assert.equal(shapes(m), [
    ['conv.weight', [4, 2, 3, 1, 2], 'f32'],
    ['bn.weight', [4], 'f32'],
    ['bn.bias', [4], 'f32'],
    ['bn.running_mean', [4], 'f32'],
    ['bn.running_var', [4], 'f32'],
    ['bn.num_batches_tracked', [], 'i32'],
    ['layers.0.weight', [6, 5], 'f32'],
    ['layers.0.bias', [6], 'f32'],
    ['layers.3.weight', [3, 6], 'f32'],
    ['layers.3.bias', [3], 'f32'],
    ['heads.0.weight', [3], 'f32'],
    ['heads.0.bias', [3], 'f32'],
    ['heads.1.weight', [4], 'f32'],
    ['heads.1.bias', [4], 'f32'],
    ['heads.2.weight', [4], 'f32'],
    ['heads.2.bias', [4], 'f32'],
    ['heads.2.running_mean', [4], 'f32'],
    ['heads.2.running_var', [4], 'f32'],
    ['heads.2.num_batches_tracked', [], 'i32'],
  ]);
  assert.equal(
    m.namedParameters().map(([k]) => k),
    ['conv.weight', 'bn.weight', 'bn.bias', 'layers.0.weight', 'layers.0.bias', 'layers.3.weight', 'layers.3.bias',
      'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias', 'heads.2.weight', 'heads.2.bias'],
  );
  assert.ok(m.parameters().every((p) => p.requiresGrad && p.isLeaf && p.dtype === 'f32'));
  assert.ok(m.buffers().every((b) => !b.requiresGrad));
  assert.equal(m.namedChildren().map(([k]) => k), ['conv', 'bn', 'layers', 'heads']);
  assert.is(m.children()[2], m.layers);
  m.dispose();
});

test('a tensor with requiresGrad assigned to a property is a parameter; call() runs forward', async () => {
  class Scale extends vg.nn.Module {
    constructor() {
      super();
      this.alpha = vg.tensor([2, 3], [2], { requiresGrad: true });
      this.notParam = vg.tensor([1], [1]);
    }
    forward(x) {
      return vg.mul(x, this.alpha);
    }
  }
  const m = new Scale();
  assert.equal(m.namedParameters().map(([k]) => k), ['alpha']);
  const x = vg.tensor([1, 1], [2]);
  assert.equal([...(await m.call(x).data())], [2, 3]);
  assertThrowsWith(() => new vg.nn.Module().call(x), ['Module', 'forward is not implemented']);
  m.dispose();
  m.notParam.dispose();
  x.dispose();
});

test('layer forward equals the functional op with the same weights', async () => {
  const r = rng(3);
  const { Linear, Conv1d, Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d, GroupNorm, LayerNorm, InstanceNorm3d, LeakyReLU, GELU, ReLU, Sigmoid, Tanh } = nn();
  const rand = (shape) => Ref.random(shape, r).toTensor();
  const cases = [
    [new Linear(5, 3), [2, 4, 5], (x, m) => vg.linear(x, m.weight, m.bias)],
    [new Conv1d(4, 6, 3, { groups: 2, padding: 1 }), [2, 4, 7], (x, m) => vg.conv1d(x, m.weight, { bias: m.bias, groups: 2, padding: 1 })],
    [new Conv2d(3, 4, [3, 2], { stride: [2, 1], dilation: [1, 2] }), [1, 3, 7, 6], (x, m) => vg.conv2d(x, m.weight, { bias: m.bias, stride: [2, 1], dilation: [1, 2] })],
    [new Conv3d(2, 3, 3, { padding: 'same', bias: false }), [1, 2, 4, 5, 3], (x, m) => vg.conv3d(x, m.weight, { padding: 'same' })],
    [new ConvTranspose2d(4, 2, 3, { stride: 2, outputPadding: 1 }), [1, 4, 3, 5], (x, m) => vg.convTranspose2d(x, m.weight, { bias: m.bias, stride: 2, outputPadding: 1 })],
    [new ConvTranspose3d(2, 4, 2, { stride: 2, groups: 2 }), [1, 2, 3, 2, 3], (x, m) => vg.convTranspose3d(x, m.weight, { bias: m.bias, stride: 2, groups: 2 })],
    [new GroupNorm(2, 4, { eps: 1e-3 }), [2, 4, 3, 3], (x, m) => vg.groupNorm(x, 2, { weight: m.weight, bias: m.bias, eps: 1e-3 })],
    [new LayerNorm([3, 4]), [2, 3, 4], (x, m) => vg.layerNorm(x, [3, 4], { weight: m.weight, bias: m.bias })],
    [new InstanceNorm3d(3), [2, 3, 2, 3, 2], (x) => vg.instanceNorm(x)],
    [new LeakyReLU({ negativeSlope: 0.2 }), [10], (x) => vg.leakyRelu(x, { negativeSlope: 0.2 })],
    [new GELU({ approximate: 'tanh' }), [10], (x) => vg.gelu(x, { approximate: 'tanh' })],
    [new ReLU(), [10], (x) => vg.relu(x)],
    [new Sigmoid(), [10], (x) => vg.sigmoid(x)],
    [new Tanh(), [10], (x) => vg.tanh(x)],
  ];
  for (const [m, shape, fn] of cases) {
    // non-default affine values, so a layer that dropped weight or bias would differ
    for (const p of m.parameters()) if (p.ndim === 1 || m instanceof LayerNorm) vg.nn.init.uniform_(p, { a: 0.5, b: 1.5, seed: 5 });
    const x = rand(shape);
    await exact(m.call(x), fn(x, m), m.constructor.name);
    m.dispose();
  }
});

test('stateDict -> loadStateDict into a fresh module reproduces the outputs; strict errors name the keys', async () => {
  const a = makeNet(1);
  const b = makeNet(100);
  const x = Ref.random([3, 5], rng(4)).toTensor();
  a.eval();
  b.eval();
  const ya = await a.call(x).data();
  const yb0 = await b.call(x).data();
  assert.ok(ya.some((v, i) => v !== yb0[i]), 'different seeds give different models');
  b.loadStateDict(a.stateDict());
  await assertClose(b.call(x), new Ref(ya, [3, 3]), { rtol: 0, atol: 0 });
  for (const [k, t] of Object.entries(b.stateDict())) {
    const src = a.stateDict()[k];
    assert.ok(t !== src, `${k} is copied, not shared`);
    assert.equal([...(await t.data())], [...(await src.data())], k);
  }

  const dict = { ...a.stateDict() };
  delete dict['bn.running_var'];
  dict['extra.weight'] = dict['conv.weight'];
  assertThrowsWith(() => b.loadStateDict(dict), ['loadStateDict', "missing keys ['bn.running_var']", "unexpected keys ['extra.weight']", 'strict: false']);
  const res = b.loadStateDict(dict, { strict: false });
  assert.equal(res, { missingKeys: ['bn.running_var'], unexpectedKeys: ['extra.weight'] });

  const wrong = vg.zeros([6, 4]);
  assertThrowsWith(() => b.loadStateDict({ ...a.stateDict(), 'layers.0.weight': wrong }), [
    'loadStateDict',
    "'layers.0.weight'",
    'checkpoint shape [6, 4]',
    'module shape [6, 5]',
  ]);
  wrong.dispose();
  a.dispose();
  b.dispose();
  x.dispose();
});

test('BatchNorm2d: training updates running stats and num_batches_tracked; eval normalises by them (float64 reference)', async () => {
  const r = rng(9);
  const [N, C, H, W] = [3, 2, 4, 3];
  const bn = new vg.nn.BatchNorm2d(C, { momentum: 0.3, eps: 1e-3 });
  const wRef = new Ref([1.5, -0.5], [C]);
  const bRef = new Ref([0.25, 2], [C]);
  vg.nn.init.ones_(bn.weight);
  bn.loadStateDict({ ...bn.stateDict(), weight: wRef.toTensor(), bias: bRef.toTensor() });
  let rm = [0, 0];
  let rv = [1, 1];
  const perChan = (ref, c) => {
    const v = [];
    for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) v.push(ref.data[(n * C + c) * H * W + i]);
    return v;
  };
  for (let step = 0; step < 2; step++) {
    const xr = Ref.random([N, C, H, W], r, -2, 3).f32();
    const x = xr.toTensor();
    const y = bn.call(x);
    const expect = new Float64Array(xr.data.length);
    for (let c = 0; c < C; c++) {
      const v = perChan(xr, c);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
      for (let n = 0; n < N; n++)
        for (let i = 0; i < H * W; i++) {
          const j = (n * C + c) * H * W + i;
          expect[j] = ((xr.data[j] - mean) / Math.sqrt(ss / v.length + 1e-3)) * wRef.data[c] + bRef.data[c];
        }
      rm[c] = 0.7 * rm[c] + 0.3 * mean;
      rv[c] = 0.7 * rv[c] + 0.3 * (ss / (v.length - 1));
    }
    await assertClose(y, new Ref(expect, [N, C, H, W]), { rtol: 1e-4, atol: 1e-5, msg: `train step ${step}` });
  }
  await assertClose(bn.runningMean, new Ref(rm, [C]), { rtol: 1e-4, atol: 1e-6 });
  await assertClose(bn.runningVar, new Ref(rv, [C]), { rtol: 1e-4, atol: 1e-6 });
  assert.equal([...(await bn.numBatchesTracked.data())], [2]);

  bn.eval();
  const xr = Ref.random([2, C, 2, 2], r).f32();
  const expect = xr.data.map((v, j) => {
    const c = Math.floor(j / 4) % C;
    return ((v - rm[c]) / Math.sqrt(rv[c] + 1e-3)) * wRef.data[c] + bRef.data[c];
  });
  await assertClose(bn.call(xr.toTensor()), new Ref(expect, xr.shape), { rtol: 1e-4, atol: 1e-5, msg: 'eval' });
  assert.equal([...(await bn.numBatchesTracked.data())], [2], 'eval does not count');
  assertThrowsWith(() => bn.call(vg.zeros([2, 2, 3])), ['BatchNorm2d', 'expected input with 4 dims', '[2, 2, 3]']);
  bn.dispose();
});

test('InstanceNorm3d with trackRunningStats: batch-averaged running stats, num_batches_tracked stays 0 as in PyTorch', async () => {
  const xr = Ref.random([2, 2, 2, 2, 3], rng(12)).f32();
  const m = new vg.nn.InstanceNorm3d(2, { trackRunningStats: true, momentum: 0.5 });
  m.call(xr.toTensor());
  // running_mean = 0.5 * 0 + 0.5 * mean over n of the per-(n, c) means = 0.5 * channel mean (equal-size instances)
  const rm = [0, 1].map((c) => {
    let s = 0;
    for (let n = 0; n < 2; n++) for (let i = 0; i < 12; i++) s += xr.data[(n * 2 + c) * 12 + i];
    return (0.5 * s) / 24;
  });
  await assertClose(m.runningMean, new Ref(rm, [2]), { rtol: 1e-4, atol: 1e-6 });
  assert.equal([...(await m.numBatchesTracked.data())], [0]);
  m.dispose();
});

test('train()/eval() recurse; Dropout is the identity in eval and drops in training', async () => {
  const m = makeNet();
  assert.ok(m.training && m.layers.at(2).training);
  assert.is(m.eval(), m);
  for (const [, c] of m.namedModules()) assert.not.ok(c.training);
  const x = vg.ones([4, 100]);
  const d = new vg.nn.Dropout({ p: 0.5 });
  const kept = (await d.call(x).data()).filter((v) => v !== 0);
  assert.ok(kept.length > 100 && kept.length < 300, `about half kept, got ${kept.length}`);
  assert.ok(kept.every((v) => v === 2));
  d.eval();
  assert.ok((await d.call(x).data()).every((v) => v === 1));
  m.train();
  for (const [, c] of m.namedModules()) assert.ok(c.training);
  assertThrowsWith(() => new vg.nn.Dropout({ p: 1.5 }), ['Dropout', 'p', '[0, 1]', '1.5']);
  m.dispose();
});

test('backward through a Sequential reaches every parameter', async () => {
  const { Sequential, Linear, Tanh, LayerNorm, GELU } = nn();
  const m = new Sequential(new Linear(4, 8, { seed: 1 }), new LayerNorm(8), new Tanh(), new Linear(8, 2, { seed: 3 }), new GELU());
  const x = Ref.random([5, 4], rng(2)).toTensor();
  const loss = vg.sum(m.call(x));
  vg.backward(loss);
  for (const [k, p] of m.namedParameters()) {
    assert.ok(p.grad, `${k} has a grad`);
    assert.equal([...p.grad.shape], [...p.shape], k);
    assert.ok((await p.grad.data()).some((v) => v !== 0), `${k} grad is nonzero`);
  }
  m.dispose();
});

test('seeded initialisation: reproducible, PyTorch bounds for Linear/Conv weight and bias', async () => {
  const { Linear, Conv3d, ConvTranspose3d } = nn();
  const a = new Linear(50, 40, { seed: 7 });
  const b = new Linear(50, 40, { seed: 7 });
  assert.equal([...(await a.weight.data())], [...(await b.weight.data())]);
  const c = new Conv3d(6, 8, [3, 2, 1], { seed: 8 }); // fanIn 6*6 = 36
  const t = new ConvTranspose3d(6, 8, 2, { groups: 2, seed: 9 }); // weight [6, 4, 2, 2, 2]: fanIn = 4*8 = 32
  for (const [m, fanIn] of [[a, 50], [c, 36], [t, 32]]) {
    const bound = 1 / Math.sqrt(fanIn); // kaiming_uniform(a = sqrt 5): gain sqrt(1/3) * sqrt(3 / fanIn)
    for (const p of [m.weight, m.bias]) {
      const d = await p.data();
      const maxAbs = d.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      assert.ok(maxAbs <= bound, `${m.constructor.name} max |value| ${maxAbs} <= ${bound}`);
      if (p === m.weight) assert.ok(maxAbs > 0.9 * bound, `${m.constructor.name} fills the range: ${maxAbs} vs ${bound}`);
    }
  }
  for (const m of [a, b, c, t]) m.dispose();
});

test('init: fans, gains and draw statistics (within 5 standard errors)', async () => {
  const { init } = vg.nn;
  const w = vg.zeros([64, 32, 3, 3]);
  assert.equal(init.calculateFanInAndFanOut(w), { fanIn: 288, fanOut: 576 });
  assert.is(init.calculateGain('relu'), Math.SQRT2);
  assert.is(init.calculateGain('tanh'), 5 / 3);
  assert.is(init.calculateGain('leaky_relu', Math.sqrt(5)), Math.sqrt(2 / 6));
  const n = w.size;
  const stats = async (t) => {
    const d = await t.data();
    const mean = d.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    return { mean, std, max: d.reduce((a, b) => Math.max(a, Math.abs(b)), 0) };
  };
  // standard error of the std estimate: std / sqrt(2n) (normal; uniform's is smaller: std * sqrt(0.8 / (4n)))
  const check = async (t, std, msg) => {
    const s = await stats(t);
    assert.ok(Math.abs(s.mean) < (5 * std) / Math.sqrt(n), `${msg} mean ${s.mean}`);
    assert.ok(Math.abs(s.std - std) < (5 * std) / Math.sqrt(2 * n), `${msg} std ${s.std} vs ${std}`);
    return s;
  };
  const same = w;
  assert.is(init.kaimingUniform_(w, { nonlinearity: 'relu', seed: 1 }), same, 'returns the tensor it filled');
  let s = await check(w, Math.SQRT2 / Math.sqrt(288), 'kaimingUniform_');
  assert.ok(s.max <= Math.sqrt(6 / 288));
  init.kaimingNormal_(w, { mode: 'fan_out', nonlinearity: 'relu', seed: 2 });
  await check(w, Math.SQRT2 / Math.sqrt(576), 'kaimingNormal_');
  init.xavierUniform_(w, { gain: 2, seed: 3 });
  s = await check(w, 2 * Math.sqrt(2 / 864), 'xavierUniform_');
  assert.ok(s.max <= 2 * Math.sqrt(6 / 864));
  init.xavierNormal_(w, { seed: 4 });
  await check(w, Math.sqrt(2 / 864), 'xavierNormal_');
  init.normal_(w, { mean: 0, std: 0.02, seed: 5 });
  await check(w, 0.02, 'normal_');
  init.ones_(w);
  assert.ok((await w.data()).every((v) => v === 1));
  init.zeros_(w);
  assert.ok((await w.data()).every((v) => v === 0));
  assertThrowsWith(() => init.kaimingUniform_(vg.zeros([5])), ['calculateFanInAndFanOut', 'at least 2 dims', '[5]']);
  assertThrowsWith(() => init.kaimingUniform_(w, { mode: 'fanIn' }), ['kaimingUniform_', "'fan_in' or 'fan_out'", 'fanIn']);
  w.dispose();
});

test('dispose frees every parameter, grad and buffer', async () => {
  await vg.sync();
  const base = vg.memory().liveTensors;
  const m = makeNet();
  const x = Ref.random([2, 5], rng(1)).toTensor();
  vg.tidy(() => vg.backward(vg.sum(m.call(x))));
  assert.ok(m.parameters().some((p) => p.grad), 'grads exist before dispose');
  x.dispose();
  m.dispose();
  assert.is(vg.memory().liveTensors, base);
});

test('bad constructor arguments name the layer and argument', () => {
  const { Linear, Conv2d, GroupNorm, BatchNorm1d } = nn();
  assertThrowsWith(() => new Linear(0, 3), ['Linear', 'inFeatures', 'positive integer', '0']);
  assertThrowsWith(() => new Conv2d(3, 4, 3, { groups: 2 }), ['Conv2d', 'divisible by groups (2)']);
  assertThrowsWith(() => new Conv2d(3, 4, [3, 3, 3]), ['Conv2d', 'kernelSize', '2 of them']);
  assertThrowsWith(() => new GroupNorm(3, 4), ['GroupNorm', 'numChannels (4)', 'numGroups (3)']);
  assertThrowsWith(() => new BatchNorm1d(4, { momentum: null }), ['BatchNorm1d', 'momentum', 'not supported']);
});

test('pooling and upsampling layers: no state, the functional op with the stored options', async () => {
  const r = rng(31);
  const x2 = Ref.random([2, 3, 8, 6], r).toTensor();
  const x3 = Ref.random([1, 2, 4, 6, 4], r).toTensor();
  const cases = [
    [new vg.nn.MaxPool2d(2), x2, (x) => vg.maxPool2d(x, 2)],
    [new vg.nn.MaxPool2d([3, 2], { stride: 1, padding: 1 }), x2, (x) => vg.maxPool2d(x, [3, 2], { stride: 1, padding: 1 })],
    [new vg.nn.AvgPool2d(2, { countIncludePad: false, padding: 1 }), x2, (x) => vg.avgPool2d(x, 2, { countIncludePad: false, padding: 1 })],
    [new vg.nn.MaxPool3d(2), x3, (x) => vg.maxPool3d(x, 2)],
    [new vg.nn.AvgPool3d([2, 3, 2]), x3, (x) => vg.avgPool3d(x, [2, 3, 2])],
    [new vg.nn.Upsample({ scaleFactor: 2, mode: 'bilinear', alignCorners: true }), x2, (x) => vg.interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true })],
  ];
  for (const [layer, x, f] of cases) {
    assert.equal(Object.keys(layer.stateDict()), []);
    const want = f(x);
    await assertClose(layer.call(x), new Ref(Float64Array.from(await want.data()), want.shape), { rtol: 0, atol: 0 });
  }
  // inside a Sequential they take an index, as in PyTorch, so the keys of the layers after them match
  const seq = new vg.nn.Sequential(new vg.nn.MaxPool2d(2), new vg.nn.Conv2d(3, 4, 3));
  assert.equal(Object.keys(seq.stateDict()), ['1.weight', '1.bias']);
});

test.run();
