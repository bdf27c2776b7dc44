// cumsum: against PyTorch fixtures (test/fixtures/gen_cumsum.py: every dim of a 3-D input, f32 and i32, 0-d) with
// the input gradient, against a float64 JS reference for long rows (several tiles, so the tile totals are scanned
// and added back, forward and reversed in backward), strided dims in both kernel layouts, i32 wrap-around, finite
// differences, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, size, vg } from './helpers.mjs';

test.before(setup);

const U = 2 ** -24; // f32 unit round-off
const CASES = loadFixtures('cumsum');

/** Float64 inclusive scan along dim (reversed: from the end of each line), and the running sum of magnitudes. */
function refScan(data, shape, dim, reverse = false) {
  const d = dim < 0 ? dim + shape.length : dim;
  const n = shape.length ? shape[d] : 1;
  const inner = size(shape.slice(d + 1));
  const outer = size(shape.slice(0, d));
  const out = new Float64Array(data.length);
  const mag = new Float64Array(data.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let s = 0;
      let m = 0;
      for (let q = 0; q < n; q++) {
        const j = reverse ? n - 1 - q : q;
        const at = (o * n + j) * inner + i;
        s += data[at];
        m += Math.abs(data[at]);
        out[at] = s;
        mag[at] = m;
      }
    }
  return { out, mag };
}

/**
 * An f32 scan of n terms is off by at most ~(tree depth) u per term times the sum of magnitudes; the tiled kernel
 * adds at most 8 + log2(256) + a carry per level, so 64u of the running magnitude sum is a safe bound.
 */
async function assertScan(t, data, shape, dim, reverse, msg) {
  const { out, mag } = refScan(data, shape, dim, reverse);
  const got = await t.data();
  for (let i = 0; i < out.length; i++)
    if (!(Math.abs(got[i] - out[i]) <= 64 * U * mag[i] + 1e-30))
      assert.unreachable(`${msg}: position ${i} is ${got[i]}, float64 reference ${out[i]} (bound ${64 * U * mag[i]})`);
}

test('cumsum matches PyTorch (every dim, f32 and i32, 0-d) with its input gradient', async () => {
  assert.ok(CASES.length >= 8, 'fixture cases present');
  for (const c of CASES) {
    const msg = `cumsum(x [${c.x.shape}] ${c.dtype}, ${c.dim})`;
    const x = fixtureRef(c.x).toTensor({ requiresGrad: c.dtype === 'f32' });
    const out = vg.cumsum(x, c.dim);
    assert.is(out.dtype, c.dtype, `${msg} dtype`);
    await assertClose(out, fixtureRef(c.out), { rtol: 0, atol: c.dtype === 'f32' ? 64 * U * 300 : 0, msg: `${msg} forward` });
    if (c.g) {
      out.backward(fixtureRef(c.g).toTensor());
      await assertClose(x.grad, fixtureRef(c.gx), { rtol: 0, atol: 64 * U * 300, msg: `${msg} input gradient` });
    }
    x.dispose();
    out.dispose();
  }
});

test('long and strided rows against float64: several tiles, both kernel layouts, forward and backward', async () => {
  const r = rng(21);
  const cases = [
    { shape: [(1 << 20) + 3], dim: 0 }, // 513 tiles of 2,048 (GPUs), 16,385 chunks of 64 (CPU adapters): their totals need a scan of their own
    { shape: [3, 5000], dim: 1 },
    { shape: [3000, 3], dim: 0 }, // tiled, strided
    { shape: [40, 4100], dim: 0 }, // one invocation per line (many lines side by side)
    { shape: [2, 40, 3, 7], dim: 1 },
  ];
  for (const { shape, dim } of cases) {
    const data = Float32Array.from(r.array(size(shape)));
    const x = vg.tensor(data, shape, { requiresGrad: true });
    const out = vg.cumsum(x, dim);
    await assertScan(out, data, shape, dim, false, `cumsum [${shape}] dim ${dim}`);
    const g = Float32Array.from(r.array(size(shape)));
    out.backward(vg.tensor(g, shape));
    // d/dx_j of sum_i g_i out_i = sum over i >= j of g_i: the reversed scan of g
    await assertScan(x.grad, g, shape, dim, true, `cumsum [${shape}] dim ${dim} backward`);
    x.dispose();
    out.dispose();
  }
});

test('integer cumsum stays i32/u32 and wraps around like i32 arithmetic', async () => {
  const r = rng(22);
  const n = 6000;
  const data = Int32Array.from({ length: n }, () => r.int(-(2 ** 30), 2 ** 30));
  const out = await vg.cumsum(vg.tensor(data, [n], { dtype: 'i32' }), 0).data();
  let s = 0;
  for (let i = 0; i < n; i++) {
    s = (s + data[i]) | 0;
    if (out[i] !== s) assert.unreachable(`i32 cumsum at ${i}: ${out[i]}, expected ${s}`);
  }
  const u = vg.cumsum(vg.tensor([4294967295, 1, 2], [3], { dtype: 'u32' }), 0);
  assert.is(u.dtype, 'u32');
  assert.equal(Array.from(await u.data()), [4294967295, 0, 2]);
});

test('gradcheck: finite differences agree with backward', async () => {
  const r = rng(23);
  await gradcheck((x) => vg.cumsum(x, 1), [Ref.random([3, 5, 4], r)], { msg: 'cumsum dim 1' });
  await gradcheck((x) => vg.cumsum(x, -1).square(), [Ref.random([2, 40], r)], { msg: 'cumsum dim -1, squared' });
  await gradcheck((x) => vg.cumsum(x, 0), [Ref.random([50, 2], r)], { msg: 'cumsum dim 0' });
});

test('tensor method and the op registry', async () => {
  const x = vg.tensor([1, 2, 3], [3]);
  assert.equal(Array.from(await x.cumsum(0).data()), [1, 3, 6]);
  const entry = vg.listOps().find((o) => o.name === 'cumsum');
  assert.ok(entry?.differentiable, 'cumsum is listed as differentiable');
  assert.equal([...entry.dtypes], ['f32', 'i32', 'u32']);
  x.dispose();
});

test('no tensors leak: the tile totals of long rows are released, forward and backward', async () => {
  const x = vg.tensor(Float32Array.from({ length: 300000 }, (_, i) => (i % 7) - 3), [300000], { requiresGrad: true });
  const before = vg.memory().liveTensors;
  const y = vg.cumsum(x, 0);
  assert.is(vg.memory().liveTensors, before + 1, 'only the output remains');
  const seed = vg.onesLike(y);
  y.backward(seed);
  y.dispose();
  seed.dispose();
  assert.is(vg.memory().liveTensors, before + 1, 'only x.grad remains after backward');
  x.dispose();
});

test('bad input names the op and the argument', () => {
  const x = vg.ones([2, 3]);
  assertThrowsWith(() => vg.cumsum(x, 2), ['cumsum', 'dim=2', 'out of range']);
  assertThrowsWith(() => vg.cumsum(x, 0.5), ['cumsum', 'dim must be an integer', '0.5']);
  assertThrowsWith(() => vg.cumsum(x), ['cumsum', 'dim is required']);
  assertThrowsWith(() => vg.cumsum([1, 2], 0), ['cumsum', 'input must be a Tensor']);
  x.dispose();
});

test.run();
