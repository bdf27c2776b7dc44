// Convolutions: conv1d/2d/3d and convTranspose2d/3d against PyTorch fixtures (forward and the gradients to input,
// weight and bias), finite-difference gradient checks, determinism of the data gradient, and the argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convRef } from './conv-ref.mjs';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const OPS = {
  conv1d: vg.conv1d,
  conv2d: vg.conv2d,
  conv3d: vg.conv3d,
  conv_transpose2d: vg.convTranspose2d,
  conv_transpose3d: vg.convTranspose3d,
};

/** PyTorch keyword options → voxgrad's camelCase options. */
function options(opts) {
  const out = {};
  for (const [k, v] of Object.entries(opts)) out[k.replace(/_(\w)/g, (_, c) => c.toUpperCase())] = v;
  return out;
}

/**
 * Every output is a sum of up to a few hundred f32 products; f32 accumulation error grows with the magnitude of the
 * terms, not of the (possibly cancelling) result, so the absolute part of the tolerance is 1e-5 of the reference's
 * largest magnitude on top of the 1e-4 relative tolerance.
 */
function tol(ref) {
  let m = 0;
  for (const v of ref.data) m = Math.max(m, Math.abs(v));
  return { rtol: 1e-4, atol: 1e-5 * m };
}

/** The fixture generator's formula inputs: ((i * 2654435761 + seed) mod 2^32) / 2^31 - 1, times scale (exact in f32). */
function hashed(shape, seed, scale = 1) {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (((Math.imul(i, 2654435761) + seed) >>> 0) / 2 ** 31 - 1) * scale;
  return vg.tensor(v, shape);
}

/** Every `stride`-th element of t (the large fixtures store only those), as a Ref-comparable tensor. */
async function sampledRef(t, stride) {
  const all = await t.data();
  const picked = all.filter((_, i) => i % stride === 0);
  return vg.tensor(picked, [picked.length]);
}

/** One large fixture case: forward and gradients against PyTorch's, sampled. */
async function checkLarge(c) {
    const L = c.large;
    const x = hashed(L.x, 1);
    const w = hashed(L.w, 2, L.wScale);
    const b = L.b ? hashed(L.b, 3) : null;
    for (const t of [x, w, b]) if (t) t.requiresGrad = true;
    const y = OPS[c.op](x, w, { ...options(c.opts), bias: b });
    assert.equal([...y.shape], c.yShape, 'output shape');
    const check = async (t, key) => {
      const ref = fixtureRef(c[key]);
      const got = key === 'db' ? t : await sampledRef(t, L.stride);
      await assertClose(got, ref, { ...tol(ref), msg: `${c.name} ${key}` });
      if (got !== t) got.dispose();
    };
    await check(y, 'y');
    y.backward(hashed(c.yShape, 4));
    await check(x.grad, 'dx');
    await check(w.grad, 'dw');
    if (b) await check(b.grad, 'db');
    for (const t of [x, w, b, y]) t?.dispose();
}

for (const c of loadFixtures('conv').filter((c) => c.large)) test(`${c.name}: forward and gradients match PyTorch (sampled)`, () => checkLarge(c));

// The large blocks load a tap's weights (a voxel's gy rows in the weight gradient) in one of two ways: broadcast
// across subgroup lanes where the adapter has subgroups of 8 or more, else staged in workgroup memory (SwiftShader,
// adapters without the feature). Both run here: the default device, then one made with subgroups off.
test('large blocks with and without subgroups: both match PyTorch, and each runs the kernels it should', async () => {
  const large = loadFixtures('conv').filter((c) => c.large);
  const ran = async () => {
    const { report } = await vg.profile(async () => {
      for (const c of large) await checkLarge(c);
    });
    return new Set(report.kernels.map((k) => k.name).filter((n) => /^conv\.(forward|transposed|wgrad)\.\d/.test(n)));
  };
  const lanes = vg.backendInfo().subgroupLanes;
  try {
    const withDefault = await ran();
    const subgroupKernels = [...withDefault].filter((n) => n.endsWith('.sg'));
    if (lanes >= 8) assert.ok(subgroupKernels.length > 0, `subgroups of ${lanes}: no .sg kernel ran (${[...withDefault]})`);
    else assert.equal(subgroupKernels, [], `subgroups of ${lanes} lanes: .sg kernels ran`);
    vg.destroy();
    await vg.init({ subgroups: false });
    assert.is(vg.backendInfo().subgroupLanes, 0, 'subgroups: false');
    const without = await ran();
    assert.ok(without.size > 0, 'large conv kernels ran');
    assert.equal([...without].filter((n) => n.endsWith('.sg')), [], 'subgroups off: no .sg kernel');
    // the staged kernels cut a deep layer's reduction into slices of workgroup memory
    const { report } = await vg.profile(deepLayers);
    const sliced = report.kernels.filter((k) => k.name.startsWith('conv.forward.')).length;
    assert.ok(sliced > 5, `deep layers without subgroups: ${sliced} forward dispatches for 5 convs (slices)`);
  } finally {
    vg.destroy();
    await vg.init();
  }
});

for (const c of loadFixtures('conv').filter((c) => !c.large)) {
  test(`${c.name}: forward and gradients match PyTorch`, async () => {
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const w = fixtureRef(c.w).toTensor({ requiresGrad: true });
    const b = c.b ? fixtureRef(c.b).toTensor({ requiresGrad: true }) : null;
    const y = OPS[c.op](x, w, { ...options(c.opts), bias: b });
    const yRef = fixtureRef(c.y);
    await assertClose(y, yRef, { ...tol(yRef), msg: `${c.name} forward` });
    y.backward(fixtureRef(c.g).toTensor());
    for (const [t, key] of [[x, 'dx'], [w, 'dw'], [b, 'db']]) {
      if (!c[key]) continue;
      const ref = fixtureRef(c[key]);
      await assertClose(t.grad, ref, { ...tol(ref), msg: `${c.name} ${key}` });
    }
    for (const t of [x, w, b, y]) t?.dispose();
  });
}

// Deep layers: a few output positions and many channels take narrow workgroups (8 to 32 invocations, one column
// each); without subgroups the reduction of the largest runs in slices of workgroup memory; the input gradient (stride 1)
// is the float64 conv of the output gradient with the transposed, rotated kernel.
test('few output positions, many channels: forward and input gradient against the float64 conv', () => deepLayers());

async function deepLayers() {
  const r = rng(21);
  // the last is large enough for 16-row blocks: 192 kernel rows, two slices of 170 without subgroups
  for (const [xs, cout] of [[[1, 96, 1, 1], 40], [[1, 96, 2, 2], 33], [[3, 64, 2, 3], 24], [[2, 40, 4, 4], 17], [[2, 64, 8, 8], 40]]) {
    const cin = xs[1];
    const X = Ref.random(xs, r).f32();
    const W = Ref.random([cout, cin, 3, 3], r, -0.2, 0.2).f32();
    const x = X.toTensor({ requiresGrad: true });
    const w = W.toTensor();
    const y = vg.conv2d(x, w, { padding: 1 });
    const yRef = convRef(X, W, null, { padding: 1 });
    await assertClose(y, yRef, { ...tol(yRef), msg: `forward ${xs}` });
    const G = Ref.random(yRef.shape, r).f32();
    y.backward(G.toTensor());
    const flipped = new Float64Array(W.data.length);
    for (let o = 0; o < cout; o++)
      for (let c = 0; c < cin; c++) for (let t = 0; t < 9; t++) flipped[(c * cout + o) * 9 + 8 - t] = W.data[(o * cin + c) * 9 + t];
    const dxRef = convRef(G, new Ref(flipped, [cin, cout, 3, 3]), null, { padding: 1 });
    await assertClose(x.grad, dxRef, { ...tol(dxRef), msg: `input gradient ${xs}` });
    for (const t of [x, w, y]) t.dispose();
  }
}

// Rows of a multiple of 4 load the tile's own window positions as vec4s (conv.ts, vec4WindowPad): rows of 36 and 20
// end inside a 16-voxel tile, where the vec4s past the row must read 0 (padding), with left paddings 0, 1 and 2.
test('vec4 window loads: rows ending inside a tile, paddings 0-2, stride 2, 3 output channels, forward and input gradient against the float64 conv', async () => {
  const r = rng(23);
  const names = new Set();
  for (const [xs, cout, padding, stride] of [[[2, 16, 20, 36], 16, 1, 1], [[2, 16, 24, 20], 24, 0, 1], [[2, 16, 24, 20], 16, 2, 1], [[4, 16, 36, 36], 32, 1, 2], [[2, 16, 48, 52], 3, 1, 1]]) {
    const cin = xs[1];
    const X = Ref.random(xs, r).f32();
    const W = Ref.random([cout, cin, 3, 3], r, -0.2, 0.2).f32();
    const x = X.toTensor({ requiresGrad: true });
    const w = W.toTensor();
    const yRef = convRef(X, W, null, { padding, stride });
    const G = Ref.random(yRef.shape, r).f32();
    const { report } = await vg.profile(async () => {
      const y = vg.conv2d(x, w, { padding, stride });
      await assertClose(y, yRef, { ...tol(yRef), msg: `forward ${xs} padding ${padding} stride ${stride}` });
      y.backward(G.toTensor());
      await x.grad.data();
      y.dispose();
    });
    for (const k of report.kernels) names.add(k.name);
    if (padding === 1 && stride === 1) {
      const flipped = new Float64Array(W.data.length);
      for (let o = 0; o < cout; o++)
        for (let c = 0; c < cin; c++) for (let t = 0; t < 9; t++) flipped[(c * cout + o) * 9 + 8 - t] = W.data[(o * cin + c) * 9 + t];
      const dxRef = convRef(G, new Ref(flipped, [cin, cout, 3, 3]), null, { padding: 1 });
      await assertClose(x.grad, dxRef, { ...tol(dxRef), msg: `input gradient ${xs}` });
    }
    for (const t of [x, w]) t.dispose();
  }
  for (const pad of [0, 1, 2]) assert.ok([...names].some((n) => n.includes(`.v4p${pad}.`)), `a vec4-window kernel with padding ${pad} ran: ${[...names]}`);
  assert.ok([...names].some((n) => n.startsWith('conv.forward.') && n.includes('.w2.') && n.includes('.v4p1.')), `a stride-2 vec4-window kernel ran: ${[...names]}`);
  assert.ok([...names].some((n) => n.startsWith('conv.forward.4x16.')), `3 output channels took 4 rows x 16 voxels: ${[...names]}`);
});

// The input gradient of a stride-2 conv runs transposed phases whose windows load as vec4s too (rows of y of 20
// end inside an 8-voxel tile); against the float64 sum dx[c, i] = sum over o, taps k with (i + 1 - k) even of
// g[o, (i + 1 - k) / 2] w[o, c, k] per dim.
test('vec4 window loads in the transposed phases: a stride-2 input gradient against the float64 sum', async () => {
  const r = rng(24);
  const [N, C, O, H, W] = [2, 16, 32, 40, 40];
  const X = Ref.random([N, C, H, W], r).f32();
  const Wt = Ref.random([O, C, 3, 3], r, -0.2, 0.2).f32();
  const [Ho, Wo] = [H / 2, W / 2];
  const G = Ref.random([N, O, Ho, Wo], r).f32();
  const x = X.toTensor({ requiresGrad: true });
  const { report } = await vg.profile(async () => {
    vg.conv2d(x, Wt.toTensor(), { padding: 1, stride: 2 }).backward(G.toTensor());
    await x.grad.data();
  });
  const ref = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          let acc = 0;
          for (let kh = 0; kh < 3; kh++) {
            const yi = i + 1 - kh;
            if (yi % 2 !== 0 || yi < 0 || yi / 2 >= Ho) continue;
            for (let kw = 0; kw < 3; kw++) {
              const yj = j + 1 - kw;
              if (yj % 2 !== 0 || yj < 0 || yj / 2 >= Wo) continue;
              for (let o = 0; o < O; o++) acc += G.data[((n * O + o) * Ho + yi / 2) * Wo + yj / 2] * Wt.data[((o * C + c) * 3 + kh) * 3 + kw];
            }
          }
          ref[((n * C + c) * H + i) * W + j] = acc;
        }
  const refT = new Ref(ref, [N, C, H, W]);
  await assertClose(x.grad, refT, { ...tol(refT), msg: 'stride-2 input gradient' });
  const names = report.kernels.map((k) => k.name);
  assert.ok(names.some((n) => n.startsWith('conv.transposed.') && n.includes('.v4p0.')), `a transposed vec4-window kernel ran: ${names}`);
  x.dispose();
});

/** The weight gradient of conv2d(x [N, C, H, W], w [O, C, 3, 3], padding 1) against the float64 sum; returns the kernels. */
async function weightGradAgainstSum(seed, [N, C, H, W, O]) {
  const r = rng(seed);
  const X = Ref.random([N, C, H, W], r).f32();
  const G = Ref.random([N, O, H, W], r).f32();
  const w = vg.zeros([O, C, 3, 3]).requiresGrad_();
  const x = X.toTensor();
  const { report } = await vg.profile(async () => {
    vg.conv2d(x, w, { padding: 1 }).backward(G.toTensor());
    await w.grad.data();
  });
  const ref = new Float64Array(O * C * 9);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let ky = 0; ky < 3; ky++)
        for (let kx = 0; kx < 3; kx++) {
          let acc = 0;
          for (let n = 0; n < N; n++)
            for (let y = 0; y < H; y++) {
              const iy = y + ky - 1;
              if (iy < 0 || iy >= H) continue;
              for (let xx = 0; xx < W; xx++) {
                const ix = xx + kx - 1;
                if (ix >= 0 && ix < W) acc += G.data[((n * O + o) * H + y) * W + xx] * X.data[((n * C + c) * H + iy) * W + ix];
              }
            }
          ref[((o * C + c) * 3 + ky) * 3 + kx] = acc;
        }
  const refT = new Ref(ref, [O, C, 3, 3]);
  await assertClose(w.grad, refT, { ...tol(refT), msg: `weight gradient ${[N, C, H, W]} -> ${O}` });
  for (const t of [x, w]) t.dispose();
  return report.kernels.map((k) => k.name).filter((n) => n.startsWith('conv.wgrad.') && n !== 'conv.wgrad.finish');
}

// The weight gradient of a 16-channel 2-D conv: 16 kernel rows per split, two splits per 32-invocation workgroup,
// each subgroup of 8 in one split (with subgroups they broadcast gy rows across a split's lanes)
test('weight gradient with two splits per workgroup against the float64 sum', async () => {
  const wgrad = await weightGradAgainstSum(23, [4, 16, 32, 32, 8]);
  assert.ok(wgrad.length > 0, 'a weight-gradient kernel ran');
  if (vg.backendInfo().subgroupLanes === 8) assert.ok(wgrad.every((n) => n.endsWith('.sg')), `subgroups of 8: ${wgrad}`);
});

// 40 output channels: with subgroups, blocks of 32 rows (the second holds 8 and 24 padding rows); without, 16
test('weight gradient in blocks of 32 rows against the float64 sum', async () => {
  const wgrad = await weightGradAgainstSum(29, [2, 8, 24, 20, 40]);
  assert.ok(wgrad.length > 0, 'a weight-gradient kernel ran');
  if (vg.backendInfo().subgroupLanes >= 8) assert.ok(wgrad.every((n) => n.startsWith('conv.wgrad.32.')), `subgroups: ${wgrad}`);
});

// ---- finite differences on tiny random cases --------------------------------------------------------------------------

test('gradcheck conv2d: stride 2, groups 2, bias', async () => {
  const r = rng(11);
  await gradcheck((x, w, b) => vg.conv2d(x, w, { bias: b, stride: 2, padding: 1, groups: 2 }), [
    Ref.random([1, 4, 5, 6], r),
    Ref.random([4, 2, 3, 3], r),
    Ref.random([4], r),
  ]);
});

// With subgroups, stride-1 input gradients and transposed convs run as the forward conv with the flipped kernel
// (channel axes swapped within each group, padding (k - 1)·d - p): groups, dilation and uneven padding here
test('gradcheck stride 1 with groups: conv2d 3x5 dilation [2, 1], convTranspose2d padding 1', async () => {
  const r = rng(13);
  await gradcheck((x, w) => vg.conv2d(x, w, { padding: [2, 1], dilation: [2, 1], groups: 2 }), [Ref.random([1, 6, 5, 6], r), Ref.random([4, 3, 3, 5], r)]);
  await gradcheck((x, w, b) => vg.convTranspose2d(x, w, { bias: b, padding: 1, groups: 2 }), [
    Ref.random([2, 4, 4, 5], r),
    Ref.random([4, 3, 3, 3], r),
    Ref.random([6], r),
  ]);
});

test('gradcheck conv3d: non-cubic kernel, dilation, same padding', async () => {
  const r = rng(12);
  await gradcheck((x, w) => vg.conv3d(x, w, { padding: 'same', dilation: [1, 2, 1] }), [Ref.random([1, 2, 4, 5, 4], r), Ref.random([3, 2, 3, 2, 3], r)]);
});

test('gradcheck convTranspose3d: stride 2, outputPadding 1, bias', async () => {
  const r = rng(13);
  await gradcheck((x, w, b) => vg.convTranspose3d(x, w, { bias: b, stride: 2, padding: 1, outputPadding: 1 }), [
    Ref.random([1, 2, 3, 2, 3], r),
    Ref.random([2, 3, 3, 3, 3], r),
    Ref.random([3], r),
  ]);
});

test('gradcheck conv1d and convTranspose2d on unbatched input, convTranspose1d batched', async () => {
  const r = rng(14);
  await gradcheck((x, w) => vg.conv1d(x, w, { stride: 2, dilation: 2 }), [Ref.random([3, 12], r), Ref.random([2, 3, 3], r)]);
  await gradcheck((x, w) => vg.convTranspose2d(x, w, { stride: [2, 1], padding: [0, 1] }), [Ref.random([2, 3, 4], r), Ref.random([2, 2, 3, 3], r)]);
  await gradcheck((x, w, b) => vg.convTranspose1d(x, w, { bias: b, stride: 2, padding: 1 }), [Ref.random([2, 3, 5], r), Ref.random([3, 2, 3], r), Ref.random([2], r)]);
});

// ---- determinism ------------------------------------------------------------------------------------------------------

test('data and weight gradients are bit-identical across runs', async () => {
  const x = vg.randn([2, 8, 10, 12, 16], { seed: 3 });
  const w = vg.randn([8, 8, 3, 3, 3], { seed: 4 });
  const g = vg.randn([2, 8, 10, 12, 16], { seed: 5 });
  const grads = async () => {
    const [dx, dw] = vg.grad((a, b) => vg.conv3d(a, b, { padding: 1 }).mul(g).sum(), { argnums: [0, 1] })(x, w);
    const out = [await dx.data(), await dw.data()];
    dx.dispose();
    dw.dispose();
    return out;
  };
  const [dx1, dw1] = await grads();
  const [dx2, dw2] = await grads();
  assert.ok(
    dx1.every((v, i) => Object.is(v, dx2[i])),
    'data gradient differs between two runs',
  );
  assert.ok(
    dw1.every((v, i) => Object.is(v, dw2[i])),
    'weight gradient differs between two runs',
  );
  for (const t of [x, w, g]) t.dispose();
});

// ---- argument checks --------------------------------------------------------------------------------------------------

test('bad arguments give errors that name the op, the argument and what was expected', () => {
  const x = vg.zeros([1, 4, 6, 6]);
  const w = vg.zeros([6, 2, 3, 3]);
  assertThrowsWith(() => vg.conv2d(vg.zeros([4, 6]), w), ['conv2d', 'input', 'rank 4', 'got rank 2']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([6, 2, 3])), ['conv2d', 'weight', 'rank 4', 'got rank 3']);
  assertThrowsWith(() => vg.conv2d(x, w), ['conv2d', 'input has 4 channels', 'weight.shape[1] * groups = 2']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([6, 1, 3, 3]), { groups: 4 }), ['conv2d', 'weight.shape[0] (6 output channels)', 'divisible by groups (4)']);
  assertThrowsWith(() => vg.conv2d(x, w, { groups: 2, bias: vg.zeros([5]) }), ['conv2d', 'bias must have shape [6]', 'got [5]']);
  assertThrowsWith(() => vg.conv2d(x, w, { groups: 2, stride: 0 }), ['conv2d', 'stride', 'positive integer', 'got']);
  assertThrowsWith(() => vg.conv2d(x, w, { groups: 2, dilation: [1, -1] }), ['conv2d', 'dilation', 'list of 2 positive integers', '[1,-1]']);
  assertThrowsWith(() => vg.conv2d(x, w, { groups: 2, padding: -1 }), ['conv2d', 'padding', 'non-negative']);
  assertThrowsWith(() => vg.conv2d(x, w, { groups: 2, stride: 2, padding: 'same' }), ['conv2d', "padding='same'", 'stride 1']);
  assertThrowsWith(() => vg.conv2d(x, vg.zeros([6, 2, 7, 3]), { groups: 2 }), ['conv2d', 'smaller than the dilated kernel', 'empty']);
  assertThrowsWith(() => vg.conv3d(vg.zeros([1, 2, 3, 3, 3]), vg.zeros([2, 2, 3, 3, 3]), { dilation: 2 }), ['conv3d', 'dilated kernel [5, 5, 5]']);
  assertThrowsWith(() => vg.conv1d(vg.zeros([1, 2, 5], { dtype: 'i32' }), vg.zeros([2, 2, 3])), ['conv1d', 'input', 'f32']);
  const xt = vg.zeros([1, 4, 3, 3, 3]);
  assertThrowsWith(() => vg.convTranspose3d(xt, vg.zeros([2, 2, 3, 3, 3])), ['convTranspose3d', 'input has 4 channels', 'weight.shape[0] = 2']);
  assertThrowsWith(() => vg.convTranspose3d(xt, vg.zeros([4, 2, 3, 3, 3]), { groups: 3 }), ['convTranspose3d', 'divisible by groups (3)']);
  assertThrowsWith(() => vg.convTranspose3d(xt, vg.zeros([4, 2, 3, 3, 3]), { stride: 2, outputPadding: 2 }), [
    'convTranspose3d',
    'outputPadding must be smaller than stride or dilation',
  ]);
  assertThrowsWith(() => vg.convTranspose3d(xt, vg.zeros([4, 2, 3, 3, 3]), { padding: 3 }), ['convTranspose3d', 'padding [3, 3, 3] is too large', 'empty']);
  assertThrowsWith(() => vg.convTranspose2d(vg.zeros([1, 4, 3, 3]), vg.zeros([4, 2, 3, 3]), { padding: 'same' }), ['convTranspose2d', 'padding']);
  assertThrowsWith(() => vg.convTranspose2d(vg.zeros([1, 4, 3, 3]), vg.zeros([4, 2, 3, 3]), { bias: vg.zeros([4]) }), ['convTranspose2d', 'bias must have shape [2]']);
  for (const t of [x, w, xt]) t.dispose();
});

test.run();
