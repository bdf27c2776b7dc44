// Reductions: forward against float64 over many shapes / dims sets / keepdim, every kernel layout of reduce.ts
// (THREAD, ROW, ROW split in two passes), integer dtypes, NaN / inf semantics, gradients and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, distinct, gradcheck, gradcheck64, refReduce, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
const EXACT = { rtol: 0, atol: 0 };

/** dim option → sorted non-negative dims (the reference side of normDims). */
const dimsOf = (dim, rank) =>
  dim === undefined ? [...Array(rank).keys()] : [...new Set([dim].flat().map((d) => (d < 0 ? d + rank : d)))].sort((a, b) => a - b);

// float64 references: (x, dims, keepdim, opts) → Ref
const REF = {
  sum: (x, dims, k) => refReduce(x, dims, k, (a, v) => a + v, 0),
  mean: (x, dims, k) => refReduce(x, dims, k, (a, v) => a + v, 0, (v, n) => v / n),
  // Math.max/min propagate NaN, as PyTorch does
  max: (x, dims, k) => refReduce(x, dims, k, (a, v) => Math.max(a, v), -Infinity),
  min: (x, dims, k) => refReduce(x, dims, k, (a, v) => Math.min(a, v), Infinity),
  var: (x, dims, k, { correction = 1 } = {}) => refVar(x, dims, k, correction),
  std: (x, dims, k, { correction = 1 } = {}) => {
    const v = refVar(x, dims, k, correction);
    return new Ref(v.data.map(Math.sqrt), v.shape);
  },
  logsumexp: (x, dims, k) => {
    const m = REF.max(x, dims, true);
    const mk = REF.max(x, dims, k);
    const s = refReduce(subKeep(x, m), dims, k, (a, v) => a + Math.exp(v), 0);
    return new Ref(s.data.map((v, i) => (Number.isFinite(mk.data[i]) ? mk.data[i] + Math.log(v) : mk.data[i])), s.shape);
  },
};

/** x - m where m has x's rank with 1s on reduced dims. */
function subKeep(x, m) {
  const out = new Float64Array(x.data.length);
  const mst = m.shape.map((_, i) => size(m.shape.slice(i + 1)));
  for (let i = 0; i < out.length; i++) {
    let rem = i;
    let o = 0;
    for (let d = x.shape.length - 1; d >= 0; d--) {
      const c = rem % x.shape[d];
      rem = Math.floor(rem / x.shape[d]);
      if (m.shape[d] !== 1) o += c * mst[d];
    }
    out[i] = x.data[i] - m.data[o];
  }
  return new Ref(out, x.shape);
}

function refVar(x, dims, keepdim, correction) {
  const mean = REF.mean(x, dims, true);
  const n = dims.reduce((a, d) => a * x.shape[d], 1);
  return refReduce(subKeep(x, mean), dims, keepdim, (a, v) => a + v * v, 0, (v) => v / Math.max(0, n - correction));
}

/** First index of the extreme along one dim; NaN counts as the extreme (PyTorch). */
function refArg(x, dim, keepdim, better) {
  const outer = size(x.shape.slice(0, dim));
  const n = x.shape[dim];
  const inner = size(x.shape.slice(dim + 1));
  const out = [];
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let best = 0;
      for (let k = 1; k < n; k++) {
        const b = x.data[(o * n + best) * inner + i];
        const v = x.data[(o * n + k) * inner + i];
        if (!Number.isNaN(b) && (Number.isNaN(v) || better(v, b))) best = k;
      }
      out.push(best);
    }
  return new Ref(out, keepdim ? x.shape.map((s, i) => (i === dim ? 1 : s)) : x.shape.filter((_, i) => i !== dim));
}
const ARG = { argmax: (a, b) => a > b, argmin: (a, b) => a < b };

// shape → dim options (undefined = all dims); small and odd sizes, negative dims, multi-dim sets
const CASES = [
  [[1], [undefined, 0, -1]],
  [[7], [undefined, 0]],
  [[3, 5], [undefined, 0, 1, -1, [0, 1]]],
  [[2, 1, 257], [undefined, 2, 1, [0, 2], [-1, -3]]],
  [[4, 3, 2, 5], [[1, 3], [0, 2, 3], -2]],
];

// Tolerances are f32 error bounds. No sum over CASES rounds a term more than D times: THREAD sums <= 32 terms
// serially; ROW adds <= 3 terms per invocation, then 8 tree levels. For positive terms the error of a sum is then
// <= D u |sum|, so sum/mean/var/std draw inputs from [0.5, 2]. mean: + 2 roundings (1/n, product). var: the mean's
// error cancels to first order (sum (x - m) = 0); + 4 roundings (difference, square, division). std: sqrt halves var's
// error and adds <= 4.5 ULP (WGSL accuracy of 1 / inverseSqrt), within var's bound. logsumexp: exp(x - m), x - m in
// [-4, 0], is within 11 ULP (WGSL: 3 + 2|x| ULP) and x - m rounds once, so the sum has relative error
// <= (D + 26) u; log adds <= 3 ULP of log(s) <= 3 * 2^-21 absolute (s <= 514), the final add <= u relative.
// max/min only compare, so they are exact.
const D = 32;
const FORWARD = {
  sum: [[0.5, 2], { rtol: D * U, atol: 0 }],
  mean: [[0.5, 2], { rtol: (D + 2) * U, atol: 0 }],
  max: [[-2, 2], EXACT],
  min: [[-2, 2], EXACT],
  var: [[0.5, 2], { rtol: (D + 4) * U, atol: 0 }],
  std: [[0.5, 2], { rtol: (D + 4) * U, atol: 0 }],
  logsumexp: [[-2, 2], { rtol: U, atol: (D + 26) * U + 3 * 2 ** -21 }],
};

for (const [op, [range, tol]] of Object.entries(FORWARD)) {
  test(`${op}: forward matches float64 over shapes, dims sets and keepdim`, async () => {
    const r = rng(op.length * 101 + op.charCodeAt(0));
    for (const [shape, dimList] of CASES) {
      const x = Ref.random(shape, r, ...range).f32();
      const t = x.toTensor();
      for (const dim of dimList)
        for (const keepdim of [false, true])
          for (const correction of op === 'var' || op === 'std' ? [0, 1] : [undefined]) {
            const opts = { dim, keepdim, correction };
            const ref = REF[op](x, dimsOf(dim, shape.length), keepdim, opts);
            await assertClose(vg[op](t, opts), ref, { ...tol, msg: `${op} [${shape}] ${JSON.stringify(opts)}` });
          }
      t.dispose();
    }
  });
}

test('argmax/argmin: forward matches float64 along every dim, keepdim, ties take the first index', async () => {
  const r = rng(5);
  for (const [shape] of CASES) {
    // integer values in [0, 4): ties everywhere
    const x = new Ref(r.array(size(shape), 0, 4).map(Math.floor), shape);
    const t = x.toTensor();
    for (const [name, better] of Object.entries(ARG)) {
      for (let d = -shape.length; d < shape.length; d++)
        for (const keepdim of [false, true]) {
          const out = vg[name](t, { dim: d, keepdim });
          assert.is(out.dtype, 'i32');
          await assertClose(out, refArg(x, (d + shape.length) % shape.length, keepdim, better), { ...EXACT, msg: `${name} [${shape}] dim ${d}` });
        }
      // no dim: index into the flattened tensor; keepdim keeps every dim, as 1 (PyTorch does the same)
      const flat = refArg(new Ref(x.data, [x.data.length]), 0, false, better);
      await assertClose(vg[name](t), flat, { ...EXACT, msg: `${name} [${shape}] flat` });
      await assertClose(t[name]({ keepdim: true }), new Ref(flat.data, shape.map(() => 1)), { ...EXACT, msg: `${name} [${shape}] flat keepdim` });
    }
    t.dispose();
  }
});

// ---- kernel layouts ------------------------------------------------------------------------------------------------

/** Values k/8 with |k| <= 8: every partial sum of up to 2^21 of them is exact in f32, so sums must match exactly. */
const dyadic = (shape, r) => new Ref(r.array(size(shape), -8, 9).map((v) => Math.floor(v) / 8), shape);

// [shape, dim] chosen to hit each branch of reduceRaw (ROW workgroups of 64 invocations): THREAD when redSize <= 32 or
// when there are >= 4096 outputs of <= 1024; ROW otherwise, split into nSplit = floor(units / 4096) chunks (two passes)
// when there are < 64 outputs, where units are elements, or vec4s for the sums over vec4s (ROW4: the innermost
// reduced dim contiguous and a multiple of 4 long; other sums, and max/min, read elements).
// The layout (the kernels a sum dispatches, read from vg.profile) is asserted so the cases keep covering every branch.
const LAYOUTS = [
  ['THREAD (short rows)', [300, 7], 1, ['thread']],
  ['THREAD (many outputs, 40 each)', [5000, 40], -1, ['thread']],
  ['THREAD (strided, many outputs)', [40, 4100], 0, ['thread']],
  // size-1 dims dropped, neighbours merged: [4100, 14] reduced over 14 contiguous
  ['THREAD (merged dims)', [4100, 1, 2, 7], [2, 3], ['thread']],
  ['ROW (few outputs, contiguous)', [5, 1001], 1, ['row']],
  ['ROW4 (few outputs, contiguous)', [5, 1000], 1, ['row4']],
  ['ROW (few outputs, strided)', [1000, 5], 0, ['row']],
  ['ROW (>= 64 outputs)', [70, 5001], 1, ['row']],
  ['ROW4 (>= 64 outputs)', [70, 5000], 1, ['row4']],
  // 2 partials per output (a split per 64 elements per invocation): the second pass is a short THREAD reduction
  ['ROW two-pass (contiguous)', [3, 40001], 1, ['row', 'thread']],
  ['ROW4 two-pass (contiguous)', [3, 160000], 1, ['row4', 'thread']],
  ['ROW two-pass (strided)', [40000, 3], 0, ['row', 'thread']],
  ['ROW two-pass (two reduced dims)', [20, 3, 2001], [0, 2], ['row', 'thread']],
  ['ROW4 two-pass (two reduced dims)', [80, 3, 2000], [0, 2], ['row4', 'thread']],
  // a convolution's bias gradient: N and H·W reduced ([N, C, H, W] → [N, C, H·W] after merging)
  ['ROW4 two-pass (bias gradient, merged dims)', [8, 5, 60, 80], [0, 2, 3], ['row4', 'thread']],
  ['ROW two-pass (bias gradient, merged dims, odd H·W)', [8, 5, 61, 81], [0, 2, 3], ['row', 'thread']],
  // 146 partials: both passes ROW
  ['ROW two-pass (long)', [2, 600001], 1, ['row', 'row']],
  // 36 partials, a multiple of 4: both passes ROW4
  ['ROW4 two-pass (long)', [2, 600000], 1, ['row4', 'row4']],
];

/** The layouts (thread/row) of the reduce kernels a call dispatches. */
async function layoutOf(fn) {
  const { result, report } = await vg.profile(fn);
  result.dispose();
  return report.kernels.map((k) => k.name.split('.').pop());
}

test('every reduce layout: sum exact on dyadic values; max/min/mean; argmax/argmin with ties', async () => {
  const r = rng(21);
  for (const [name, shape, dim, layout] of LAYOUTS) {
    const x = dyadic(shape, r);
    const t = x.toTensor();
    const dims = dimsOf(dim, shape.length);
    assert.equal(await layoutOf(() => vg.sum(t, { dim })), layout, `${name}: kernels dispatched`);
    const outShape = shape.filter((_, i) => !dims.includes(i));
    for (const op of ['sum', 'max', 'min']) {
      const ref = REF[op](x, dims, true);
      await assertClose(vg[op](t, { dim, keepdim: true }), ref, { ...EXACT, msg: `${op} ${name}` });
      await assertClose(vg[op](t, { dim }), new Ref(ref.data, outShape), { ...EXACT, msg: `${op} ${name}` });
      // exact sum times the f32 reciprocal: two roundings
      if (op === 'sum') {
        const n = size(shape) / ref.data.length;
        await assertClose(vg.mean(t, { dim }), new Ref(ref.data.map((v) => v / n), outShape), { rtol: 3 * U, atol: 0, msg: `mean ${name}` });
      }
    }
    if (dims.length === 1)
      for (const [arg, better] of Object.entries(ARG))
        await assertClose(vg[arg](t, { dim }), refArg(x, dims[0], false, better), { ...EXACT, msg: `${arg} ${name}` });
    t.dispose();
  }
});

test('full reductions of 1e6 elements (two passes): exact dyadic sum, f32 round-off bound, max/min, argmax ties', async () => {
  // 244 partials (a multiple of 4: the second pass reads vec4s) and 61
  for (const [n, layout] of [[1_000_001, ['row', 'row4']], [1_000_000, ['row4', 'row']]]) await fullReduction(n, layout);
});

/** Sum, max, min, arg reductions of n elements; the sum's kernels are `layout` (two passes). */
async function fullReduction(n, layout) {
  const r = rng(22);
  const x = dyadic([n], r);
  const t = x.toTensor();
  const exact = x.data.reduce((a, v) => a + v, 0);
  assert.equal(await layoutOf(() => vg.sum(t)), layout, `two passes over ${n}`);
  assert.is(await vg.sum(t).item(), exact, 'dyadic sum');
  assert.is(await vg.max(t).item(), 1);
  assert.is(await vg.min(t).item(), -1);
  // +-1 occur ~60k times each: the first occurrence must win
  assert.is(await vg.argmax(t).item(), x.data.indexOf(1));
  assert.is(await vg.argmin(t).item(), x.data.indexOf(-1));
  assert.is(await t.reshape([1, n]).argmax().item(), x.data.indexOf(1), 'argmax of a 2-D tensor flattens');
  t.dispose();
  // positive terms: the computed sum is within depth * u relative of the exact one, depth <= 64 serial adds per
  // invocation (per vec4 lane for ROW4, then 2 to add the lanes) + 6 tree levels + 64 + 2 + 6 in the second pass =
  // 144 in the worst case; random roundings grow like its square root, so 40 u leaves a margin
  const y = Ref.random([n], r, 0, 1).f32();
  const ty = y.toTensor();
  const exactY = y.data.reduce((a, v) => a + v, 0);
  await assertClose(vg.sum(ty), new Ref([exactY], []), { rtol: 40 * U, atol: 0, msg: `f32 sum of ${n}` });
  await assertClose(vg.mean(ty, { keepdim: true }), new Ref([exactY / n], [1]), { rtol: 42 * U, atol: 0, msg: `f32 mean of ${n}` });
  ty.dispose();
}

// ---- dtypes and special values ---------------------------------------------------------------------------------------

test('integer dtypes: sum/max/min/argmax/argmin on i32 and u32 (incl. values above 2^31) in every layout', async () => {
  const r = rng(31);
  for (const [shape, dim] of [[[3, 7], 1], [[4, 1000], -1], [[50000], 0], [[9, 5], [0, 1]]]) {
    const dims = dimsOf(dim, shape.length);
    for (const [dtype, lo, hi] of [['i32', -1000, 1000], ['u32', 0, 4e9]]) {
      const x = new Ref(r.array(size(shape), lo, hi).map(Math.floor), shape, dtype);
      const t = x.toTensor();
      const msg = `${dtype} [${shape}] dim ${dim}`;
      for (const op of ['max', 'min']) {
        assert.is(vg[op](t, { dim }).dtype, dtype);
        await assertClose(vg[op](t, { dim }), REF[op](x, dims, false), { ...EXACT, msg: `${op} ${msg}` });
      }
      if (dims.length === 1)
        for (const [arg, better] of Object.entries(ARG))
          await assertClose(vg[arg](t, { dim }), refArg(x, dims[0], false, better), { ...EXACT, msg: `${arg} ${msg}` });
      // u32 sums of values up to 4e9 wrap around 2^32, as integer sums do
      const s = vg.sum(t, { dim, keepdim: true });
      assert.is(s.dtype, dtype);
      const ref = REF.sum(x, dims, true);
      await assertClose(s, new Ref(ref.data.map((v) => (dtype === 'u32' ? v % 2 ** 32 : v)), ref.shape), { ...EXACT, msg: `sum ${msg}` });
      t.dispose();
    }
  }
  // logsumexp of integers computes in f32 (PyTorch promotes too). Tolerance as for the f32 forward above: x - m reaches
  // -8 here, but exp's larger error there (19 ULP) is weighted by e^(x - m) <= e^-3 in the sum
  const xi = new Ref([-3, 0, 2, 5, 1, -4, 4, 4], [2, 4], 'i32');
  const lse = vg.logsumexp(xi.toTensor(), { dim: 1 });
  assert.is(lse.dtype, 'f32');
  await assertClose(lse, REF.logsumexp(xi, [1], false), FORWARD.logsumexp[1]);
});

// full reductions of n elements in the THREAD, ROW and two-pass ROW layouts
const FULL_SIZES = [5, 300, 40000];

test('NaN propagates through max/min; argmax/argmin point at the first NaN (PyTorch)', async () => {
  for (const n of FULL_SIZES) {
    const data = Array.from({ length: n }, (_, i) => (i % 7) - 3);
    data[Math.floor(n / 2)] = NaN;
    data[n - 1] = NaN;
    const t = vg.tensor(data);
    for (const op of ['max', 'min']) assert.ok(Number.isNaN(await vg[op](t).item()), `${op} of ${n} with NaN`);
    assert.is(await vg.argmax(t).item(), Math.floor(n / 2), `argmax of ${n} with NaN`);
    assert.is(await vg.argmin(t).item(), Math.floor(n / 2), `argmin of ${n} with NaN`);
  }
});

test('infinities: max over -inf is -inf (no finite sentinel), logsumexp of -inf rows, huge values', async () => {
  for (const n of FULL_SIZES) {
    const ninf = vg.full([2, n], -Infinity);
    await assertClose(vg.max(ninf, { dim: 1 }), new Ref([-Infinity, -Infinity], [2]), { ...EXACT, msg: `max of -inf rows (${n})` });
    await assertClose(vg.logsumexp(ninf, { dim: -1 }), new Ref([-Infinity, -Infinity], [2]), { ...EXACT, msg: `logsumexp of -inf rows (${n})` });
    await assertClose(vg.min(vg.full([n], Infinity)), new Ref([Infinity], []), { ...EXACT, msg: `min of +inf (${n})` });
  }
  // -inf below the most negative float: no sentinel may win
  assert.is(await vg.argmax(vg.tensor([-Infinity, -3.4028234663852886e38])).item(), 1);
  assert.is(await vg.argmin(vg.tensor([Infinity, 3.4028234663852886e38])).item(), 1);
  // huge values: logsumexp is shifted by the max, so it neither overflows nor loses the log 2 (rtol 1e-6: f32
  // spacing at 1000 is 6e-5, i.e. 6e-8 relative, and log 2 is within 2^-21 absolute)
  await assertClose(vg.logsumexp(vg.tensor([[1000, 1000], [-1000, -1000], [Infinity, 0]]), { dim: 1 }), new Ref([1000 + Math.LN2, -1000 + Math.LN2, Infinity], [3]), { rtol: 1e-6 });
});

test('empty and 0-d inputs: sum of nothing is 0, mean is NaN, 0-d reduces to itself', async () => {
  const e = vg.zeros([3, 0]);
  await assertClose(vg.sum(e, { dim: 1 }), new Ref([0, 0, 0], [3]), EXACT);
  await assertClose(vg.sum(e, { dim: 0 }), new Ref([], [0]), EXACT);
  await assertClose(vg.mean(e, { dim: 1 }), new Ref([NaN, NaN, NaN], [3]), EXACT);
  const s = vg.tensor(2.5);
  for (const op of ['sum', 'mean', 'max', 'min', 'logsumexp']) await assertClose(vg[op](s), new Ref([2.5], []), { msg: op });
  assert.is(await vg.argmax(s).item(), 0);
});

// ---- gradients -----------------------------------------------------------------------------------------------------


test('gradients match finite differences: sum, mean, max, min, var, std, logsumexp', async () => {
  const r = rng(41);
  const x = Ref.random([3, 4, 5], r, -2, 2).f32();
  const xd = distinct([3, 4, 5], r);
  for (const [op, opts, input] of [
    ['sum', {}, x],
    ['sum', { dim: [0, 2] }, x],
    ['mean', { dim: -1, keepdim: true }, x],
    ['mean', { dim: [0, 1] }, x],
    ['max', { dim: 1 }, xd],
    ['max', { dim: [-1, 0], keepdim: true }, xd],
    ['max', {}, xd],
    ['min', { dim: 2 }, xd],
    ['var', { dim: 1 }, x],
    ['var', { dim: [0, 2], correction: 0, keepdim: true }, x],
    ['std', { dim: -1 }, x],
    ['std', {}, x],
    ['logsumexp', { dim: 1 }, x],
    ['logsumexp', { dim: [0, 2], keepdim: true }, x],
  ])
    await gradcheck((a) => vg[op](a, opts), [input], { msg: `${op} ${JSON.stringify(opts)}` });
});

test('gradients match finite differences of the float64 references (a 1% error fails): sum, mean, max, min, var, std, logsumexp', async () => {
  const r = rng(43);
  const x = Ref.random([3, 4, 5], r, -2, 2);
  const xd = distinct([3, 4, 5], r);
  for (const [op, dims, keepdim, input, extra] of [
    ['sum', [0, 1, 2], false, x],
    ['sum', [0, 2], false, x],
    ['mean', [2], true, x],
    ['max', [1], false, xd],
    ['max', [0, 2], true, xd],
    ['max', [0, 1, 2], false, xd],
    ['min', [2], false, xd],
    ['var', [1], false, x],
    ['var', [0, 2], true, x, { correction: 0 }],
    ['std', [2], false, x],
    ['logsumexp', [1], false, x],
  ]) {
    const opts = { dim: dims, keepdim, ...extra };
    await gradcheck64((a) => vg[op](a, opts), (a) => REF[op](a, dims, keepdim, extra), [input], { msg: `${op} ${JSON.stringify(opts)}` });
  }
});

test('max/min share the gradient evenly among tied extrema (amax semantics), in THREAD and ROW layouts', async () => {
  const r = rng(42);
  for (const [shape, dim] of [[[6, 9], 1], [[4, 600], 1], [[700, 3], 0]]) {
    const x = new Ref(r.array(size(shape), 0, 3).map(Math.floor), shape);
    for (const op of ['max', 'min']) {
      const t = x.toTensor({ requiresGrad: true });
      const y = vg[op](t, { dim });
      const g = Ref.random(y.shape, r).f32();
      y.backward(g.toTensor());
      const diff = subKeep(x, REF[op](x, [dim], true)); // 0 exactly at the extrema
      const count = refReduce(diff, [dim], true, (a, v) => a + (v === 0 ? 1 : 0), 0);
      // expected d/dx: g / count where x is an extremum of its row, else 0
      const expected = diff.data.map((v, i) => {
        const o = dim === 1 ? Math.floor(i / shape[1]) : i % shape[1];
        return v === 0 ? g.data[o] / count.data[o] : 0;
      });
      // g and the count are exact in f32: one rounding, in the division
      await assertClose(t.grad, new Ref(expected, shape), { rtol: U, atol: 0, msg: `${op} [${shape}]` });
      t.dispose();
    }
  }
});

// ---- bad input -----------------------------------------------------------------------------------------------------

test('bad input: out-of-range and repeated dims, dim lists for argmax, integer mean/var/std, empty max, bad options', async () => {
  const x = vg.zeros([2, 3]);
  assertThrowsWith(() => vg.sum(x, { dim: 2 }), ['sum', 'dim=2', 'rank 2']);
  assertThrowsWith(() => vg.max(x, { dim: -3 }), ['max', 'dim=-3', 'rank 2']);
  assertThrowsWith(() => vg.mean(x, { dim: [1, -1] }), ['mean', '[1,-1]', 'twice']);
  assertThrowsWith(() => vg.logsumexp(x, { dim: 5 }), ['logsumexp', 'dim=5']);
  assertThrowsWith(() => vg.var(x, { dim: 1.5 }), ['var', 'integer', '1.5']);
  assertThrowsWith(() => vg.argmax(x, { dim: [0, 1] }), ['argmax', 'single dimension', '[0,1]']);
  assertThrowsWith(() => vg.argmin(x, { dim: 2 }), ['argmin', 'dim=2']);
  const xi = vg.zeros([4], { dtype: 'i32' });
  assertThrowsWith(() => vg.mean(xi), ['mean', 'i32']);
  assertThrowsWith(() => vg.var(xi), ['var', 'i32']);
  assertThrowsWith(() => vg.std(vg.zeros([4], { dtype: 'u32' })), ['std', 'u32']);
  assertThrowsWith(() => vg.max(vg.zeros([3, 0]), { dim: 1 }), ['max', 'empty', '[3, 0]']);
  assertThrowsWith(() => vg.argmin(vg.zeros([0])), ['argmin', 'empty', '[0]']);
  assertThrowsWith(() => vg.sum(x, 1), ['sum', 'options must be an object', '1']);
  assertThrowsWith(() => vg.sum([1, 2]), ['sum', 'Tensor', 'array']);
  assertThrowsWith(() => vg.argmax(3), ['argmax', 'Tensor', 'number 3']);
});

test.run();
