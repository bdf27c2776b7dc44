// Every entry of the elementwise table: forward against float64, gradient by finite differences,
// over broadcasting shapes with odd sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, erf, gradcheck, refMap, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const sigmoid = (x) => 1 / (1 + Math.exp(-x));
const geluTanh = (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

// name → [float64 reference, input range, differentiable?]
const UNARY = {
  neg: [(a) => -a],
  abs: [(a) => Math.abs(a)],
  square: [(a) => a * a],
  exp: [Math.exp, [-3, 3]],
  log: [Math.log, [0.2, 4]],
  log1p: [Math.log1p, [-0.5, 3]],
  sqrt: [Math.sqrt, [0.2, 4]],
  rsqrt: [(a) => 1 / Math.sqrt(a), [0.2, 4]],
  reciprocal: [(a) => 1 / a, [0.5, 3]],
  sin: [Math.sin, [-4, 4]],
  cos: [Math.cos, [-4, 4]],
  tanh: [Math.tanh, [-4, 4]],
  sigmoid: [sigmoid, [-6, 6]],
  relu: [(a) => Math.max(a, 0)],
  silu: [(a) => a * sigmoid(a), [-4, 4]],
  softplus: [(a) => Math.log1p(Math.exp(-Math.abs(a))) + Math.max(a, 0), [-5, 5]],
  sign: [Math.sign, [-2, 2], false],
  floor: [Math.floor, [-3, 3], false],
  ceil: [Math.ceil, [-3, 3], false],
};

// [4, 256] takes the vec4 GPU kernel, [2, 1, 257] the scalar one; the small shapes run on the host unless
// host forwarding is off — every case below runs both ways
const SHAPES = [[1], [7], [3, 5], [4, 256], [2, 1, 257]];
const MODES = [
  ['gpu', 0],
  ['host-forwarded', 128],
];

async function eachMode(fn) {
  for (const [mode, threshold] of MODES) {
    vg.setCpuForwardThreshold(threshold);
    try {
      await fn(mode);
    } finally {
      vg.setCpuForwardThreshold(128);
    }
  }
}

for (const [name, [ref, range = [-2, 2], diff = true]] of Object.entries(UNARY)) {
  test(`${name}: forward matches float64 and gradient matches finite differences`, async () => {
    const r = rng(name.length * 31 + 5);
    await eachMode(async (mode) => {
      for (const shape of SHAPES) {
        const x = Ref.random(shape, r, ...range).f32();
        const t = x.toTensor();
        await assertClose(vg[name](t), refMap(ref, x), { rtol: 2e-6, atol: 2e-6, msg: `${name} ${shape} ${mode}` });
        t.dispose();
      }
    });
    if (diff) await gradcheck((a) => vg[name](a), [Ref.random([3, 7], r, ...range).f32()], { msg: name });
  });
}

test('gelu (erf and tanh forms) match float64; gradients match finite differences', async () => {
  const r = rng(3);
  const x = Ref.random([4, 33], r, -4, 4).f32();
  const t = x.toTensor();
  await assertClose(vg.gelu(t), refMap((a) => 0.5 * a * (1 + erf(a / Math.SQRT2)), x), { rtol: 1e-5, atol: 1e-6 });
  await assertClose(vg.gelu(t, { approximate: 'tanh' }), refMap(geluTanh, x), { rtol: 1e-5, atol: 1e-6 });
  await gradcheck((a) => vg.gelu(a), [x]);
  await gradcheck((a) => vg.gelu(a, { approximate: 'tanh' }), [x]);
  assertThrowsWith(() => vg.gelu(t, { approximate: 'fast' }), ['gelu', 'approximate']);
});

const BINARY = {
  add: [(a, b) => a + b],
  sub: [(a, b) => a - b],
  mul: [(a, b) => a * b],
  div: [(a, b) => a / b, [0.5, 2]],
  pow: [(a, b) => a ** b, [0.3, 2]],
  // kinked at a == b: inputs on two offset grids stay 0.04 apart, beyond the finite-difference step
  maximum: [Math.max, [-2, 2], true],
  minimum: [Math.min, [-2, 2], true],
};

const gridded = (ref, offset) => new Ref(ref.data.map((v) => Math.round(v * 10) / 10 + offset), ref.shape).f32();

const PAIRS = [
  [[7], [7]],
  [[3, 1], [1, 5]],
  [[2, 3, 4], [4]],
  [[1], [2, 257]],
  [[5, 1, 3], [1, 4, 1]],
  // dims that merge ([4, 15] against [4, 1]) and ranks 6 and 8 whose alternating broadcasts do not merge
  [[4, 1, 3, 5], [4, 1, 1, 1]],
  [[2, 1, 3, 1, 2, 1], [1, 3, 1, 2, 1, 3]],
  [[2, 1, 2, 1, 2, 1, 2, 3], [1, 2, 1, 2, 1, 2, 1, 3]],
];

for (const [name, [ref, range = [-2, 2], kinked = false]] of Object.entries(BINARY)) {
  test(`${name}: broadcasting forward matches float64; gradients to both inputs`, async () => {
    const r = rng(name.length * 17 + 1);
    await eachMode(async (mode) => {
      for (const [sa, sb] of PAIRS) {
        const a = Ref.random(sa, r, ...range).f32();
        const b = Ref.random(sb, r, ...range).f32();
        const [ta, tb] = [a.toTensor(), b.toTensor()];
        await assertClose(vg[name](ta, tb), refMap(ref, a, b), { rtol: 1e-5, atol: 1e-6, msg: `${name} ${sa} ${sb} ${mode}` });
        await assertClose(ta[name](2), refMap((x) => ref(x, 2), a), { rtol: 1e-5, atol: 1e-6, msg: `${name} scalar ${mode}` });
        ta.dispose();
        tb.dispose();
      }
    });
    let [ga, gb] = [Ref.random([3, 1, 5], r, ...range).f32(), Ref.random([4, 1], r, ...range).f32()];
    if (kinked) [ga, gb] = [gridded(ga, 0.03), gridded(gb, 0.07)];
    await gradcheck((x, y) => vg[name](x, y), [ga, gb], { msg: name, eps: kinked ? 1e-3 : 1e-2 });
  });
}

test('pow handles negative bases with integral exponents like PyTorch', () =>
  eachMode(async () => {
    const x = vg.tensor([-2, -1.5, 0, 3]);
    assert.equal(Array.from(await vg.pow(x, 3).data()), [-8, -3.375, 0, 27]);
    assert.equal(Array.from(await vg.pow(x, 2).data()), [4, 2.25, 0, 9]);
    const nan = await vg.pow(x, 0.5).data();
    assert.ok(Number.isNaN(nan[0]) && nan[3] === Math.fround(Math.sqrt(3)));
  }));

test('maximum/minimum split the gradient evenly on ties', () =>
  eachMode(async () => {
    const a = vg.tensor([1, 2, 3], null, { requiresGrad: true });
    const b = vg.tensor([1, 5, 0], null, { requiresGrad: true });
    vg.maximum(a, b).sum().backward();
    assert.equal(Array.from(await a.grad.data()), [0.5, 0, 1]);
    assert.equal(Array.from(await b.grad.data()), [0.5, 1, 0]);
  }));

test('comparisons and logical ops return u32 0/1 with broadcasting', () =>
  eachMode(async () => {
    const r = rng(9);
    const a = Ref.random([3, 4], r).f32();
    const b = Ref.random([4], r).f32();
    const [ta, tb] = [a.toTensor(), b.toTensor()];
    const cmp = { eq: (x, y) => x === y, ne: (x, y) => x !== y, lt: (x, y) => x < y, le: (x, y) => x <= y, gt: (x, y) => x > y, ge: (x, y) => x >= y };
    for (const [name, f] of Object.entries(cmp)) {
      const out = vg[name](ta, tb);
      assert.is(out.dtype, 'u32');
      await assertClose(out, refMap((x, y) => (f(x, y) ? 1 : 0), a, b), { msg: name });
      await assertClose(vg[name](ta, ta), refMap((x) => (f(x, x) ? 1 : 0), a), { msg: `${name} self` });
    }
    const m = vg.gt(ta, 0);
    await assertClose(vg.logicalAnd(m, vg.lt(ta, 0.5)), refMap((x) => (x > 0 && x < 0.5 ? 1 : 0), a));
    await assertClose(vg.logicalOr(m, vg.lt(ta, -0.5)), refMap((x) => (x > 0 || x < -0.5 ? 1 : 0), a));
    await assertClose(vg.logicalNot(m), refMap((x) => (x > 0 ? 0 : 1), a));
  }));

test('where broadcasts condition, x and y; gradient flows to x and y only', () =>
  eachMode(async () => {
    const r = rng(11);
    const c = new Ref(Array.from({ length: 12 }, () => (r.next() > 0.5 ? 1 : 0)), [3, 4], 'u32');
    const x = Ref.random([1, 4], r).f32();
    const y = Ref.random([3, 1], r).f32();
    await assertClose(vg.where(c.toTensor(), x.toTensor(), y.toTensor()), refMap((cc, a, b) => (cc ? a : b), c, x, y));
    await assertClose(vg.where(c.toTensor(), x.toTensor(), 7), refMap((cc, a) => (cc ? a : 7), c, x));
    await gradcheck((cc, a, b) => vg.where(cc, a, b), [c, x, y], { wrt: [1, 2] });
  }));

test('clamp with scalar and tensor bounds; leakyRelu slope; gradients', () =>
  eachMode(async () => {
    const r = rng(12);
    const x = Ref.random([5, 7], r, -3, 3).f32();
    const t = x.toTensor();
    await assertClose(vg.clamp(t, { min: -1, max: 1.5 }), refMap((a) => Math.min(Math.max(a, -1), 1.5), x));
    await assertClose(vg.clamp(t, -0.5), refMap((a) => Math.max(a, -0.5), x));
    await assertClose(vg.clamp(t, null, 0.5), refMap((a) => Math.min(a, 0.5), x));
    await assertClose(vg.leakyRelu(t, { negativeSlope: 0.2 }), refMap((a) => (a > 0 ? a : 0.2 * a), x), { rtol: 1e-6 });
    await gradcheck((a) => vg.clamp(a, { min: -1, max: 1.5 }), [x], { eps: 1e-3 });
    await gradcheck((a) => vg.leakyRelu(a, { negativeSlope: 0.2 }), [x], { eps: 1e-3 });
    assertThrowsWith(() => vg.clamp(t), ['clamp', 'min and max']);
  }));

test('integer dtypes: int arithmetic stays int, float-only ops promote, casts truncate', () =>
  eachMode(async () => {
    const a = vg.tensor([7, -3, 12], null, { dtype: 'i32' });
    const b = vg.tensor([2, 2, 5], null, { dtype: 'i32' });
    assert.is(vg.add(a, b).dtype, 'i32');
    assert.equal(Array.from(await vg.add(a, b).data()), [9, -1, 17]);
    assert.equal(Array.from(await vg.mul(a, 3).data()), [21, -9, 36]);
    assert.is(vg.div(a, b).dtype, 'f32');
    assert.equal(Array.from(await vg.div(a, b).data()), [3.5, -1.5, 2.4000000953674316]);
    assert.is(vg.add(a, 0.5).dtype, 'f32');
    assert.is(vg.exp(a).dtype, 'f32');
    assert.equal(Array.from(await vg.tensor([1.9, -1.9, 2.5]).to('i32').data()), [1, -1, 2]);
    assert.equal(Array.from(await vg.tensor([1, 2, 3], null, { dtype: 'u32' }).add(vg.tensor([1, 1, 1], null, { dtype: 'u32' })).data()), [2, 3, 4]);
    assert.equal(Array.from(await vg.maximum(a, b).data()), [7, 2, 12]);
    assert.equal(Array.from(await vg.abs(a).data()), [7, 3, 12]);
  }));

test('bad input: broadcasting mismatch, non-tensor argument, disposed tensor', async () => {
  const a = vg.zeros([2, 3]);
  const b = vg.zeros([4]);
  assertThrowsWith(() => vg.add(a, b), ['add', '[2, 3]', '[4]', 'broadcast']);
  assertThrowsWith(() => vg.mul(a, 'x'), ['mul', 'Tensor or a number', 'string']);
  assertThrowsWith(() => vg.add(1, 2), ['add', 'at least one Tensor']);
  b.dispose();
  assertThrowsWith(() => vg.exp(b), ['exp', 'disposed', '[4]']);
  assertThrowsWith(() => a.to('f64'), ['to', "'f32'"]);
});

test.run();
