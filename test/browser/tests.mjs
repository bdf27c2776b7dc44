// The browser subset: one test per area of the library, small shapes (SwiftShader is a slow software adapter),
// every result checked against float64 references from ../helpers.mjs, as in the Node tests.
import * as assert from 'uvu/assert';
import { Ref, assertClose, gradcheck, refMap, refReduce, rng, setup, size, unravel, vg } from '../helpers.mjs';
import { report, test } from './harness.mjs';

// two-argument combines for refReduce (which also passes coordinates and a count)
const add = (a, v) => a + v;
const max = (a, v) => Math.max(a, v);
const min = (a, v) => Math.min(a, v);

/** Ref with the same data viewed under another shape. */
const reshaped = (ref, shape) => new Ref(ref.data, shape);

/** Float64 matmul through broadcasting: [..., M, K, 1] * [K, N] summed over K. */
function refMatmul(a, b) {
  const prod = refMap((x, y) => x * y, reshaped(a, [...a.shape, 1]), b);
  return refReduce(prod, [prod.shape.length - 2], false, add, 0);
}

/** Float64 softmax (or log-softmax) along the last dim, shifted by the row max as the kernel is. */
function refSoftmax(x, log) {
  const last = x.shape.length - 1;
  const m = refReduce(x, [last], true, max, -Infinity);
  const s = refReduce(refMap((v, mv) => Math.exp(v - mv), x, m), [last], true, add, 0);
  return log ? refMap((v, mv, sv) => v - mv - Math.log(sv), x, m, s) : refMap((v, mv, sv) => Math.exp(v - mv) / sv, x, m, s);
}

/** Ref whose element at output coordinates c is x.get(pick(c)): the reference for data-movement ops. */
const refGather = (shape, pick) => new Ref(Array.from({ length: size(shape) }, (_, i) => pick(unravel(i, shape))), shape);

test('vg.init: a browser backend whose features and limits are those of navigator.gpu', async () => {
  const info = await setup();
  // the shapes here are small: keep every op on the GPU (SwiftShader) rather than host-forwarded to JS
  vg.setCpuForwardThreshold(0);
  // an adapter requested here, independently of voxgrad, is what the library must have found and used
  const adapter = await navigator.gpu.requestAdapter();
  assert.ok(adapter, 'navigator.gpu.requestAdapter() returned null');
  assert.is(info.platform, 'browser');
  assert.equal(info, vg.backendInfo());
  assert.equal(info.features, [...adapter.features].sort());
  assert.is(info.isFallbackAdapter, Boolean(adapter.info.isFallbackAdapter));
  assert.is(info.vendor, adapter.info.vendor);
  for (const key of ['maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize'])
    assert.is(info.limits[key], adapter.limits[key], `limit ${key}`);
  const fallback = info.isFallbackAdapter ? ', fallback adapter' : '';
  await report({ kind: 'info', text: `adapter: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ')}${fallback}` });
  await report({ kind: 'info', text: `features: ${info.features.join(' ')}` });
  // 0: no subgroups in use (the conv kernels' staged path); else the lanes the subgroup kernels run on
  await report({ kind: 'info', text: `subgroup lanes in use: ${info.subgroupLanes}` });
  await report({ kind: 'info', text: `limits: ${Object.entries(info.limits).map(([k, v]) => `${k}=${v}`).join(' ')}` });
});

test('elementwise: unary ops and broadcasting binary ops match float64', async () => {
  const r = rng(101);
  const unary = { exp: [Math.exp, -3, 3], log: [Math.log, 0.2, 4], tanh: [Math.tanh, -4, 4], sigmoid: [(a) => 1 / (1 + Math.exp(-a)), -6, 6], sqrt: [Math.sqrt, 0.2, 4] };
  for (const [name, [f, lo, hi]] of Object.entries(unary)) {
    const x = Ref.random([3, 5], r, lo, hi).f32();
    await assertClose(vg[name](x.toTensor()), refMap(f, x), { rtol: 2e-6, atol: 2e-6, msg: name });
  }
  const binary = { add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b, maximum: Math.max };
  const pairs = [[[3, 1], [1, 5]], [[2, 3, 4], [4]], [[5, 1, 3], [1, 4, 1]], [[1], [2, 33]]];
  for (const [name, f] of Object.entries(binary))
    for (const [sa, sb] of pairs) {
      // div by values in [0.5, 2] keeps the quotient well conditioned
      const a = Ref.random(sa, r).f32();
      const b = Ref.random(sb, r, 0.5, 2).f32();
      await assertClose(vg[name](a.toTensor(), b.toTensor()), refMap(f, a, b), { rtol: 1e-5, atol: 1e-6, msg: `${name} [${sa}] [${sb}]` });
    }
  const c = Ref.random([4, 6], r).f32();
  const t = c.toTensor();
  await assertClose(vg.where(t.gt(0), t.mul(3), t.neg()), refMap((v) => (v > 0 ? 3 * v : -v), c), { rtol: 1e-6, atol: 0, msg: 'where' });
});

test('reductions: sum, mean, var, max, min, argmax, logsumexp over dims match float64', async () => {
  const r = rng(202);
  const x = Ref.random([3, 5, 7], r).f32();
  const t = x.toTensor();
  // sums of at most 105 values in [-1, 1]: f32 accumulation stays well inside 1e-5
  const tol = { rtol: 1e-5, atol: 1e-5 };
  await assertClose(t.sum({ dim: 1 }), refReduce(x, [1], false, add, 0), { ...tol, msg: 'sum dim 1' });
  await assertClose(t.sum({ dim: [0, 2], keepdim: true }), refReduce(x, [0, 2], true, add, 0), { ...tol, msg: 'sum dims 0,2' });
  await assertClose(t.sum(), refReduce(x, [0, 1, 2], false, add, 0), { ...tol, msg: 'sum all' });
  await assertClose(t.mean({ dim: -1 }), refReduce(x, [2], false, add, 0, (v, n) => v / n), { ...tol, msg: 'mean' });
  const m = refReduce(x, [1], true, add, 0, (v, n) => v / n);
  const variance = refReduce(refMap((v, mv) => (v - mv) ** 2, x, m), [1], false, add, 0, (v, n) => v / (n - 1));
  await assertClose(t.var({ dim: 1 }), variance, { ...tol, msg: 'var' });
  // max/min/argmax pick an input value: exact
  await assertClose(t.max({ dim: 2 }), refReduce(x, [2], false, max, -Infinity), { rtol: 0, atol: 0, msg: 'max' });
  await assertClose(t.min(), refReduce(x, [0, 1, 2], false, min, Infinity), { rtol: 0, atol: 0, msg: 'min' });
  const argmax = refReduce(x, [2], false, (best, v, c, n) => (n === 0 || v > x.get([c[0], c[1], best]) ? c[2] : best), 0);
  await assertClose(t.argmax({ dim: 2 }), argmax, { rtol: 0, atol: 0, msg: 'argmax' });
  const mx = refReduce(x, [0], true, max, -Infinity);
  const lse = refReduce(refMap((v, mv) => Math.exp(v - mv), x, mx), [0], false, add, 0);
  await assertClose(t.logsumexp({ dim: 0 }), refMap((s, mv) => Math.log(s) + mv, lse, reshaped(mx, [5, 7])), { ...tol, msg: 'logsumexp' });
  // rows longer than a workgroup (256 invocations) take one workgroup each; the full sum of 9000 values is split
  // across workgroups and finished by a second pass. f32 summation error is counted in units of 2^-24 sum|x|: allow 8
  // (about 7e-4 and 2e-3 here; seen: 5e-6), far below the error of a dropped or doubled chunk.
  const long = Ref.random([3, 3000], r).f32();
  const lt = long.toTensor();
  const absSum = (ref, dims) => refReduce(ref, dims, false, (a, v) => a + Math.abs(v), 0);
  await assertClose(lt.sum({ dim: 1 }), refReduce(long, [1], false, add, 0), { rtol: 0, atol: 2 ** -21 * Math.min(...absSum(long, [1]).data), msg: 'long rows' });
  await assertClose(lt.sum(), refReduce(long, [0, 1], false, add, 0), { rtol: 0, atol: 2 ** -21 * absSum(long, [0, 1]).data[0], msg: 'two-pass sum' });
  await assertClose(lt.max(), refReduce(long, [0, 1], false, max, -Infinity), { rtol: 0, atol: 0, msg: 'two-pass max' });
});

test('shape ops: permute, strided slice and cat move data exactly; their gradients flow back', async () => {
  const r = rng(303);
  const a = Ref.random([2, 3, 4], r).f32();
  const b = Ref.random([2, 2, 4], r).f32();
  const [ta, tb] = [a.toTensor(), b.toTensor()];
  const exact = { rtol: 0, atol: 0 };
  await assertClose(ta.permute([2, 0, 1]), refGather([4, 2, 3], ([i, j, k]) => a.get([j, k, i])), { ...exact, msg: 'permute' });
  await assertClose(vg.slice(ta, 2, 1, 4, 2), refGather([2, 3, 2], ([i, j, k]) => a.get([i, j, 1 + 2 * k])), { ...exact, msg: 'slice' });
  await assertClose(
    vg.cat([ta, tb], 1),
    refGather([2, 5, 4], ([i, j, k]) => (j < 3 ? a.get([i, j, k]) : b.get([i, j - 3, k]))),
    { ...exact, msg: 'cat' },
  );
  await gradcheck((x, y) => vg.slice(vg.cat([x, y], 1).permute([2, 0, 1]), 0, 0, 4, 2), [a, b], { msg: 'cat/permute/slice' });
});

test('matmul: 2-D and broadcast batched products match float64; gradients to both operands', async () => {
  const r = rng(404);
  for (const [sa, sb] of [[[5, 7], [7, 3]], [[2, 9, 33], [33, 17]]]) {
    const a = Ref.random(sa, r).f32();
    const b = Ref.random(sb, r).f32();
    // dot products of K ≤ 33 terms in [-1, 1]: f32 accumulation error seen ≤ 7e-7, bounded well below 1e-5 in practice
    await assertClose(vg.matmul(a.toTensor(), b.toTensor()), refMatmul(a, b), { rtol: 1e-5, atol: 1e-5, msg: `[${sa}] @ [${sb}]` });
  }
  await gradcheck((x, y) => vg.matmul(x, y), [Ref.random([4, 6], r).f32(), Ref.random([6, 3], r).f32()], { msg: 'matmul' });
});

test('softmax, logSoftmax and crossEntropy match float64; crossEntropy gradient matches finite differences', async () => {
  const r = rng(505);
  const x = Ref.random([4, 7], r, -3, 3).f32();
  const t = x.toTensor();
  await assertClose(vg.softmax(t, { dim: -1 }), refSoftmax(x, false), { rtol: 1e-5, atol: 1e-6, msg: 'softmax' });
  await assertClose(vg.logSoftmax(t, { dim: -1 }), refSoftmax(x, true), { rtol: 1e-5, atol: 1e-5, msg: 'logSoftmax' });
  // along dim 0: the transpose of the last-dim reference
  const xt = refGather([7, 4], ([i, j]) => x.get([j, i]));
  const s0 = refSoftmax(xt, false);
  await assertClose(vg.softmax(t, { dim: 0 }), refGather([4, 7], ([i, j]) => s0.get([j, i])), { rtol: 1e-5, atol: 1e-6, msg: 'softmax dim 0' });
  const labels = [3, 0, 6, 2];
  const target = vg.tensor(labels, [4], { dtype: 'i32' });
  const lsm = refSoftmax(x, true);
  const ce = -labels.reduce((s, c, i) => s + lsm.get([i, c]), 0) / labels.length;
  await assertClose(vg.crossEntropy(t, target), new Ref([ce], []), { rtol: 1e-5, atol: 1e-6, msg: 'crossEntropy' });
  await gradcheck((l) => vg.crossEntropy(l, target), [x], { msg: 'crossEntropy' });
});

test('backward: least-squares gradients match the float64 closed form; a nonlinear chain passes gradcheck', async () => {
  const r = rng(606);
  const [N, I, O] = [6, 4, 3];
  const X = Ref.random([N, I], r).f32();
  const W = Ref.random([I, O], r).f32();
  const b = Ref.random([O], r).f32();
  const Y = Ref.random([N, O], r).f32();
  const [tX, tY] = [X.toTensor(), Y.toTensor()];
  const loss = (w, bias) => vg.mseLoss(vg.matmul(tX, w).add(bias), tY);
  const [value, [gW, gb]] = vg.valueAndGrad(loss, { argnums: [0, 1] })(W.toTensor(), b.toTensor());
  // L = mean(D^2) with D = XW + b - Y; dL/dW = X^T R and dL/db = sum_rows R with R = 2 D / (N O)
  const D = refMap((p, bv, y) => p + bv - y, refMatmul(X, W), b, Y);
  const L = refReduce(refMap((v) => v * v, D), [0, 1], false, add, 0, (s, n) => s / n);
  const res = refMap((v) => (2 * v) / (N * O), D);
  await assertClose(value, L, { rtol: 1e-5, atol: 1e-6, msg: 'loss' });
  await assertClose(gW, refMatmul(refGather([I, N], ([i, n]) => X.get([n, i])), res), { rtol: 1e-5, atol: 1e-6, msg: 'dL/dW' });
  await assertClose(gb, refReduce(res, [0], false, add, 0), { rtol: 1e-5, atol: 1e-6, msg: 'dL/db' });
  await gradcheck(
    (x, w, bias) => vg.logSoftmax(vg.tanh(vg.matmul(x, w).add(bias)), { dim: -1 }),
    [X, W, b],
    { msg: 'logSoftmax(tanh(xW + b))' },
  );
});

test('tidy and memory: tidy frees intermediates, backward releases the tape, accounting returns to baseline', async () => {
  const vals = [0.5, -1, 2, 0.25];
  const base = vg.memory();
  const c = vg.tensor(vals, [2, 2]);
  const y0 = vg.tidy(() => c.mul(2).add(1).exp().sum());
  assert.is(vg.memory().liveTensors, base.liveTensors + 2, 'tidy kept only its result (and the input)');
  await assertClose(y0, new Ref([vals.reduce((s, v) => s + Math.exp(2 * v + 1), 0)], []), { rtol: 1e-6, atol: 0 });
  y0.dispose();
  c.dispose();
  const x = vg.tensor(vals, [2, 2], { requiresGrad: true });
  const y = vg.tidy(() => x.mul(2).add(1).exp().sum());
  y.backward();
  y.dispose();
  assert.is(vg.memory().liveTensors, base.liveTensors + 2, 'after backward and dispose only x and x.grad remain');
  await assertClose(x.grad, new Ref(vals.map((v) => 2 * Math.exp(2 * v + 1)), [2, 2]), { rtol: 1e-6, atol: 0 });
  x.dispose();
  const after = vg.memory();
  assert.is(after.liveTensors, base.liveTensors, 'live tensors back to baseline');
  assert.is(after.bytesInUse, base.bytesInUse, 'bytes in use back to baseline');
});

test('training stack: Conv2d + BatchNorm + Adam steps; a checkpoint encoded to bytes restores the model exactly', async () => {
  const make = () => new vg.nn.Sequential(new vg.nn.Conv2d(1, 3, 3, { padding: 1, seed: 5 }), new vg.nn.BatchNorm2d(3), new vg.nn.ReLU(), new vg.nn.Conv2d(3, 2, 1, { seed: 6 }));
  const net = make();
  const opt = new vg.optim.Adam(net.parameters(), { lr: 0.05 });
  const r = rng(303);
  const x = Ref.random([2, 1, 6, 6], r).f32().toTensor();
  const y = vg.tensor(Array.from({ length: 72 }, (_, i) => (i * 7) % 2), [2, 6, 6], { dtype: 'i32' });
  const losses = [];
  for (let i = 0; i < 8; i++) {
    const loss = vg.tidy(() => {
      const l = vg.crossEntropy(net.call(x), y);
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
  }
  assert.ok(losses[7] < losses[0], `loss ${losses[0]} -> ${losses[7]}`);
  const bytes = await vg.train.encodeCheckpoint({ model: net, optimizer: opt, step: 8 });
  const copy = make();
  const { step } = await vg.train.loadCheckpoint(bytes, { model: copy });
  assert.is(step, 8);
  for (const [k, t] of Object.entries(net.stateDict())) assert.equal([...(await copy.stateDict()[k].data())], [...(await t.data())], k);
});

test('io and metrics: a NIfTI .nii.gz round trip in memory keeps data and affine; PNG bytes; Dice and HD95 match float64', async () => {
  const r = rng(404);
  const ref = Ref.random([4, 5, 3], r).f32();
  // values exact in f32, as NIfTI stores the sform
  const affine = [[0, -1.5, 0, 10], [2, 0, 0, -4], [0, 0, 0.75, 3], [0, 0, 0, 1]];
  const bytes = await vg.io.encodeNifti(ref.toTensor(), { affine, gzip: true });
  assert.equal([...bytes.subarray(0, 2)], [0x1f, 0x8b]);
  const back = await vg.io.readNifti(bytes);
  assert.equal(back.affine, affine);
  assert.equal(back.spacing, [2, 1.5, 0.75]);
  await assertClose(back.tensor, ref, { rtol: 0, atol: 0 });
  const png = await vg.io.encodePng(vg.tensor([0, 1, 2, 3, 4, 5], [2, 3]));
  assert.equal([...png.subarray(1, 4)], [80, 78, 71]);
  // two squares offset by (1, 2) pixels: |A| = 16, |B| = 16, overlap 3 x 2 = 6
  const mask = (oy, ox) => vg.tensor(Array.from({ length: 64 }, (_, i) => (Math.floor(i / 8) >= oy && Math.floor(i / 8) < oy + 4 && i % 8 >= ox && i % 8 < ox + 4 ? 1 : 0)), [8, 8], { dtype: 'i32' });
  const [a, b] = [mask(1, 1), mask(2, 3)];
  assert.ok(Math.abs((await vg.metrics.dice(a, b)) - (2 * 6) / 32) < 1e-12);
  // brute-force float64 HD95 of the borders (medpy: pooled distances of both directions, 95th percentile, linear)
  const border = async (m) => {
    const d = await m.data();
    const on = (y, x) => y >= 0 && y < 8 && x >= 0 && x < 8 && d[y * 8 + x] !== 0;
    const pts = [];
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) if (on(y, x) && !(on(y - 1, x) && on(y + 1, x) && on(y, x - 1) && on(y, x + 1))) pts.push([y, x]);
    return pts;
  };
  const [pa, pb] = [await border(a), await border(b)];
  const directed = (p, q) => p.map(([y, x]) => Math.min(...q.map(([v, u]) => Math.hypot(y - v, x - u))));
  const all = [...directed(pa, pb), ...directed(pb, pa)].sort((u, v) => u - v);
  const pos = 0.95 * (all.length - 1);
  const want = all[Math.floor(pos)] + (all[Math.ceil(pos)] - all[Math.floor(pos)]) * (pos - Math.floor(pos));
  assert.ok(Math.abs((await vg.metrics.hd95(a, b)) - want) < 1e-5, `hd95 ${await vg.metrics.hd95(a, b)} vs ${want}`);
});
