// The spatial transformer family: gridSample, affineGrid, spatialTransform, integrateVelocity, jacobianDeterminant and
// spatialGradient against PyTorch / VoxelMorph references (test/fixtures/gen_spatial.py), finite-difference gradient
// checks, the deterministic input gradient, the coordinate convention of docs/conventions.md on an anisotropic
// volume, and the argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const cases = loadFixtures('spatial');
const ofKind = (k) => cases.filter((c) => c.kind === k);
// 1e-4 relative, as every op; the absolute floor covers results that cancel to near zero: each is a sum of a few O(1)
// products rounded to f32 (|error| ~ 10 * 2^-24 * the terms' size)
const TOL = { rtol: 1e-4, atol: 1e-5 };

const ref = (e) => fixtureRef(e);
const input = (e, requiresGrad = true) => fixtureRef(e).toTensor({ requiresGrad });

function dispose(...ts) {
  for (const t of ts.flat()) t?.dispose();
}

// ---- PyTorch fixtures -------------------------------------------------------------------------------------------------

test('gridSample 2-D, 3-D and 3-D with one slice: every mode x paddingMode x alignCorners, forward and gradients to input and grid', async () => {
  const list = ofKind('gridSample');
  assert.is(list.length, 36);
  for (const c of list) {
    const msg = `${c.nd}-D ${c.mode} ${c.paddingMode} alignCorners=${c.alignCorners}`;
    const x = input(c.input);
    const g = input(c.grid);
    const out = vg.gridSample(x, g, { mode: c.mode, paddingMode: c.paddingMode, alignCorners: c.alignCorners });
    await assertClose(out, ref(c.out), { ...TOL, msg: `${msg} forward` });
    const up = input(c.upstream, false);
    out.backward(up);
    await assertClose(x.grad, ref(c.gInput), { ...TOL, msg: `${msg} d/dinput` });
    await assertClose(g.grad, ref(c.gGrid), { ...TOL, msg: `${msg} d/dgrid` });
    // the grid-gradient-only kernel variant (input without requiresGrad)
    const x2 = input(c.input, false);
    const g2 = input(c.grid);
    const out2 = vg.gridSample(x2, g2, { mode: c.mode, paddingMode: c.paddingMode, alignCorners: c.alignCorners });
    out2.backward(up);
    await assertClose(g2.grad, ref(c.gGrid), { ...TOL, msg: `${msg} d/dgrid alone` });
    dispose(x, g, out, up, x2, g2, out2);
  }
});

/**
 * The inputs of the 1x3x64^3 case, from the formulas of gen_spatial.py (same IEEE double operations in the same
 * order, then rounded to f32, so both sides hold identical values).
 */
function bigInputs(S) {
  const n = S * S * S;
  const x = new Float32Array(3 * n);
  const up = new Float32Array(3 * n);
  const grid = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++)
    for (let d = 0; d < S; d++)
      for (let h = 0; h < S; h++)
        for (let w = 0; w < S; w++) {
          const i = ((c * S + d) * S + h) * S + w;
          x[i] = ((c * 17 + d * 5 + h * 3 + w * 7) % 23) / 23 - 0.5 + 0.01 * d - 0.005 * h;
          up[i] = ((c * 11 + d * 13 + h * 5 + w * 3) % 29) / 29 - 0.5;
        }
  for (let d = 0; d < S; d++)
    for (let h = 0; h < S; h++)
      for (let w = 0; w < S; w++)
        [w, h, d].forEach((i, k) => {
          const base = (2 * i + 1) / S - 1;
          grid[((d * S + h) * S + w) * 3 + k] = base + 0.08 * (((d * 7 + h * 11 + w * 13 + k * 5) % 19) / 19 - 0.5);
        });
  return { x, up, grid };
}

/** Sampled values within TOL, and sum(t * wt) within 1e-5 of sum(|t * wt|) (each element carries f32 round-off). */
async function checkSummary(t, s, msg) {
  const got = await t.data();
  const idx = ref(s.idx).data;
  const want = ref(s.values).data;
  idx.forEach((at, k) => {
    const err = Math.abs(got[at] - want[k]);
    assert.ok(err <= TOL.atol + TOL.rtol * Math.abs(want[k]), `${msg}: element ${at} is ${got[at]}, expected ${want[k]}`);
  });
  let wsum = 0;
  for (let i = 0; i < got.length; i++) wsum += got[i] * ((i % 13) / 13 + 0.5);
  assert.ok(Math.abs(wsum - s.wsum) <= 1e-5 * s.asum, `${msg}: weighted sum ${wsum}, expected ${s.wsum} (scale ${s.asum})`);
}

test('gridSample 3-D trilinear on 1x3x64^3 with gradients to input and grid matches PyTorch', async () => {
  const [c] = ofKind('gridSampleBig');
  const S = c.size;
  const { x: xd, up: upd, grid: gd } = bigInputs(S);
  const x = vg.tensor(xd, [1, 3, S, S, S], { requiresGrad: true });
  const g = vg.tensor(gd, [1, S, S, S, 3], { requiresGrad: true });
  const up = vg.tensor(upd, [1, 3, S, S, S]);
  const out = vg.gridSample(x, g);
  await checkSummary(out, c.out, 'forward');
  out.backward(up);
  await checkSummary(x.grad, c.gInput, 'd/dinput');
  await checkSummary(g.grad, c.gGrid, 'd/dgrid');
  dispose(x, g, up, out);
});

test('affineGrid 2-D and 3-D, both alignCorners, with the gradient to theta', async () => {
  const list = ofKind('affineGrid');
  assert.is(list.length, 4);
  for (const c of list) {
    const msg = `size [${c.size}] alignCorners=${c.alignCorners}`;
    const theta = input(c.theta);
    const out = vg.affineGrid(theta, c.size, { alignCorners: c.alignCorners });
    await assertClose(out, ref(c.out), { ...TOL, msg });
    const up = input(c.upstream, false);
    out.backward(up);
    await assertClose(theta.grad, ref(c.gTheta), { ...TOL, msg: `${msg} d/dtheta` });
    dispose(theta, out, up);
  }
});

test("spatialTransform matches VoxelMorph's SpatialTransformer (2-D, 3-D, non-cubic; nearest; border, reflection)", async () => {
  const list = ofKind('spatialTransform');
  assert.is(list.length, 5);
  for (const c of list) {
    const msg = `src [${c.src.shape}] ${c.mode} ${c.paddingMode}`;
    const src = input(c.src);
    const flow = input(c.flow);
    const out = vg.spatialTransform(src, flow, { mode: c.mode, paddingMode: c.paddingMode });
    await assertClose(out, ref(c.out), { ...TOL, msg });
    const up = input(c.upstream, false);
    out.backward(up);
    await assertClose(src.grad, ref(c.gSrc), { ...TOL, msg: `${msg} d/dsrc` });
    await assertClose(flow.grad, ref(c.gFlow), { ...TOL, msg: `${msg} d/dflow` });
    dispose(src, flow, out, up);
  }
});

test("integrateVelocity matches VoxelMorph's VecInt (scaling and squaring) with its gradient", async () => {
  for (const c of ofKind('integrateVelocity')) {
    const msg = `vel [${c.vel.shape}] steps ${c.steps}`;
    const vel = input(c.vel);
    const out = vg.integrateVelocity(vel, c.steps);
    await assertClose(out, ref(c.out), { ...TOL, msg });
    const up = input(c.upstream, false);
    out.backward(up);
    await assertClose(vel.grad, ref(c.gVel), { ...TOL, msg: `${msg} d/dvel` });
    dispose(vel, out, up);
  }
});

test("jacobianDeterminant matches VoxelMorph's jacobian_determinant (float64 numpy), with its gradient", async () => {
  for (const c of ofKind('jacobianDeterminant')) {
    const msg = `flow [${c.flow.shape}]`;
    const flow = input(c.flow);
    const det = vg.jacobianDeterminant(flow);
    await assertClose(det, ref(c.out), { ...TOL, msg });
    const up = input(c.upstream, false);
    det.backward(up);
    await assertClose(flow.grad, ref(c.gFlow), { ...TOL, msg: `${msg} d/dflow` });
    dispose(flow, det, up);
  }
});

test("spatialGradient: forward and central differences per axis, and VoxelMorph's Grad-l2 loss composed from them", async () => {
  for (const c of ofKind('spatialGradient')) {
    const msg = `input [${c.input.shape}] ${c.mode}`;
    const x = input(c.input);
    const ds = vg.spatialGradient(x, { mode: c.mode });
    assert.is(ds.length, c.axes.length, msg);
    for (const [a, ax] of c.axes.entries()) {
      await assertClose(ds[a], ref(ax.out), { ...TOL, msg: `${msg} axis ${a}` });
      const up = input(ax.upstream, false);
      ds[a].backward(up);
      await assertClose(x.grad, ref(ax.gInput), { ...TOL, msg: `${msg} axis ${a} d/dinput` });
      x.grad.dispose();
      x.grad = null;
      up.dispose();
    }
    if (c.gradL2) {
      // Grad('l2', loss_mult=2): mean over axes of mean(d^2), times 2
      const terms = vg.spatialGradient(x).map((d) => vg.mean(vg.square(d)));
      const loss = vg.mul(terms.reduce((s, t) => vg.add(s, t)), 2 / terms.length);
      assert.is(loss.ndim, 0, `${msg} Grad-l2 is a scalar`);
      // (fixture_io stores 0-d tensors with shape [1])
      await assertClose(vg.reshape(loss, [1]), ref(c.gradL2.loss), { ...TOL, msg: `${msg} Grad-l2` });
      loss.backward();
      await assertClose(x.grad, ref(c.gradL2.gInput), { ...TOL, msg: `${msg} Grad-l2 d/dinput` });
      dispose(terms, loss);
    }
    dispose(x, ds);
  }
});

// ---- gradient checks by finite differences -----------------------------------------------------------------------------

/**
 * Normalised grid coordinates whose voxel positions lie in the middle of a cell (fraction in [0.3, 0.7]), where
 * bilinear interpolation is smooth; `outside` lets some fall up to two voxels beyond the volume.
 */
function smoothGrid(r, n, ho, sizes, alignCorners, outside = 0) {
  const vals = [];
  for (let i = 0; i < n * ho; i++)
    sizes.forEach((s) => {
      const pos = r.int(-outside, s - 1 + outside) + r.uniform(0.3, 0.7);
      vals.push(alignCorners ? (2 * pos) / (s - 1) - 1 : (2 * pos + 1) / s - 1);
    });
  return vals;
}

test('gradcheck: gridSample 2-D and 3-D (bilinear; zeros, border, reflection) in input and grid', async () => {
  const r = rng(11);
  const combos = [
    { shape: [2, 2, 4, 5], out: [2, 3, 2], padding: 'zeros', alignCorners: false, outside: 0 },
    { shape: [1, 2, 3, 4, 5], out: [1, 2, 2, 2], padding: 'border', alignCorners: true, outside: 2 },
    { shape: [1, 1, 4, 3, 5], out: [1, 3, 2, 2], padding: 'reflection', alignCorners: false, outside: 2 },
  ];
  for (const c of combos) {
    const sizes = [...c.shape.slice(2)].reverse(); // x, y, z
    const n = size(c.out);
    const grid = new Ref(smoothGrid(r, n, 1, sizes, c.alignCorners, c.outside), [...c.out, sizes.length]).f32();
    const x = Ref.random(c.shape, r).f32();
    const opts = { paddingMode: c.padding, alignCorners: c.alignCorners };
    await gradcheck((a, b) => vg.gridSample(a, b, opts), [x, grid], { eps: 1e-3, msg: `${c.shape.length}-D ${c.padding}` });
  }
});

test('gradcheck: spatialTransform, integrateVelocity, jacobianDeterminant, spatialGradient, affineGrid', async () => {
  const r = rng(12);
  // displacements of an integer plus a fraction in [0.3, 0.7]: every sample point mid-cell
  const flow = new Ref(Array.from({ length: 3 * 3 * 4 * 5 }, () => r.int(-1, 2) + r.uniform(0.3, 0.7)), [1, 3, 3, 4, 5]).f32();
  const src = Ref.random([1, 2, 3, 4, 5], r).f32();
  await gradcheck((s, f) => vg.spatialTransform(s, f), [src, flow], { eps: 1e-3, msg: 'spatialTransform' });
  // a positive velocity below one voxel: every intermediate displacement stays in (0, 1), away from cell borders
  const vel = new Ref(r.array(2 * 4 * 5, 0.3, 0.6), [1, 2, 4, 5]).f32();
  await gradcheck((v) => vg.integrateVelocity(v, 3), [vel], { eps: 1e-3, msg: 'integrateVelocity' });
  await gradcheck((f) => vg.jacobianDeterminant(f), [Ref.random([1, 3, 3, 4, 5], r).f32()], { msg: 'jacobianDeterminant 3-D' });
  await gradcheck((f) => vg.jacobianDeterminant(f), [Ref.random([2, 2, 4, 3], r).f32()], { msg: 'jacobianDeterminant 2-D' });
  for (const mode of ['forward', 'central']) {
    const x = Ref.random([1, 2, 3, 4, 2], r).f32();
    for (let a = 0; a < 3; a++) await gradcheck((t) => vg.spatialGradient(t, { mode })[a], [x], { msg: `spatialGradient ${mode} axis ${a}` });
  }
  const theta = Ref.random([2, 3, 4], r).f32();
  await gradcheck((t) => vg.affineGrid(t, [2, 1, 2, 3, 4], { alignCorners: false }), [theta], { msg: 'affineGrid' });
});

// ---- deterministic input gradient ---------------------------------------------------------------------------------------

/** float64 reference of grid_sample's input gradient (trilinear, zeros padding, alignCorners false). */
function refTrilinearInputGrad(x, grid, up) {
  const [N, C, D, H, W] = x.shape;
  const P = size(grid.shape.slice(1, -1));
  const out = new Float64Array(x.data.length);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < P; o++) {
      const gi = (n * P + o) * 3;
      const pos = [W, H, D].map((s, a) => ((grid.data[gi + a] + 1) * s - 1) / 2);
      const base = pos.map(Math.floor);
      for (let k = 0; k < 8; k++) {
        const v = [0, 1, 2].map((a) => base[a] + ((k >> a) & 1));
        if (v[0] < 0 || v[0] >= W || v[1] < 0 || v[1] >= H || v[2] < 0 || v[2] >= D) continue;
        const wgt = [0, 1, 2].reduce((p, a) => p * ((k >> a) & 1 ? pos[a] - base[a] : base[a] + 1 - pos[a]), 1);
        for (let c = 0; c < C; c++) out[(((n * C + c) * D + v[2]) * H + v[1]) * W + v[0]] += wgt * up.data[(n * C + c) * P + o];
      }
    }
  return new Ref(out, x.shape);
}

test('the input gradient is bit-identical run to run (samples summed in a fixed order) under heavy collisions', async () => {
  const r = rng(13);
  // 4096 sample points on a 4x5x6 volume: about 170 contributions per voxel, from many workgroups at once
  const x = Ref.random([1, 2, 4, 5, 6], r).f32();
  const grid = Ref.random([1, 16, 16, 16, 3], r, -1.05, 1.05).f32();
  const up = Ref.random([1, 2, 16, 16, 16], r).f32();
  const runs = [];
  for (let k = 0; k < 3; k++) {
    const xt = x.toTensor({ requiresGrad: true });
    const gt = grid.toTensor();
    const ut = up.toTensor();
    const out = vg.gridSample(xt, gt);
    out.backward(ut);
    runs.push(await xt.grad.data());
    dispose(xt, gt, ut, out);
  }
  assert.equal(Array.from(new Uint32Array(runs[1].buffer)), Array.from(new Uint32Array(runs[0].buffer)), 'run 2 differs from run 1');
  assert.equal(Array.from(new Uint32Array(runs[2].buffer)), Array.from(new Uint32Array(runs[0].buffer)), 'run 3 differs from run 1');
  const want = refTrilinearInputGrad(x, grid, up);
  // sums of ~170 terms of size ~0.5 from cells of ~20 samples, some summed in f32 in order, the larger ones exactly
  // (shaders/grid_sample.wgsl): a few 2^-24 relative
  const got = vg.tensor(runs[0], x.shape);
  await assertClose(got, want, { rtol: 1e-5, atol: 1e-5, msg: 'against float64' });
  got.dispose();
});

test('a cell of thousands of samples is summed exactly; a NaN among them reaches only its corners', async () => {
  const r = rng(14);
  // 3,375 samples in the one cell between voxels 1 and 2 of each axis (positions 1.1 .. 1.9)
  const x = Ref.random([1, 1, 4, 4, 4], r).f32();
  const grid = Ref.random([1, 15, 15, 15, 3], r, -0.2, 0.2).f32();
  const up = Ref.random([1, 1, 15, 15, 15], r, 0, 1000).f32();
  const xt = x.toTensor({ requiresGrad: true });
  const gt = grid.toTensor();
  let out = vg.gridSample(xt, gt);
  out.backward(up.toTensor());
  // every term positive, each with a few f32 roundings of its own: the exact sum rounded once stays well within 1e-6
  // of float64, where an f32 running sum of 3,375 terms typically drifts a few 1e-6 (sqrt(n) half-ulps)
  await assertClose(xt.grad, refTrilinearInputGrad(x, grid, up), { rtol: 1e-6, atol: 0, msg: 'exact cell sum' });
  xt.grad.dispose();
  xt.grad = null;
  const bad = up.data.slice();
  bad[1234] = NaN;
  out.dispose();
  out = vg.gridSample(xt, gt);
  out.backward(vg.tensor(bad, up.shape));
  const got = await xt.grad.data();
  const corners = new Set([1, 2].flatMap((z) => [1, 2].flatMap((y) => [1, 2].map((w) => (z * 4 + y) * 4 + w))));
  assert.equal(Array.from(got, (v, i) => Number.isNaN(v) === corners.has(i)), new Array(64).fill(true), 'NaN exactly at the cell corners');
  dispose(xt, gt, out);
});

// ---- one coordinate convention (docs/conventions.md) --------------------------------------------------------------------

test('a translation along each axis of a 5x7x11 volume moves the content along exactly that axis (spatialTransform and gridSample)', async () => {
  const [D, H, W] = [5, 7, 11];
  // distinct content along every axis: value = 100 d + 10 h + w + 1 (0 marks padding)
  const vol = new Ref(Array.from({ length: D * H * W }, (_, i) => 100 * Math.floor(i / (H * W)) + 10 * (Math.floor(i / W) % H) + (i % W) + 1), [1, 1, D, H, W]);
  const moved = (t) =>
    new Ref(
      Array.from({ length: D * H * W }, (_, i) => {
        const v = [Math.floor(i / (H * W)) + t[0], (Math.floor(i / W) % H) + t[1], (i % W) + t[2]];
        return v.every((c, a) => c >= 0 && c < [D, H, W][a]) ? vol.get([0, 0, ...v]) : 0;
      }),
      [1, 1, D, H, W],
    );
  const src = vol.toTensor();
  for (const t of [[2, 0, 0], [0, -3, 0], [0, 0, 4]]) {
    const want = moved(t);
    // VoxelMorph terms: flow channel i = displacement along spatial axis i (D, H, W), in voxels
    const flow = vg.tensor(t.flatMap((s) => new Array(D * H * W).fill(s)), [1, 3, D, H, W]);
    for (const mode of ['bilinear', 'nearest']) {
      const out = vg.spatialTransform(src, flow, { mode });
      await assertClose(out, want, { rtol: 0, atol: 0, msg: `spatialTransform ${mode} shift [${t}]` });
      out.dispose();
    }
    // gridSample terms: theta's translation column is (x, y, z) = (W, H, D) in normalised units
    for (const alignCorners of [false, true]) {
      const norm = (s, n) => (2 * s) / (alignCorners ? n - 1 : n);
      const theta = vg.tensor([1, 0, 0, norm(t[2], W), 0, 1, 0, norm(t[1], H), 0, 0, 1, norm(t[0], D)], [1, 3, 4]);
      const grid = vg.affineGrid(theta, [1, 1, D, H, W], { alignCorners });
      const out = vg.gridSample(src, grid, { alignCorners });
      // the normalised round trip puts samples within ~1e-6 voxel of the integer target; content slope <= 100 / voxel
      await assertClose(out, want, { rtol: 1e-5, atol: 1e-3, msg: `gridSample alignCorners=${alignCorners} shift [${t}]` });
      dispose(theta, grid, out);
    }
    flow.dispose();
  }
  src.dispose();
});

test('documented edge cases: a length-1 axis samples its single voxel; inf/NaN upstream gradients reach the voxels they touch, as in PyTorch', async () => {
  // VoxelMorph divides by size - 1 = 0 here (NaN); docs/conventions.md §3
  const src = vg.tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 1, 4]);
  const flow = vg.tensor([0, 0, 0, 0, 0, 1, 0, 0], [1, 2, 1, 4]);
  const out = vg.spatialTransform(src, flow);
  assert.equal(Array.from(await out.data()), [1, 3, 3, 4, 5, 7, 7, 8]);
  // docs/conventions.md §8: all four samples sit on voxel (1, 1) (weight 1; its cell's other corners weight 0, and
  // 0 * inf = NaN); torch 1.13 gives [[0, 0, 0], [0, nan, nan], [0, nan, nan]] and, for inf, [[0, 0, 0], [0, inf, nan],
  // [0, nan, nan]]
  const grid = vg.zeros([1, 2, 2, 2]);
  for (const [bad, centre] of [[NaN, NaN], [Infinity, Infinity]]) {
    const x = vg.ones([1, 1, 3, 3], { requiresGrad: true });
    const y = vg.gridSample(x, grid);
    y.backward(vg.tensor([1, bad, 1, 1], [1, 1, 2, 2]));
    assert.equal(Array.from(await x.grad.data()), [0, 0, 0, 0, centre, NaN, 0, NaN, NaN], `upstream ${bad}`);
    dispose(x, y);
  }
  dispose(src, flow, out, grid);
});

test("nearest rounds ties to even (std::nearbyint), as PyTorch's grid_sample", async () => {
  // alignCorners false on W = 4: x = -1, -0.5, 0, 0.5, 1 sample positions -0.5, 0.5, 1.5, 2.5, 3.5; PyTorch gives
  // [10, 10, 30, 30, 0] (torch 1.13)
  const x = vg.tensor([10, 20, 30, 40], [1, 1, 1, 4]);
  const grid = vg.tensor([-1, 0, -0.5, 0, 0, 0, 0.5, 0, 1, 0], [1, 1, 5, 2]);
  const out = vg.gridSample(x, grid, { mode: 'nearest' });
  assert.equal(Array.from(await out.data()), [10, 10, 30, 30, 0]);
  dispose(x, grid, out);
});

// ---- bad input ------------------------------------------------------------------------------------------------------------

test('bad input: ranks, grid and flow shapes, options', () => {
  const x4 = vg.zeros([1, 2, 3, 4]);
  const x5 = vg.zeros([1, 2, 3, 4, 5]);
  const g4 = vg.zeros([1, 2, 2, 2]);
  assertThrowsWith(() => vg.gridSample(vg.zeros([2, 3, 4]), g4), ['gridSample', 'input', 'rank 4 or 5', '[2, 3, 4]']);
  assertThrowsWith(() => vg.gridSample(x5, g4), ['gridSample', 'grid', 'rank 5', '[N, Do, Ho, Wo, 3]', '[1, 2, 2, 2]']);
  assertThrowsWith(() => vg.gridSample(x4, vg.zeros([1, 2, 2, 3])), ['gridSample', "grid's last dim must be 2", '[1, 2, 2, 3]']);
  assertThrowsWith(() => vg.gridSample(x4, vg.zeros([3, 2, 2, 2])), ['gridSample', 'grid batch size 3', 'input batch size 1']);
  assertThrowsWith(() => vg.gridSample(x4, g4, { mode: 'bicubic' }), ['gridSample', 'bicubic']);
  assertThrowsWith(() => vg.gridSample(x4, g4, { paddingMode: 'wrap' }), ['gridSample', 'paddingMode', 'wrap']);
  assertThrowsWith(() => vg.gridSample(vg.zeros([1, 2, 0, 4]), g4), ['gridSample', 'non-empty spatial']);
  assertThrowsWith(() => vg.spatialTransform(x4, vg.zeros([1, 3, 3, 4])), ['spatialTransform', 'flow must have 2 channels', '[1, 3, 3, 4]']);
  assertThrowsWith(() => vg.spatialTransform(x5, vg.zeros([1, 2, 3, 4])), ['spatialTransform', 'flow must have rank 5', '[1, 2, 3, 4]']);
  assertThrowsWith(() => vg.spatialTransform(x4, vg.zeros([1, 2, 4, 3])), ['spatialTransform', "src's batch size and spatial shape", '[1, 2, 4, 3]']);
  assertThrowsWith(() => vg.integrateVelocity(vg.zeros([1, 3, 4, 5])), ['integrateVelocity', 'vel must have 2 channels', '[1, 3, 4, 5]']);
  assertThrowsWith(() => vg.integrateVelocity(vg.zeros([1, 2, 4, 5]), -1), ['integrateVelocity', 'steps', '-1']);
  assertThrowsWith(() => vg.jacobianDeterminant(vg.zeros([1, 2, 3, 4, 5])), ['jacobianDeterminant', 'flow must have 3 channels']);
  assertThrowsWith(() => vg.jacobianDeterminant(vg.zeros([1, 2, 1, 4])), ['jacobianDeterminant', 'at least 2 voxels']);
  assertThrowsWith(() => vg.affineGrid(vg.zeros([1, 2, 3]), [1, 1, 2, 3, 4]), ['affineGrid', 'theta must have shape [1, 3, 4]', '[1, 2, 3]']);
  assertThrowsWith(() => vg.affineGrid(vg.zeros([2, 2, 3]), [1, 1, 3, 4]), ['affineGrid', 'theta must have shape [1, 2, 3]', '[2, 2, 3]']);
  assertThrowsWith(() => vg.affineGrid(vg.zeros([1, 2, 3]), [1, 3, 4]), ['affineGrid', 'size must be [N, C, H, W]']);
  assertThrowsWith(() => vg.spatialGradient(vg.zeros([3, 4])), ['spatialGradient', 'rank 3 or 4 or 5']);
  assertThrowsWith(() => vg.spatialGradient(x4, { mode: 'backward' }), ['spatialGradient', "'forward' or 'central'"]);
  dispose(x4, x5, g4);
});

test.run();
