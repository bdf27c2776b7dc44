// sort / argsort / topk: against PyTorch fixtures (test/fixtures/gen_sort.py: ties, NaN, ±inf, both zeros, several
// dims, descending, i32), against a float64 JS stable-sort reference for u32 inputs and for long rows (the multi-pass
// path: rows longer than one workgroup's block, up to 2^20 elements, top-8192 of a 2-D and a 3-D map), finite
// differences for the values' gradient, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, distinct, gradcheck, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('sort');
const EXACT = { rtol: 0, atol: 0 };

/** [outer, n, inner] around dim of shape (0-d: one line of one element). */
function lines(shape, dim) {
  const d = dim < 0 ? dim + shape.length : dim;
  const n = shape.length ? shape[d] : 1;
  const inner = size(shape.slice(d + 1));
  return { n, inner, outer: size(shape.slice(0, d)) };
}

/** PyTorch's order: NaN is the largest value, -0 equals +0. */
function compare(a, b) {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Float64 stable sort reference along dim, keeping the first k positions: { values, indices } as flat arrays. */
function refSort(data, shape, dim, { descending = false, k } = {}) {
  const { n, inner, outer } = lines(shape, dim);
  const kk = k ?? n;
  const values = new Float64Array(outer * kk * inner);
  const indices = new Int32Array(outer * kk * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (j) => data[(o * n + j) * inner + i];
      const order = Array.from({ length: n }, (_, j) => j);
      // Array.prototype.sort is stable: equal values keep their input order in both directions
      order.sort((a, b) => (descending ? compare(at(b), at(a)) : compare(at(a), at(b))));
      for (let j = 0; j < kk; j++) {
        values[(o * kk + j) * inner + i] = at(order[j]);
        indices[(o * kk + j) * inner + i] = order[j];
      }
    }
  return { values, indices };
}

async function assertSorted(res, x, shape, dim, opts, msg) {
  const want = refSort(x, shape, dim, opts);
  const idx = await res.indices.data();
  assert.is(res.indices.dtype, 'i32', `${msg} indices dtype`);
  for (let i = 0; i < want.indices.length; i++)
    if (idx[i] !== want.indices[i])
      assert.unreachable(`${msg}: index at flat position ${i} is ${idx[i]}, the stable reference has ${want.indices[i]}`);
  const vals = await res.values.data();
  for (let i = 0; i < want.values.length; i++)
    if (!Object.is(vals[i], want.values[i]) && !(Number.isNaN(vals[i]) && Number.isNaN(want.values[i])))
      assert.unreachable(`${msg}: value at flat position ${i} is ${vals[i]}, expected ${want.values[i]}`);
}

const describeCase = (c) =>
  `${c.op}(x [${c.x.shape}] ${c.dtype}${c.k !== undefined ? `, k=${c.k}` : ''}, dim=${c.dim}, ${c.op === 'topk' ? `largest=${c.largest}` : `descending=${c.descending}`})`;

test('sort and topk match PyTorch: values, indices (stable tie order, NaN largest) and the input gradient', async () => {
  assert.ok(CASES.length >= 19, 'fixture cases present');
  for (const c of CASES) {
    const msg = describeCase(c);
    const xr = fixtureRef(c.x);
    const x = xr.toTensor({ requiresGrad: c.dtype === 'f32' });
    const res = c.op === 'sort' ? vg.sort(x, { dim: c.dim, descending: c.descending }) : vg.topk(x, c.k, { dim: c.dim, largest: c.largest });
    assert.is(res.values.dtype, c.dtype, `${msg} values dtype`);
    assert.equal(Array.from(await res.indices.data()), Array.from(fixtureRef(c.indices).data), `${msg} indices`);
    await assertClose(res.values, fixtureRef(c.values), { ...EXACT, msg: `${msg} values` });
    // the zeros' signs come through (values are read back from the input at the sorted index)
    const got = await res.values.data();
    fixtureRef(c.values).data.forEach((v, i) => assert.ok(v !== 0 || Object.is(got[i], v), `${msg}: sign of zero at ${i}`));
    if (c.g) {
      res.values.backward(fixtureRef(c.g).toTensor());
      await assertClose(x.grad, fixtureRef(c.gx), { ...EXACT, msg: `${msg} input gradient` });
    }
    // argsort is sort's indices
    if (c.op === 'sort') {
      const a = vg.argsort(x, { dim: c.dim, descending: c.descending });
      assert.equal(Array.from(await a.data()), Array.from(fixtureRef(c.indices).data), `${msg} argsort`);
      assert.not.ok(a.requiresGrad, `${msg} argsort is not differentiable`);
      a.dispose();
    }
    for (const t of [x, res.values, res.indices]) t.dispose();
  }
});

test('u32 and i32 inputs against the stable reference (extreme values, both directions)', async () => {
  const r = rng(5);
  const u = Array.from({ length: 3 * 300 }, () => [0, 1, 7, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, r.int(0, 2 ** 32)][r.int(0, 7)]);
  const i = Array.from({ length: 3 * 300 }, () => [-(2 ** 31), -1, 0, 1, 2 ** 31 - 1, r.int(-100, 100)][r.int(0, 6)]);
  for (const [data, dtype] of [[u, 'u32'], [i, 'i32']])
    for (const descending of [false, true]) {
      const x = vg.tensor(data, [3, 300], { dtype });
      const res = vg.sort(x, { descending });
      assert.is(res.values.dtype, dtype);
      await assertSorted(res, data, [3, 300], -1, { descending }, `${dtype} descending=${descending}`);
      for (const t of [x, res.values, res.indices]) t.dispose();
    }
});

/** f32 values with many ties, both zeros, infinities and NaNs. */
function tiedData(n, r) {
  const specials = [NaN, Infinity, -Infinity, -0, 0];
  return Float32Array.from({ length: n }, () => (r.next() < 0.01 ? specials[r.int(0, 5)] : Math.round(r.uniform(-50, 50)) / 4));
}

test('rows longer than a workgroup block: the multi-pass network (2^20 elements, strided dims, several lines)', async () => {
  const r = rng(11);
  const cases = [
    { shape: [1 << 20], dim: 0, descending: false },
    { shape: [3, 5000], dim: 1, descending: true },
    { shape: [9000, 2], dim: 0, descending: false },
    { shape: [2, 4097, 3], dim: 1, descending: true },
  ];
  for (const { shape, dim, descending } of cases) {
    const data = tiedData(size(shape), r);
    const x = vg.tensor(data, shape);
    const res = vg.sort(x, { dim, descending });
    await assertSorted(res, data, shape, dim, { descending }, `sort [${shape}] dim ${dim} descending=${descending}`);
    for (const t of [x, res.values, res.indices]) t.dispose();
  }
});

test('topk: top-8192 of a 256² map and of a 32×64×64 volume (flattened), smallest k, k = 1, strided dims, tie order', async () => {
  const r = rng(12);
  // k up to half the padded row takes the selection rounds; k = 3000 of 3000 the full sort
  for (const [shape, k, largest, dim] of [
    [[256 * 256], 8192, true, -1],
    [[2, 32 * 64 * 64], 8192, true, -1],
    [[4, 3000], 100, false, -1],
    [[300, 7], 1, true, 0],
    [[3, 5000, 2], 33, false, 1],
    [[37, 50], 7, true, -1],
    [[4, 3000], 3000, true, -1],
    [[4, 3000], 1500, true, -1],
    [[6, 20], 9, false, -1],
  ]) {
    const data = tiedData(size(shape), r);
    const x = vg.tensor(data, shape);
    const res = vg.topk(x, k, { largest, dim });
    const d = dim < 0 ? dim + shape.length : dim;
    assert.equal([...res.values.shape], shape.map((s, i) => (i === d ? k : s)), 'topk shape');
    await assertSorted(res, data, shape, dim, { descending: largest, k }, `topk [${shape}] k=${k} largest=${largest} dim=${dim}`);
    for (const t of [x, res.values, res.indices]) t.dispose();
  }
});

test('gradcheck: sort and topk values (distinct inputs, several dims)', async () => {
  const r = rng(13);
  await gradcheck((x) => vg.sort(x, { dim: 1 }).values, [distinct([3, 6, 4], r)], { msg: 'sort dim 1' });
  await gradcheck((x) => vg.sort(x, { dim: -1, descending: true }).values, [distinct([2, 9], r)], { msg: 'sort descending' });
  await gradcheck((x) => vg.topk(x, 3, { dim: 0 }).values, [distinct([7, 5], r)], { msg: 'topk dim 0' });
  await gradcheck((x) => vg.topk(x, 2, { largest: false }).values.square(), [distinct([4, 6], r)], { msg: 'topk smallest' });
});

test('tensor methods and the op registry', async () => {
  const x = vg.tensor([3, -1, 2, 2], [4]);
  assert.equal(Array.from(await x.sort().indices.data()), [1, 2, 3, 0]);
  assert.equal(Array.from(await x.argsort({ descending: true }).data()), [0, 2, 3, 1]);
  assert.equal(Array.from(await x.topk(2).values.data()), [3, 2]);
  const listed = Object.fromEntries(vg.listOps().map((o) => [o.name, o]));
  for (const name of ['sort', 'topk']) assert.ok(listed[name]?.differentiable, `${name} is listed as differentiable`);
  assert.is(listed.argsort?.differentiable, false, 'argsort is listed, not differentiable');
  x.dispose();
});

test('0-d and empty inputs', async () => {
  const s = vg.tensor(2.5);
  const r0 = vg.sort(s);
  assert.equal([...r0.values.shape], []);
  assert.is(await r0.values.item(), 2.5);
  assert.is(await r0.indices.item(), 0);
  const e = vg.zeros([3, 0]);
  const re = vg.sort(e, { dim: 1 });
  assert.equal([...re.indices.shape], [3, 0]);
  const t0 = vg.topk(vg.ones([2, 5]), 0);
  assert.equal([...t0.values.shape], [2, 0]);
});

test('bad input names the op and the argument', () => {
  const x = vg.ones([2, 5]);
  assertThrowsWith(() => vg.sort(x, { dim: 2 }), ['sort', 'dim=2', 'out of range']);
  assertThrowsWith(() => vg.argsort(x, { dim: -3 }), ['argsort', 'dim=-3', 'out of range']);
  assertThrowsWith(() => vg.topk(x, 3, { dim: 5 }), ['topk', 'dim=5']);
  assertThrowsWith(() => vg.topk(x, 6), ['topk', 'k=6', 'larger than the size 5']);
  assertThrowsWith(() => vg.topk(x, 2.5), ['topk', 'k must be a non-negative integer', '2.5']);
  assertThrowsWith(() => vg.topk(x, -1), ['topk', 'k must be a non-negative integer']);
  assertThrowsWith(() => vg.topk(x, '2'), ['topk', 'k must be', 'string']);
  assertThrowsWith(() => vg.sort(x, { descending: 'yes' }), ['sort', 'descending must be true or false']);
  assertThrowsWith(() => vg.sort(x, { axis: 0 }), ['sort', "unknown option 'axis'"]);
  assertThrowsWith(() => vg.sort(x, 1), ['sort', 'options must be an object']);
  assertThrowsWith(() => vg.sort([3, 1]), ['sort', 'input must be a Tensor']);
  x.dispose();
});

test('no tensors leak: the pairs buffer of the multi-pass path is released', async () => {
  const x = vg.tensor(Float32Array.from({ length: 10000 }, (_, i) => (i * 7919) % 10007), [10000]);
  const before = vg.memory().liveTensors;
  const res = vg.sort(x);
  assert.is(vg.memory().liveTensors, before + 2, 'only values and indices remain');
  for (const t of [x, res.values, res.indices]) t.dispose();
});

test.run();
