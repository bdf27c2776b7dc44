// gather, scatterAdd, indexSelect, oneHot: forward against float64 references for every value and index dtype,
// collisions (atomic adds), out-of-range indices (raised, as PyTorch does), gradients and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck, gradcheck64, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
const EXACT = { rtol: 0, atol: 0 };

/** Flat offset into `shape` of coordinates c with c[dim] replaced by j; -1 when j is out of range. */
function offsetWith(shape, c, dim, j) {
  if (!(j >= 0 && j < (shape.length ? shape[dim] : 1))) return -1;
  const st = stridesOf(shape);
  return c.reduce((o, v, k) => o + (k === dim ? j : v) * st[k], 0);
}

/** torch.gather: out[c] = x[c with c[dim] = index[c]]. */
function refGather(x, dim, index) {
  const out = index.data.map((j, i) => {
    const o = offsetWith(x.shape, unravel(i, index.shape), dim, j);
    return o < 0 ? 0 : x.data[o];
  });
  return new Ref(out, index.shape, x.dtype);
}

/**
 * torch.scatter_add: a copy of x with src[c] added at c with c[dim] = index[c].
 * Also returns the f32 error bound of the adds: a slot receiving k terms in any order is within k u (|x| + sum |terms|).
 */
function refScatterAdd(x, dim, index, src) {
  const out = Float64Array.from(x.data);
  const abs = x.data.map(Math.abs);
  const count = new Float64Array(out.length);
  index.data.forEach((j, i) => {
    const c = unravel(i, index.shape);
    const o = offsetWith(x.shape, c, dim, j);
    if (o < 0) return;
    const v = src.get(c);
    out[o] += v;
    abs[o] += Math.abs(v);
    count[o]++;
  });
  return [new Ref(out, x.shape, x.dtype), Math.max(0, ...abs.map((a, i) => count[i] * U * a))];
}

const randIndex = (shape, r, lo, hi, dtype = 'i32') => new Ref(r.array(size(shape), lo, hi).map(Math.floor), shape, dtype);

function randomOf(shape, r, dtype) {
  if (dtype === 'f32') return Ref.random(shape, r, -2, 2).f32();
  const [lo, hi] = dtype === 'i32' ? [-2e9, 2e9] : [0, 4.2e9];
  return new Ref(r.array(size(shape), lo, hi).map(Math.floor), shape, dtype);
}

// [input shape, dim, index shape]: index may be smaller than the input off `dim` and any size along it
const GATHER_CASES = [
  [[7], 0, [7]],
  [[7], -1, [12]],
  [[5, 7], 0, [3, 7]],
  [[5, 7], 1, [5, 2]],
  [[5, 7], -1, [2, 9]],
  [[2, 1, 257], 2, [2, 1, 300]],
  [[2, 3, 257], -2, [1, 5, 100]],
  [[4, 3, 2, 5], 3, [4, 2, 2, 5]],
  // the dims after `dim` merge into one of 40 (the kernel's index arithmetic); with a smaller index only the last two
  [[3, 2, 4, 5], 0, [2, 2, 4, 5]],
  [[3, 2, 4, 5], 0, [2, 2, 3, 5]],
];

test('gather: every value dtype and index dtype, dims (negative too), smaller index shapes, vs float64', async () => {
  const r = rng(1);
  for (const vdt of ['f32', 'i32', 'u32'])
    for (const idt of ['i32', 'u32'])
      for (const [shape, dim, ishape] of GATHER_CASES) {
        const d = (dim + shape.length) % shape.length;
        const x = randomOf(shape, r, vdt);
        const index = randIndex(ishape, r, 0, shape[d], idt);
        const out = vg.gather(x.toTensor(), dim, index.toTensor());
        assert.is(out.dtype, vdt);
        await assertClose(out, refGather(x, d, index), { ...EXACT, msg: `gather ${vdt}/${idt} [${shape}] dim ${dim} [${ishape}]` });
      }
});

test('gather and indexSelect: 0-d input; empty index', async () => {
  await assertClose(vg.gather(vg.tensor(7), 0, vg.tensor(0, null, { dtype: 'i32' })), new Ref([7], []), { msg: '0-d' });
  // torch.index_select on a 0-d input takes a one-element index and returns a 0-d tensor
  await assertClose(vg.indexSelect(vg.tensor(7), 0, vg.tensor([0], null, { dtype: 'i32' })), new Ref([7], []), { msg: 'indexSelect 0-d' });
  await assertClose(vg.gather(vg.tensor([[1, 2, 3], [4, 5, 6]]), 1, vg.zeros([2, 0], { dtype: 'i32' })), new Ref([], [2, 0]));
});

/** An index tensor that lives on the GPU (above the host-tensor threshold), so that only a kernel can check it. */
function onGpu(values, dtype = 'i32') {
  vg.setCpuForwardThreshold(0);
  try {
    return vg.tensor(values, null, { dtype });
  } finally {
    vg.setCpuForwardThreshold(128);
  }
}

const DEVICE_ASSERT = 'first read back';

// issue 12 defect 6: out-of-range indices gave zeros (gather, indexSelect, oneHot) or vanished (scatterAdd).
// PyTorch raises ("index out of range in self"), negative indices included for gather and index_select.
test('out-of-range indices raise: at once for host-resident indices, at the next read back for GPU-resident ones', async () => {
  const x = vg.tensor([[1, 2, 3], [4, 5, 6]]);
  const bad = [
    ['gather', (i) => vg.gather(x, 1, vg.reshape(i, [1, 2])), [0, 3], '3', '[0, 3)'],
    ['gather', (i) => vg.gather(x, 0, vg.reshape(i, [1, 2])), [-1, 1], '-1', '[0, 2)'],
    ['indexSelect', (i) => vg.indexSelect(x, 1, i), [0, 9], '9', '[0, 3)'],
    ['indexSelect', (i) => vg.indexSelect(x, 1, i), [-2, 0], '-2', '[0, 3)'],
    ['oneHot', (i) => vg.oneHot(i, 3), [1, 5], '5', '[0, 3)'],
    ['oneHot', (i) => vg.oneHot(i, 3), [-1, 0], '-1', '[0, 3)'],
    ['scatterAdd', (i) => vg.scatterAdd(vg.zeros([3]), 0, i, vg.ones([2])), [0, 9], '9', '[0, 3)'],
    ['scatterAdd', (i) => vg.scatterAdd(vg.zeros([3]), 0, i, vg.ones([2])), [-2, 1], '-2', '[0, 3)'],
  ];
  for (const [op, run, values, value, range] of bad) {
    const pos = String(values.indexOf(Number(value)));
    assertThrowsWith(() => run(vg.tensor(values, null, { dtype: 'i32' })), [op, value, range, `position ${pos}`], `${op} host`);
    const out = run(onGpu(values));
    const err = await out.data().then(() => null, (e) => e);
    assert.ok(err instanceof Error, `${op} ${values}: a GPU-resident bad index must raise at the read back`);
    for (const f of [op, value, range, `position ${pos}`, DEVICE_ASSERT]) assert.ok(err.message.includes(f), `${op}: "${f}" missing in: ${err.message}`);
  }
  // u32 indices past 2^31 are reported as the unsigned value
  const err = await vg.gather(x, 0, vg.reshape(onGpu([4294967295, 0], 'u32'), [1, 2])).data().then(() => null, (e) => e);
  assert.ok(err?.message.includes('4294967295'), String(err));
  // the error is reported once; the engine stays usable and in-range indices still work on both paths
  await assertClose(vg.gather(x, 1, vg.reshape(onGpu([2, 0]), [1, 2])), new Ref([3, 1], [1, 2]));
  await assertClose(vg.oneHot(onGpu([2, 0]), 3), new Ref([0, 0, 1, 1, 0, 0], [2, 3]));
  // sync() reports too, and a bad call followed by good ones still names the bad one
  vg.scatterAdd(vg.zeros([3]), 0, onGpu([7, 0]), vg.ones([2]));
  const later = vg.gather(x, 1, vg.reshape(onGpu([0, 1]), [1, 2]));
  const syncErr = await vg.sync().then(() => null, (e) => e);
  assert.ok(syncErr?.message.includes('scatterAdd') && syncErr.message.includes('7'), String(syncErr));
  assert.equal(Array.from(await later.data()), [1, 2]);
});

test('scatterAdd: every dtype, collisions, src larger than index, vs float64', async () => {
  const r = rng(2);
  for (const vdt of ['f32', 'i32', 'u32'])
    for (const idt of ['i32', 'u32'])
      for (const [shape, dim, ishape, sshape] of [
        [[7], 0, [20], [20]],
        [[5, 7], 0, [9, 7], [9, 8]],
        [[5, 7], -1, [5, 30], [6, 30]],
        [[2, 3, 257], 2, [2, 3, 300], [2, 3, 300]],
        [[4, 3, 2, 5], 1, [4, 8, 2, 3], [4, 8, 2, 5]],
      ]) {
        const d = (dim + shape.length) % shape.length;
        // small integers for i32/u32 so that the integer sums cannot wrap
        const x = vdt === 'f32' ? randomOf(shape, r, vdt) : randIndex(shape, r, 0, 1000, vdt);
        const src = vdt === 'f32' ? randomOf(sshape, r, vdt) : randIndex(sshape, r, vdt === 'i32' ? -1000 : 0, 1000, vdt);
        const index = randIndex(ishape, r, 0, shape[d], idt);
        const [ref, bound] = refScatterAdd(x, d, index, src);
        const out = vg.scatterAdd(x.toTensor(), dim, index.toTensor(), src.toTensor());
        assert.is(out.dtype, vdt);
        const atol = vdt === 'f32' ? bound : 0; // integer adds are exact
        await assertClose(out, ref, { rtol: 0, atol, msg: `scatterAdd ${vdt}/${idt} [${shape}] dim ${dim} [${ishape}] [${sshape}]` });
      }
});

test('scatterAdd: 100k colliding float adds into 10 slots are exact on dyadic values (atomic CAS loop)', async () => {
  const r = rng(3);
  const n = 100_000;
  // k/8 with |k| <= 8: every partial sum is exact in f32, so the order of the adds cannot matter
  const src = new Ref(r.array(n, -8, 9).map((v) => Math.floor(v) / 8), [n]);
  const index = randIndex([n], r, 0, 10);
  const base = new Ref(r.array(10, -8, 9).map(Math.floor), [10]);
  const [ref] = refScatterAdd(base, 0, index, src);
  await assertClose(vg.scatterAdd(base.toTensor(), 0, index.toTensor(), src.toTensor()), ref, EXACT);
  const ints = new Ref(r.array(n, -1000, 1000).map(Math.floor), [n], 'i32');
  const [refInt] = refScatterAdd(new Ref(new Array(10).fill(0), [10], 'i32'), 0, index, ints);
  await assertClose(vg.scatterAdd(vg.zeros([10], { dtype: 'i32' }), 0, index.toTensor(), ints.toTensor()), refInt, EXACT);
});

test('indexSelect: every dim (negative too), repeated and reordered indices, both index dtypes, vs gather reference', async () => {
  const r = rng(4);
  // rows of a multiple of 4 after dim ([6, 4], [2, 5, 12], [3, 4, 2, 8]) move as vec4s in the kernel
  const cases = [[[7], 0, 12], [[5, 7], 0, 3], [[5, 7], -1, 9], [[2, 3, 257], 2, 40], [[4, 3, 2, 5], -3, 6], [[6, 4], 0, 3], [[2, 5, 12], 1, 7], [[3, 4, 2, 8], 1, 5]];
  for (const [shape, dim, n] of cases) {
    const d = (dim + shape.length) % shape.length;
    const x = Ref.random(shape, r).f32();
    for (const idt of ['i32', 'u32']) {
      const idx = randIndex([n], r, 0, shape[d], idt);
      // index_select == gather with the index broadcast over the other dims
      const outShape = shape.map((s, i) => (i === d ? n : s));
      const full = new Ref(Array.from({ length: size(outShape) }, (_, i) => idx.data[unravel(i, outShape)[d]]), outShape);
      const out = vg.indexSelect(x.toTensor(), dim, idx.toTensor());
      await assertClose(out, refGather(x, d, full), { ...EXACT, msg: `indexSelect [${shape}] dim ${dim} ${idt}` });
    }
  }
  const xi = vg.tensor([[1, 2], [3, 4], [5, 6]], null, { dtype: 'i32' });
  const sel = xi.indexSelect(0, vg.tensor([2, 2, 0], null, { dtype: 'i32' }));
  assert.is(sel.dtype, 'i32');
  assert.equal(await sel.array(), [[5, 6], [5, 6], [1, 2]]);
  const xu = vg.tensor([[1, 2, 3, 4], [5, 6, 7, 4294967295]], null, { dtype: 'u32' });
  assert.equal(await xu.indexSelect(0, vg.tensor([1, 0, 1], null, { dtype: 'i32' })).array(), [[5, 6, 7, 4294967295], [1, 2, 3, 4], [5, 6, 7, 4294967295]]);
});

test('oneHot: shapes [..., C], both index dtypes', async () => {
  const r = rng(5);
  for (const [shape, c] of [[[7], 3], [[3, 5], 10], [[2, 1, 4], 1], [[257], 300], [[], 4]]) {
    for (const idt of ['i32', 'u32']) {
      const idx = randIndex(shape, r, 0, c, idt);
      const out = vg.oneHot(idx.toTensor(), c);
      assert.is(out.dtype, 'i32');
      const ref = new Ref(Array.from({ length: size(shape) * c }, (_, i) => (idx.data[Math.floor(i / c)] === i % c ? 1 : 0)), [...shape, c]);
      await assertClose(out, ref, { ...EXACT, msg: `oneHot [${shape}] ${c} ${idt}` });
    }
  }
});

test('gradients match finite differences: gather (repeated indices), scatterAdd (input and src), indexSelect', async () => {
  const r = rng(6);
  const x = Ref.random([4, 5, 3], r);
  // repeated indices: gather's backward must accumulate
  const gi = randIndex([4, 7, 2], r, 0, 5);
  await gradcheck((a, i) => vg.gather(a, 1, i), [x, gi], { wrt: [0], msg: 'gather dim 1' });
  await gradcheck((a, i) => vg.gather(a, -1, i), [x, randIndex([2, 5, 6], r, 0, 3, 'u32')], { wrt: [0], msg: 'gather dim -1' });
  const si = randIndex([6, 5, 2], r, 0, 4);
  const src = Ref.random([7, 5, 3], r); // larger than the index: its extra entries get zero gradient
  await gradcheck((a, i, s) => vg.scatterAdd(a, 0, i, s), [x, si, src], { wrt: [0, 2], msg: 'scatterAdd' });
  await gradcheck((i, s) => vg.scatterAdd(vg.zeros([4, 5, 3]), 0, i, s), [si, src], { wrt: [1], msg: 'scatterAdd src only' });
  await gradcheck((a, i) => vg.indexSelect(a, 1, i), [x, new Ref([4, 0, 4, 2, 4], [5], 'i32')], { wrt: [0], msg: 'indexSelect' });
});

test('gather, scatterAdd and indexSelect gradients match finite differences of the float64 references (a 1% error fails)', async () => {
  const r = rng(16);
  const x = Ref.random([4, 5, 3], r);
  const gi = randIndex([4, 7, 2], r, 0, 5);
  await gradcheck64((a, i) => vg.gather(a, 1, i), (a, i) => refGather(a, 1, i), [x, gi], { msg: 'gather dim 1' });
  const si = randIndex([6, 5, 2], r, 0, 4);
  const src = Ref.random([7, 5, 3], r);
  await gradcheck64((a, i, s) => vg.scatterAdd(a, 0, i, s), (a, i, s) => refScatterAdd(a, 0, i, s)[0], [x, si, src], { msg: 'scatterAdd' });
  // indexSelect along dim 1 with repeats: out[i, j, k] = x[i, idx[j], k]
  const idx = [4, 0, 4, 2, 4];
  const selectRef = (a) => {
    const shape = [4, idx.length, 3];
    return new Ref(Array.from({ length: size(shape) }, (_, o) => {
      const [i, j, k] = unravel(o, shape);
      return a.get([i, idx[j], k]);
    }), shape);
  };
  await gradcheck64((a, i) => vg.indexSelect(a, 1, i), (a) => selectRef(a), [x, new Ref(idx, [5], 'i32')], { msg: 'indexSelect' });
});

test('scatterAdd with a recorded input frees its autodiff graph when its outputs are disposed', async () => {
  const index = vg.tensor([[0, 1, 2, 0]], null, { dtype: 'i32' });
  const src = vg.ones([1, 4]);
  const before = vg.memory().liveTensors;
  const a = vg.ones([3, 4], { requiresGrad: true });
  const x = a.mul(a); // its node saves two tensors
  const y = vg.scatterAdd(x, 0, index, src);
  for (const t of [y, x, a]) t.dispose();
  assert.is(vg.memory().liveTensors, before, 'tensors left alive');
});

test('bad input: float indices, rank and shape mismatches, dtype mismatch, bad numClasses', async () => {
  const x = vg.zeros([3, 4]);
  const i2 = vg.zeros([2, 2], { dtype: 'i32' });
  assertThrowsWith(() => vg.gather(x, 1, vg.zeros([3, 4])), ['gather', 'index', 'integer', 'f32']);
  assertThrowsWith(() => vg.gather(x, 1, vg.zeros([2], { dtype: 'i32' })), ['gather', 'index [2]', 'input [3, 4]', 'number of dims']);
  assertThrowsWith(() => vg.gather(x, 1, vg.zeros([4, 4], { dtype: 'i32' })), ['gather', 'index [4, 4]', 'input [3, 4]', 'dimension 0']);
  assertThrowsWith(() => vg.gather(x, 2, i2), ['gather', 'dim=2', 'rank 2']);
  assertThrowsWith(() => vg.gather(x, 0, [0, 1]), ['gather', 'index', 'Tensor', 'array']);
  assertThrowsWith(() => vg.scatterAdd(x, 0, vg.zeros([2, 2]), x), ['scatterAdd', 'index', 'integer', 'f32']);
  assertThrowsWith(() => vg.scatterAdd(x, 0, i2, vg.zeros([2, 2], { dtype: 'i32' })), ['scatterAdd', 'src dtype i32', 'input dtype f32']);
  assertThrowsWith(() => vg.scatterAdd(x, 0, i2, vg.zeros([2, 1])), ['scatterAdd', 'index [2, 2]', 'src [2, 1]', 'dimension 1']);
  assertThrowsWith(() => vg.scatterAdd(x, 0, i2, vg.zeros([4])), ['scatterAdd', 'src [4]', 'input [3, 4]', 'number of dims']);
  assertThrowsWith(() => vg.scatterAdd(x, 1, vg.zeros([4, 2], { dtype: 'i32' }), vg.zeros([4, 2])), ['scatterAdd', 'index [4, 2]', 'input [3, 4]', 'dimension 0']);
  assertThrowsWith(() => vg.scatterAdd(x, 0, vg.zeros([3], { dtype: 'i32' }), x), ['scatterAdd', 'index [3]', 'input [3, 4]']);
  assertThrowsWith(() => vg.indexSelect(x, 0, i2), ['indexSelect', '1-D', '[2, 2]']);
  assertThrowsWith(() => vg.indexSelect(x, 0, vg.zeros([2])), ['indexSelect', 'index', 'integer', 'f32']);
  assertThrowsWith(() => vg.indexSelect(x, -3, vg.zeros([2], { dtype: 'i32' })), ['indexSelect', 'dim=-3', 'rank 2']);
  assertThrowsWith(() => vg.indexSelect(vg.tensor(7), 0, vg.tensor([0, 0], null, { dtype: 'i32' })), ['indexSelect', 'index', '0-d input', 'one element', 'got 2']);
  assertThrowsWith(() => vg.oneHot(vg.zeros([3]), 4), ['oneHot', 'integer', 'f32']);
  for (const c of [0, -2, 2.5, undefined]) assertThrowsWith(() => vg.oneHot(i2, c), ['oneHot', 'numClasses', String(c)]);
});

test.run();
