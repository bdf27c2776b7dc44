// batchNorm, instanceNorm, groupNorm, layerNorm and dropout: forward, running statistics and every gradient against
// PyTorch fixtures (test/fixtures/gen_norm.py); the kernels' split layouts (groups spread over several workgroups,
// short rows over many samples) on larger inputs against a float64 reference of the definitions, itself checked
// against the fixtures; finite-difference gradient checks; dropout's mask, scaling, seeding and backward; bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, gradcheck64, markReferenceComparison, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

// Outputs and gradients are O(1) (dweight/dbias grow with the group size, where rtol governs). atol covers entries
// that cancel to ~0, whose f32 error is the round-off of group sums (a few 2^-24 relative to the O(1) terms).
const TOL = { rtol: 1e-4, atol: 1e-5 };

// ---- float64 reference --------------------------------------------------------------------------------------------

/**
 * The layers by their definitions, in float64: statistics per group (two-pass mean, biased variance), y = (x - mean)
 * / sqrt(var + eps) * weight + bias, and for the upstream gradient G: dx (closed form of the batch-statistics
 * normalisation, or G w rstd with running statistics), dweight = sum G xhat, dbias = sum G, and the running statistics
 * after a training call (momentum update with the unbiased variance; instanceNorm averages over the batch).
 */
function refNorm(op, x, o) {
  const { weight, bias, G, eps = 1e-5, momentum = 0.1, runningMean, runningVar } = o;
  const n = x.data.length;
  let chan;
  let group;
  let nChan;
  let useBatch = true;
  if (op === 'layerNorm') {
    const D = size(o.normalizedShape);
    nChan = D;
    chan = (e) => e % D;
    group = (e) => Math.floor(e / D);
  } else {
    const C = x.shape[1];
    const sp = size(x.shape.slice(2));
    nChan = C;
    chan = (e) => Math.floor(e / sp) % C;
    const sample = (e) => Math.floor(e / (C * sp));
    if (op === 'batchNorm') {
      useBatch = o.training || !runningMean;
      group = chan;
    } else if (op === 'instanceNorm') {
      useBatch = o.useInputStats ?? true;
      group = useBatch ? (e) => Math.floor(e / sp) : chan;
    } else {
      const Cg = C / o.numGroups;
      group = (e) => sample(e) * o.numGroups + Math.floor(chan(e) / Cg);
    }
  }
  let nGroups = 0;
  for (let e = 0; e < n; e++) nGroups = Math.max(nGroups, group(e) + 1);
  const mean = new Float64Array(nGroups);
  const vari = new Float64Array(nGroups);
  const count = new Float64Array(nGroups);
  if (useBatch) {
    for (let e = 0; e < n; e++) (mean[group(e)] += x.data[e]), count[group(e)]++;
    for (let q = 0; q < nGroups; q++) mean[q] /= count[q];
    for (let e = 0; e < n; e++) vari[group(e)] += (x.data[e] - mean[group(e)]) ** 2;
    for (let q = 0; q < nGroups; q++) vari[q] /= count[q];
  } else
    for (let q = 0; q < nGroups; q++) {
      mean[q] = runningMean.data[q];
      vari[q] = runningVar.data[q];
    }
  const w = (e) => (weight ? weight.data[chan(e)] : 1);
  const rstd = (e) => 1 / Math.sqrt(vari[group(e)] + eps);
  const xhat = (e) => (x.data[e] - mean[group(e)]) * rstd(e);
  const y = new Float64Array(n);
  const dx = new Float64Array(n);
  const dweight = new Float64Array(nChan);
  const dbias = new Float64Array(nChan);
  const A = new Float64Array(nGroups);
  const B = new Float64Array(nGroups);
  for (let e = 0; e < n; e++) {
    y[e] = xhat(e) * w(e) + (bias ? bias.data[chan(e)] : 0);
    dweight[chan(e)] += G.data[e] * xhat(e);
    dbias[chan(e)] += G.data[e];
    A[group(e)] += G.data[e] * w(e);
    B[group(e)] += G.data[e] * w(e) * xhat(e);
  }
  for (let e = 0; e < n; e++) {
    const q = group(e);
    const gw = G.data[e] * w(e);
    dx[e] = useBatch ? rstd(e) * (gw - A[q] / count[q] - (xhat(e) * B[q]) / count[q]) : gw * rstd(e);
  }
  const out = { y: new Ref(y, x.shape), dx: new Ref(dx, x.shape) };
  const pShape = weight?.shape ?? bias?.shape ?? [nChan];
  out.dweight = new Ref(dweight, pShape);
  out.dbias = new Ref(dbias, pShape);
  if (runningMean) {
    out.runningMean = runningMean;
    out.runningVar = runningVar;
  }
  if (runningMean && useBatch) {
    const reps = nGroups / nChan; // instanceNorm: groups q = n * C + c
    const rm = [...runningMean.data];
    const rv = [...runningVar.data];
    for (let c = 0; c < nChan; c++) {
      let m = 0;
      let v = 0;
      for (let r = 0; r < reps; r++) {
        const q = r * nChan + c;
        m += mean[q] / reps;
        v += (vari[q] * count[q]) / (count[q] - 1) / reps;
      }
      rm[c] = (1 - momentum) * rm[c] + momentum * m;
      rv[c] = (1 - momentum) * rv[c] + momentum * v;
    }
    out.runningMean = new Ref(rm, [nChan]);
    out.runningVar = new Ref(rv, [nChan]);
  }
  return out;
}

/** Calls the voxgrad op of a case description with tensors t (x, weight, bias, runningMean, runningVar). */
function callOp(c, t) {
  const common = { weight: t.weight ?? null, bias: t.bias ?? null, eps: c.eps };
  switch (c.op) {
    case 'batchNorm':
      return vg.batchNorm(t.x, t.runningMean ?? null, t.runningVar ?? null, { ...common, training: c.training, momentum: c.momentum });
    case 'instanceNorm':
      return vg.instanceNorm(t.x, {
        ...common,
        runningMean: t.runningMean ?? null,
        runningVar: t.runningVar ?? null,
        useInputStats: c.useInputStats,
        momentum: c.momentum,
      });
    case 'groupNorm':
      return vg.groupNorm(t.x, c.numGroups, common);
    default:
      return vg.layerNorm(t.x, c.normalizedShape, common);
  }
}

/** Runs a case on the GPU (all of x, weight, bias requiring grad) and checks it against `expected` (Refs). */
async function checkCase(c, refs, expected, msg) {
  const t = {};
  for (const k of ['x', 'weight', 'bias']) if (refs[k]) t[k] = refs[k].toTensor({ requiresGrad: true });
  for (const k of ['runningMean', 'runningVar']) if (refs[k]) t[k] = refs[k].toTensor();
  const G = refs.G.toTensor();
  const y = callOp(c, t);
  y.backward(G);
  await assertClose(y, expected.y, { ...TOL, msg: `${msg} y` });
  await assertClose(t.x.grad, expected.dx, { ...TOL, msg: `${msg} dx` });
  if (t.weight) await assertClose(t.weight.grad, expected.dweight, { ...TOL, msg: `${msg} dweight` });
  if (t.bias) await assertClose(t.bias.grad, expected.dbias, { ...TOL, msg: `${msg} dbias` });
  for (const k of ['runningMean', 'runningVar']) {
    if (!t[k]) continue;
    await assertClose(t[k], expected[k] ?? refs[k], { ...TOL, msg: `${msg} ${k} after the call` });
    assert.is(t[k].grad, null, `${msg} ${k} is not part of the graph`);
  }
  for (const v of [y, G, ...Object.values(t)]) v.dispose();
}

const FIXTURE_KEYS = { running_mean: 'runningMean', running_var: 'runningVar' };
const fromFixture = (group) => Object.fromEntries(Object.entries(group).map(([k, v]) => [FIXTURE_KEYS[k] ?? k, fixtureRef(v)]));
const cases = loadFixtures('norm');

/** The reference's options for a case. */
const refOpts = (c, refs) => ({ ...c, ...refs, eps: c.eps });

// ---- PyTorch fixtures ---------------------------------------------------------------------------------------------

test('the float64 reference of this file agrees with PyTorch on every fixture', () => {
  for (const c of cases) {
    const refs = fromFixture(c.inputs);
    const want = fromFixture(c.outputs);
    const got = refNorm(c.op, refs.x, refOpts(c, refs));
    for (const [k, r] of Object.entries(want)) {
      const g = got[k];
      assert.ok(g, `${c.label}: reference lacks ${k}`);
      r.data.forEach((v, i) => assert.ok(Math.abs(g.data[i] - v) <= 1e-9 * (1 + Math.abs(v)), `${c.label} ${k}[${i}]: ${g.data[i]} vs ${v}`));
    }
  }
});

test('forward, running statistics and input / weight / bias gradients match PyTorch', async () => {
  for (const c of cases) await checkCase(c, fromFixture(c.inputs), fromFixture(c.outputs), c.label);
});

// ---- split layouts on larger inputs -------------------------------------------------------------------------------

test('groups split over several workgroups, and short rows over many samples, match the reference', async () => {
  const r = rng(11);
  const big = [
    // one group per (sample, channel) pair of 32768 elements: statistics and gradient sums split in chunks
    { op: 'batchNorm', shape: [2, 2, 32768], training: true, momentum: 0.1, running: true, affine: true },
    { op: 'groupNorm', shape: [1, 4, 32768], numGroups: 2, affine: true },
    // lanes of one row crossing channels of odd size (the channel walk's carry)
    { op: 'groupNorm', shape: [2, 120, 5], numGroups: 1, affine: true },
    { op: 'instanceNorm', shape: [1, 2, 32768], useInputStats: true, affine: false, running: true, momentum: 0.3 },
    { op: 'layerNorm', shape: [2, 32768], normalizedShape: [32768], affine: true },
    { op: 'batchNorm', shape: [2, 3, 40000], training: false, running: true, affine: true },
    // many short rows: the column layout (partials over blocks of samples)
    { op: 'batchNorm', shape: [300, 7, 3], training: true, momentum: 0.1, running: true, affine: true },
    { op: 'batchNorm', shape: [500, 9], training: false, running: true, affine: true },
    { op: 'batchNorm', shape: [64, 5, 8], training: true, momentum: 0.1, running: false, affine: true },
    { op: 'layerNorm', shape: [300, 5, 48], normalizedShape: [48], affine: true },
  ];
  for (const c of big) {
    const C = c.op === 'layerNorm' ? null : c.shape[1];
    const pShape = c.normalizedShape ?? [C];
    const refs = { x: Ref.random(c.shape, r, -2, 3).f32(), G: Ref.random(c.shape, r).f32() };
    if (c.affine) {
      refs.weight = Ref.random(pShape, r, 0.5, 1.5).f32();
      refs.bias = Ref.random(pShape, r, -0.5, 0.5).f32();
    }
    if (c.running) {
      refs.runningMean = Ref.random([C], r, -0.5, 0.5).f32();
      refs.runningVar = Ref.random([C], r, 0.5, 1.5).f32();
    }
    c.eps = 1e-5;
    const msg = `${c.op} ${JSON.stringify(c.shape)}`;
    await checkCase(c, refs, refNorm(c.op, refs.x, refOpts(c, refs)), msg);
  }
});

// ---- gradients by finite differences ------------------------------------------------------------------------------

test('gradcheck: every layer, to input, weight and bias', async () => {
  const r = rng(5);
  const x = (shape) => Ref.random(shape, r, -2, 2).f32();
  const p = (shape) => Ref.random(shape, r, 0.5, 1.5).f32();
  const rm = vg.tensor([0.1, -0.2, 0.3]);
  const rv = vg.tensor([0.9, 1.2, 0.7]);
  const checks = [
    ['batchNorm train', (a, w, b) => vg.batchNorm(a, null, null, { weight: w, bias: b, training: true }), [x([3, 3, 4]), p([3]), p([3])]],
    ['batchNorm eval', (a, w, b) => vg.batchNorm(a, rm, rv, { weight: w, bias: b }), [x([2, 3, 5]), p([3]), p([3])]],
    ['instanceNorm', (a, w) => vg.instanceNorm(a, { weight: w }), [x([2, 3, 2, 3]), p([3])]],
    ['groupNorm', (a, w, b) => vg.groupNorm(a, 2, { weight: w, bias: b }), [x([2, 4, 5]), p([4]), p([4])]],
    ['layerNorm', (a, w, b) => vg.layerNorm(a, [2, 3], { weight: w, bias: b }), [x([3, 2, 3]), p([2, 3]), p([2, 3])]],
  ];
  for (const [msg, fn, inputs] of checks) await gradcheck(fn, inputs, { directions: 2, msg });
  rm.dispose();
  rv.dispose();
});

test('only the gradients asked for: weight alone, input alone', async () => {
  const r = rng(9);
  const refs = { x: Ref.random([2, 4, 6], r).f32(), weight: Ref.random([4], r, 0.5, 1.5).f32(), G: Ref.random([2, 4, 6], r).f32() };
  const want = refNorm('groupNorm', refs.x, { ...refs, numGroups: 2 });
  const x = refs.x.toTensor();
  const w = refs.weight.toTensor({ requiresGrad: true });
  const G = refs.G.toTensor();
  vg.groupNorm(x, 2, { weight: w }).backward(G);
  await assertClose(w.grad, want.dweight, TOL);
  const x2 = refs.x.toTensor({ requiresGrad: true });
  const w2 = refs.weight.toTensor();
  vg.layerNorm(x2, 6).backward(G);
  await assertClose(x2.grad, refNorm('layerNorm', refs.x, { G: refs.G, normalizedShape: [6] }).dx, TOL);
  vg.groupNorm(x2, 2, { weight: w2 }).backward(G);
  assert.is(w2.grad, null);
});

test('eval-mode backward uses the running statistics of its forward, even after a training step updates them', async () => {
  const r = rng(3);
  const refs = {
    x: Ref.random([3, 2, 4], r).f32(),
    weight: Ref.random([2], r, 0.5, 1.5).f32(),
    runningMean: Ref.random([2], r, -0.5, 0.5).f32(),
    runningVar: Ref.random([2], r, 0.5, 1.5).f32(),
    G: Ref.random([3, 2, 4], r).f32(),
  };
  const want = refNorm('batchNorm', refs.x, { ...refs, training: false });
  const x = refs.x.toTensor({ requiresGrad: true });
  const w = refs.weight.toTensor({ requiresGrad: true });
  const rm = refs.runningMean.toTensor();
  const rv = refs.runningVar.toTensor();
  const y = vg.batchNorm(x, rm, rv, { weight: w });
  vg.batchNorm(vg.randn([3, 2, 4], { seed: 1 }).mul(5), rm, rv, { training: true, momentum: 0.9 });
  y.backward(refs.G.toTensor());
  await assertClose(x.grad, want.dx, TOL);
  await assertClose(w.grad, want.dweight, TOL);
  // null running statistics: batch statistics in eval mode too (as torch.nn.BatchNorm without tracking)
  const a = [...(await vg.batchNorm(x, null, null).data())];
  const b = [...(await vg.batchNorm(x, null, null, { training: true }).data())];
  assert.equal(a, b);
});

// ---- dropout ------------------------------------------------------------------------------------------------------

test('dropout: the mask is vg.rand >= p for the same seed, kept values scaled by 1/(1-p), backward the same mask', async () => {
  // 100003 elements: the scalar kernel; 65536: the vec4 one
  for (const [n, p] of [[100003, 0.3], [100003, 0.9], [65536, 0.5]]) {
    const xr = Ref.random([n], rng(4), -3, 3).f32();
    const x = xr.toTensor({ requiresGrad: true });
    const y = vg.dropout(x, { p, seed: 42 });
    const u = await vg.rand([n], { seed: 42 }).data();
    const got = await y.data();
    const scale = Math.fround(1 / (1 - p));
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const keep = u[i] >= Math.fround(p);
      kept += keep;
      const want = keep ? Math.fround(xr.data[i] * scale) : 0;
      if (got[i] !== want) assert.unreachable(`p=${p} element ${i}: got ${got[i]}, want ${want}`);
    }
    // fraction kept within 5 standard errors of 1 - p
    const se = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(kept / n - (1 - p)) < 5 * se, `p=${p}: kept ${kept / n}`);
    const G = Ref.random([n], rng(8)).f32();
    y.backward(G.toTensor());
    const gx = await x.grad.data();
    for (let i = 0; i < n; i++) {
      const want = u[i] >= Math.fround(p) ? Math.fround(G.data[i] * scale) : 0;
      if (gx[i] !== want) assert.unreachable(`p=${p} gradient ${i}: got ${gx[i]}, want ${want}`);
    }
  }
});

test('dropout: seeds reproduce, the global generator advances, p = 0 / eval are the identity, p = 1 gives zeros', async () => {
  const x = vg.ones([4096]);
  const run = async (opts) => [...(await vg.dropout(x, opts).data())];
  const a = await run({ seed: 7 });
  assert.equal(await run({ seed: 7 }), a);
  assert.not.equal(await run({ seed: 8 }), a);
  vg.manualSeed(123);
  const first = await run({});
  const second = await run({});
  assert.not.equal(first, second);
  vg.manualSeed(123);
  assert.equal(await run({}), first);
  vg.manualSeed(123);
  const u = await vg.rand([4096]).data();
  assert.equal(first, [...u].map((v) => (v >= 0.5 ? 2 : 0)));
  const xr = Ref.random([5, 7], rng(2)).f32();
  for (const opts of [{ p: 0 }, { training: false }, { p: 0.7, training: false }]) {
    const xt = xr.toTensor({ requiresGrad: true });
    const y = vg.dropout(xt, opts);
    await assertClose(y, xr, { rtol: 0, atol: 0 });
    y.backward(vg.full([5, 7], 3));
    await assertClose(xt.grad, new Ref(new Array(35).fill(3), [5, 7]), { rtol: 0, atol: 0 });
  }
  const xt = xr.toTensor({ requiresGrad: true });
  const z = vg.dropout(xt, { p: 1 });
  await assertClose(z, new Ref(new Array(35).fill(0), [5, 7]), { rtol: 0, atol: 0 });
  z.backward(vg.ones([5, 7]));
  await assertClose(xt.grad, new Ref(new Array(35).fill(0), [5, 7]), { rtol: 0, atol: 0 });
});

test('dropout2d / dropout3d zero whole channels: channel (n, c) kept when vg.rand([N, C]) >= p', async () => {
  for (const [fn, shape, lead] of [
    ['dropout2d', [3, 5, 4, 3], 15],
    ['dropout2d', [6, 3, 2], 6],
    ['dropout3d', [2, 4, 3, 2, 3], 8],
    ['dropout3d', [5, 2, 2, 3], 5],
  ]) {
    const xr = Ref.random(shape, rng(6), 0.5, 2).f32();
    const y = await vg[fn](xr.toTensor(), { p: 0.4, seed: 9 }).data();
    const u = await vg.rand([lead], { seed: 9 }).data();
    markReferenceComparison();
    const per = xr.data.length / lead;
    for (let i = 0; i < y.length; i++) {
      const keep = u[Math.floor(i / per)] >= Math.fround(0.4);
      assert.is(y[i], keep ? Math.fround(xr.data[i] * Math.fround(1 / 0.6)) : 0, `${fn} ${shape} element ${i}`);
    }
    // the same seed gives the same channel mask, so the op is a fixed linear map whose gradient is checkable
    const masked = (x) => new Ref(x.data.map((v, i) => (u[Math.floor(i / per)] >= Math.fround(0.4) ? v / 0.6 : 0)), x.shape);
    await gradcheck64((x) => vg[fn](x, { p: 0.4, seed: 9 }), masked, [xr], { msg: `${fn} ${shape}` });
  }
});

// ---- bad input ----------------------------------------------------------------------------------------------------

test('bad input: channel mismatches, groups, normalizedShape, p, ranks', () => {
  const x = vg.zeros([4, 3, 5]);
  const c4 = vg.ones([4]);
  const c3 = vg.ones([3]);
  assertThrowsWith(() => vg.batchNorm(x, null, null, { weight: c4 }), ['batchNorm', 'weight', 'shape [3]', 'got [4]', '[4, 3, 5]']);
  assertThrowsWith(() => vg.batchNorm(x, c4, c3), ['batchNorm', 'runningMean', 'shape [3]', 'got [4]']);
  assertThrowsWith(() => vg.batchNorm(x, c3, c4), ['batchNorm', 'runningVar', 'shape [3]', 'got [4]']);
  assertThrowsWith(() => vg.batchNorm(x, c3, null), ['batchNorm', 'runningMean and runningVar go together']);
  assertThrowsWith(() => vg.batchNorm(vg.zeros([5]), null, null), ['batchNorm', 'input', '[N, C, ...]', 'got [5]']);
  assertThrowsWith(() => vg.batchNorm(vg.zeros([1, 3]), null, null, { training: true }), ['batchNorm', 'more than 1 value per channel', '[1, 3]']);
  assertThrowsWith(() => vg.batchNorm(x, null, null, { momentum: NaN }), ['batchNorm', 'momentum', 'finite number']);
  assertThrowsWith(() => vg.batchNorm(vg.zeros([4, 3], { dtype: 'i32' }), null, null), ['batchNorm', 'input', 'f32', 'i32']);
  assertThrowsWith(() => vg.instanceNorm(x, { bias: c4 }), ['instanceNorm', 'bias', 'shape [3]', 'got [4]']);
  assertThrowsWith(() => vg.instanceNorm(vg.zeros([4, 3, 1])), ['instanceNorm', 'more than 1 spatial element', '[4, 3, 1]']);
  assertThrowsWith(() => vg.instanceNorm(vg.zeros([4, 3])), ['instanceNorm', 'input', 'rank >= 3', 'got [4, 3]']);
  assertThrowsWith(() => vg.instanceNorm(x, { useInputStats: false }), ['instanceNorm', 'useInputStats', 'runningMean and runningVar']);
  assertThrowsWith(() => vg.groupNorm(x, 2), ['groupNorm', 'numGroups', 'C = 3', 'got number 2']);
  assertThrowsWith(() => vg.groupNorm(x, 0), ['groupNorm', 'numGroups', 'got number 0']);
  assertThrowsWith(() => vg.groupNorm(x, 3, { weight: c4 }), ['groupNorm', 'weight', 'shape [3]', 'got [4]']);
  assertThrowsWith(() => vg.layerNorm(x, [3]), ['layerNorm', 'normalizedShape [3]', 'trailing dims', '[4, 3, 5]', '[*, 3]']);
  assertThrowsWith(() => vg.layerNorm(x, [2, 4, 3, 5]), ['layerNorm', 'normalizedShape [2, 4, 3, 5]', 'trailing dims']);
  assertThrowsWith(() => vg.layerNorm(x, []), ['layerNorm', 'normalizedShape', 'non-empty']);
  assertThrowsWith(() => vg.layerNorm(x, [3, 5], { weight: vg.ones([15]) }), ['layerNorm', 'weight', 'shape [3, 5]', 'got [15]']);
  for (const p of [-0.1, 1.5, NaN]) assertThrowsWith(() => vg.dropout(x, { p }), ['dropout', 'p', '[0, 1]', String(p)]);
  assertThrowsWith(() => vg.dropout2d(vg.zeros([4, 3])), ['dropout2d', 'input', '[N, C, H, W] or [C, H, W]', 'got [4, 3]']);
  assertThrowsWith(() => vg.dropout3d(vg.zeros([2, 3])), ['dropout3d', 'input', '[N, C, D, H, W] or [C, D, H, W]', 'got [2, 3]']);
});

test.run();
