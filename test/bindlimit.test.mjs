// Tensors past the storage-binding limit: each op's split path (vg.debug.setBindingLimit lowers the limit so small
// tensors take it) against the same op bound whole. "bitwise" where every output element sums the same terms in the
// same order; "1e-6" where the split changes a summation order (partial reductions).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);
test.after.each(() => vg.debug.setBindingLimit(null));

const LIMIT = 8192; // bytes: 2048 f32, so tensors of a few thousand elements split into several pieces

function randn(shape, seed, lo = -1, hi = 1) {
  const n = shape.reduce((a, b) => a * b, 1);
  return vg.tensor(Float32Array.from(rng(seed).array(n, lo, hi)), shape);
}

/** Runs fn bound whole, then under `limit`; returns both results' data and the dispatch counts. */
async function wholeAndSplit(fn, limit = LIMIT) {
  const run = async () => {
    const before = vg.dispatches();
    const outs = fn();
    const data = await Promise.all(outs.map((t) => t.data()));
    outs.forEach((t) => t.dispose());
    return { data, dispatches: vg.dispatches() - before };
  };
  const whole = await run();
  vg.debug.setBindingLimit(limit);
  const split = await run();
  vg.debug.setBindingLimit(null);
  return { whole, split };
}

/** tol 0: bitwise; otherwise |whole - split| <= tol * max(1, |whole|, scale) (scale: e.g. the sum of |terms|). */
function assertSame({ whole, split }, what, tol = 0, scales = null) {
  assert.ok(split.dispatches > whole.dispatches, `${what}: the split path ran (${split.dispatches} vs ${whole.dispatches} dispatches)`);
  whole.data.forEach((w, o) => {
    const s = split.data[o];
    assert.is(s.length, w.length, `${what}: output ${o} length`);
    for (let i = 0; i < w.length; i++) {
      const scale = Math.max(1, Math.abs(w[i]), scales ? Math.abs(scales[o][i]) : 0);
      const ok = tol === 0 ? Object.is(w[i], s[i]) : Math.abs(w[i] - s[i]) <= tol * scale;
      if (!ok) assert.unreachable(`${what}: output ${o} element ${i}: whole ${w[i]}, split ${s[i]}`);
    }
  });
}

/** The outputs of both runs whose index passes `keep`. */
function outputs(r, keep) {
  const pick = (run) => ({ ...run, data: run.data.filter((_, i) => keep(i)) });
  return { whole: pick(r.whole), split: pick(r.split) };
}

/** fn's outputs and the gradients of sum(outputs[0] * r) with respect to `inputs` (r random, or |r| with `abs`). */
function withGrads(fn, inputs, seed = 99, abs = false) {
  return () => {
    inputs.forEach((t) => (t.grad = null));
    const y = fn();
    const r = abs ? vg.abs(randn(y.shape, seed)) : randn(y.shape, seed);
    vg.backward(vg.sum(vg.mul(y, r)));
    r.dispose();
    return [y, ...inputs.map((t) => vg.mul(t.grad, 1))];
  };
}

test('setBindingLimit: checked argument, never above the adapter', () => {
  assertThrowsWith(() => vg.debug.setBindingLimit(100), ['setBindingLimit', 'at least 4096', 'got 100']);
  assertThrowsWith(() => vg.debug.setBindingLimit(5000.5), ['setBindingLimit', 'got 5000.5']);
});

test('strided copy (permute, slice, cat, flip, pad) and zero fills in pieces: bitwise', async () => {
  const x = randn([3, 5, 7, 41], 1);
  const y = randn([3, 2, 7, 41], 2);
  x.requiresGrad = true;
  // pad and slice's gradient fill a tensor past the limit with zeros before copying into it
  const padded = await wholeAndSplit(withGrads(() => vg.pad(x, [2, 3, 1, 0]), [x]));
  assertSame(padded, 'pad');
  const sliced = await wholeAndSplit(withGrads(() => vg.slice(x, 1, 1, 4), [x]));
  assertSame(sliced, 'slice');
  const r = await wholeAndSplit(() => [
    vg.clone(vg.permute(x, [2, 0, 3, 1])),
    vg.cat([x, y], 1),
    vg.flip(x, [1, 3]),
    vg.slice(x, 3, 1, 10, 2),
  ]);
  assertSame(r, 'copy');
  x.dispose();
  y.dispose();
});

test('elementwise in runs: same-shape, broadcast, scalar, vec4 and odd sizes: bitwise', async () => {
  const a = randn([5, 9, 101], 3);
  const b = randn([5, 9, 101], 4);
  const row = randn([1, 1, 101], 5);
  const c = randn([4, 4096], 6);
  const d = randn([4, 4096], 7);
  const r = await wholeAndSplit(() => [vg.add(a, b), vg.mul(a, row), vg.exp(a), vg.sub(c, d), vg.mul(c, 0.5), vg.where(vg.gt(a, b), a, b)]);
  assertSame(r, 'elementwise');
  for (const t of [a, b, row, c, d]) t.dispose();
});

test('elementwise: a broadcast input past the limit fails before any GPU work, naming op, bytes and limit', () => {
  const a = randn([1, 8192], 8);
  const col = randn([3, 1], 9);
  vg.debug.setBindingLimit(16384);
  const before = vg.dispatches();
  assertThrowsWith(() => vg.add(col, a), ['add: broadcast input b', '32768 bytes', 'maxStorageBufferBindingSize 16384']);
  assert.is(vg.dispatches(), before);
  a.dispose();
  col.dispose();
});

// conv: forward and input gradient bitwise; the weight and bias gradients add per-slab partial sums, compared within
// 1e-6 of the sum of their terms' magnitudes (the same gradients of |x| under |upstream|)
const CONVS = [
  ['conv3d k3 p1', [1, 3, 9, 8, 10], [4, 3, 3, 3, 3], { padding: 1, bias: true }, LIMIT],
  ['conv3d stride 2, dilation 2, groups 2', [2, 4, 11, 7, 9], [6, 2, 3, 2, 3], { stride: [2, 1, 2], dilation: [2, 1, 1], padding: [2, 1, 0], groups: 2 }, 16384],
  ['conv2d k5 p2', [2, 3, 37, 23], [4, 3, 5, 5], { padding: 2, bias: true }, LIMIT],
  ['conv1d k3 stride 3', [2, 4, 701], [3, 4, 3], { stride: 3, padding: 1 }, LIMIT],
  ['convTranspose3d stride 2', [1, 4, 6, 7, 8], [4, 3, 3, 3, 3], { stride: 2, padding: 1, outputPadding: 1, transposed: true }, LIMIT],
];
for (const [name, xs, ws, { transposed, ...opts }, limit] of CONVS) {
  test(`${name} in slabs: forward and input gradient bitwise, weight and bias gradients within 1e-6`, async () => {
    const nd = xs.length - 2;
    const x = randn(xs, 11);
    const w = randn(ws, 12);
    const b = opts.bias ? randn([transposed ? ws[1] : ws[0]], 13) : null;
    const conv = (transposed ? [vg.convTranspose1d, vg.convTranspose2d, vg.convTranspose3d] : [vg.conv1d, vg.conv2d, vg.conv3d])[nd - 1];
    const grads = (input, abs) => {
      for (const t of [input, w, b]) if (t) t.requiresGrad = true;
      return withGrads(() => conv(input, w, { ...opts, bias: b }), [input, w, ...(b ? [b] : [])], 99, abs);
    };
    const r = await wholeAndSplit(grads(x, false), limit);
    assertSame(outputs(r, (i) => i < 2), `${name} forward, input gradient`);
    const ax = vg.noGrad(() => vg.abs(x));
    const scales = await Promise.all(grads(ax, true)().map((t) => t.data()));
    assertSame(outputs(r, (i) => i >= 2), `${name} weight/bias gradients`, 1e-6, scales.slice(2));
    for (const t of [x, ax, w, b]) t?.dispose();
  });
}

test('maxPool3d, avgPool3d, adaptiveAvgPool3d, maxPool2d in row runs: values, indices and gradients bitwise', async () => {
  const x = randn([2, 3, 9, 10, 11], 31);
  const x2 = randn([2, 5, 23, 19], 32);
  x.requiresGrad = true;
  x2.requiresGrad = true;
  for (const [name, fn, input] of [
    ['maxPool3d', () => vg.maxPool3d(x, 2), x],
    ['maxPool3d overlapping', () => vg.maxPool3d(x, 3, { stride: 2, padding: 1 }), x],
    ['avgPool3d', () => vg.avgPool3d(x, 2), x],
    ['adaptiveAvgPool3d', () => vg.adaptiveAvgPool3d(x, [4, 3, 5]), x],
    ['maxPool2d', () => vg.maxPool2d(x2, 2), x2],
  ]) {
    const r = await wholeAndSplit(withGrads(fn, [input]));
    assertSame(r, name);
  }
  const r = await wholeAndSplit(() => vg.maxPool3d(x, 2, { returnIndices: true }));
  assertSame(r, 'maxPool3d indices');
  x.dispose();
  x2.dispose();
});

test('interpolate (nearest, trilinear, bilinear, linear; up and down) in row runs: forward and gradient bitwise', async () => {
  const x = randn([2, 3, 6, 7, 5], 41);
  const x2 = randn([2, 4, 17, 13], 42);
  const x1 = randn([3, 5, 301], 43);
  const xb = randn([2, 3, 12, 11, 9], 44);
  for (const t of [x, x2, x1, xb]) t.requiresGrad = true;
  for (const [name, fn, input] of [
    ['nearest x2', () => vg.interpolate(x, { scaleFactor: 2 }), x],
    ['trilinear x2', () => vg.interpolate(x, { scaleFactor: 2, mode: 'trilinear', alignCorners: true }), x],
    ['trilinear down', () => vg.interpolate(xb, { size: [5, 4, 7], mode: 'trilinear' }), xb],
    ['bilinear', () => vg.interpolate(x2, { scaleFactor: 1.7, mode: 'bilinear' }), x2],
    ['linear', () => vg.interpolate(x1, { scaleFactor: 0.5, mode: 'linear' }), x1],
  ]) {
    const r = await wholeAndSplit(withGrads(fn, [input]));
    assertSame(r, `interpolate ${name}`);
  }
  for (const t of [x, x2, x1, xb]) t.dispose();
});

test('reductions in blocks: max/min bitwise, sums within 1e-6; argmax past the limit fails before GPU work', async () => {
  const x = randn([2, 3, 7, 9, 11], 51);
  const y = randn([5000], 52);
  const max = await wholeAndSplit(() => [vg.max(x, { dim: [0, 2, 3, 4] }), vg.min(x, { dim: 1 }), vg.max(x), vg.max(y)]);
  assertSame(max, 'max/min');
  // sums change their order: compared relative to the sum of the terms' magnitudes
  const sumsOf = (t) => [
    vg.sum(t, { dim: [0, 2, 3, 4] }),
    vg.sum(t, { dim: 1, keepdim: true }),
    vg.sum(t, { dim: [2, 4] }),
    vg.sum(t),
    vg.sum(vg.reshape(t, [2, 3 * 7 * 9 * 11]), { dim: 0 }),
  ];
  const sums = await wholeAndSplit(() => [...sumsOf(x), vg.mean(y)]);
  const ax = vg.abs(x);
  const ay = vg.abs(y);
  const scales = await Promise.all([...sumsOf(ax), vg.mean(ay)].map((t) => t.data()));
  assertSame(sums, 'sum', 1e-6, scales);
  ax.dispose();
  ay.dispose();
  vg.debug.setBindingLimit(LIMIT);
  const before = vg.dispatches();
  assertThrowsWith(() => vg.argmax(x, { dim: 1 }), ['argmax', 'input (shape [2, 3, 7, 9, 11])', '16632 bytes', `maxStorageBufferBindingSize ${LIMIT}`]);
  assert.is(vg.dispatches(), before);
  x.dispose();
  y.dispose();
});

test('norms in slabs of channels, groups or rows: outputs, running statistics and gradients within 1e-6', async () => {
  const x = randn([2, 4, 6, 7, 8], 61, -2, 3);
  const w = randn([4], 62);
  const b = randn([4], 63);
  const xl = randn([6, 5, 70], 64);
  const wl = randn([5, 70], 65);
  for (const t of [x, w, b, xl, wl]) t.requiresGrad = true;
  const running = (seed) => [randn([4], seed, 0, 1), randn([4], seed + 1, 0.5, 2)];
  const cases = [
    ['instanceNorm', () => vg.instanceNorm(x, { weight: w, bias: b }), [x, w, b]],
    ['groupNorm', () => vg.groupNorm(x, 2, { weight: w, bias: b }), [x, w, b]],
    ['batchNorm', () => vg.batchNorm(x, null, null, { weight: w, bias: b, training: true }), [x, w, b]],
    ['layerNorm', () => vg.layerNorm(xl, [5, 70], { weight: wl }), [xl, wl]],
  ];
  for (const [name, fn, inputs] of cases) {
    const r = await wholeAndSplit(withGrads(fn, inputs));
    assertSame(r, name, 1e-6);
  }
  // running statistics updated per slab, as by the whole
  for (const [name, fn] of [
    ['batchNorm running', (m, v) => vg.batchNorm(x, m, v, { training: true, momentum: 0.3 })],
    ['batchNorm eval', (m, v) => vg.batchNorm(x, m, v, { weight: w })],
    ['instanceNorm running', (m, v) => vg.instanceNorm(x, { runningMean: m, runningVar: v, momentum: 0.3 })],
  ]) {
    const r = await wholeAndSplit(() => {
      const [m, v] = running(70);
      return [vg.noGrad(() => fn(m, v)), m, v];
    });
    assertSame(r, name, 1e-6);
  }
  vg.debug.setBindingLimit(4096);
  const before = vg.dispatches();
  const big = randn([1, 2, 1100], 66);
  assertThrowsWith(() => vg.instanceNorm(big), ['instanceNorm', 'input (shape [1, 2, 1100]) holds 8800 bytes', 'maxStorageBufferBindingSize 4096', 'crop or downsample']);
  assertThrowsWith(() => vg.layerNorm(big, [2, 1100]), ['layerNorm', '8800 bytes']);
  assert.is(vg.dispatches(), before);
  for (const t of [x, w, b, xl, wl, big]) t.dispose();
});

test('gridSample and spatialTransform in pieces (batch, channel groups, output slabs): outputs bitwise, gradients within 1e-6', async () => {
  // 3 channels of 9x10x11 input: at 8192 bytes a group holds one channel plane with its gradient; outputs in slabs
  const img3 = randn([2, 3, 9, 10, 11], 71);
  const grid3 = randn([2, 8, 9, 7, 3], 72, -1.1, 1.1);
  const img2 = randn([2, 5, 13, 17], 73);
  const grid2 = randn([2, 21, 19, 2], 74, -1.1, 1.1);
  const src = randn([1, 1, 10, 11, 12], 75);
  const flow = randn([1, 3, 10, 11, 12], 76, -3, 3);
  for (const t of [img3, grid3, img2, grid2, src, flow]) t.requiresGrad = true;
  const cases = [
    ['gridSample 3-D bilinear zeros', () => vg.gridSample(img3, grid3), [img3, grid3], true, LIMIT],
    ['gridSample 3-D nearest border', () => vg.gridSample(img3, grid3, { mode: 'nearest', paddingMode: 'border' }), [img3, grid3], true, LIMIT],
    ['gridSample 2-D reflection alignCorners', () => vg.gridSample(img2, grid2, { paddingMode: 'reflection', alignCorners: true }), [img2, grid2], true, LIMIT],
    // the source plane and its gradient fit 12288 bytes, the flow and the output are split into slabs
    ['spatialTransform 3-D', () => vg.spatialTransform(src, flow), [src, flow], false, 12288],
  ];
  for (const [name, fn, inputs, groups, limit] of cases) {
    const r = await wholeAndSplit(withGrads(fn, inputs), limit);
    assertSame(outputs(r, (i) => i === 0), `${name}: output`);
    // the output slabs' shares of the input gradient are added in turn: a different order of additions
    assertSame(outputs(r, (i) => i === 1), `${name}: input gradient`, 1e-6);
    // several channel groups add their shares of the coordinate gradient: a different order of additions
    assertSame(outputs(r, (i) => i === 2), `${name}: coordinate gradient`, groups ? 1e-6 : 0);
  }
  for (const t of [img3, grid3, img2, grid2, src, flow]) t.dispose();
});

test('integrateVelocity (scaling and squaring) in pieces: field bitwise, velocity gradient within 1e-6', async () => {
  // each warp of the velocity by itself runs one channel group at a time, so the flow-gradient shares are added
  const vel = randn([1, 3, 10, 11, 12], 81, -4, 4);
  vel.requiresGrad = true;
  const r = await wholeAndSplit(withGrads(() => vg.integrateVelocity(vel, 5), [vel]), 12288);
  assertSame(outputs(r, (i) => i === 0), 'integrateVelocity field');
  assertSame(outputs(r, (i) => i === 1), 'integrateVelocity gradient', 1e-6);
  vel.dispose();
});

test('gridSample: an input channel plane past one binding fails before GPU work', () => {
  const img = randn([1, 1, 40, 40], 91);
  const grid = randn([1, 4, 4, 2], 92);
  vg.debug.setBindingLimit(4096);
  const before = vg.dispatches();
  assertThrowsWith(() => vg.gridSample(img, grid), ['gridSample', 'one channel plane of input (shape [1, 1, 40, 40]) takes 6400 bytes', 'maxStorageBufferBindingSize 4096', 'downsample or crop']);
  assert.is(vg.dispatches(), before);
  img.dispose();
  grid.dispose();
});

test('rand, randn, uniform, normal past the limit fill in windows: bitwise the numbers of one launch', async () => {
  // 5,003 elements: windows of whole alignment units and an odd tail; the global generator's draws too (same offset)
  for (const make of [
    () => vg.rand([5003], { seed: 7 }),
    () => vg.randn([5003], { seed: 2 ** 40 + 3 }),
    () => vg.uniform([41, 123], -2, 5, { seed: 11 }),
    () => vg.normal([5003], 1.5, 0.25, { seed: 12 }),
  ])
    assertSame(await wholeAndSplit(() => [make()], 4096), make.toString());
  const split = await wholeAndSplit(() => {
    vg.manualSeed(5);
    return [vg.randn([5003])];
  }, 4096);
  assertSame(split, 'randn from the global generator');
  // windows that restarted the counter blocks would repeat the first window's draws
  const [values] = split.split.data;
  assert.ok(new Set(values).size > 4990, 'distinct draws across windows');
});

test('VxmDense 3-D training step (forward, MSE + Grad loss, backward) with every big op split: within 1e-5 of the whole', async () => {
  // 16^3: the full-resolution activations (16 to 48 channels, 256 to 768 KiB) exceed 160 KiB, so conv, leakyRelu,
  // maxPool3d, interpolate, cat, the bias-gradient sums and the gradient additions all take their split paths
  const shape = [16, 16, 16];
  const net = new vg.models.VxmDense(shape, { seed: 3 });
  const src = vg.rand([1, 1, ...shape], { seed: 4 });
  const tgt = vg.rand([1, 1, ...shape], { seed: 5 });
  const params = net.namedParameters().map(([, p]) => p);
  const reg = vg.methods.registration;
  const step = () => {
    for (const p of params) p.grad = null;
    return vg.tidy(() => {
      const o = net.call(src, tgt);
      const loss = vg.add(reg.mse(o.ySource, tgt), vg.mul(reg.gradL2(o.preintFlow, { lossMult: 2 }), 0.01));
      loss.backward();
      return [loss, o.ySource, o.flow, ...params.map((p) => vg.mul(p.grad, 1))];
    });
  };
  const r = await wholeAndSplit(step, 160 * 1024);
  assert.ok(r.split.dispatches > r.whole.dispatches * 2, `split plans ran (${r.split.dispatches} vs ${r.whole.dispatches} dispatches)`);
  r.whole.data.forEach((w, o) => {
    const s = r.split.data[o];
    let d = 0;
    let m = 0;
    for (let i = 0; i < w.length; i++) {
      d = Math.max(d, Math.abs(w[i] - s[i]));
      m = Math.max(m, Math.abs(w[i]));
    }
    assert.ok(d <= 1e-5 * m, `output ${o}: max |whole - split| ${d} > 1e-5 * max |whole| (${m})`);
  });
  for (const t of [src, tgt]) t.dispose();
  net.dispose();
});

test.run();
