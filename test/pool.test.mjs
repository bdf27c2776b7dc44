// Pooling: maxPool2d/3d (values, argmax indices), avgPool2d/3d, adaptiveAvgPool2d/3d against PyTorch fixtures
// (test/fixtures/gen_pool.py: odd sizes, non-cubic kernels and strides, padding, dilation, ceilMode,
// countIncludePad both ways, divisorOverride, adaptive sizes that do not divide the input, unbatched inputs),
// forward and input gradients; finite-difference gradient checks; deterministic backward; bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertThrowsWith, assertClose, distinct, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
// Inputs and upstream gradients lie in [-1, 1]. An f32 sum of n terms is off by <= (n - 1) u times the sum of their
// magnitudes. Avg windows hold <= 27 terms, divided by >= 7 with divisorOverride (magnitude <= 27/7): <= ~100u; the
// global adaptive means run a tree reduction (error ~ log n). Backward gathers sum <= 27 terms of g / divisor, and
// max pooling's <= 8 upstream values per input: <= 64u. 256u is allowed. Max pooling only compares: its values and
// indices must be exact.
const SUM_TOL = { rtol: 0, atol: 256 * U };
const EXACT = { rtol: 0, atol: 0 };

const CASES = loadFixtures('pool');

/** Calls the op of a fixture case. */
function call(c, x, extra = {}) {
  return c.op.startsWith('adaptive') ? vg[c.op](x, c.outputSize) : vg[c.op](x, c.kernelSize, { ...c.opts, ...extra });
}

const describeCase = (c) => `${c.op}(x [${c.x.shape}], ${JSON.stringify(c.kernelSize ?? c.outputSize)}, ${JSON.stringify(c.opts ?? {})})`;

test('forward, argmax indices and input gradients match PyTorch', async () => {
  assert.ok(CASES.length >= 30, 'fixture cases present');
  for (const c of CASES) {
    const msg = describeCase(c);
    const xr = fixtureRef(c.x);
    const isMax = c.op.startsWith('max');
    const tol = isMax ? EXACT : SUM_TOL;
    // without grad (and, for max, without indices: the kernel variant that writes none)
    const x0 = xr.toTensor();
    await assertClose(call(c, x0), fixtureRef(c.out), { ...tol, msg: `${msg} forward (no grad)` });
    const x = xr.toTensor({ requiresGrad: true });
    let out;
    if (isMax) {
      const res = call(c, x, { returnIndices: true });
      assert.ok(Array.isArray(res) && res.length === 2, `${msg}: returnIndices gives [values, indices]`);
      const [values, indices] = res;
      assert.is(indices.dtype, 'i32', `${msg} indices dtype`);
      assert.equal([...indices.shape], c.indices.shape, `${msg} indices shape`);
      assert.equal(Array.from(await indices.data()), Array.from(fixtureRef(c.indices).data), `${msg} indices`);
      out = values;
    } else out = call(c, x);
    await assertClose(out, fixtureRef(c.out), { ...tol, msg: `${msg} forward` });
    out.backward(fixtureRef(c.g).toTensor());
    await assertClose(x.grad, fixtureRef(c.gx), { ...SUM_TOL, msg: `${msg} input gradient` });
    for (const t of [x0, x, x.grad, out]) t.dispose();
  }
});


test('gradcheck: finite differences agree with backward', async () => {
  const r = rng(3);
  // [name, op, input (distinct values for max pooling), the op's arguments after the input]
  const checks = [
    ['maxPool2d overlapping', 'maxPool2d', distinct([2, 2, 5, 6], r), [[3, 2], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], ceilMode: true }]],
    ['maxPool3d overlapping', 'maxPool3d', distinct([1, 2, 3, 4, 3], r), [2, { stride: 1, padding: 1 }]],
    ['maxPool3d disjoint', 'maxPool3d', distinct([1, 2, 5, 4, 3], r), [2, { ceilMode: true }]],
    ['avgPool2d overlapping', 'avgPool2d', Ref.random([2, 2, 6, 5], r), [3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }]],
    ['avgPool2d disjoint', 'avgPool2d', Ref.random([1, 2, 7, 8], r), [2, { stride: 3, padding: 1 }]],
    ['avgPool3d divisorOverride', 'avgPool3d', Ref.random([1, 2, 4, 5, 3], r), [[3, 2, 3], { stride: [2, 2, 1], padding: [1, 0, 1], divisorOverride: 4 }]],
    ['adaptiveAvgPool2d', 'adaptiveAvgPool2d', Ref.random([2, 2, 5, 7], r), [[3, 4]]],
    ['adaptiveAvgPool3d', 'adaptiveAvgPool3d', Ref.random([1, 2, 5, 3, 6], r), [[2, null, 4]]],
    // equal windows: the mean route
    ['adaptiveAvgPool3d equal windows', 'adaptiveAvgPool3d', Ref.random([1, 2, 3, 4, 5], r), [[1, 2, 1]]],
  ];
  for (const [name, op, x, args] of checks) await gradcheck((t) => vg[op](t, ...args), [x], { msg: name });
});

test('backward is deterministic: two runs give bit-identical gradients', async () => {
  const r = rng(11);
  const shape = [2, 3, 9, 10, 11];
  const xr = Ref.random(shape, r);
  const cases = [
    ['maxPool3d overlapping', (x) => vg.maxPool3d(x, 3, { stride: 1, padding: 1 })],
    ['maxPool3d disjoint', (x) => vg.maxPool3d(x, 2, { ceilMode: true })],
    ['avgPool3d', (x) => vg.avgPool3d(x, 3, { stride: 2, padding: 1, ceilMode: true })],
    ['adaptiveAvgPool3d', (x) => vg.adaptiveAvgPool3d(x, [4, 3, 5])],
  ];
  for (const [name, fn] of cases) {
    const runs = [];
    for (let k = 0; k < 2; k++) {
      const x = xr.toTensor({ requiresGrad: true });
      const y = fn(x);
      y.backward(Ref.random(y.shape, rng(5)).toTensor());
      runs.push(new Uint32Array((await x.grad.data()).buffer));
      for (const t of [x, x.grad, y]) t.dispose();
    }
    assert.equal(runs[0], runs[1], `${name}: gradients differ between runs`);
  }
});

test('shapes: unbatched inputs, empty batch, default stride, returnIndices off gives one tensor', async () => {
  const x = vg.zeros([0, 2, 6, 6]);
  assert.equal([...vg.maxPool2d(x, 2).shape], [0, 2, 3, 3]);
  assert.equal([...vg.avgPool3d(vg.zeros([2, 5, 6, 7]), [2, 3, 2]).shape], [2, 2, 2, 3]);
  assert.equal([...vg.adaptiveAvgPool2d(vg.zeros([3, 7, 8]), [2, null]).shape], [3, 2, 8]);
  assert.ok(vg.maxPool3d(vg.zeros([1, 1, 4, 4, 4]), 2, { returnIndices: false }) instanceof vg.Tensor);
});

test('bad input: errors name the op, the argument, expected and given', () => {
  const x4 = vg.zeros([1, 2, 6, 6]);
  const x5 = vg.zeros([1, 2, 4, 6, 6]);
  assertThrowsWith(() => vg.maxPool2d(vg.zeros([6, 6]), 2), ['maxPool2d', 'input must be 4-D', 'got rank 2']);
  assertThrowsWith(() => vg.maxPool3d(vg.zeros([2, 6, 6]), 2, { stride: 2 }), ['maxPool3d', 'input must be 5-D', '4-D unbatched', 'got rank 3']);
  assertThrowsWith(() => vg.avgPool2d(vg.zeros([2, 0, 4, 4]), 2), ['avgPool2d', 'empty channel or spatial', '[2, 0, 4, 4]']);
  assertThrowsWith(() => vg.maxPool2d(vg.zeros([1, 1, 4, 4], { dtype: 'i32' }), 2), ['maxPool2d', 'input', 'f32', 'i32']);
  assertThrowsWith(() => vg.maxPool2d(x4, 0), ['maxPool2d', 'kernelSize', '>= 1']);
  assertThrowsWith(() => vg.maxPool2d(x4, [2, 2, 2]), ['maxPool2d', 'kernelSize', 'list of 2']);
  assertThrowsWith(() => vg.avgPool3d(x5, 2, { stride: [2, 0, 2] }), ['avgPool3d', 'stride', '>= 1']);
  assertThrowsWith(() => vg.maxPool2d(x4, 3, { padding: 2 }), ['maxPool2d', 'padding must be at most half the kernel size', '[2, 2]', '[3, 3]']);
  assertThrowsWith(() => vg.maxPool2d(x4, 4, { dilation: 2 }), ['maxPool2d', 'output would be empty', '[6, 6]']);
  assertThrowsWith(() => vg.maxPool3d(x5, 2, { dilation: 0 }), ['maxPool3d', 'dilation', '>= 1']);
  assertThrowsWith(() => vg.avgPool2d(x4, 2, { divisorOverride: 0 }), ['avgPool2d', 'divisorOverride', 'non-zero integer']);
  assertThrowsWith(() => vg.adaptiveAvgPool3d(x5, [2, 2]), ['adaptiveAvgPool3d', 'outputSize', 'list of 3']);
  assertThrowsWith(() => vg.adaptiveAvgPool2d(x4, [2, 0]), ['adaptiveAvgPool2d', 'outputSize', 'positive integers']);
  assertThrowsWith(() => vg.adaptiveAvgPool2d(x5, 2), ['adaptiveAvgPool2d', 'input must be 4-D', 'got rank 5']);
  for (const t of [x4, x5]) t.dispose();
});

test.run();
