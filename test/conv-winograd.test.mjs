// Winograd F(2x2, 3x3) (`algorithm: 'winograd'`, shaders/conv_winograd.wgsl): forward and input gradient against the
// PyTorch fixtures it applies to, within the direct kernel's tolerance (the worst measured error is printed), against
// a float64 host conv with bias, activation and several channel slices, float64 finite-difference gradients, and
// the argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convRef } from './conv-ref.mjs';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck64, refMap, rng, setup, vg } from './helpers.mjs';

test.before(setup);

/** The tolerance of test/conv.test.mjs: 1e-4 relative plus 1e-5 of the reference's largest magnitude. */
function tol(ref) {
  let m = 0;
  for (const v of ref.data) m = Math.max(m, Math.abs(v));
  return { rtol: 1e-4, atol: 1e-5 * m };
}

/** max |got - ref| / max |ref|: the error this file reports for each comparison. */
async function relError(t, ref) {
  const got = await t.data();
  let [e, m] = [0, 0];
  for (let i = 0; i < got.length; i++) {
    e = Math.max(e, Math.abs(got[i] - ref.data[i]));
    m = Math.max(m, Math.abs(ref.data[i]));
  }
  return e / m;
}

const applies = (c) =>
  c.op === 'conv2d' &&
  c.w.shape[2] === 3 &&
  c.w.shape[3] === 3 &&
  !c.opts.stride &&
  !c.opts.dilation &&
  !c.opts.groups &&
  (typeof c.opts.padding === 'number' ? c.opts.padding <= 2 : c.opts.padding === undefined);

const cases = loadFixtures('conv').filter((c) => !c.large && applies(c));

test('the fixtures Winograd applies to are there', () => {
  assert.ok(cases.length >= 3, `${cases.length} conv2d 3x3 stride-1 fixtures`);
});

for (const c of cases) {
  test(`${c.name}: Winograd forward and input gradient match PyTorch`, async () => {
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const w = fixtureRef(c.w).toTensor();
    const b = c.b ? fixtureRef(c.b).toTensor() : null;
    const y = vg.conv2d(x, w, { padding: c.opts.padding ?? 0, bias: b, algorithm: 'winograd' });
    const yRef = fixtureRef(c.y);
    await assertClose(y, yRef, { ...tol(yRef), msg: `${c.name} forward` });
    y.backward(fixtureRef(c.g).toTensor());
    const dxRef = fixtureRef(c.dx);
    await assertClose(x.grad, dxRef, { ...tol(dxRef), msg: `${c.name} dx` });
    console.log(`    ${c.name}: max error / max |ref|: forward ${(await relError(y, yRef)).toExponential(1)}, dx ${(await relError(x.grad, dxRef)).toExponential(1)}`);
    for (const t of [x, w, b, y]) t?.dispose();
  });
}

// output channels 3, 6 and 17 (4, 8 and 16 per invocation, rows past the last channel), padding 0, 1, 2 and mixed,
// odd sizes (partial 2x2 tiles), and 40 input channels (with 16 output channels per invocation the transformed
// weights take two slices of workgroup memory)
const SHAPES = [
  [[2, 5, 9, 11], [3, 5, 3, 3], 1],
  [[1, 3, 8, 7], [6, 3, 3, 3], 0],
  [[1, 4, 5, 6], [17, 4, 3, 3], 2],
  [[1, 40, 6, 7], [16, 40, 3, 3], [1, 2]],
];

test('Winograd with bias and fused LeakyReLU against the float64 conv, over several channel slices', async () => {
  const r = rng(5);
  for (const [xs, ws, padding] of SHAPES) {
    const X = Ref.random(xs, r).f32();
    const W = Ref.random(ws, r, -0.3, 0.3).f32();
    const B = Ref.random([ws[0]], r).f32();
    const [x, w, b] = [X, W, B].map((t) => t.toTensor());
    const y = vg.conv2d(x, w, { padding, bias: b, algorithm: 'winograd', activation: { kind: 'leakyRelu', negativeSlope: 0.1 } });
    const ref = refMap((v) => (v > 0 ? v : 0.1 * v), convRef(X, W, B, { padding }));
    await assertClose(y, ref, { ...tol(ref), msg: `${JSON.stringify([xs, ws, padding])}` });
    for (const t of [x, w, b, y]) t.dispose();
  }
});

test('gradcheck64: the Winograd input gradient (flipped, transposed kernel) by float64 finite differences', async () => {
  const r = rng(6);
  for (const [xs, ws, padding] of SHAPES.slice(0, 3))
    await gradcheck64(
      (x, w) => vg.conv2d(x, w, { padding, algorithm: 'winograd' }),
      (x, w) => convRef(x, w, null, { padding }),
      [Ref.random(xs, r), Ref.random(ws, r)],
      { wrt: [0], msg: `${JSON.stringify([xs, ws, padding])}` },
    );
});

test('algorithm: bad values and convs Winograd does not apply to give clear errors', () => {
  const x = vg.zeros([1, 2, 6, 6]);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([3, 2, 3, 3]), { algorithm: 'fast' }), ['conv2d', 'algorithm', "'winograd'", 'fast']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([3, 2, 3, 3]), { stride: 2, algorithm: 'winograd' }), ['conv2d', "algorithm 'winograd'", 'stride 1', 'got kernel [3, 3], stride [2, 2]']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([3, 2, 5, 5]), { padding: 2, algorithm: 'winograd' }), ['conv2d', "algorithm 'winograd'", '3x3']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([3, 2, 3, 3]), { padding: 3, algorithm: 'winograd' }), ['conv2d', 'padding <= 2', 'padding [3, 3]']);
  assertThrowsWith(() => vg.conv3d(vg.zeros([1, 2, 4, 4, 4]), vg.zeros([3, 2, 3, 3, 3]), { padding: 1, algorithm: 'winograd' }), ['conv3d', "algorithm 'winograd'", '2-D']);
  x.dispose();
});

test.run();
