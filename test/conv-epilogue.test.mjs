// The conv's fused epilogue (`activation: { kind: 'relu' | 'leakyRelu' }` with bias): forward against a float64
// host convolution and the PyTorch fixtures, bit-identity with the unfused conv + vg.relu / vg.leakyRelu, gradients by
// float64 finite differences, the multi-slice reductions (the activation must apply once, after the last slice),
// and the argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convRef } from './conv-ref.mjs';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck64, refMap, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const leaky = (slope) => (v) => (v > 0 ? v : v * slope);

const OPS = { conv1d: vg.conv1d, conv2d: vg.conv2d, conv3d: vg.conv3d };

/** f32 sums of a few hundred products: 1e-4 relative plus 1e-5 of the largest magnitude (as test/conv.test.mjs). */
function tol(ref) {
  let m = 0;
  for (const v of ref.data) m = Math.max(m, Math.abs(v));
  return { rtol: 1e-4, atol: 1e-5 * m };
}

const camel = (opts) => Object.fromEntries(Object.entries(opts).map(([k, v]) => [k.replace(/_(\w)/g, (_, c) => c.toUpperCase()), v]));

// the PyTorch fixtures with a bias: the fused output is the fixture's output through the activation
for (const c of loadFixtures('conv').filter((c) => !c.large && c.b && OPS[c.op])) {
  test(`${c.name}: bias + LeakyReLU(0.2) and ReLU fused match PyTorch's output through the activation`, async () => {
    const x = fixtureRef(c.x).toTensor();
    const w = fixtureRef(c.w).toTensor();
    const b = fixtureRef(c.b).toTensor();
    const yRef = fixtureRef(c.y);
    for (const [activation, slope] of [
      [{ kind: 'leakyRelu', negativeSlope: 0.2 }, 0.2],
      [{ kind: 'relu' }, 0],
    ]) {
      const y = OPS[c.op](x, w, { ...camel(c.opts), bias: b, activation });
      const ref = refMap(leaky(slope), yRef);
      await assertClose(y, ref, { ...tol(yRef), msg: `${c.name} ${activation.kind}` });
      y.dispose();
    }
    for (const t of [x, w, b]) t.dispose();
  });
}

/**
 * Fused against unfused (conv, then vg.leakyRelu): the same sums, then the same select, so the outputs are
 * bit-identical, and so are the gradients (the backward runs the same kernels on the same masked gradient).
 * Shapes: one reduction slice (small blocks), two slices with the small blocks (80 input channels x 27 taps past
 * the staged tile), and two slices with the large blocks (32 x 27 taps, over 2e7 multiply-adds); all but the last
 * (56M multiply-adds: slow on the host, and its unfused side is the kernel the PyTorch fixtures check) are also
 * checked against the float64 host conv.
 */
const SLICED = [
  ['2-D, one slice', [2, 3, 7, 9], [5, 3, 3, 3], { padding: 1 }],
  ['3-D stride 2, one slice', [1, 4, 6, 5, 7], [6, 4, 3, 3, 3], { padding: 1, stride: 2 }],
  ['3-D, 80 channels: two slices of small blocks', [1, 80, 4, 4, 5], [4, 80, 3, 3, 3], { padding: 1 }],
  ['3-D, 32 -> 16 at 16³: two slices of large blocks', [1, 32, 16, 16, 16], [16, 32, 3, 3, 3], { padding: 1 }, false],
];

for (const [name, xs, ws, opts, hostRef = true] of SLICED) {
  test(`${name}: fused bias + LeakyReLU equals conv then vg.leakyRelu bit for bit, forward and backward`, async () => {
    const r = rng(size(xs));
    const X = Ref.random(xs, r).f32();
    const W = Ref.random(ws, r, -0.3, 0.3).f32();
    const B = Ref.random([ws[0]], r).f32();
    const op = OPS[`conv${xs.length - 2}d`];
    const run = async (fused) => {
      const [x, w, b] = [X, W, B].map((t) => t.toTensor({ requiresGrad: true }));
      const y = fused ? op(x, w, { ...opts, bias: b, activation: { kind: 'leakyRelu', negativeSlope: 0.1 } }) : vg.leakyRelu(op(x, w, { ...opts, bias: b }), { negativeSlope: 0.1 });
      const gy = vg.randn(y.shape, { seed: 9 });
      y.backward(gy);
      const out = { y: await y.data(), dx: await x.grad.data(), dw: await w.grad.data(), db: await b.grad.data(), shape: y.shape };
      for (const t of [x, w, b, y, gy]) t.dispose();
      return out;
    };
    const fused = await run(true);
    const plain = await run(false);
    for (const k of ['y', 'dx', 'dw', 'db']) {
      const i = fused[k].findIndex((v, j) => !Object.is(v, plain[k][j]));
      assert.is(i, -1, `${name} ${k} differs at ${i}: fused ${fused[k][i]}, unfused ${plain[k][i]}`);
    }
    if (!hostRef) return;
    // and both against the float64 conv through the activation
    const ref = refMap(leaky(0.1), convRef(X, W, B, opts));
    const y = vg.tensor(fused.y, fused.shape);
    await assertClose(y, ref, { ...tol(ref), msg: `${name} against the float64 conv` });
    y.dispose();
  });
}

test('gradcheck64: conv2d and conv3d with bias + LeakyReLU and ReLU fused, stride and groups', async () => {
  const r = rng(21);
  for (const [opName, xs, ws, opts, activation, slope] of [
    ['conv2d', [1, 4, 5, 6], [4, 2, 3, 3], { stride: 2, padding: 1, groups: 2 }, { kind: 'leakyRelu', negativeSlope: 0.2 }, 0.2],
    ['conv3d', [1, 2, 4, 3, 4], [3, 2, 3, 3, 3], { padding: 1 }, { kind: 'relu' }, 0],
    ['conv1d', [2, 3, 9], [2, 3, 3], { dilation: 2 }, { kind: 'leakyRelu' }, 0.01],
  ])
    await gradcheck64(
      (x, w, b) => OPS[opName](x, w, { ...opts, bias: b, activation }),
      (x, w, b) => refMap(leaky(slope), convRef(x, w, b, opts)),
      [Ref.random(xs, r), Ref.random(ws, r), Ref.random([ws[0]], r)],
      { msg: `${opName} ${activation.kind}` },
    );
});

test('bad activation options name the op, the option and what was expected', () => {
  const x = vg.zeros([1, 2, 4, 4]);
  const w = vg.zeros([3, 2, 3, 3]);
  assertThrowsWith(() => vg.conv2d(x, w, { activation: { kind: 'gelu' } }), ['conv2d', 'activation', "{ kind: 'relu' }", 'gelu']);
  assertThrowsWith(() => vg.conv2d(x, w, { activation: 'relu' }), ['conv2d', 'activation', "'leakyRelu'", 'relu']);
  assertThrowsWith(() => vg.conv2d(x, w, { activation: { kind: 'leakyRelu', negativeSlope: -0.1 } }), ['conv2d', 'negativeSlope', '>= 0', '-0.1']);
  assertThrowsWith(() => vg.conv3d(vg.zeros([1, 2, 3, 3, 3]), vg.zeros([1, 2, 1, 1, 1]), { activation: { kind: 'leakyRelu', negativeSlope: NaN } }), ['conv3d', 'negativeSlope', 'NaN']);
  for (const t of [x, w]) t.dispose();
});

test.run();
