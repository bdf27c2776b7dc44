// softmax / logSoftmax and the losses: forward against float64 references written from PyTorch's documented
// definitions, gradients by finite differences, and the argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck, gradcheck64, refMap, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

// ---- float64 references -------------------------------------------------------------------------------------------

/** Softmax (or log-softmax) of `x` along `dim`, in float64 with the max subtracted. */
function refSoftmax(x, dim, log = false) {
  const d = dim < 0 ? dim + x.shape.length : dim;
  const L = x.shape[d];
  const inner = size(x.shape.slice(d + 1));
  const outer = size(x.shape.slice(0, d));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (j) => (o * L + j) * inner + i;
      let m = -Infinity;
      for (let j = 0; j < L; j++) m = Math.max(m, x.data[at(j)]);
      let s = 0;
      for (let j = 0; j < L; j++) s += Math.exp(x.data[at(j)] - m);
      for (let j = 0; j < L; j++) out[at(j)] = log ? x.data[at(j)] - m - Math.log(s) : Math.exp(x.data[at(j)] - m) / s;
    }
  return new Ref(out, x.shape);
}

/**
 * PyTorch's cross entropy on log-probabilities lp [N, C, d...] or [C] (nll_loss when labelSmoothing is 0):
 * l_n = -sum_c w_c q_nc lp_nc, where q is the target distribution. Class-index targets: q = (1 - eps) onehot(y_n)
 * + eps / C, l_n = 0 where y_n == ignoreIndex, and 'mean' divides by sum_n w_{y_n} over non-ignored n (the
 * weighted nll normalisation, which PyTorch applies to the smoothing term too). Probability targets: q = (1 - eps) p
 * + eps / C and 'mean' divides by the number of samples N * prod(d).
 */
function refCrossEntropy(lp, target, { weight = null, ignoreIndex = -100, reduction = 'mean', labelSmoothing: eps = 0 } = {}) {
  const oneD = lp.shape.length === 1;
  const C = oneD ? lp.shape[0] : lp.shape[1];
  const N = oneD ? 1 : lp.shape[0];
  const S = size(lp.shape.slice(2));
  const probs = target.dtype === undefined;
  const w = (c) => (weight ? weight.data[c] : 1);
  const losses = [];
  let denom = 0;
  for (let n = 0; n < N; n++)
    for (let s = 0; s < S; s++) {
      const y = probs ? null : target.data[n * S + s];
      if (y === ignoreIndex) {
        losses.push(0);
        continue;
      }
      let l = 0;
      for (let c = 0; c < C; c++) {
        const q = (1 - eps) * (probs ? target.data[(n * C + c) * S + s] : c === y ? 1 : 0) + eps / C;
        l -= w(c) * q * lp.data[(n * C + c) * S + s];
      }
      losses.push(l);
      denom += probs ? 1 : w(y);
    }
  const total = losses.reduce((a, b) => a + b, 0);
  if (reduction === 'none') return new Ref(losses, oneD ? [] : [N, ...lp.shape.slice(2)]);
  return new Ref([reduction === 'sum' ? total : total / denom], []);
}

const scalarRef = (v) => new Ref([v], []);
const sumOf = (r) => r.data.reduce((a, b) => a + b, 0);
/** 'none' / 'sum' / 'mean' of an elementwise float64 loss. */
const reduceRef = (r, reduction) => (reduction === 'none' ? r : scalarRef(reduction === 'sum' ? sumOf(r) : sumOf(r) / r.data.length));

/** Integer class targets in [0, C) with roughly `ignoredFrac` of them set to ignoreIndex. */
function classTargets(shape, C, r, { ignoreIndex = -100, ignoredFrac = 0 } = {}) {
  return new Ref(Array.from({ length: size(shape) }, () => (r.next() < ignoredFrac ? ignoreIndex : r.int(0, C))), shape, 'i32');
}

/** Positive class probabilities of `shape` summing to 1 along dim 1 (or 0 for rank 1). */
function probTargets(shape, r) {
  const raw = Ref.random(shape, r, 0.05, 1);
  const classDim = shape.length === 1 ? 0 : 1;
  const norm = refSoftmax(new Ref(raw.data.map(Math.log), shape), classDim);
  return norm.f32();
}

const softplus = (z) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));

// ---- softmax / logSoftmax ----------------------------------------------------------------------------------------

// [shape, dims]: short rows (<= 64: one invocation per row) and long rows (> 64: a workgroup per row, 1000 and 4099
// are not multiples of the workgroup size), many rows (several workgroups of the per-row kernel), every dim incl.
// negative ones (non-last dims go through permutes).
const SOFTMAX_CASES = [
  [[7], [0, -1]],
  [[3, 5], [0, 1, -1, -2]],
  [[2, 3, 4], [0, 1, 2, -1]],
  [[2, 1, 3, 2], [1, 3, -3]],
  [[3, 64], [1]],
  [[2, 65], [1, 0]],
  [[3, 1000], [1, -1]],
  [[2, 4099], [1, 0]],
  [[70, 3], [0, 1]],
];

for (const log of [false, true]) {
  const name = log ? 'logSoftmax' : 'softmax';
  test(`${name}: every dim, short and long rows, matches float64`, async () => {
    const r = rng(log ? 11 : 12);
    for (const [shape, dims] of SOFTMAX_CASES) {
      const x = Ref.random(shape, r, -6, 6).f32();
      const t = x.toTensor();
      for (const dim of dims) {
        // f32 exp/log (a few ulp) and the row sum; log-softmax values reach ~-15, whose ulp is ~1e-6
        const tol = log ? { rtol: 1e-6, atol: 1e-5 } : { rtol: 1e-5, atol: 1e-7 };
        await assertClose(vg[name](t, { dim }), refSoftmax(x, dim, log), { ...tol, msg: `${name} [${shape}] dim ${dim}` });
      }
      t.dispose();
    }
  });

  test(`${name}: large-magnitude inputs stay finite and exact (max subtraction)`, async () => {
    const r = rng(log ? 13 : 14);
    for (const L of [6, 300]) {
      // ±1e4 with unit-scale offsets: exp(1e4) overflows f32 without the max subtraction
      const x = new Ref(Array.from({ length: 2 * L }, (_, i) => (i % 3 === 0 ? -1e4 : 1e4) + Math.round(r.uniform(-3, 3))), [2, L]).f32();
      const t = x.toTensor();
      await assertClose(vg[name](t, { dim: -1 }), refSoftmax(x, -1, log), { rtol: 1e-5, atol: 1e-6, msg: `L=${L}` });
      await assertClose(vg[name](t, { dim: 0 }), refSoftmax(x, 0, log), { rtol: 1e-5, atol: 1e-6, msg: `L=${L} dim 0` });
      t.dispose();
    }
  });

  test(`${name}: 0-d input is a one-element distribution; empty input gives empty output`, async () => {
    await assertClose(vg[name](vg.tensor(3.5), { dim: 0 }), scalarRef(log ? 0 : 1));
    const e = vg[name](vg.zeros([0, 4]), { dim: 1 });
    assert.equal([...e.shape], [0, 4]);
  });

  test(`${name}: gradients match finite differences (short and long rows, non-last dim)`, async () => {
    const r = rng(log ? 15 : 16);
    await gradcheck((a) => vg[name](a, { dim: -1 }), [Ref.random([3, 6], r, -2, 2).f32()], { msg: `${name} short` });
    await gradcheck((a) => vg[name](a, { dim: 1 }), [Ref.random([2, 130], r, -2, 2).f32()], { msg: `${name} long` });
    await gradcheck((a) => vg[name](a, { dim: 0 }), [Ref.random([4, 3, 2], r, -2, 2).f32()], { msg: `${name} dim 0` });
    for (const [shape, dim] of [[[3, 6], -1], [[2, 130], 1], [[4, 3, 2], 0]])
      await gradcheck64((a) => vg[name](a, { dim }), (a) => refSoftmax(a, dim, log), [Ref.random(shape, r, -2, 2)], { msg: `${name} ${shape} float64` });
  });
}

test('softmax/logSoftmax: argument errors name the op and the value', () => {
  const x = vg.zeros([2, 3]);
  assertThrowsWith(() => vg.softmax(x), ['softmax', 'dim']);
  assertThrowsWith(() => vg.logSoftmax(x, {}), ['logSoftmax', 'dim']);
  assertThrowsWith(() => vg.softmax(x, { dim: 2 }), ['softmax', 'dim=2']);
  assertThrowsWith(() => vg.logSoftmax(x, { dim: -3 }), ['logSoftmax', 'dim=-3']);
  assertThrowsWith(() => vg.softmax(x, { dim: 0.5 }), ['softmax', '0.5']);
  assertThrowsWith(() => vg.softmax(vg.zeros([2], { dtype: 'i32' }), { dim: 0 }), ['softmax', 'i32']);
  assertThrowsWith(() => vg.softmax([1, 2], { dim: 0 }), ['softmax', 'Tensor']);
});

// ---- crossEntropy / nllLoss ------------------------------------------------------------------------------------------

// f32 log-softmax (~1e-6 absolute per element) summed and normalised: relative 2e-5 on the reduced values
const CE_TOL = { rtol: 2e-5, atol: 2e-6 };

// [logits shape, options]: weights, ignoreIndex (the default -100 and a valid class), spatial targets, rank 1
const CE_CASES = [
  [[6, 5], {}],
  [[6, 5], { weight: true }],
  [[8, 4], { ignoredFrac: 0.3 }],
  [[8, 4], { weight: true, ignoredFrac: 0.3 }],
  [[8, 4], { weight: true, ignoreIndex: 1 }],
  [[2, 4, 3, 5], { weight: true, ignoredFrac: 0.2 }],
  [[3, 3, 7], {}],
  [[5], {}],
  [[5], { weight: true }],
  [[4, 70], { weight: true, ignoredFrac: 0.25 }],
];

for (const smoothing of [0, 0.2]) {
  test(`crossEntropy with class targets${smoothing ? ' and labelSmoothing' : ''}: weights, ignoreIndex, spatial, every reduction`, async () => {
    const r = rng(smoothing ? 21 : 22);
    for (const [shape, o] of CE_CASES) {
      const C = shape.length === 1 ? shape[0] : shape[1];
      const tshape = shape.length === 1 ? [] : [shape[0], ...shape.slice(2)];
      const ignoreIndex = o.ignoreIndex ?? -100;
      const x = Ref.random(shape, r, -3, 3).f32();
      const y = classTargets(tshape, C, r, { ignoreIndex, ignoredFrac: o.ignoredFrac ?? 0 });
      const w = o.weight ? Ref.random([C], r, 0.2, 2).f32() : null;
      const [xt, yt, wt] = [x.toTensor(), y.toTensor(), w?.toTensor()];
      const lp = refSoftmax(x, shape.length === 1 ? 0 : 1, true);
      for (const reduction of ['mean', 'sum', 'none']) {
        const opts = { weight: wt, reduction, labelSmoothing: smoothing, ...(o.ignoreIndex !== undefined && { ignoreIndex }) };
        const ref = refCrossEntropy(lp, y, { weight: w, ignoreIndex, reduction, labelSmoothing: smoothing });
        await assertClose(vg.crossEntropy(xt, yt, opts), ref, { ...CE_TOL, msg: `[${shape}] ${JSON.stringify(o)} ${reduction}` });
      }
      xt.dispose();
      yt.dispose();
      wt?.dispose();
    }
  });

  test(`crossEntropy${smoothing ? ' with labelSmoothing' : ''}: gradient w.r.t. logits`, async () => {
    const r = rng(smoothing ? 23 : 24);
    const w = Ref.random([4], r, 0.2, 2).f32().toTensor();
    const y = classTargets([3, 2], 4, r, { ignoredFrac: 0.3 });
    for (const reduction of ['mean', 'sum', 'none']) {
      const ce = (a, t) => vg.crossEntropy(a, t, { weight: w, reduction, labelSmoothing: smoothing });
      await gradcheck(ce, [Ref.random([3, 4, 2], r, -2, 2).f32(), y], { wrt: [0], msg: reduction });
    }
    await gradcheck((a, t) => vg.crossEntropy(a, t, { labelSmoothing: smoothing }), [Ref.random([5, 80], r, -2, 2).f32(), classTargets([5], 80, r)], {
      wrt: [0],
      msg: 'long rows',
    });
  });
}

test('crossEntropy with probability targets: weights, labelSmoothing, spatial, every reduction', async () => {
  const r = rng(25);
  for (const shape of [[6, 5], [2, 4, 3, 2], [5]])
    for (const withWeight of [false, true])
      for (const smoothing of [0, 0.3]) {
        const C = shape.length === 1 ? shape[0] : shape[1];
        const x = Ref.random(shape, r, -3, 3).f32();
        const p = probTargets(shape, r);
        const w = withWeight ? Ref.random([C], r, 0.2, 2).f32() : null;
        const [xt, pt, wt] = [x.toTensor(), p.toTensor(), w?.toTensor()];
        const lp = refSoftmax(x, shape.length === 1 ? 0 : 1, true);
        for (const reduction of ['mean', 'sum', 'none']) {
          const ref = refCrossEntropy(lp, p, { weight: w, reduction, labelSmoothing: smoothing });
          const got = vg.crossEntropy(xt, pt, { weight: wt, reduction, labelSmoothing: smoothing });
          await assertClose(got, ref, { ...CE_TOL, msg: `[${shape}] weight ${withWeight} eps ${smoothing} ${reduction}` });
        }
        xt.dispose();
        pt.dispose();
        wt?.dispose();
      }
  await gradcheck((a, q) => vg.crossEntropy(a, q, { labelSmoothing: 0.1 }), [Ref.random([3, 4, 2], r, -2, 2).f32(), probTargets([3, 4, 2], r)], {
    msg: 'probability targets, w.r.t. logits and targets',
  });
});

test('crossEntropy: mean over only ignored targets is NaN, like PyTorch (0 / 0)', async () => {
  const x = vg.tensor([[1, 2, 3], [0, 0, 1]]);
  const y = vg.tensor([-100, -100], null, { dtype: 'i32' });
  assert.ok(Number.isNaN(await vg.crossEntropy(x, y).item()));
  assert.is(await vg.crossEntropy(x, y, { reduction: 'sum' }).item(), 0);
});

test('nllLoss: weights, ignoreIndex, spatial, every reduction match float64; gradient w.r.t. log-probabilities', async () => {
  const r = rng(26);
  for (const [shape, o] of CE_CASES) {
    const C = shape.length === 1 ? shape[0] : shape[1];
    const tshape = shape.length === 1 ? [] : [shape[0], ...shape.slice(2)];
    const ignoreIndex = o.ignoreIndex ?? -100;
    // arbitrary inputs: nll_loss does not require normalised log-probabilities
    const x = Ref.random(shape, r, -4, 0.5).f32();
    const y = classTargets(tshape, C, r, { ignoreIndex, ignoredFrac: o.ignoredFrac ?? 0 });
    const w = o.weight ? Ref.random([C], r, 0.2, 2).f32() : null;
    const [xt, yt, wt] = [x.toTensor(), y.toTensor(), w?.toTensor()];
    for (const reduction of ['mean', 'sum', 'none']) {
      const opts = { weight: wt, reduction, ...(o.ignoreIndex !== undefined && { ignoreIndex }) };
      await assertClose(vg.nllLoss(xt, yt, opts), refCrossEntropy(x, y, { weight: w, ignoreIndex, reduction }), {
        ...CE_TOL,
        msg: `[${shape}] ${JSON.stringify(o)} ${reduction}`,
      });
    }
    xt.dispose();
    yt.dispose();
    wt?.dispose();
  }
  const w = Ref.random([3], r, 0.2, 2).f32().toTensor();
  const y = classTargets([2, 4], 3, r, { ignoredFrac: 0.3 });
  for (const reduction of ['mean', 'sum', 'none'])
    await gradcheck((a, t) => vg.nllLoss(a, t, { weight: w, reduction }), [Ref.random([2, 3, 4], r, -3, 0).f32(), y], { wrt: [0], msg: reduction });
});

test('crossEntropy/nllLoss accept u32 class targets', async () => {
  const r = rng(27);
  const x = Ref.random([4, 3], r, -2, 2).f32();
  const y = new Ref([2, 0, 1, 2], [4], 'u32');
  await assertClose(vg.crossEntropy(x.toTensor(), y.toTensor()), refCrossEntropy(refSoftmax(x, 1, true), y), CE_TOL);
  await assertClose(vg.nllLoss(x.toTensor(), y.toTensor(), { reduction: 'sum' }), refCrossEntropy(x, y, { reduction: 'sum' }), CE_TOL);
});

// issue 12 defect 5: a class target outside [0, C) added a zero row (a finite loss; all rows out of range gave -0).
// PyTorch raises "Target 7 is out of bounds"; ignoreIndex stays allowed.
test('crossEntropy/nllLoss: out-of-range class targets raise (host targets at once, GPU targets at the next read back)', async () => {
  const logits = vg.tensor([[1, 2, 3], [0, 0, 1]]);
  const cases = [
    ['crossEntropy', (t, o) => vg.crossEntropy(logits, t, o)],
    ['nllLoss', (t, o) => vg.nllLoss(vg.logSoftmax(logits, { dim: 1 }), t, o)],
  ];
  for (const [op, run] of cases) {
    for (const [targets, value, opts] of [[[7, 0], '7', {}], [[0, -1], '-1', {}], [[3, 1], '3', { ignoreIndex: 1 }], [[-100, 5], '5', { reduction: 'none' }]]) {
      const pos = `position ${targets.indexOf(Number(value))}`;
      assertThrowsWith(() => run(vg.tensor(targets, null, { dtype: 'i32' }), opts), [op, 'target', value, '[0, 3)', pos], `${op} host ${targets}`);
      vg.setCpuForwardThreshold(0);
      const t = vg.tensor(targets, null, { dtype: 'i32' });
      vg.setCpuForwardThreshold(128);
      const err = await run(t, opts).data().then(() => null, (e) => e);
      assert.ok(err instanceof Error, `${op} ${targets}: a GPU-resident bad target must raise at the read back`);
      for (const f of [op, 'target', value, '[0, 3)', pos, 'first read back']) assert.ok(err.message.includes(f), `"${f}" missing: ${err.message}`);
    }
    // ignoreIndex values are allowed on both paths; the loss afterwards is right (the engine stays usable)
    // both ops see log-softmax of the logits here: the mean over the one counted row is -log p[0][2]
    const want = -refSoftmax(new Ref([1, 2, 3, 0, 0, 1], [2, 3]), 1, true).data[2];
    assert.ok(Math.abs((await run(vg.tensor([2, -100], null, { dtype: 'i32' })).item()) - want) < 1e-5);
    vg.setCpuForwardThreshold(0);
    const t = vg.tensor([2, 7], null, { dtype: 'i32' });
    vg.setCpuForwardThreshold(128);
    assert.ok(Math.abs((await run(t, { ignoreIndex: 7 }).item()) - want) < 1e-5);
  }
});

test('crossEntropy/nllLoss: bad targets, weights, reductions and smoothing are rejected with the op named', () => {
  const x = vg.zeros([4, 3]);
  const y = vg.tensor([0, 1, 2, 0], null, { dtype: 'i32' });
  assertThrowsWith(() => vg.nllLoss(x, vg.zeros([4])), ['nllLoss', 'target', 'f32']);
  assertThrowsWith(() => vg.nllLoss(x, vg.zeros([3], { dtype: 'i32' })), ['nllLoss', '[3]', '[4, 3]', '[4]']);
  assertThrowsWith(() => vg.nllLoss(x, y, { weight: vg.ones([4]) }), ['nllLoss', 'weight', '[3]', '[4]']);
  assertThrowsWith(() => vg.nllLoss(x, y, { reduction: 'avg' }), ['nllLoss', 'avg']);
  assertThrowsWith(() => vg.crossEntropy(x, vg.zeros([4, 2])), ['crossEntropy', '[4, 3]', '[4, 2]']);
  assertThrowsWith(() => vg.crossEntropy(x, vg.zeros([5], { dtype: 'i32' })), ['crossEntropy', '[5]', '[4, 3]']);
  assertThrowsWith(() => vg.crossEntropy(x, y, { weight: vg.ones([2]) }), ['crossEntropy', 'weight', '[3]', '[2]']);
  assertThrowsWith(() => vg.crossEntropy(x, vg.zeros([4, 3]), { weight: vg.ones([2]) }), ['crossEntropy', 'weight', '[3]', '[2]']);
  assertThrowsWith(() => vg.crossEntropy(x, y, { weight: vg.ones([3], { dtype: 'i32' }) }), ['crossEntropy', 'weight', 'i32']);
  assertThrowsWith(() => vg.crossEntropy(x, y, { reduction: 'batchmean' }), ['crossEntropy', 'batchmean']);
  assertThrowsWith(() => vg.crossEntropy(x, y, { labelSmoothing: 1.5 }), ['crossEntropy', 'labelSmoothing', '1.5']);
  assertThrowsWith(() => vg.crossEntropy(x, y, { labelSmoothing: NaN }), ['crossEntropy', 'labelSmoothing', 'NaN']);
  assertThrowsWith(() => vg.crossEntropy(vg.zeros([4, 3], { dtype: 'i32' }), y), ['crossEntropy', 'input', 'i32']);
  assertThrowsWith(() => vg.crossEntropy(vg.tensor(1), vg.tensor(0, null, { dtype: 'i32' })), ['crossEntropy', 'input', '[]']);
});

// ---- mseLoss / l1Loss -----------------------------------------------------------------------------------------------

for (const [name, f] of [
  ['mseLoss', (a, b) => (a - b) ** 2],
  ['l1Loss', (a, b) => Math.abs(a - b)],
]) {
  test(`${name}: every reduction matches float64; gradients w.r.t. input and target`, async () => {
    const r = rng(name.length + 30);
    for (const shape of [[1], [7], [3, 5], [2, 3, 43]]) {
      const a = Ref.random(shape, r, -2, 2).f32();
      const b = Ref.random(shape, r, -2, 2).f32();
      const [at, bt] = [a.toTensor(), b.toTensor()];
      for (const reduction of ['mean', 'sum', 'none']) {
        const ref = reduceRef(refMap(f, a, b), reduction);
        await assertClose(vg[name](at, bt, { reduction }), ref, { rtol: 1e-5, atol: 1e-6, msg: `[${shape}] ${reduction}` });
      }
      at.dispose();
      bt.dispose();
    }
    // |a - b| >= 0.1 keeps the l1 kink farther than the finite-difference step
    const a = Ref.random([3, 4], r, -2, 2).f32();
    const b = refMap((v, s) => v + (s < 0 ? -1 : 1) * (0.1 + Math.abs(s)), a, Ref.random([3, 4], r)).f32();
    for (const reduction of ['mean', 'sum', 'none']) await gradcheck((x, y) => vg[name](x, y, { reduction }), [a, b], { msg: reduction });
  });
}

// ---- bceWithLogits --------------------------------------------------------------------------------------------------

/** PyTorch's documented l = -w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], with log sigmoid(x) = -softplus(-x). */
const refBce = (x, y, w = 1, pw = 1) => w * (pw * y * softplus(-x) + (1 - y) * softplus(x));

test('bceWithLogits: weight and posWeight broadcast, every reduction matches float64', async () => {
  const r = rng(41);
  const x = Ref.random([4, 3], r, -4, 4).f32();
  const y = Ref.random([4, 3], r, 0, 1).f32();
  const w = Ref.random([4, 1], r, 0.2, 2).f32();
  const pw = Ref.random([3], r, 0.5, 3).f32();
  const [xt, yt, wt, pwt] = [x, y, w, pw].map((v) => v.toTensor());
  for (const reduction of ['mean', 'sum', 'none']) {
    const tol = { rtol: 1e-5, atol: 1e-6, msg: reduction };
    await assertClose(vg.bceWithLogits(xt, yt, { reduction }), reduceRef(refMap(refBce, x, y), reduction), tol);
    await assertClose(vg.bceWithLogits(xt, yt, { weight: wt, reduction }), reduceRef(refMap(refBce, x, y, w), reduction), tol);
    const posOnly = reduceRef(refMap((a, b, c) => refBce(a, b, 1, c), x, y, pw), reduction);
    await assertClose(vg.bceWithLogits(xt, yt, { posWeight: pwt, reduction }), posOnly, tol);
    await assertClose(vg.bceWithLogits(xt, yt, { weight: wt, posWeight: pwt, reduction }), reduceRef(refMap(refBce, x, y, w, pw), reduction), tol);
  }
});

test('bceWithLogits: a u32 mask target (from a comparison) is promoted like PyTorch', async () => {
  const r = rng(43);
  const x = Ref.random([3, 5], r, -3, 3).f32();
  const m = Ref.random([3, 5], r);
  const mask = vg.gt(m.toTensor(), 0);
  const y = refMap((v) => (v > 0 ? 1 : 0), m);
  await assertClose(vg.bceWithLogits(x.toTensor(), mask, { reduction: 'none' }), refMap(refBce, x, y), { rtol: 1e-5, atol: 1e-6 });
});

test('bceWithLogits: extreme logits ±50 give finite, exact losses and gradients', async () => {
  const x = new Ref([50, -50, 50, -50, 30, -30], [6]);
  const y = new Ref([0, 1, 1, 0, 0.25, 0.75], [6]);
  const pw = new Ref([2], [1]);
  const ref = refMap((a, b, c) => refBce(a, b, 1, c), x, y, pw);
  // losses up to ~100: f32 relative round-off
  await assertClose(vg.bceWithLogits(x.toTensor(), y.toTensor(), { posWeight: pw.toTensor(), reduction: 'none' }), ref, { rtol: 1e-6, atol: 1e-6 });
  const xt = x.toTensor({ requiresGrad: true });
  vg.bceWithLogits(xt, y.toTensor(), { posWeight: pw.toTensor(), reduction: 'sum' }).backward();
  // d/dx = (1 + (pw - 1) y) sigmoid(x) - pw y
  const sig = (a) => 1 / (1 + Math.exp(-a));
  await assertClose(xt.grad, refMap((a, b, c) => (1 + (c - 1) * b) * sig(a) - c * b, x, y, pw), { rtol: 1e-5, atol: 1e-6 });
});

test('bceWithLogits: gradients w.r.t. logits and targets, with weight and posWeight', async () => {
  const r = rng(42);
  const w = Ref.random([3, 1], r, 0.2, 2).f32().toTensor();
  const pw = Ref.random([4], r, 0.5, 3).f32().toTensor();
  const args = () => [Ref.random([3, 4], r, -4, 4).f32(), Ref.random([3, 4], r, 0, 1).f32()];
  for (const reduction of ['mean', 'sum', 'none']) {
    await gradcheck((a, b) => vg.bceWithLogits(a, b, { weight: w, posWeight: pw, reduction }), args(), { msg: reduction });
    await gradcheck((a, b) => vg.bceWithLogits(a, b, { reduction }), args(), { msg: `${reduction} unweighted` });
  }
});

// ---- klDiv ----------------------------------------------------------------------------------------------------------

/** kl_div pointwise: p (log p - x), 0 where p = 0 (PyTorch's xlogy convention); logTarget: e^t (t - x). */
const refKl = (x, t, logTarget) => (logTarget ? Math.exp(t) * (t - x) : t > 0 ? t * (Math.log(t) - x) : 0);

test('klDiv: every reduction incl. batchmean, logTarget, zeros in the target match float64', async () => {
  const r = rng(51);
  for (const shape of [[5], [4, 6], [3, 2, 7]]) {
    const x = refSoftmax(Ref.random(shape, r, -2, 2), -1, true).f32();
    // every third target probability is exactly 0
    const p = new Ref(Ref.random(shape, r, 0.01, 1).data.map((v, i) => (i % 3 === 0 ? 0 : v)), shape).f32();
    const logp = Ref.random(shape, r, -4, 0).f32();
    const [xt, pt, lt] = [x, p, logp].map((v) => v.toTensor());
    for (const reduction of ['mean', 'sum', 'none', 'batchmean']) {
      const red = (ref) => (reduction === 'batchmean' ? scalarRef(sumOf(ref) / shape[0]) : reduceRef(ref, reduction));
      const tol = { rtol: 1e-5, atol: 1e-6, msg: `[${shape}] ${reduction}` };
      await assertClose(vg.klDiv(xt, pt, { reduction }), red(refMap((a, b) => refKl(a, b, false), x, p)), tol);
      await assertClose(vg.klDiv(xt, lt, { reduction, logTarget: true }), red(refMap((a, b) => refKl(a, b, true), x, logp)), tol);
    }
  }
});

test('klDiv: gradients w.r.t. input (zeros in target) and target', async () => {
  const r = rng(52);
  const x = Ref.random([3, 4], r, -3, 0).f32();
  const withZeros = new Ref(Ref.random([3, 4], r, 0.05, 1).data.map((v, i) => (i % 4 === 1 ? 0 : v)), [3, 4]).f32();
  for (const reduction of ['mean', 'sum', 'none', 'batchmean']) {
    await gradcheck((a, b) => vg.klDiv(a, b, { reduction }), [x, withZeros], { wrt: [0], msg: `${reduction} zeros` });
    // targets in [0.2, 1]: the finite-difference step stays clear of the p = 0 boundary
    await gradcheck((a, b) => vg.klDiv(a, b, { reduction }), [x, Ref.random([3, 4], r, 0.2, 1).f32()], { msg: reduction });
    const logTarget = Ref.random([3, 4], r, -3, 0).f32();
    await gradcheck((a, b) => vg.klDiv(a, b, { reduction, logTarget: true }), [x, logTarget], { msg: `${reduction} logTarget` });
  }
});

// ---- losses against float64 finite differences ---------------------------------------------------------------------

test('loss gradients match finite differences of the float64 references (a 1% error fails)', async () => {
  const r = rng(61);
  const weight = Ref.random([4], r, 0.3, 2).f32();
  const wt = weight.toTensor();
  const targets = classTargets([3, 2], 4, r, { ignoredFrac: 0.2 });
  for (const reduction of ['mean', 'sum', 'none']) {
    for (const opts of [{ reduction }, { reduction, weight: wt, labelSmoothing: 0.1 }]) {
      const refOpts = { ...opts, weight: opts.weight ? weight : null };
      const msg = `crossEntropy ${JSON.stringify({ ...opts, weight: !!opts.weight })}`;
      await gradcheck64((a, t) => vg.crossEntropy(a, t, opts), (a, t) => refCrossEntropy(refSoftmax(a, 1, true), t, refOpts), [Ref.random([3, 4, 2], r, -2, 2), targets], { msg });
    }
    await gradcheck64((a, t) => vg.nllLoss(a, t, { weight: wt, reduction }), (a, t) => refCrossEntropy(a, t, { weight, reduction }), [Ref.random([3, 4, 2], r, -3, 0), targets], { msg: `nllLoss ${reduction}` });
    await gradcheck64((a, q) => vg.crossEntropy(a, q, { reduction }), (a, q) => refCrossEntropy(refSoftmax(a, 1, true), q, { reduction }), [Ref.random([3, 4], r, -2, 2), probTargets([3, 4], r)], { msg: `crossEntropy probabilities ${reduction}` });
    const a = Ref.random([3, 4], r, -2, 2).f32();
    // |a - b| >= 0.1: l1's kink stays out of reach of the step
    const b = refMap((v, s) => v + (s < 0 ? -1 : 1) * (0.1 + Math.abs(s)), a, Ref.random([3, 4], r)).f32();
    await gradcheck64((x, y) => vg.mseLoss(x, y, { reduction }), (x, y) => reduceRef(refMap((u, v) => (u - v) ** 2, x, y), reduction), [a, b], { msg: `mseLoss ${reduction}` });
    await gradcheck64((x, y) => vg.l1Loss(x, y, { reduction }), (x, y) => reduceRef(refMap((u, v) => Math.abs(u - v), x, y), reduction), [a, b], { msg: `l1Loss ${reduction}` });
    const bw = Ref.random([3, 1], r, 0.2, 2).f32();
    const pw = Ref.random([4], r, 0.5, 3).f32();
    const [bwt, pwt] = [bw.toTensor(), pw.toTensor()];
    await gradcheck64(
      (x, y) => vg.bceWithLogits(x, y, { weight: bwt, posWeight: pwt, reduction }),
      (x, y) => reduceRef(refMap(refBce, x, y, bw, pw), reduction),
      [Ref.random([3, 4], r, -4, 4), Ref.random([3, 4], r, 0, 1)],
      { msg: `bceWithLogits ${reduction}` },
    );
    bwt.dispose();
    pwt.dispose();
    await gradcheck64((x, p) => vg.klDiv(x, p, { reduction }), (x, p) => reduceRef(refMap((u, v) => refKl(u, v, false), x, p), reduction), [Ref.random([3, 4], r, -3, 0), Ref.random([3, 4], r, 0.2, 1)], { msg: `klDiv ${reduction}` });
    await gradcheck64((x, t) => vg.klDiv(x, t, { reduction, logTarget: true }), (x, t) => reduceRef(refMap((u, v) => refKl(u, v, true), x, t), reduction), [Ref.random([3, 4], r, -3, 0), Ref.random([3, 4], r, -3, 0)], { msg: `klDiv logTarget ${reduction}` });
  }
  wt.dispose();
});

// ---- shared argument checks ------------------------------------------------------------------------------------------

test('pointwise losses: shape mismatches, dtypes and reductions are rejected with the op named', () => {
  const a = vg.zeros([2, 3]);
  for (const name of ['mseLoss', 'l1Loss', 'bceWithLogits', 'klDiv']) {
    assertThrowsWith(() => vg[name](a, vg.zeros([3, 2])), [name, '[2, 3]', '[3, 2]']);
    assertThrowsWith(() => vg[name](a, vg.zeros([3])), [name, '[2, 3]', '[3]']);
    assertThrowsWith(() => vg[name](a, a, { reduction: 'avg' }), [name, 'avg']);
    assertThrowsWith(() => vg[name](a, [0, 1]), [name, 'target', 'Tensor']);
  }
  assertThrowsWith(() => vg.mseLoss(a, a, { reduction: 'batchmean' }), ['mseLoss', 'batchmean']);
  assertThrowsWith(() => vg.bceWithLogits(a, a, { weight: vg.ones([4]) }), ['bceWithLogits', 'weight', '[4]']);
  assertThrowsWith(() => vg.bceWithLogits(a, a, { posWeight: vg.ones([2]) }), ['bceWithLogits', 'posWeight', '[2]']);
});

test.run();
