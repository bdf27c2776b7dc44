// interpolate: nearest (1-D/2-D/3-D), linear, bilinear, trilinear against PyTorch fixtures
// (test/fixtures/gen_interpolate.py: size and scaleFactor, per-axis factors, recomputeScaleFactor, alignCorners both
// ways, upsampling and downsampling, nearest through 1 / scaleFactor, copied axes), forward and input gradients;
// finite-difference gradient checks (large ratios too); deterministic backward; bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
// Inputs and upstream gradients lie in [-1, 1]; the taps are exact and the weights float64 rounded to f32 (error <= u).
// Forward: a blend of <= 8 terms whose weights sum to 1: <= 5 roundings per weight product, 3 levels of sums, so the
// error is <= ~8u; 16u allowed. Nearest copies: exact. Gradients: <= 3 separable passes, each summing <= 4 weighted
// terms per element; an axis's weights into one source sum to <= 2.5 (the largest upsampling factor in the fixtures),
// so magnitudes stay <= 2.5^3 ~ 16 and the error <= 3 passes x 4 roundings x 16 = 192u; 256u allowed.
const FORWARD_TOL = { rtol: 0, atol: 16 * U };
const GRAD_TOL = { rtol: 0, atol: 256 * U };
const EXACT = { rtol: 0, atol: 0 };

const CASES = loadFixtures('interpolate');

test('forward and input gradients match PyTorch', async () => {
  assert.ok(CASES.length >= 40, 'fixture cases present');
  for (const c of CASES) {
    const msg = `interpolate(x [${c.x.shape}], ${JSON.stringify(c.opts)})`;
    const nearest = (c.opts.mode ?? 'nearest') === 'nearest';
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const out = vg.interpolate(x, c.opts);
    await assertClose(out, fixtureRef(c.out), { ...(nearest ? EXACT : FORWARD_TOL), msg: `${msg} forward` });
    out.backward(fixtureRef(c.g).toTensor());
    // torchBackwardDiffers: the reference is the adjoint of PyTorch's forward (see gen_interpolate.py)
    await assertClose(x.grad, fixtureRef(c.gx), { ...GRAD_TOL, msg: `${msg} input gradient${c.torchBackwardDiffers ? ' (adjoint)' : ''}` });
    for (const t of [x, x.grad, out]) t.dispose();
  }
});

test('gradcheck: finite differences agree with backward', async () => {
  const r = rng(4);
  const checks = [
    ['nearest 1-D x2.1', [2, 2, 5], { scaleFactor: 2.1 }],
    ['nearest 2-D per-axis', [1, 2, 6, 5], { scaleFactor: [1.37, 0.8] }],
    ['nearest 3-D size', [1, 1, 3, 4, 5], { size: [5, 2, 7] }],
    ['linear x8 alignCorners', [1, 2, 3], { mode: 'linear', scaleFactor: 8, alignCorners: true }],
    ['linear 24 -> 7', [1, 2, 24], { mode: 'linear', size: 7 }],
    ['bilinear down', [2, 1, 7, 6], { mode: 'bilinear', size: [3, 4] }],
    ['bilinear up alignCorners', [1, 2, 4, 3], { mode: 'bilinear', scaleFactor: [2.5, 1.5], alignCorners: true }],
    ['trilinear x2', [1, 2, 3, 4, 3], { mode: 'trilinear', scaleFactor: 2 }],
    ['trilinear mixed', [1, 1, 4, 3, 5], { mode: 'trilinear', size: [2, 7, 5] }],
  ];
  for (const [name, shape, opts] of checks) await gradcheck((x) => vg.interpolate(x, opts), [Ref.random(shape, r)], { msg: name });
});

// PyTorch's linear x2 without alignCorners has a fixed adjoint: input i gets 0.25, 0.75, 0.75, 0.25 of outputs
// 2i - 1 .. 2i + 2, clamped to the axis. The float64 adjoint, one axis at a time, against the backward; the shapes
// take its vec4 passes (inner dims and last axis multiples of 4) and the table passes (odd sizes).
test('trilinear and bilinear x2 backward against the float64 adjoint', async () => {
  const r = rng(12);
  const adjoint = (g, shape, axis) => {
    const n = shape[axis] / 2;
    const out = shape.slice();
    out[axis] = n;
    const st = (sh) => sh.map((_, i) => sh.slice(i + 1).reduce((a, b) => a * b, 1));
    const [gs, os] = [st(shape), st(out)];
    const res = new Float64Array(out.reduce((a, b) => a * b, 1));
    for (let j = 0; j < res.length; j++) {
      const idx = os.map((s, i) => Math.floor(j / s) % out[i]);
      let acc = 0;
      [0.25, 0.75, 0.75, 0.25].forEach((w, k) => {
        const o = Math.min(Math.max(2 * idx[axis] - 1 + k, 0), shape[axis] - 1);
        acc += w * g[idx.reduce((a, v, i) => a + (i === axis ? o : v) * gs[i], 0)];
      });
      res[j] = acc;
    }
    return res;
  };
  for (const [shape, mode] of [[[1, 2, 4, 8, 8], 'trilinear'], [[2, 3, 3, 5, 4], 'trilinear'], [[2, 2, 6, 8], 'bilinear']]) {
    const x = Ref.random(shape, r).toTensor({ requiresGrad: true });
    const y = vg.interpolate(x, { scaleFactor: 2, mode });
    const G = Ref.random(y.shape, r).f32();
    y.backward(G.toTensor());
    let g = Float64Array.from(G.data);
    let cur = [...y.shape];
    for (let axis = 2; axis < shape.length; axis++) {
      g = adjoint(g, cur, axis);
      cur[axis] /= 2;
    }
    await assertClose(x.grad, new Ref(g, shape), { rtol: 1e-5, atol: 1e-6, msg: `${mode} x2 backward ${shape}` });
    for (const t of [x, y]) t.dispose();
  }
});

// The same filter forwards (out[2i] = 0.25 x[i - 1] + 0.75 x[i], out[2i + 1] = 0.75 x[i] + 0.25 x[i + 1], clamped),
// one axis at a time in float64: rows of 8 and 12 take the vec4 passes with neighbours across vec4s
test('trilinear and bilinear x2 forward against the float64 filter', async () => {
  const r = rng(14);
  const double = (v, shape, axis) => {
    const out = shape.slice();
    out[axis] *= 2;
    const st = (sh) => sh.map((_, i) => sh.slice(i + 1).reduce((a, b) => a * b, 1));
    const [vs, os] = [st(shape), st(out)];
    const res = new Float64Array(out.reduce((a, b) => a * b, 1));
    for (let j = 0; j < res.length; j++) {
      const idx = os.map((s, i) => Math.floor(j / s) % out[i]);
      const o = idx[axis];
      const at = (i) => v[idx.reduce((a, e, d) => a + (d === axis ? Math.min(Math.max(i, 0), shape[axis] - 1) : e) * vs[d], 0)];
      const i = o >> 1;
      res[j] = o % 2 === 0 ? 0.25 * at(i - 1) + 0.75 * at(i) : 0.75 * at(i) + 0.25 * at(i + 1);
    }
    return res;
  };
  for (const [shape, mode] of [[[1, 2, 3, 5, 8], 'trilinear'], [[2, 1, 4, 12], 'bilinear'], [[1, 3, 2, 3, 12], 'trilinear']]) {
    const X = Ref.random(shape, r).f32();
    const y = vg.interpolate(X.toTensor(), { scaleFactor: 2, mode });
    let v = Float64Array.from(X.data);
    let cur = shape.slice();
    for (let axis = shape.length - 1; axis >= 2; axis--) {
      v = double(v, cur, axis);
      cur[axis] *= 2;
    }
    await assertClose(y, new Ref(v, cur), { rtol: 1e-5, atol: 1e-6, msg: `${mode} x2 forward ${shape}` });
    y.dispose();
  }
});

test('backward is deterministic: two runs give bit-identical gradients', async () => {
  const r = rng(9);
  const xr = Ref.random([1, 3, 9, 10, 11], r);
  for (const opts of [{ mode: 'trilinear', scaleFactor: 2 }, { mode: 'trilinear', size: [5, 13, 4], alignCorners: true }, { scaleFactor: 1.7 }]) {
    const runs = [];
    for (let k = 0; k < 2; k++) {
      const x = xr.toTensor({ requiresGrad: true });
      const y = vg.interpolate(x, opts);
      y.backward(Ref.random(y.shape, rng(2)).toTensor());
      runs.push(new Uint32Array((await x.grad.data()).buffer));
      for (const t of [x, x.grad, y]) t.dispose();
    }
    assert.equal(runs[0], runs[1], `${JSON.stringify(opts)}: gradients differ between runs`);
  }
});

test('bad input: errors name the op, the argument, expected and given', () => {
  const x4 = vg.zeros([1, 2, 5, 6]);
  const x5 = vg.zeros([1, 2, 3, 5, 6]);
  assertThrowsWith(() => vg.interpolate(x5, { scaleFactor: 2, mode: 'bilinear' }), ['interpolate', "mode 'bilinear' needs 4-D", 'got 5-D', "'trilinear'"]);
  assertThrowsWith(() => vg.interpolate(x4, { scaleFactor: 2, mode: 'trilinear' }), ['interpolate', "mode 'trilinear' needs 5-D", 'got 4-D']);
  assertThrowsWith(() => vg.interpolate(x4, { scaleFactor: 2, mode: 'linear' }), ['interpolate', "mode 'linear' needs 3-D"]);
  assertThrowsWith(() => vg.interpolate(x4, { scaleFactor: 2, mode: 'bicubic' }), ['interpolate', 'mode must be', 'bicubic']);
  assertThrowsWith(() => vg.interpolate(vg.zeros([4, 5]), { scaleFactor: 2 }), ['interpolate', '3-D, 4-D or 5-D', 'got rank 2']);
  assertThrowsWith(() => vg.interpolate(x4, { size: [10, 12], scaleFactor: 2 }), ['interpolate', 'either size or scaleFactor, not both']);
  assertThrowsWith(() => vg.interpolate(x4, { mode: 'bilinear' }), ['interpolate', 'either size or scaleFactor must be given']);
  assertThrowsWith(() => vg.interpolate(x4, { size: 8, alignCorners: false }), ['interpolate', 'alignCorners', "mode 'nearest'"]);
  assertThrowsWith(() => vg.interpolate(x4, { size: 8, recomputeScaleFactor: true }), ['interpolate', 'recomputeScaleFactor', 'explicit size']);
  assertThrowsWith(() => vg.interpolate(x5, { size: [4, 4], mode: 'trilinear' }), ['interpolate', 'size has 2 entries', '3 spatial dims']);
  assertThrowsWith(() => vg.interpolate(x4, { scaleFactor: [2, -1] }), ['interpolate', 'scaleFactor', 'positive numbers', '[2,-1]']);
  assertThrowsWith(() => vg.interpolate(x4, { scaleFactor: 0.1 }), ['interpolate', 'greater than 0', 'output [0, 0]']);
  assertThrowsWith(() => vg.interpolate(vg.zeros([1, 1, 4], { dtype: 'i32' }), { size: 8 }), ['interpolate', 'f32', 'i32']);
  for (const t of [x4, x5]) t.dispose();
});

test.run();
