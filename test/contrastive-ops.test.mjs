// scatter, quantile, maskedSelect, nonzero: against PyTorch fixtures (test/fixtures/gen_contrastive.py: scatter with
// distinct positions, src tensor or a number; quantile with one or several q, a dim or the flattened input, keepdim,
// a NaN line; forward and gradients), float64 JS references (compaction of a few million elements, broadcasting,
// every dtype), finite differences, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck64, markReferenceComparison, rng, setup, size, unravel, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('contrastive');
const EXACT = { rtol: 0, atol: 0 };

test('scatter matches torch.scatter: output and the gradients of input and src (distinct positions, a number as src)', async () => {
  const cases = CASES.filter((c) => c.op === 'scatter');
  assert.ok(cases.length >= 3, 'fixture cases present');
  for (const c of cases) {
    const msg = `scatter x [${c.x.shape}] dim ${c.dim} index [${c.index.shape}] ${c.src ? 'src' : `value ${c.value}`}`;
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const index = fixtureRef(c.index).toTensor();
    const src = c.src ? fixtureRef(c.src).toTensor({ requiresGrad: true }) : c.value;
    const y = vg.scatter(x, c.dim, index, src);
    await assertClose(y, fixtureRef(c.out), { ...EXACT, msg });
    y.backward(fixtureRef(c.g).toTensor());
    await assertClose(x.grad, fixtureRef(c.gx), { ...EXACT, msg: `${msg} input gradient` });
    if (c.src) await assertClose(src.grad, fixtureRef(c.gsrc), { ...EXACT, msg: `${msg} src gradient` });
    for (const t of [x, index, y, c.src ? src : null]) t?.dispose();
  }
});

test('scatter: i32 input, src larger than index, method form, finite differences', async () => {
  const x = vg.tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: 'i32' });
  const index = vg.tensor([2, 0], [2, 1], { dtype: 'i32' });
  const src = vg.tensor([10, 11, 12, 13, 14, 15], [2, 3], { dtype: 'i32' });
  const y = x.scatter(1, index, src);
  await assertClose(y, new Ref([1, 2, 10, 13, 5, 6], [2, 3]), { ...EXACT, msg: 'i32 scatter, src [2, 3] for index [2, 1]' });
  const r = rng(31);
  const idx = new Ref([1, 3, 0, 2, 4, 1], [2, 3], 'i32');
  const idxT = idx.toTensor();
  const ref = (xr, sr) => {
    const out = Float64Array.from(xr.data);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) out[i * 5 + idx.data[i * 3 + j]] = sr.data[i * 4 + j];
    return new Ref(out, [2, 5]);
  };
  await gradcheck64((a, b) => vg.scatter(a, 1, idxT, b), ref, [Ref.random([2, 5], r), Ref.random([2, 4], r)], { msg: 'scatter' });
  for (const t of [x, index, src, y, idxT]) t.dispose();
});

test('quantile matches torch.quantile: one or several q, dim or flattened, keepdim, a NaN line; the gradient', async () => {
  const cases = CASES.filter((c) => c.op === 'quantile');
  assert.ok(cases.length >= 5, 'fixture cases present');
  for (const c of cases) {
    const msg = `quantile x [${c.x.shape}] q ${JSON.stringify(c.q)} dim ${c.dim} keepdim ${c.keepdim}`;
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const y = vg.quantile(x, c.q, { dim: c.dim, keepdim: c.keepdim });
    const want = fixtureRef(c.out);
    // (fixture_io stores a 0-d reference as [1])
    await assertClose(y, y.ndim === 0 ? new Ref(want.data, []) : want, { rtol: 1e-6, atol: 1e-6, msg });
    if (c.g) {
      y.backward(new Ref(fixtureRef(c.g).data, y.shape).toTensor());
      await assertClose(x.grad, fixtureRef(c.gx), { rtol: 1e-5, atol: 1e-6, msg: `${msg} gradient` });
    }
    x.dispose();
    y.dispose();
  }
  const x = vg.tensor([3, 1, 2, 5]);
  await assertClose(x.quantile(0.5), new Ref([2.5], []), { ...EXACT, msg: 'method form' });
  x.dispose();
});

test('quantile: finite differences along a dim of distinct values', async () => {
  const r = rng(32);
  const data = Array.from({ length: 3 * 7 }, (_, i) => i * 0.1);
  for (let i = data.length - 1; i > 0; i--) {
    const j = r.int(0, i + 1);
    [data[i], data[j]] = [data[j], data[i]];
  }
  const ref = (xr) => {
    const out = [];
    for (const qq of [0.2, 0.65])
      for (let row = 0; row < 3; row++) {
        const line = Array.from(xr.data.slice(row * 7, row * 7 + 7)).sort((a, b) => a - b);
        const pos = qq * 6;
        const lo = Math.floor(pos);
        out.push(line[lo] + (line[Math.min(lo + 1, 6)] - line[lo]) * (pos - lo));
      }
    return new Ref(out, [2, 3]);
  };
  await gradcheck64((x) => vg.quantile(x, [0.2, 0.65], { dim: 1 }), ref, [new Ref(data, [3, 7])], { eps: 1e-4, msg: 'quantile' });
});

/** Float64 reference of masked_select and nonzero over a flat array. */
function refSelect(values, maskValues) {
  const picked = [];
  const where = [];
  maskValues.forEach((m, i) => {
    if (m !== 0) {
      picked.push(values[i]);
      where.push(i);
    }
  });
  return { picked, where };
}

test('maskedSelect and nonzero: row-major order over a million elements (many scan tiles), every dtype', async () => {
  const r = rng(33);
  for (const [shape, density] of [[[700, 900], 0.3], [[7, 11, 13], 0.5], [[1 << 20], 0.001], [[50], 0], [[4, 4], 1]]) {
    const n = size(shape);
    const maskValues = Array.from({ length: n }, () => (r.next() < density ? 1 : 0));
    const values = Array.from({ length: n }, (_, i) => (i % 1000) - 500);
    const { picked, where } = refSelect(values, maskValues);
    const mask = vg.tensor(maskValues, shape, { dtype: 'u32' });
    for (const dtype of ['f32', 'i32']) {
      const x = vg.tensor(values, shape, { dtype });
      const sel = await vg.maskedSelect(x, mask);
      assert.is(sel.dtype, dtype);
      await assertClose(sel, new Ref(picked, [picked.length]), { ...EXACT, msg: `maskedSelect [${shape}] ${dtype} density ${density}` });
      x.dispose();
      sel.dispose();
    }
    const nz = await mask.nonzero();
    assert.is(nz.dtype, 'i32');
    const coords = where.flatMap((i) => unravel(i, shape));
    await assertClose(nz, new Ref(coords, [where.length, shape.length]), { ...EXACT, msg: `nonzero [${shape}] density ${density}` });
    mask.dispose();
    nz.dispose();
  }
});

test('maskedSelect broadcasts, f32 masks count every nonzero, gradient back to the selected elements', async () => {
  const r = rng(34);
  const xr = Ref.random([3, 4], r).f32();
  const maskRow = [0, 1.5, 0, -2];
  const x = xr.toTensor({ requiresGrad: true });
  const mask = vg.tensor(maskRow, [4]);
  const sel = await x.maskedSelect(mask);
  const picked = [0, 1, 2].flatMap((i) => [xr.data[i * 4 + 1], xr.data[i * 4 + 3]]);
  await assertClose(sel, new Ref(picked, [6]), { ...EXACT, msg: 'broadcast mask' });
  const g = Ref.random([6], r).f32();
  sel.backward(g.toTensor());
  const gx = new Float64Array(12);
  [0, 1, 2].forEach((i) => ((gx[i * 4 + 1] = g.data[2 * i]), (gx[i * 4 + 3] = g.data[2 * i + 1])));
  await assertClose(x.grad, new Ref(gx, [3, 4]), { ...EXACT, msg: 'maskedSelect gradient' });
  // a broadcast input: its gradient sums over the broadcast dim
  const row = vg.tensor([1, 2, 3], [3], { requiresGrad: true });
  const m2 = vg.tensor([1, 0, 1, 1, 1, 0], [2, 3], { dtype: 'i32' });
  const s2 = await vg.maskedSelect(row, m2);
  await assertClose(s2, new Ref([1, 3, 1, 2], [4]), { ...EXACT, msg: 'broadcast input' });
  s2.backward(vg.tensor([1, 10, 100, 1000], [4]));
  await assertClose(row.grad, new Ref([101, 1000, 10], [3]), { ...EXACT, msg: 'broadcast input gradient' });
  for (const t of [x, mask, sel, row, m2, s2]) t.dispose();
});

test('maskedSelect: finite differences; nonzero of a 0-d and an empty tensor', async () => {
  const r = rng(35);
  const maskValues = [1, 0, 0, 1, 1, 0, 1, 0];
  const mask = vg.tensor(maskValues, [2, 4], { dtype: 'i32' });
  // gradcheck64 needs a synchronous fn: the selection is computed once, then replayed with the same count
  const sel = await vg.maskedSelect(vg.zeros([2, 4]), mask);
  const count = sel.shape[0];
  sel.dispose();
  assert.is(count, 4);
  const ref = (xr) => new Ref(xr.data.filter((_, i) => maskValues[i]), [count]);
  const idx = vg.tensor([0, 3, 4, 6], [4], { dtype: 'i32' });
  await gradcheck64((x) => vg.indexSelect(vg.reshape(x, [-1]), 0, idx), ref, [Ref.random([2, 4], r)], { msg: 'selection reference' });
  const xs = Ref.random([2, 4], r);
  const x = xs.toTensor({ requiresGrad: true });
  const y = await vg.maskedSelect(x, mask);
  const R = Ref.random([count], r);
  vg.sum(vg.mul(y, R.toTensor())).backward();
  const want = new Float64Array(8);
  [0, 3, 4, 6].forEach((i, k) => (want[i] = Float32Array.from(R.data)[k]));
  await assertClose(x.grad, new Ref(want, [2, 4]), { ...EXACT, msg: 'maskedSelect gradient of the probe' });
  const z = await vg.nonzero(vg.tensor(5));
  assert.equal(z.shape, [1, 0]);
  const e = await vg.nonzero(vg.zeros([0, 3]));
  assert.equal(e.shape, [0, 2]);
  markReferenceComparison();
  for (const t of [mask, idx, x, y, z, e]) t.dispose();
});

test('bad input: scatter, quantile, maskedSelect name the op and the argument', async () => {
  const x = vg.zeros([3, 4]);
  const idx = vg.zeros([3, 2], { dtype: 'i32' });
  assertThrowsWith(() => vg.scatter(x, 1, vg.zeros([3, 2]), vg.zeros([3, 2])), ['scatter', 'index', 'integer', 'f32']);
  assertThrowsWith(() => vg.scatter(x, 2, idx, vg.zeros([3, 2])), ['scatter', 'dim']);
  assertThrowsWith(() => vg.scatter(x, 1, idx, vg.zeros([3, 2], { dtype: 'i32' })), ['scatter', 'src dtype i32', 'f32']);
  assertThrowsWith(() => vg.scatter(x, 1, vg.zeros([4, 2], { dtype: 'i32' }), vg.zeros([4, 2])), ['scatter', 'index [4, 2]', 'input [3, 4]']);
  assertThrowsWith(() => vg.scatter(x, 1, vg.full([3, 2], 4, { dtype: 'i32' }), 1), ['scatter', 'index']);
  assertThrowsWith(() => vg.quantile(x, 1.5), ['quantile', 'q', '[0, 1]', '1.5']);
  assertThrowsWith(() => vg.quantile(x, []), ['quantile', 'q', 'non-empty']);
  assertThrowsWith(() => vg.quantile(x, 0.5, { dim: 3 }), ['quantile', 'dim']);
  assertThrowsWith(() => vg.quantile(x, 0.5, { interpolation: 'nearest' }), ['quantile', 'interpolation', 'nearest']);
  assertThrowsWith(() => vg.quantile(vg.zeros([3, 0]), 0.5, { dim: 1 }), ['quantile', 'empty']);
  assertThrowsWith(() => vg.quantile(vg.zeros([3], { dtype: 'i32' }), 0.5), ['quantile', 'f32', 'i32']);
  let err;
  try {
    await vg.maskedSelect(x, vg.zeros([2, 4]));
  } catch (e) {
    err = e;
  }
  assert.instance(err, vg.VoxgradError);
  assert.ok(err.message.includes('maskedSelect') && err.message.includes('[3, 4]') && err.message.includes('[2, 4]'), err.message);
  for (const t of [x, idx]) t.dispose();
});

test.run();
