// Shape ops: forward against float64 index-remapping references (every op is a pure data movement, so results must
// match exactly), for f32 and the integer dtypes; gradients by finite differences; bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck, gradcheck64, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

const EXACT = { rtol: 0, atol: 0 };

/** out[c] = x[map(c)] over every coordinate c of outShape; map returns input coords, or null for `fill`. */
function remap(x, outShape, map, fill = 0) {
  const out = new Float64Array(size(outShape));
  for (let i = 0; i < out.length; i++) {
    const ic = map(unravel(i, outShape));
    out[i] = ic ? x.get(ic) : fill;
  }
  return new Ref(out, outShape, x.dtype);
}

const refPermute = (x, dims) =>
  remap(x, dims.map((d) => x.shape[d]), (c) => {
    const ic = [];
    dims.forEach((d, k) => (ic[d] = c[k]));
    return ic;
  });
const refExpand = (x, shape) => remap(x, shape, (c) => x.shape.map((s, i) => (s === 1 ? 0 : c[shape.length - x.shape.length + i])));
/** Entries idx of dim (index_select); slices, narrow, split and flip are all index lists. */
const refTake = (x, dim, idx) => remap(x, x.shape.map((s, i) => (i === dim ? idx.length : s)), (c) => c.map((v, i) => (i === dim ? idx[v] : v)));
const range = (n) => [...Array(n).keys()];
/** Python/PyTorch x[start:end:step] along one dim (step > 0): JS Array slice clamps exactly like Python. */
const sliceIdx = (n, start, end, step) => range(n).slice(start, end ?? n).filter((_, i) => i % step === 0);
function refCat(parts, dim) {
  const sizes = parts.map((p) => p.shape[dim]);
  const shape = parts[0].shape.map((s, i) => (i === dim ? sizes.reduce((a, b) => a + b, 0) : s));
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, shape);
    let k = 0;
    while (c[dim] >= sizes[k]) c[dim] -= sizes[k++];
    out[i] = parts[k].get(c);
  }
  return new Ref(out, shape, parts[0].dtype);
}
/** pad: (before, after) pairs from the last dim; negative widths crop. */
function refPad(x, padding, value) {
  const before = x.shape.map(() => 0);
  const shape = [...x.shape];
  for (let i = 0; i < padding.length / 2; i++) {
    const d = x.shape.length - 1 - i;
    before[d] = padding[2 * i];
    shape[d] += padding[2 * i] + padding[2 * i + 1];
  }
  return remap(x, shape, (c) => {
    const ic = c.map((v, i) => v - before[i]);
    return ic.every((v, i) => v >= 0 && v < x.shape[i]) ? ic : null;
  }, value);
}
const withShape = (x, shape) => new Ref(x.data, shape, x.dtype);

/** Random data for each dtype; u32 values above 2^31 and negative i32 check that words move untouched. */
function randomOf(shape, r, dtype = 'f32') {
  if (dtype === 'f32') return Ref.random(shape, r, -2, 2).f32();
  const [lo, hi] = dtype === 'i32' ? [-2e9, 2e9] : [0, 4.2e9];
  return new Ref(r.array(size(shape), lo, hi).map(Math.floor), shape, dtype);
}
const DTYPES = ['f32', 'i32', 'u32'];

test('reshape / view / flatten / squeeze / unsqueeze: shapes (incl. -1, negative dims) and data', async () => {
  const r = rng(1);
  for (const dtype of DTYPES) {
    const x = randomOf([2, 1, 3, 4], r, dtype);
    const t = x.toTensor();
    for (const [out, shape] of [
      [vg.reshape(t, [6, 4]), [6, 4]],
      [vg.reshape(t, [-1, 8]), [3, 8]],
      [vg.reshape(t, [4, 1, -1]), [4, 1, 6]],
      [t.view([24]), [24]],
      [vg.reshape(t, [2, 1, 3, 4]), [2, 1, 3, 4]],
      [vg.flatten(t), [24]],
      [vg.flatten(t, 1), [2, 12]],
      [t.flatten(-3, -2), [2, 3, 4]],
      [vg.flatten(t, 2, 2), [2, 1, 3, 4]],
      [vg.squeeze(t), [2, 3, 4]],
      [vg.squeeze(t, 1), [2, 3, 4]],
      [vg.squeeze(t, [0, -3]), [2, 3, 4]], // dim 0 has size 2: left alone, as in PyTorch
      [vg.unsqueeze(t, 0), [1, 2, 1, 3, 4]],
      [vg.unsqueeze(t, 4), [2, 1, 3, 4, 1]],
      [t.unsqueeze(-1), [2, 1, 3, 4, 1]],
      [vg.unsqueeze(t, -5), [1, 2, 1, 3, 4]],
      [vg.unsqueeze(t, 2), [2, 1, 1, 3, 4]],
    ]) {
      assert.is(out.dtype, dtype);
      await assertClose(out, withShape(x, shape), { ...EXACT, msg: `${dtype} → [${shape}]` });
    }
  }
  const s = vg.tensor(5);
  await assertClose(vg.flatten(s), new Ref([5], [1]));
  await assertClose(vg.reshape(s, [1, 1]), new Ref([5], [1, 1]));
  await assertClose(vg.squeeze(vg.ones([1, 1])), new Ref([1], []));
  await assertClose(vg.reshape(vg.zeros([0, 3]), [3, -1, 2]), new Ref([], [3, 0, 2]));
});

test('permute / transpose: every dtype, random ranks 1-6 and permutations (negative dims), vs float64', async () => {
  const r = rng(2);
  for (const dtype of DTYPES)
    for (const shape of [[7], [3, 5], [2, 1, 257], [4, 3, 2, 5], [2, 3, 1, 2, 3], [3, 2, 2, 1, 2, 3]]) {
      const x = randomOf(shape, r, dtype);
      const t = x.toTensor();
      const dims = range(shape.length);
      for (let i = dims.length - 1; i > 0; i--) {
        const j = r.int(0, i + 1);
        [dims[i], dims[j]] = [dims[j], dims[i]];
      }
      const neg = dims.map((d, i) => (i % 2 ? d - shape.length : d));
      await assertClose(vg.permute(t, neg), refPermute(x, dims), { ...EXACT, msg: `permute ${dtype} [${shape}] ${neg}` });
      const [a, b] = [r.int(0, shape.length), r.int(0, shape.length)];
      const sw = range(shape.length);
      [sw[a], sw[b]] = [sw[b], sw[a]];
      await assertClose(t.transpose(a, b - shape.length), refPermute(x, sw), { ...EXACT, msg: `transpose ${dtype} [${shape}] ${a} ${b}` });
      t.dispose();
    }
  const x = randomOf([64, 129, 33], r);
  await assertClose(vg.permute(x.toTensor(), [2, 0, 1]), refPermute(x, [2, 0, 1]), { ...EXACT, msg: 'large permute' });
});

test('expand / broadcastTo: new leading dims, -1, size-1 dims, every dtype', async () => {
  const r = rng(3);
  for (const dtype of DTYPES)
    for (const [shape, target, want] of [
      [[1], [7], [7]],
      [[3, 1], [2, 3, 257], [2, 3, 257]],
      [[1, 4, 1], [5, -1, 3], [5, 4, 3]],
      [[2, 1, 3], [4, 2, 5, 3], [4, 2, 5, 3]],
      [[2, 3], [2, 3], [2, 3]],
      [[1, 1], [0, 3], [0, 3]],
    ]) {
      const x = randomOf(shape, r, dtype);
      await assertClose(vg.expand(x.toTensor(), target), refExpand(x, want), { ...EXACT, msg: `expand ${dtype} [${shape}] → [${target}]` });
      await assertClose(vg.broadcastTo(x.toTensor(), want), refExpand(x, want), { ...EXACT, msg: `broadcastTo ${dtype}` });
    }
});

test('launches beyond 65535 workgroups use the 2-D grid: expand to 16.8M elements', async () => {
  // 300 x 56000 = 16.8M elements = 65625 workgroups of 256 > maxComputeWorkgroupsPerDimension
  const rows = 300;
  const cols = 56000;
  const out = vg.expand(vg.arange(0, rows).reshape([rows, 1]), [rows, cols]);
  const d = await out.data();
  let bad = -1;
  for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== Math.floor(i / cols)) bad = i;
  assert.is(bad, -1, `element ${bad} is ${d[bad]}, expected ${Math.floor(bad / cols)}`);
  out.dispose();
});

test('slice (Python clamping, steps, empty) / narrow / split / flip vs float64 index lists, every dtype', async () => {
  const r = rng(4);
  for (const dtype of DTYPES) {
    const shape = [5, 7, 3];
    const x = randomOf(shape, r, dtype);
    const t = x.toTensor();
    for (const [dim, start, end, step] of [
      [0, 1, 4, 1],
      [1, 0, undefined, 2],
      [1, -5, -1, 3],
      [-1, 1, 100, 1],
      [1, -100, 3, 1],
      [0, 4, 2, 1], // empty: start after end
      [2, 3, undefined, 1], // empty: start at the end
      [1, 6, 7, 5],
      [-2, 0, 7, 7],
    ]) {
      const d = (dim + 3) % 3;
      await assertClose(vg.slice(t, dim, start, end, step), refTake(x, d, sliceIdx(shape[d], start, end, step)), {
        ...EXACT,
        msg: `slice ${dtype} ${[dim, start, end, step]}`,
      });
    }
    await assertClose(t.slice(1), x, { ...EXACT, msg: 'slice defaults' });
    await assertClose(vg.narrow(t, 1, 2, 4), refTake(x, 1, [2, 3, 4, 5]), { ...EXACT, msg: `narrow ${dtype}` });
    await assertClose(t.narrow(-1, -2, 2), refTake(x, 2, [1, 2]), { ...EXACT, msg: `narrow negative ${dtype}` });
    await assertClose(vg.narrow(t, 0, 5, 0), refTake(x, 0, []), { ...EXACT, msg: `narrow empty ${dtype}` });
    const parts = vg.split(t, 3, 1);
    assert.equal(parts.map((p) => p.shape), [[5, 3, 3], [5, 3, 3], [5, 1, 3]]);
    for (const [k, p] of parts.entries()) await assertClose(p, refTake(x, 1, range(7).slice(3 * k, 3 * k + 3)), { ...EXACT, msg: `split ${k}` });
    const sections = t.split([2, 0, 3], -3);
    for (const [k, [a, b]] of [[0, 2], [2, 2], [2, 5]].entries())
      await assertClose(sections[k], refTake(x, 0, range(5).slice(a, b)), { ...EXACT, msg: `split sections ${k}` });
    for (const dims of [0, -1, [0, 2], [1, -3, 2]]) {
      const ds = [dims].flat().map((v) => (v + 3) % 3);
      const ref = remap(x, shape, (c) => c.map((v, i) => (ds.includes(i) ? shape[i] - 1 - v : v)));
      await assertClose(vg.flip(t, dims), ref, { ...EXACT, msg: `flip ${dtype} ${dims}` });
    }
    t.dispose();
  }
});

test('cat / stack: 2-5 tensors, every dim (negative too), zero-size parts, every dtype', async () => {
  const r = rng(5);
  for (const dtype of DTYPES) {
    for (const [shapes, dim] of [
      [[[2, 3], [4, 3]], 0],
      [[[2, 3], [2, 1], [2, 5]], -1],
      [[[3, 1, 4], [3, 7, 4], [3, 0, 4], [3, 2, 4]], 1],
      [[[1], [257], [7], [1], [2]], 0],
      [[[2, 2, 3], [2, 2, 1]], 2],
    ]) {
      const xs = shapes.map((s) => randomOf(s, r, dtype));
      const out = vg.cat(xs.map((x) => x.toTensor()), dim);
      assert.is(out.dtype, dtype);
      await assertClose(out, refCat(xs, (dim + shapes[0].length) % shapes[0].length), { ...EXACT, msg: `cat ${dtype} ${JSON.stringify(shapes)}` });
    }
    const xs = [0, 1, 2].map(() => randomOf([3, 4], r, dtype));
    for (const dim of [0, 1, 2, -1, -3]) {
      const d = (dim + 3) % 3;
      const ref = refCat(xs.map((x) => withShape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)])), d);
      await assertClose(vg.stack(xs.map((x) => x.toTensor()), dim), ref, { ...EXACT, msg: `stack ${dtype} dim ${dim}` });
    }
  }
  await assertClose(vg.stack([vg.tensor(1), vg.tensor(2), vg.tensor(3)]), new Ref([1, 2, 3], [3]), { ...EXACT, msg: 'stack of 0-d' });
  await assertClose(vg.cat([vg.tensor([5, 6])]), new Ref([5, 6], [2]), { ...EXACT, msg: 'cat of one' });
});

test('pad: positive, negative (crop), mixed, fill value, 1-3 trailing dims, every dtype', async () => {
  const r = rng(6);
  for (const dtype of DTYPES) {
    const x = randomOf([3, 4, 5], r, dtype);
    const t = x.toTensor();
    for (const [padding, value] of [
      [[1, 2], 0],
      [[0, 0, 2, 1], -3],
      [[-1, -2], 0],
      [[2, -1, -1, 3, 1, 0], 7],
      [[-2, -3, 0, 0, -3, 0], 0],
      [[-5, 1], 9], // the whole last dim cropped away, then one padded column
      [[0, 0], 0],
    ]) {
      const v = dtype === 'u32' ? Math.abs(value) : value;
      const out = vg.pad(t, padding, { value: v });
      assert.is(out.dtype, dtype);
      await assertClose(out, refPad(x, padding, v), { ...EXACT, msg: `pad ${dtype} ${padding}` });
    }
    t.dispose();
  }
  await assertClose(vg.pad(vg.zeros([2, 0]), [1, 1], { value: 4 }), new Ref([4, 4, 4, 4], [2, 2]));
});

test('pad modes reflect, replicate, circular: torch.nn.functional.pad index rules, gradients, limits', async () => {
  const r = rng(61);
  // f32 values, so the padded copy can be compared exactly
  const x = new Ref(Float64Array.from(Float32Array.from(Ref.random([2, 3, 4, 5], r).data)), [2, 3, 4, 5]);
  const t = x.toTensor();
  const source = {
    replicate: (i, n) => Math.min(n - 1, Math.max(0, i)),
    reflect: (i, n) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i),
    circular: (i, n) => ((i % n) + n) % n,
  };
  for (const [mode, f] of Object.entries(source))
    for (const padding of [[2, 3], [1, 0, 3, 2], [0, 4, 2, 1, 1, 1]]) {
      const widths = [0, 0, 0, 0].map((_, d) => (d >= 4 - padding.length / 2 ? [padding[2 * (3 - d)], padding[2 * (3 - d) + 1]] : [0, 0]));
      const outShape = x.shape.map((n, d) => n + widths[d][0] + widths[d][1]);
      const want = new Float64Array(size(outShape));
      const st = stridesOf(x.shape);
      want.forEach((_, o) => {
        const idx = unravel(o, outShape).map((i, d) => f(i - widths[d][0], x.shape[d]));
        want[o] = x.data[idx.reduce((a, i, d) => a + i * st[d], 0)];
      });
      await assertClose(vg.pad(t, padding, { mode }), new Ref(want, outShape), { ...EXACT, msg: `${mode} ${padding}` });
    }
  for (const mode of Object.keys(source)) await gradcheck((a) => vg.pad(a, [2, 1, 1, 3], { mode }), [x], { msg: mode });
  assertThrowsWith(() => vg.pad(t, [5, 0], { mode: 'reflect' }), ['pad', 'reflect padding (5, 0) of dim 3', 'smaller than its size 5']);
  assertThrowsWith(() => vg.pad(t, [6, 0], { mode: 'circular' }), ['pad', 'circular padding (6, 0) of dim 3', 'must not exceed its size 5']);
  assertThrowsWith(() => vg.pad(t, [-1, 0], { mode: 'replicate' }), ['pad', 'replicate padding must be non-negative']);
  assertThrowsWith(() => vg.pad(t, [1, 1], { mode: 'wrap' }), ['pad', "mode must be 'constant', 'reflect', 'replicate' or 'circular'", "'wrap'"]);
  t.dispose();
});

test('copies of whole vec4 runs (cat and slice along channels, offsets in and out of vec4 alignment) are exact', async () => {
  const r = rng(62);
  for (const dtype of DTYPES) {
    // H·W = 24: runs of whole vec4s; channel offsets 3·24 and 5·24 words keep alignment, a W-slice from 1 breaks it
    const a = randomOf([2, 3, 4, 6], r, dtype);
    const b = randomOf([2, 5, 4, 6], r, dtype);
    const [ta, tb] = [a.toTensor(), b.toTensor()];
    const catRef = new Ref(
      Array.from({ length: 2 * 8 * 24 }, (_, i) => {
        const [n, c, h, w] = unravel(i, [2, 8, 4, 6]);
        return c < 3 ? a.get([n, c, h, w]) : b.get([n, c - 3, h, w]);
      }),
      [2, 8, 4, 6],
    );
    await assertClose(vg.cat([ta, tb], 1), catRef, { ...EXACT, msg: `cat ${dtype}` });
    const sliceRef = (c0, c1, w0) =>
      new Ref(Array.from({ length: 2 * (c1 - c0) * 4 * (6 - w0) }, (_, i) => {
        const [n, c, h, w] = unravel(i, [2, c1 - c0, 4, 6 - w0]);
        return b.get([n, c + c0, h, w + w0]);
      }), [2, c1 - c0, 4, 6 - w0]);
    await assertClose(vg.slice(tb, 1, 1, 4), sliceRef(1, 4, 0), { ...EXACT, msg: `slice channels ${dtype}` });
    await assertClose(vg.slice(vg.slice(tb, 1, 2, 5), 3, 2), sliceRef(2, 5, 2), { ...EXACT, msg: `slice W ${dtype}` });
    ta.dispose();
    tb.dispose();
  }
});

test('clone: an independent copy with the same values and dtype', async () => {
  const r = rng(7);
  for (const dtype of DTYPES) {
    const x = randomOf([3, 257], r, dtype);
    const t = x.toTensor();
    const c = vg.clone(t);
    t.dispose();
    assert.is(c.dtype, dtype);
    await assertClose(c, x, EXACT);
  }
});

test('gradients match finite differences for every differentiable shape op, and those of the float64 references (a 1% error fails)', async () => {
  const r = rng(8);
  const x = Ref.random([3, 4, 5], r);
  const y = Ref.random([3, 2, 5], r);
  const z = Ref.random([3, 1, 5], r);
  // [name, op, its float64 reference, input (default x)]
  const cases = [
    ['reshape', (a) => vg.reshape(a, [5, -1]), (a) => withShape(a, [5, 12])],
    ['flatten', (a) => vg.flatten(a, 1), (a) => withShape(a, [3, 20])],
    ['squeeze/unsqueeze', (a) => vg.squeeze(vg.unsqueeze(a, 1), 1), (a) => a],
    ['permute', (a) => vg.permute(a, [2, 0, 1]), (a) => refPermute(a, [2, 0, 1])],
    ['transpose', (a) => vg.transpose(a, 0, -1), (a) => refPermute(a, [2, 1, 0])],
    ['expand', (a) => vg.expand(a.narrow(1, 0, 1), [2, 3, 4, 5]), (a) => refExpand(refTake(a, 1, [0]), [2, 3, 4, 5])],
    ['expand a size-1 dim', (a) => vg.expand(a, [3, 4, 5]), (a) => refExpand(a, [3, 4, 5]), z],
    ['slice step 2', (a) => vg.slice(a, 1, 0, undefined, 2), (a) => refTake(a, 1, sliceIdx(4, 0, undefined, 2))],
    ['slice step 3, negative start', (a) => vg.slice(a, -1, -4, 5, 3), (a) => refTake(a, 2, sliceIdx(5, -4, 5, 3))],
    ['narrow', (a) => vg.narrow(a, 2, 1, 3), (a) => refTake(a, 2, [1, 2, 3])],
    ['split', (a) => {
      const [p, q, s] = vg.split(a, [1, 2, 1], 1);
      return vg.cat([s.mul(3), p, q.mul(-2)], 1);
    }, (a) => {
      const scaled = (t, c) => new Ref(t.data.map((v) => c * v), t.shape);
      return refCat([scaled(refTake(a, 1, [3]), 3), refTake(a, 1, [0]), scaled(refTake(a, 1, [1, 2]), -2)], 1);
    }],
    ['flip', (a) => vg.flip(a, [0, 2]), (a) => refTake(refTake(a, 0, [2, 1, 0]), 2, [4, 3, 2, 1, 0])],
    ['pad', (a) => vg.pad(a, [1, 2, 0, 1], { value: 5 }), (a) => refPad(a, [1, 2, 0, 1], 5)],
    ['pad crop', (a) => vg.pad(a, [-1, -2, 1, -1]), (a) => refPad(a, [-1, -2, 1, -1], 0)],
    ['clone', (a) => vg.clone(a), (a) => a],
  ];
  for (const [name, fn, ref, input = x] of cases) {
    await gradcheck(fn, [input], { msg: name });
    await gradcheck64(fn, ref, [input], { msg: `${name} (float64 reference)` });
  }
  await gradcheck((a, b, c) => vg.cat([a, b, c], 1), [x, y, z], { msg: 'cat' });
  await gradcheck((a, b, c) => vg.cat([b, a, b], -2), [x, y, z], { wrt: [0, 1], msg: 'cat with a repeated input' });
  await gradcheck((a, b) => vg.stack([a, b, a], 2), [y, Ref.random([3, 2, 5], r)], { msg: 'stack' });
  await gradcheck64((a, b, c) => vg.cat([a, b, c], 1), (a, b, c) => refCat([a, b, c], 1), [x, y, z], { msg: 'cat (float64 reference)' });
  await gradcheck64((a, b) => vg.cat([b, a, b], -2), (a, b) => refCat([b, a, b], 1), [x, y], { msg: 'cat with a repeated input (float64 reference)' });
  const w = Ref.random([3, 2, 5], r);
  const as4 = (t) => withShape(t, [3, 2, 1, 5]);
  await gradcheck64((a, b) => vg.stack([a, b, a], 2), (a, b) => refCat([as4(a), as4(b), as4(a)], 2), [y, w], { msg: 'stack (float64 reference)' });
});

test('bad input: messages name the op and the offending shapes / values', async () => {
  const x = vg.zeros([2, 3]);
  assertThrowsWith(() => vg.reshape(x, [4, 2]), ['reshape', '[2, 3]', '6 elements', '[4, 2]', '8 elements']);
  assertThrowsWith(() => vg.view(x, [-1, -1]), ['reshape', 'only one dimension can be -1', '[-1, -1]']);
  assertThrowsWith(() => vg.reshape(x, [-1, 4]), ['reshape', 'cannot infer', '[-1, 4]', '[2, 3]']);
  assertThrowsWith(() => vg.reshape(x, [6, -2]), ['reshape', '[6, -2]']);
  assertThrowsWith(() => vg.flatten(x, 1, 0), ['flatten', 'startDim', 'endDim']);
  assertThrowsWith(() => vg.flatten(x, 2), ['flatten', 'startDim=2', 'rank 2']);
  assertThrowsWith(() => vg.squeeze(x, 2), ['squeeze', 'dim=2', 'rank 2']);
  assertThrowsWith(() => vg.unsqueeze(x, 3), ['unsqueeze', 'dim=3', '[2, 3]', '-3 <= dim <= 2']);
  assertThrowsWith(() => vg.permute(x, [0]), ['permute', '[2, 3]', '[0]']);
  assertThrowsWith(() => vg.permute(x, [1, -1]), ['permute', '[1,-1]', 'repeat']);
  assertThrowsWith(() => vg.transpose(x, 0, 2), ['transpose', 'dim1=2', 'rank 2']);
  assertThrowsWith(() => vg.expand(x, [4, 3]), ['expand', '[2, 3]', '[4, 3]']);
  assertThrowsWith(() => vg.expand(x, [3]), ['expand', '[3]', '[2, 3]', 'at least as many dims']);
  assertThrowsWith(() => vg.broadcastTo(x, [-1, 2, 3]), ['expand', 'non-negative', '-1']);
  assertThrowsWith(() => vg.slice(x, 1, 0, 3, 0), ['slice', 'step', '0']);
  assertThrowsWith(() => vg.slice(x, 1, 0.5), ['slice', 'integers', '0.5']);
  assertThrowsWith(() => vg.slice(x, 2), ['slice', 'dim=2', 'rank 2']);
  assertThrowsWith(() => vg.narrow(x, 1, 2, 2), ['narrow', 'start 2', 'length 2', 'size 3']);
  assertThrowsWith(() => vg.narrow(x, 1, 0.5, 1), ['narrow', 'start 0.5']);
  assertThrowsWith(() => vg.split(x, [1, 1], 1), ['split', '[1,1]', 'sum to 2', 'size 3']);
  assertThrowsWith(() => vg.split(x, [4, -1], 1), ['split', '[4,-1]', 'non-negative']);
  assertThrowsWith(() => vg.split(x, 0), ['split', 'splitSize', '0']);
  assertThrowsWith(() => vg.flip(x, [1, -1]), ['flip', '[1,-1]', 'twice']);
  assertThrowsWith(() => vg.cat([x, vg.zeros([3, 4])]), ['cat', 'tensors[1]', '[3, 4]', '[2, 3]', 'outside dim 0']);
  assertThrowsWith(() => vg.cat([x, vg.zeros([2, 3, 1])], 1), ['cat', 'tensors[1]', '[2, 3, 1]', '[2, 3]']);
  assertThrowsWith(() => vg.cat([x, vg.zeros([2, 3], { dtype: 'i32' })]), ['cat', 'tensors[1]', 'i32', 'f32']);
  assertThrowsWith(() => vg.cat([x, 3]), ['cat', 'tensors[1]', 'Tensor', 'number 3']);
  assertThrowsWith(() => vg.cat([]), ['cat', 'non-empty']);
  assertThrowsWith(() => vg.cat([vg.tensor(1), vg.tensor(2)]), ['cat', '0-d']);
  assertThrowsWith(() => vg.cat([x, x], 2), ['cat', 'dim=2', 'rank 2']);
  assertThrowsWith(() => vg.stack([x, vg.zeros([3, 2])]), ['stack', 'tensors[1]', '[3, 2]', '[2, 3]']);
  assertThrowsWith(() => vg.stack([x, x], 3), ['stack', 'dim=3', '[2, 3]']);
  assertThrowsWith(() => vg.stack([x, vg.zeros([2, 3], { dtype: 'u32' })]), ['stack', 'tensors[1]', 'u32', 'f32']);
  const s = vg.tensor(1);
  assertThrowsWith(() => vg.slice(s, 0, 0, 1), ['slice', '0-d']);
  assertThrowsWith(() => vg.narrow(s, 0, 0, 1), ['narrow', '0-d']);
  assertThrowsWith(() => vg.split(s, 1), ['split', '0-d']);
  assertThrowsWith(() => vg.pad(x, [1, 2, 3]), ['pad', 'even-length', '[1,2,3]']);
  assertThrowsWith(() => vg.pad(x, [1, 1, 1, 1, 1, 1]), ['pad', 'up to 2']);
  assertThrowsWith(() => vg.pad(x, [-2, -2]), ['pad', '[-2,-2]', 'crops', '[2, 3]']);
  assertThrowsWith(() => vg.pad(x, [3, 0], { mode: 'reflect' }), ['pad', 'reflect padding (3, 0) of dim 1', 'size 3']);
  assertThrowsWith(() => vg.reshape('x', [1]), ['reshape', 'Tensor', 'string']);
});

test.run();
