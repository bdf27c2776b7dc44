// matmul (torch.matmul rules), bmm and linear: forward against a float64 reference with an error bound derived from
// f32 accumulation, gradients by finite differences, and argument errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertThrowsWith, broadcastShape, gradcheck, gradcheck64, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

/**
 * float64 torch.matmul: 1-D operands are promoted ([K] → [1, K] on the left, [K, 1] on the right) and the added dim
 * removed; batch dims broadcast. With abs = true it multiplies |a| and |b| (the scale of the rounding error bound).
 */
function refMatmul(a, b, abs = false) {
  const sa = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const sb = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const [M, K] = sa.slice(-2);
  const N = sb[sb.length - 1];
  const batchA = sa.slice(0, -2);
  const batchB = sb.slice(0, -2);
  const batch = broadcastShape(batchA, batchB);
  const offset = (bshape, coord, stride) => {
    // index of a broadcast batch coordinate in an operand's own batch dims
    const st = stridesOf(bshape);
    const lead = coord.length - bshape.length;
    return bshape.reduce((o, d, i) => o + (d === 1 ? 0 : coord[lead + i]) * st[i], 0) * stride;
  };
  const f = abs ? Math.abs : (v) => v;
  const out = new Float64Array(size(batch) * M * N);
  for (let bi = 0; bi < size(batch); bi++) {
    const coord = unravel(bi, batch);
    const oa = offset(batchA, coord, M * K);
    const ob = offset(batchB, coord, K * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += f(a.data[oa + i * K + k]) * f(b.data[ob + k * N + j]);
        out[(bi * M + i) * N + j] = s;
      }
  }
  let shape = [...batch, M, N];
  if (a.shape.length === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (b.shape.length === 1) shape = shape.slice(0, -1);
  return new Ref(out, shape);
}

// Unit roundoff of f32. Inputs are f32 already (Ref.f32()), so every difference from the float64 reference is
// accumulation error: a sum of K f32 products (fma or not, in any order) is within K·u·Σ|a_k·b_k| of the exact sum
// (the classical γ_K bound; 1.01 covers the 1/(1 - K·u) factor). Random rounding usually gives ~sqrt(K)·u, but the
// bound must hold for every summation order the kernel may use. A wrong or missing term changes a result by about
// |a_k·b_k| ≈ Σ|a·b| / K, orders of magnitude above the bound.
const U32 = 2 ** -24;

async function assertMatmul(t, a, b, { extra = null, msg = '' } = {}) {
  const ref = refMatmul(a, b);
  const scale = refMatmul(a, b, true);
  const K = a.shape[a.shape.length - 1];
  assert.equal([...t.shape], ref.shape, `${msg} shape`);
  const got = await t.data();
  for (let i = 0; i < got.length; i++) {
    let want = ref.data[i];
    let s = scale.data[i];
    let terms = K;
    if (extra) {
      // bias: one more rounded addition
      want += extra.data[i % extra.data.length];
      s += Math.abs(extra.data[i % extra.data.length]);
      terms += 1;
    }
    const tol = 1.01 * terms * U32 * s;
    if (!(Math.abs(got[i] - want) <= tol))
      assert.unreachable(`${msg} mismatch at [${unravel(i, ref.shape)}]: got ${got[i]}, expected ${want} (bound ${tol}, K ${K})`);
  }
}

const r = rng(2024);
const rand = (shape) => Ref.random(shape, r).f32();

test('2-D and odd sizes across tile edges match float64', async () => {
  // 1 and 7 are inside one tile; 65, 129 and 257 cross the 32-, 64- and 128-wide tiles of every tile shape in use
  const cases = [
    [1, 1, 1],
    [7, 5, 3],
    [1, 257, 7],
    [65, 33, 70],
    [7, 257, 9],
    [129, 65, 257],
    [257, 7, 1],
  ];
  for (const [M, K, N] of cases) {
    const a = rand([M, K]);
    const b = rand([K, N]);
    await assertMatmul(vg.matmul(a.toTensor(), b.toTensor()), a, b, { msg: `[${M}, ${K}] @ [${K}, ${N}]` });
  }
});

test('1-D operands follow torch.matmul: dot, vector @ matrix, matrix @ vector', async () => {
  const pairs = [
    [[7], [7]],
    [[4], [4, 3]],
    [[4], [2, 4, 3]],
    [[3, 4], [4]],
    [[2, 3, 65], [65]],
  ];
  for (const [sa, sb] of pairs) {
    const a = rand(sa);
    const b = rand(sb);
    await assertMatmul(vg.matmul(a.toTensor(), b.toTensor()), a, b, { msg: `[${sa}] @ [${sb}]` });
  }
  const d = vg.matmul(vg.tensor([1, 2, 3]), vg.tensor([4, 5, 6]));
  assert.equal(d.shape, []);
  assert.is(await d.item(), 32);
});

test('batch dims broadcast; bmm; tensor method', async () => {
  const pairs = [
    [[2, 1, 3, 4], [5, 4, 6]],
    [[3, 4], [2, 4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 1, 5, 3], [1, 4, 3, 2]],
    [[3, 70, 9], [3, 9, 130]],
  ];
  for (const [sa, sb] of pairs) {
    const a = rand(sa);
    const b = rand(sb);
    await assertMatmul(vg.matmul(a.toTensor(), b.toTensor()), a, b, { msg: `[${sa}] @ [${sb}]` });
  }
  const a = rand([3, 4, 5]);
  const b = rand([3, 5, 2]);
  await assertMatmul(vg.bmm(a.toTensor(), b.toTensor()), a, b, { msg: 'bmm' });
  await assertMatmul(a.toTensor().matmul(b.toTensor()), a, b, { msg: 'method' });
});

test('linear: x @ weight^T (+ bias) with the weight read transposed in place', async () => {
  for (const [sx, out] of [
    [[5], 3],
    [[4, 5], 3],
    [[2, 3, 33], 70],
    [[130, 65], 129],
  ]) {
    const x = rand(sx);
    const inF = sx[sx.length - 1];
    const w = rand([out, inF]);
    const bias = rand([out]);
    // the reference multiplies by the transposed weight
    const wt = new Ref(Array.from({ length: inF * out }, (_, i) => w.data[(i % out) * inF + Math.floor(i / out)]), [inF, out]);
    const [tx, tw, tb] = [x.toTensor(), w.toTensor(), bias.toTensor()];
    await assertMatmul(vg.linear(tx, tw), x, wt, { msg: `linear [${sx}] -> ${out}` });
    await assertMatmul(vg.linear(tx, tw, tb), x, wt, { extra: bias, msg: `linear+bias [${sx}] -> ${out}` });
  }
});

test('inf and NaN propagate like float64; the zero padding past K adds no NaN', async () => {
  // K = 5 is not a multiple of any tile depth: the staged k-rows past K hold zeros in both tiles, and 0 * inf there
  // would turn the inf in column 1 into NaN
  const a = new Ref(Array.from({ length: 3 * 5 }, (_, i) => 1 + (i % 4)), [3, 5]);
  const bv = Array.from({ length: 5 * 3 }, (_, i) => (i % 3) - 1);
  bv[4 * 3 + 1] = Infinity;
  bv[0 * 3 + 2] = NaN;
  const got = await vg.matmul(a.toTensor(), vg.tensor(bv, [5, 3])).data();
  const want = refMatmul(a, new Ref(bv, [5, 3])).data;
  for (let i = 0; i < 9; i++) {
    if (Number.isFinite(want[i])) assert.is(got[i], want[i], `element ${i}`);
    else assert.ok(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])), `element ${i}: got ${got[i]}, expected ${want[i]}`);
  }
  assert.ok(want.some((v) => v === Infinity) && want.some(Number.isNaN), 'the case covers inf and NaN');
});

// L = sum(matmul(a, b) * R) is linear in each input, so the central difference has no truncation error and a large
// step only shrinks the f32 round-off of L relative to the step; rtol 2e-3 leaves a wide margin over that round-off
// while a wrong gradient (missing transpose, unsummed broadcast dim) is off by O(1).
const GRAD = { eps: 0.5, rtol: 2e-3, atol: 1e-3 };

test('matmul gradients to both inputs: 2-D, 1-D, broadcast batches, tile edges', async () => {
  const pairs = [
    [[5, 7], [7, 3]],
    [[7], [7]],
    [[4], [2, 4, 3]],
    [[2, 3, 4], [4]],
    [[2, 1, 3, 4], [5, 4, 6]],
    [[3, 4], [2, 4, 5]],
    [[65, 33], [33, 130]],
  ];
  for (const [sa, sb] of pairs) await gradcheck((x, y) => vg.matmul(x, y), [rand(sa), rand(sb)], { ...GRAD, msg: `[${sa}] @ [${sb}]` });
});

test('bmm and linear gradients (input, weight, bias)', async () => {
  await gradcheck((x, y) => vg.bmm(x, y), [rand([3, 4, 5]), rand([3, 5, 2])], { ...GRAD, msg: 'bmm' });
  await gradcheck((x, w, b) => vg.linear(x, w, b), [rand([2, 3, 5]), rand([4, 5]), rand([4])], { ...GRAD, msg: 'linear+bias' });
  await gradcheck((x, w) => vg.linear(x, w), [rand([6, 65]), rand([9, 65])], { ...GRAD, msg: 'linear' });
});

test('matmul and linear gradients match finite differences of the float64 reference (a 1% error fails)', async () => {
  for (const [sa, sb] of [[[5, 7], [7, 3]], [[7], [7]], [[2, 1, 3, 4], [5, 4, 6]], [[33, 17], [17, 9]]])
    await gradcheck64((x, y) => vg.matmul(x, y), (x, y) => refMatmul(x, y), [rand(sa), rand(sb)], { msg: `[${sa}] @ [${sb}]` });
  // linear(x, w, b) = x w^T + b
  const transposed = (w) => new Ref(Array.from({ length: w.data.length }, (_, o) => w.get([o % w.shape[0], Math.floor(o / w.shape[0])])), [w.shape[1], w.shape[0]]);
  const refLinear = (x, w, b) => {
    const y = refMatmul(x, transposed(w));
    return new Ref(y.data.map((v, o) => v + b.data[o % b.data.length]), y.shape);
  };
  await gradcheck64((x, w, b) => vg.linear(x, w, b), refLinear, [rand([2, 3, 5]), rand([4, 5]), rand([4])], { msg: 'linear' });
});

test('bad input: contracted-dim mismatch, 0-d, integer dtype, bias shape, bmm batch', async () => {
  const a = vg.zeros([2, 3]);
  assertThrowsWith(() => vg.matmul(a, vg.zeros([4, 5])), ['matmul', '[2, 3]', '[4, 5]', '3 vs 4']);
  assertThrowsWith(() => vg.matmul(vg.zeros([2, 3, 4]), vg.zeros([5])), ['matmul', '[2, 3, 4]', '[5]']);
  assertThrowsWith(() => vg.matmul(vg.tensor(2), a), ['matmul', 'at least 1 dimension', '[]', '[2, 3]']);
  assertThrowsWith(() => vg.matmul(vg.zeros([2, 3], { dtype: 'i32' }), vg.zeros([3, 2])), ['matmul', 'f32', 'i32']);
  assertThrowsWith(() => vg.matmul(vg.zeros([2, 1, 3]), vg.zeros([3, 3, 2])), ['matmul', '[2, 1, 3]', '[3, 3, 2]']);
  const w = vg.zeros([4, 3]);
  assertThrowsWith(() => vg.linear(a, w, vg.zeros([3])), ['linear', 'bias', '[4]', '[3]']);
  assertThrowsWith(() => vg.linear(a, vg.zeros([4, 5])), ['linear', '[2, 3]', '[4, 5]']);
  assertThrowsWith(() => vg.linear(a, vg.zeros([3])), ['linear', 'weight', '2-D', '[3]']);
  assertThrowsWith(() => vg.linear(vg.tensor(1), w), ['linear', 'input', '[]']);
  assertThrowsWith(() => vg.linear(vg.zeros([2, 3], { dtype: 'u32' }), w), ['linear', 'u32']);
  assertThrowsWith(() => vg.bmm(vg.zeros([2, 3, 4]), vg.zeros([3, 4, 5])), ['bmm', '[2, 3, 4]', '[3, 4, 5]']);
  assertThrowsWith(() => vg.bmm(vg.zeros([2, 3, 4]), vg.zeros([2, 5, 5])), ['bmm', '[2, 3, 4]', '[2, 5, 5]']);
  assertThrowsWith(() => vg.bmm(vg.zeros([3, 4]), vg.zeros([4, 5])), ['bmm', '[3, 4]', '[4, 5]']);
});

test('a matrix taller than the workgroup grid limit is split over several launches', async () => {
  // 2^21 + 64 rows: more row tiles than maxComputeWorkgroupsPerDimension (65535) for any tile of <= 32 rows
  const M = 2097152 + 64;
  const a = vg.tidy(() => vg.arange(M).to('f32').reshape([M, 1]).mul(vg.tensor([[1, 0, 0, 0]])));
  const b = vg.tensor([[1, 2, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0]]);
  const c = vg.matmul(a, b);
  for (const row of [0, 65535 * 32, M - 1]) assert.equal(Array.from(await c.slice(0, row, row + 1).data()), [row, 2 * row, 3 * row]);
  for (const t of [a, b, c]) t.dispose();
});

test.run();
