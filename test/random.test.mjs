// Random tensors: an independent Philox4x32-10 in JS (checked against Random123's known answers) must reproduce
// the GPU stream bit for bit; seeding and the global generator; distribution statistics; argument errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const MASK32 = 0xffffffffn;

/** Philox4x32-10 (Salmon et al., SC'11) with exact BigInt products; the key is bumped before rounds 2..10. */
function philox(counter, key) {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  for (let r = 0; r < 10; r++) {
    if (r > 0) [k0, k1] = [(k0 + 0x9e3779b9) >>> 0, (k1 + 0xbb67ae85) >>> 0];
    const p0 = 0xd2511f53n * BigInt(c0);
    const p1 = 0xcd9e8d57n * BigInt(c2);
    [c0, c1, c2, c3] = [(Number(p1 >> 32n) ^ c1 ^ k0) >>> 0, Number(p1 & MASK32), (Number(p0 >> 32n) ^ c3 ^ k1) >>> 0, Number(p0 & MASK32)];
  }
  return [c0, c1, c2, c3];
}

const TWO_M24 = 2 ** -24;
const keyOf = (seed) => [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];

/** The 32-bit words of the stream documented in shaders/philox.wgsl: element 4i + j is word j of block (i, offset, 0, 0). */
function words(n, seed, offset) {
  const out = new Uint32Array(Math.ceil(n / 4) * 4);
  for (let i = 0; i < out.length / 4; i++) out.set(philox([i, offset, 0, 0], keyOf(seed)), 4 * i);
  return out;
}

/** rand: the top 24 bits of each word times 2^-24 (exact in f32). */
const refUniform = (n, seed, offset = 0) => Float64Array.from(words(n, seed, offset).subarray(0, n), (w) => (w >>> 8) * TWO_M24);

/** randn: Box-Muller on word pairs (x, y) and (z, w): radius from u = (top24 + 1) 2^-24 in (0, 1], angle 2 pi (top24 2^-24 - 1/2). */
function refNormal(n, seed, offset = 0) {
  const w = words(n, seed, offset);
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i += 2) {
    const rad = Math.sqrt(-2 * Math.log(((w[i] >>> 8) + 1) * TWO_M24));
    const theta = 2 * Math.PI * ((w[i + 1] >>> 8) * TWO_M24 - 0.5);
    out[i] = rad * Math.cos(theta);
    out[i + 1] = rad * Math.sin(theta);
  }
  return out.subarray(0, n);
}

const hex = (v) => v.map((x) => x.toString(16).padStart(8, '0')).join(' ');

/** Bitwise equality of a GPU f32 tensor and float64 values that are exact in f32. */
async function assertBitExact(t, expected, msg) {
  const got = await t.data();
  assert.is(got.length, expected.length, `${msg} length`);
  for (let i = 0; i < got.length; i++)
    if (got[i] !== expected[i]) assert.unreachable(`${msg}: element ${i} is ${got[i]}, Philox stream gives ${expected[i]}`);
}

test('JS Philox4x32-10 reproduces the Random123 known-answer vectors', () => {
  const kat = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
  ];
  for (const [ctr, key, want] of kat) assert.is(hex(philox(ctr, key)), hex(want), `counter ${hex(ctr)} key ${hex(key)}`);
});

test('rand with a seed reproduces the Philox stream bit for bit (incl. 64-bit seeds)', async () => {
  for (const [n, seed] of [
    [4099, 0],
    [1000, 12345],
    [8, 0xffffffff],
    [9, 2 ** 32 + 7], // the high key word
    [6, 2 ** 53 - 1],
  ])
    await assertBitExact(vg.rand([n], { seed }), refUniform(n, seed), `seed ${seed}`);
  await assertBitExact(vg.rand([3, 5, 7], { seed: 3 }), refUniform(105, 3), 'shape [3, 5, 7]');
});

test('randn with a seed follows Box-Muller on the Philox stream', async () => {
  const n = 4099;
  // f32 angle rounding (ulp(pi) = 2.4e-7) and sin/cos/log round-off (~1e-6 on lavapipe), times the radius (<= 5.8)
  await assertClose(vg.randn([n], { seed: 42 }), new Ref(refNormal(n, 42), [n]), { rtol: 1e-5, atol: 1e-5 });
  await assertClose(vg.normal([2, 7], 3, 0.5, { seed: 9 }), new Ref(refNormal(14, 9).map((z) => 3 + 0.5 * z), [2, 7]), { rtol: 1e-5, atol: 1e-5 });
  // uniform: one f32 rounding each for (high - low), the product and the sum (ulp(5) = 4.8e-7)
  await assertClose(vg.uniform([999], -2, 5, { seed: 8 }), new Ref(refUniform(999, 8).map((u) => -2 + 7 * u), [999]), { rtol: 0, atol: 1.5e-6 });
});

test('seeds: same seed gives identical tensors, different seeds differ', async () => {
  const a = await vg.rand([1000], { seed: 5 }).data();
  const b = await vg.rand([1000], { seed: 5 }).data();
  assert.equal(Array.from(a), Array.from(b));
  const c = await vg.rand([1000], { seed: 6 }).data();
  const d = await vg.rand([1000], { seed: 5 + 2 ** 32 }).data();
  // independent streams: a coincidence of two f32 uniforms has probability 2^-24 per element
  for (const [other, name] of [[c, 'seed 6'], [d, 'seed 5 + 2^32']]) assert.ok(a.filter((v, i) => v === other[i]).length <= 2, `seed 5 vs ${name}`);
  const e = await vg.randn([1000], { seed: 5 }).data();
  const f = await vg.randn([1000], { seed: 5 }).data();
  assert.equal(Array.from(e), Array.from(f));
});

test('global generator: each call takes the next Philox counter block; manualSeed restarts the stream', async () => {
  vg.manualSeed(77);
  const first = vg.rand([10]);
  vg.rand([3], { seed: 1 }); // an explicit seed leaves the global stream alone
  const second = vg.rand([10]);
  const third = vg.randn([6]);
  await assertBitExact(first, refUniform(10, 77, 0), 'call 1');
  await assertBitExact(second, refUniform(10, 77, 1), 'call 2');
  await assertClose(third, new Ref(refNormal(6, 77, 2), [6]), { rtol: 1e-5, atol: 1e-5 });
  vg.manualSeed(77);
  assert.equal(Array.from(await vg.rand([10]).data()), Array.from(await first.data()), 'restart');
  assert.equal(Array.from(await vg.rand([10]).data()), Array.from(await second.data()), 'restart, second call');
  vg.manualSeed(2 ** 40 + 3);
  await assertBitExact(vg.rand([5]), refUniform(5, 2 ** 40 + 3, 0), 'seed above 2^32');
});

/** Mean and (population) variance of a typed array in float64. */
function moments(a) {
  let s = 0;
  for (const v of a) s += v;
  const mean = s / a.length;
  let q = 0;
  for (const v of a) q += (v - mean) ** 2;
  return { mean, variance: q / a.length };
}

const N = 1e6;

/** Asserts |got - want| <= 5 standard errors. */
function within5se(got, want, se, msg) {
  assert.ok(Math.abs(got - want) <= 5 * se, `${msg}: ${got}, expected ${want} ± ${5 * se} (5 standard errors)`);
}

test('statistics on 1e6 samples: rand and uniform', async () => {
  const u = await vg.rand([N], { seed: 2024 }).data();
  const m = moments(u);
  // U(0, 1): variance 1/12; the variance of (u - 1/2)^2 is 1/80 - 1/144 = 1/180
  within5se(m.mean, 0.5, Math.sqrt(1 / 12 / N), 'rand mean');
  within5se(m.variance, 1 / 12, Math.sqrt(1 / 180 / N), 'rand variance');
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of u) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  assert.ok(lo >= 0 && lo < 1e-5 && hi < 1 && hi > 1 - 1e-5, `rand range [${lo}, ${hi}]`);
  const w = await vg.uniform([N], -2, 5, { seed: 2025 }).data();
  const mw = moments(w);
  within5se(mw.mean, 1.5, Math.sqrt(49 / 12 / N), 'uniform mean');
  within5se(mw.variance, 49 / 12, 49 * Math.sqrt(1 / 180 / N), 'uniform variance');
  assert.ok(w.every((v) => v >= -2 && v < 5), 'uniform range');
});

test('statistics on 1e6 samples: randn and normal, incl. tail fractions', async () => {
  const z = await vg.randn([N], { seed: 7 }).data();
  const m = moments(z);
  // N(0, 1): the variance of z^2 is 2
  within5se(m.mean, 0, Math.sqrt(1 / N), 'randn mean');
  within5se(m.variance, 1, Math.sqrt(2 / N), 'randn variance');
  // two-sided tails P(|z| > k) = erfc(k / sqrt 2)
  for (const [k, p] of [
    [1, 0.31731050786291415],
    [2, 0.04550026389635842],
    [3, 0.0026997960632601866],
  ]) {
    const frac = z.filter((v) => Math.abs(v) > k).length / N;
    within5se(frac, p, Math.sqrt((p * (1 - p)) / N), `P(|z| > ${k})`);
  }
  const maxAbs = z.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  // 24-bit uniforms bound the Box-Muller radius by sqrt(2 ln 2^24) = 5.77; 1e6 draws reach past 4.5 almost surely
  assert.ok(maxAbs > 4.5 && maxAbs <= 5.8, `max |z| = ${maxAbs}`);
  const g = await vg.normal([N], 3, 0.5, { seed: 8 }).data();
  const mg = moments(g);
  within5se(mg.mean, 3, 0.5 / Math.sqrt(N), 'normal mean');
  within5se(mg.variance, 0.25, 0.25 * Math.sqrt(2 / N), 'normal variance');
});

test('odd sizes write every element and nothing past the end of the tensor', async () => {
  for (const op of ['rand', 'randn'])
    for (const n of [1, 3, 5, 257]) {
      // fill a pooled buffer of the size class of n floats with a sentinel, release it, and let the op reuse it
      const probe = vg.zeros([n]);
      const cap = probe.buffer('test').size / 4;
      probe.dispose();
      const sentinel = vg.full([cap], -7);
      const buf = sentinel.buffer('test');
      sentinel.dispose();
      await vg.sync();
      const t = vg[op]([n], { seed: 31 });
      assert.ok(t.buffer('test') === buf, `${op} ${n}: precondition, the output reuses the sentinel buffer`);
      const whole = await t.shareStorage([cap]).data();
      const expected = op === 'rand' ? refUniform(n, 31) : refNormal(n, 31);
      // 1e-5: the randn round-off bound above (rand is exact)
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(whole[i] - expected[i]) <= 1e-5, `${op} ${n}: element ${i} is ${whole[i]}, expected ${expected[i]}`);
      for (let i = n; i < cap; i++) assert.is(whole[i], -7, `${op} ${n}: element ${i} past the end was overwritten`);
      t.dispose();
    }
});

test('shapes: 0-d, empty and multi-dim outputs; requiresGrad makes a leaf', async () => {
  const s = vg.rand([], { seed: 4 });
  assert.equal([...s.shape], []);
  assert.is(await s.item(), Math.fround(refUniform(1, 4)[0]));
  assert.equal([...vg.randn([2, 0, 3]).shape], [2, 0, 3]);
  const p = vg.randn([2, 3], { seed: 1, requiresGrad: true });
  assert.ok(p.requiresGrad && p.isLeaf);
});

test('bad seeds, shapes and distribution parameters are rejected with the op and value named', () => {
  for (const seed of [-1, 1.5, NaN, Infinity, 2 ** 53, '3']) {
    assertThrowsWith(() => vg.rand([2], { seed }), ['rand', 'seed', String(seed)]);
    assertThrowsWith(() => vg.manualSeed(seed), ['manualSeed', 'seed', String(seed)]);
  }
  assertThrowsWith(() => vg.randn([2], { seed: -3 }), ['randn', 'seed', '-3']);
  assertThrowsWith(() => vg.rand([2, -1]), ['rand', '[2, -1]']);
  assertThrowsWith(() => vg.randn([1.5]), ['randn', '[1.5]']);
  assertThrowsWith(() => vg.rand(3), ['rand', 'shape']);
  assertThrowsWith(() => vg.uniform([2], 5, 1), ['uniform', '5', '1']);
  assertThrowsWith(() => vg.uniform([2], 0, Infinity), ['uniform', 'Infinity']);
  assertThrowsWith(() => vg.normal([2], 0, -1), ['normal', 'std', '-1']);
  assertThrowsWith(() => vg.normal([2], NaN, 1), ['normal', 'mean', 'NaN']);
});

test.run();
