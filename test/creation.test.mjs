// Creation: tensor() from JS data (shape inference, dtypes, rounding), full/zeros/ones and the *Like forms, arange
// (PyTorch length rule, exact integers beyond 2^24, f32 round-off bound), and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
const EXACT = { rtol: 0, atol: 0 };

test('tensor: nested arrays infer the shape and round to f32; numbers are 0-d; empty arrays', async () => {
  const data = [[[0.1, -2.5], [1e-8, 3e38]], [[-0.3, 7], [1 / 3, -1e5]]];
  const t = vg.tensor(data);
  assert.is(t.dtype, 'f32');
  await assertClose(t, new Ref(data.flat(2), [2, 2, 2]).f32(), EXACT);
  assert.equal(await t.array(), data.map((a) => a.map((b) => b.map(Math.fround))));
  const s = vg.tensor(-1.5);
  assert.equal([...s.shape], []);
  assert.is(await s.item(), -1.5);
  await assertClose(vg.tensor([]), new Ref([], [0]));
  await assertClose(vg.tensor([[], []]), new Ref([], [2, 0]));
  await assertClose(vg.tensor([1, 2, 3, 4, 5, 6], [3, 1, 2]), new Ref([1, 2, 3, 4, 5, 6], [3, 1, 2]));
  await assertClose(vg.tensor([4], []), new Ref([4], []));
  const g = vg.tensor([1, 2], null, { requiresGrad: true });
  assert.ok(g.requiresGrad && g.isLeaf);
});

test('tensor: typed arrays pick the dtype; dtype option converts (int truncation, u32 above 2^31)', async () => {
  const r = rng(1);
  const f64 = Float64Array.from(r.array(1000, -1e3, 1e3));
  const a = vg.tensor(f64, [10, 100]);
  assert.is(a.dtype, 'f32');
  await assertClose(a, new Ref(f64, [10, 100]).f32(), EXACT);
  const i32 = Int32Array.from([-2147483648, -1, 0, 2147483647]);
  const b = vg.tensor(i32);
  assert.is(b.dtype, 'i32');
  assert.equal(Array.from(await b.data()), Array.from(i32));
  const u32 = Uint32Array.from([0, 2147483648, 4294967295]);
  const c = vg.tensor(u32);
  assert.is(c.dtype, 'u32');
  assert.equal(Array.from(await c.data()), Array.from(u32));
  assert.is(vg.tensor(Float32Array.of(1, 2)).dtype, 'f32');
  // JS ToInt32 truncates toward zero, as PyTorch's float → int conversion does
  assert.equal(Array.from(await vg.tensor([1.7, -1.7, 3], null, { dtype: 'i32' }).data()), [1, -1, 3]);
  assert.equal(Array.from(await vg.tensor([4e9, 7], null, { dtype: 'u32' }).data()), [4e9, 7]);
  assert.equal(Array.from(await vg.tensor(i32, [2, 2], { dtype: 'f32' }).data()), Array.from(i32, Math.fround));
  // a subarray view uploads only its own elements
  const view = new Float32Array([9, 8, 7, 6, 5]).subarray(1, 4);
  assert.equal(Array.from(await vg.tensor(view).data()), [8, 7, 6]);
  // a large upload round-trips bit-exactly
  const big = Float32Array.from(r.array(1 << 20, -1, 1));
  assert.equal(await vg.tensor(big).data(), big);
});

const SHAPES = [[], [0], [7], [3, 5], [2, 1, 257], [3, 0, 2]];

test('full / zeros / ones: every dtype and shape (0-d, empty, odd sizes), special values', async () => {
  for (const shape of SHAPES) {
    for (const [dtype, value] of [['f32', -7.25], ['f32', 0.1], ['f32', NaN], ['f32', -Infinity], ['i32', -7], ['i32', 2147483647], ['u32', 4e9]]) {
      const t = vg.full(shape, value, { dtype });
      assert.is(t.dtype, dtype);
      await assertClose(t, new Ref(new Array(size(shape)).fill(dtype === 'f32' ? Math.fround(value) : value), shape), { ...EXACT, msg: `full [${shape}] ${dtype} ${value}` });
    }
    for (const dtype of ['f32', 'i32', 'u32']) {
      await assertClose(vg.zeros(shape, { dtype }), new Ref(new Array(size(shape)).fill(0), shape), { ...EXACT, msg: `zeros [${shape}] ${dtype}` });
      await assertClose(vg.ones(shape, { dtype }), new Ref(new Array(size(shape)).fill(1), shape), { ...EXACT, msg: `ones [${shape}] ${dtype}` });
      assert.is(vg.ones(shape, { dtype }).dtype, dtype);
    }
  }
  assert.is(vg.zeros([2]).dtype, 'f32');
  // integer fills truncate toward zero; -0 keeps its sign bit in f32
  assert.equal(Array.from(await vg.full([2], 2.7, { dtype: 'i32' }).data()), [2, 2]);
  assert.ok(Object.is((await vg.full([1], -0).data())[0], -0));
  const p = vg.ones([2, 3], { requiresGrad: true });
  assert.ok(p.requiresGrad && p.isLeaf);
  // 1M elements: more than one row of workgroups' worth of fill
  const big = await vg.full([1000, 1001], 3.5).data();
  assert.ok(big.length === 1001000 && big.every((v) => v === 3.5));
});

test('zerosLike / onesLike / fullLike keep shape and dtype, accept a dtype override and requiresGrad', async () => {
  for (const [shape, dtype] of [[[3, 5], 'f32'], [[7], 'i32'], [[2, 1, 4], 'u32'], [[], 'f32']]) {
    const x = vg.full(shape, 9, { dtype });
    for (const [out, v] of [[vg.zerosLike(x), 0], [vg.onesLike(x), 1], [vg.fullLike(x, 5), 5]]) {
      assert.is(out.dtype, dtype);
      await assertClose(out, new Ref(new Array(size(shape)).fill(v), shape), { ...EXACT, msg: `[${shape}] ${dtype} ${v}` });
    }
  }
  const x = vg.zeros([2, 3], { dtype: 'i32' });
  const f = vg.fullLike(x, 0.5, { dtype: 'f32', requiresGrad: true });
  assert.is(f.dtype, 'f32');
  assert.ok(f.requiresGrad);
  await assertClose(f, new Ref([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [2, 3]), EXACT);
  assert.is(vg.onesLike(x, { dtype: 'u32' }).dtype, 'u32');
  assert.is(vg.zerosLike(x, { dtype: undefined }).dtype, 'i32', 'an undefined dtype option keeps the input dtype');
});

/** PyTorch's arange: ceil((end - start) / step) values start + i * step (computed in float64 here). */
function refArange(start, end, step) {
  const n = Math.max(0, Math.ceil((end - start) / step));
  return new Ref(Array.from({ length: n }, (_, i) => start + i * step), [n]);
}

test('arange: integer forms are exact (i32, u32, beyond 2^24, negative steps); float forms within f32 round-off', async () => {
  for (const [args, dtype] of [
    [[5], 'i32'],
    [[2, 9], 'i32'],
    [[10, 0, -3], 'i32'],
    [[-7, 8, 4], 'i32'],
    [[1, 1], 'i32'],
    [[5, 0], 'i32'],
    [[0, 10, 3, { dtype: 'u32' }], 'u32'],
    [[0, 5, 1, { dtype: 'f32' }], 'f32'],
    [[2 ** 24 + 1, 2 ** 24 + 6], 'i32'], // not representable in f32: must not pass through a float
    [[2 ** 31 - 4, 2 ** 31 - 1], 'i32'],
    [[-(2 ** 31), -(2 ** 31) + 2000, 7], 'i32'],
    [[4e9, 4e9 + 5, 1, { dtype: 'u32' }], 'u32'],
    [[4294967295, 4e9, -99999999, { dtype: 'u32' }], 'u32'],
    [[0, 1000000], 'i32'],
    [[4, null, 1, { dtype: 'f32' }], 'f32'], // arange(end) with options
  ]) {
    const [start, end = undefined, step = 1] = args.length === 1 ? [args[0]] : args;
    const t = vg.arange(...args);
    assert.is(t.dtype, dtype, `arange(${args}) dtype`);
    await assertClose(t, end == null ? refArange(0, start, 1) : refArange(start, end, step), { ...EXACT, msg: `arange(${JSON.stringify(args)})` });
  }
  for (const [start, end, step] of [[0, 1, 0.1], [-1, 1, 0.25], [1.5, -2, -0.3], [0, 10000, 0.37], [-3.3, 3.3, 0.11]]) {
    const t = vg.arange(start, end, step);
    assert.is(t.dtype, 'f32');
    // f32(start) + f32(i) * f32(step): roundings of step, the product, start and the sum, each <= u of a value no
    // larger than |start| + i |step|
    const n = Math.ceil((end - start) / step);
    await assertClose(t, refArange(start, end, step), { rtol: 0, atol: 4 * U * (Math.abs(start) + n * Math.abs(step)), msg: `arange(${start}, ${end}, ${step})` });
  }
});

test('bad input: ragged data, shape/data mismatch, unknown dtypes, integer grads, bad fill values, bad arange', async () => {
  assertThrowsWith(() => vg.tensor([[1, 2], [3]]), ['tensor', 'ragged', 'depth 1']);
  assertThrowsWith(() => vg.tensor([[1, 2], 3]), ['tensor', 'ragged']);
  assertThrowsWith(() => vg.tensor([1, 'a']), ['tensor', 'non-number', 'string']);
  assertThrowsWith(() => vg.tensor([1, 2, 3], [2, 2]), ['tensor', 'shape [2, 2]', '4 elements', 'data has 3']);
  assertThrowsWith(() => vg.tensor([1, 2], 2), ['tensor', 'shape', '2']);
  assertThrowsWith(() => vg.tensor([1, 2], [2.5]), ['tensor', 'non-negative integers', '[2.5]']);
  assertThrowsWith(() => vg.tensor('abc'), ['tensor', 'string']);
  assertThrowsWith(() => vg.tensor([1], null, { dtype: 'f64' }), ['tensor', 'f64', "'f32'"]);
  assertThrowsWith(() => vg.tensor([1], null, { dtype: 'f16' }), ['tensor', 'f16', 'not supported']);
  assertThrowsWith(() => vg.tensor([1], null, { dtype: 'i32', requiresGrad: true }), ['tensor', 'i32', 'gradients']);
  assertThrowsWith(() => vg.tensor(new Array(9).fill(0), [1, 1, 1, 1, 1, 1, 1, 1, 9]), ['tensor', 'rank 9']);
  assertThrowsWith(() => vg.full([2, -1], 0), ['full', '[2, -1]', 'non-negative']);
  assertThrowsWith(() => vg.full([2], '1'), ['full', 'number', 'string']);
  assertThrowsWith(() => vg.zeros(3), ['zeros', 'shape', '3']);
  assertThrowsWith(() => vg.ones([2], { dtype: 'bool' }), ['ones', 'bool']);
  assertThrowsWith(() => vg.zeros([2], { dtype: 'u32', requiresGrad: true }), ['zeros', 'u32', 'gradients']);
  assertThrowsWith(() => vg.onesLike(vg.zeros([2], { dtype: 'i32' }), { requiresGrad: true }), ['onesLike', 'i32', 'gradients']);
  assertThrowsWith(() => vg.zerosLike([1, 2]), ['zerosLike', 'Tensor', 'array']);
  assertThrowsWith(() => vg.onesLike(null), ['onesLike', 'Tensor', 'null']);
  assertThrowsWith(() => vg.fullLike(3, 1), ['fullLike', 'Tensor', 'number 3']);
  assertThrowsWith(() => vg.arange(0, 5, 0), ['arange', 'step', 'non-zero']);
  assertThrowsWith(() => vg.arange(0, Infinity), ['arange', 'finite', 'Infinity']);
  assertThrowsWith(() => vg.arange(NaN), ['arange', 'finite', 'NaN']);
  assertThrowsWith(() => vg.arange(0, 3, 0.5, { dtype: 'i32' }), ['arange', 'integers', 'i32', '0.5']);
  assertThrowsWith(() => vg.arange(0, 5e9, 1e9), ['arange', 'i32', '4000000000', 'fit']);
  assertThrowsWith(() => vg.arange(-2, 2, 1, { dtype: 'u32' }), ['arange', 'u32', '-2', 'fit']);
  assertThrowsWith(() => vg.arange(0, 4, 1, { dtype: 'f64' }), ['arange', 'f64']);
  assertThrowsWith(() => vg.arange(4, null, 1, { requiresGrad: true }), ['arange', 'i32', 'gradients']);
});

test('integer dtypes refuse values they cannot represent (issue 12 defect 10), as torch.tensor does; fractions truncate', async () => {
  // torch 1.13: torch.tensor([3e10], dtype=torch.int32) and [nan] raise "cannot be converted to type int32 without overflow"
  assertThrowsWith(() => vg.tensor([3e10, NaN], [2], { dtype: 'i32' }), ['tensor', '30000000000', 'flat index 0', 'i32', '2147483647']);
  assertThrowsWith(() => vg.tensor([1, NaN], [2], { dtype: 'i32' }), ['tensor', 'NaN', 'flat index 1', 'i32']);
  assertThrowsWith(() => vg.tensor([Infinity], null, { dtype: 'u32' }), ['tensor', 'Infinity', 'u32']);
  assertThrowsWith(() => vg.tensor([2 ** 31], null, { dtype: 'i32' }), ['tensor', '2147483648', 'i32']);
  assertThrowsWith(() => vg.tensor([-1], null, { dtype: 'u32' }), ['tensor', '-1', 'u32', '4294967295']);
  assertThrowsWith(() => vg.tensor(Int32Array.of(5, -3), null, { dtype: 'u32' }), ['tensor', '-3', 'flat index 1', 'u32']);
  // a large (GPU-uploaded) typed array is checked too
  const big = new Float32Array(1000).fill(1);
  big[777] = 5e9;
  assertThrowsWith(() => vg.tensor(big, null, { dtype: 'i32' }), ['tensor', '5000000000', 'flat index 777']);
  assertThrowsWith(() => vg.full([3], NaN, { dtype: 'i32' }), ['full', 'NaN', 'i32']);
  assertThrowsWith(() => vg.full([300], -1, { dtype: 'u32' }), ['full', '-1', 'u32']);
  assertThrowsWith(() => vg.fullLike(vg.zeros([2], { dtype: 'i32' }), 1e10), ['fullLike', '10000000000', 'i32']);
  // the limits themselves and truncated fractions are accepted (torch truncates toward zero)
  assert.equal(Array.from(await vg.tensor([-(2 ** 31), 2 ** 31 - 1, -2.7, 2.7], null, { dtype: 'i32' }).data()), [-(2 ** 31), 2 ** 31 - 1, -2, 2]);
  assert.equal(Array.from(await vg.tensor([0, 2 ** 32 - 1, -0.5], null, { dtype: 'u32' }).data()), [0, 2 ** 32 - 1, 0]);
});

test('a creation that throws allocates nothing', async () => {
  const before = vg.memory().liveTensors;
  for (const fn of [
    () => vg.tensor([1, 2], null, { dtype: 'u32', requiresGrad: true }),
    () => vg.full([3], 1, { dtype: 'i32', requiresGrad: true }),
    () => vg.arange(0, 3, 1, { dtype: 'i32', requiresGrad: true }),
    () => vg.arange(-1, 3, 1, { dtype: 'u32' }),
    () => vg.tensor(new Float32Array(1000).fill(NaN), null, { dtype: 'i32' }),
    () => vg.full([1000], 1e12, { dtype: 'u32' }),
  ])
    assert.throws(fn);
  assert.is(vg.memory().liveTensors, before);
});

test.run();
