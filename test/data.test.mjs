// vg.data: the DataLoader (seeded order, batching, dropLast, prefetch overlap, no leaks), splits, intensity
// normalisation against float64 references, crops and pads, and the GPU augmentations (exact permutations for
// flips and rot90, label-consistent warps, identities, blur against a float64 separable reference, CutMix boxes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

const D = () => vg.data;

/** A dataset of n samples { x: [2, 3] f32 = i + k / 10, y: i (number), name }, logging every get. */
function loggingDataset(n, log = []) {
  return {
    length: n,
    log,
    get(i) {
      log.push(`get ${i}`);
      return { x: vg.tensor(Array.from({ length: 6 }, (_, k) => i + k / 10), [2, 3]), y: i, name: `s${i}` };
    },
  };
}

function disposeBatch(b) {
  for (const v of Object.values(b)) if (v instanceof vg.Tensor) v.dispose();
}

// ---- DataLoader ---------------------------------------------------------------------------------------------------------

test('DataLoader: seeded shuffle is a permutation, reproducible, new per epoch; setEpoch resumes; batches stack field by field', async () => {
  const ds = loggingDataset(10);
  const a = new (D().DataLoader)(ds, { batchSize: 4, shuffle: true, seed: 3 });
  const b = new (D().DataLoader)(ds, { batchSize: 4, shuffle: true, seed: 3 });
  const o0 = a.order(0);
  assert.equal([...o0].sort((p, q) => p - q), [...Array(10).keys()]);
  assert.equal(b.order(0), o0);
  assert.not.equal(a.order(1), o0, 'epoch 1 reshuffles');
  assert.not.equal(new (D().DataLoader)(ds, { shuffle: true, seed: 4 }).order(0), o0, 'another seed, another order');
  assert.equal(new (D().DataLoader)(ds, { batchSize: 4 }).order(0), [...Array(10).keys()], 'no shuffle: dataset order');
  assert.is(a.length, 3);
  const seen = [];
  for await (const batch of a) {
    assert.equal(batch.x.shape, [batch.y.length, 2, 3]);
    const x = await batch.x.data();
    batch.y.forEach((i, r) => {
      for (let k = 0; k < 6; k++) assert.ok(Math.abs(x[r * 6 + k] - (i + k / 10)) < 1e-6, 'row r holds sample y[r]');
    });
    assert.equal(batch.name, batch.y.map((i) => `s${i}`), 'strings are gathered into arrays');
    seen.push(...batch.y);
    disposeBatch(batch);
  }
  assert.equal(seen, o0, 'epoch 0 follows order(0)');
  assert.is(a.epoch, 1);
  const e1 = [];
  for await (const batch of a) {
    e1.push(...batch.y);
    disposeBatch(batch);
  }
  assert.equal(e1, a.order(1));
  b.setEpoch(1);
  const r1 = [];
  for await (const batch of b) {
    r1.push(...batch.y);
    disposeBatch(batch);
  }
  assert.equal(r1, e1, 'a loader set to epoch 1 replays epoch 1');
});

test('DataLoader: dropLast, batch sizes, tuple samples, custom collate', async () => {
  const ds = loggingDataset(10);
  const sizes = async (opts) => {
    const out = [];
    for await (const batch of new (D().DataLoader)(ds, opts)) {
      out.push(batch.y.length);
      disposeBatch(batch);
    }
    return out;
  };
  assert.equal(await sizes({ batchSize: 4 }), [4, 4, 2]);
  assert.equal(await sizes({ batchSize: 4, dropLast: true }), [4, 4]);
  assert.equal(await sizes({ batchSize: 5, dropLast: true }), [5, 5]);
  assert.is(new (D().DataLoader)(ds, { batchSize: 4, dropLast: true }).length, 2);
  // TensorDataset with tuples
  const t = vg.tensor([0, 1, 2, 3, 4, 5, 6, 7], [4, 2]);
  const lab = vg.tensor([7, 8, 9, 10], [4], { dtype: 'i32' });
  const tds = new (D().TensorDataset)(t, lab);
  const rows = [];
  for await (const [xb, yb] of new (D().DataLoader)(tds, { batchSize: 3 })) {
    assert.is(yb.dtype, 'i32');
    rows.push([...(await xb.data())], [...(await yb.data())]);
    xb.dispose();
    yb.dispose();
  }
  assert.equal(rows, [[0, 1, 2, 3, 4, 5], [7, 8, 9], [6, 7], [10]]);
  // a collate that sums the samples instead of stacking
  const col = (samples) => vg.tidy(() => samples.map((s) => s.x).reduce((p, q) => vg.add(p, q)));
  const before = vg.memory().liveTensors;
  for await (const s of new (D().DataLoader)(ds, { batchSize: 5, collate: col })) {
    assert.equal(s.shape, [2, 3]);
    s.dispose();
  }
  assert.is(vg.memory().liveTensors, before, 'the loader disposes the samples a custom collate did not return');
  t.dispose();
  lab.dispose();
});

test('DataLoader: prefetch starts batch k + 1 before batch k is consumed; prefetch 0 loads on demand', async () => {
  for (const [prefetch, expectAhead] of [
    [1, true],
    [0, false],
  ]) {
    const log = [];
    const ds = loggingDataset(6, log);
    for await (const batch of new (D().DataLoader)(ds, { batchSize: 2, prefetch })) {
      log.push(`consume ${batch.y[0] / 2}`);
      disposeBatch(batch);
    }
    const at = (s) => log.indexOf(s);
    // batch 1 holds samples 2 and 3
    assert.is(at('get 2') < at('consume 0'), expectAhead, `prefetch ${prefetch}: ${log.join(', ')}`);
    assert.ok(at('get 4') < at('consume 2'));
  }
  // an async dataset: batch 1's get is in flight while batch 0 is consumed
  let inFlight = 0;
  let overlapped = false;
  const slow = {
    length: 4,
    async get(i) {
      inFlight++;
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return vg.tensor([i], [1]);
    },
  };
  for await (const batch of new (D().DataLoader)(slow, { batchSize: 2 })) {
    if (inFlight > 0) overlapped = true;
    batch.dispose();
  }
  assert.ok(overlapped, 'the next batch was loading while the consumer ran');
});

test('DataLoader: no tensor leaks over an epoch, nor after a break with prefetched batches', async () => {
  const ds = loggingDataset(9);
  const loader = new (D().DataLoader)(ds, { batchSize: 2, shuffle: true, prefetch: 2 });
  const before = vg.memory().liveTensors;
  for await (const batch of loader) disposeBatch(batch);
  assert.is(vg.memory().liveTensors, before, 'full epoch');
  let n = 0;
  for await (const batch of loader) {
    disposeBatch(batch);
    if (++n === 1) break;
  }
  assert.is(vg.memory().liveTensors, before, 'break: the prefetched batches were disposed');
  // a failing get surfaces its error and leaves nothing behind
  const bad = { length: 4, get: (i) => (i === 2 ? Promise.reject(new Error('boom')) : vg.tensor([i], [1])) };
  let err;
  try {
    for await (const batch of new (D().DataLoader)(bad, { batchSize: 1, prefetch: 2 })) batch.dispose();
  } catch (e) {
    err = e;
  }
  assert.match(String(err), 'boom');
  assert.is(vg.memory().liveTensors, before, 'failed batch');
});

test('randomSplit: disjoint cover, seeded, fractions as PyTorch, groups kept whole; Subset', () => {
  const ds = { length: 12, get: (i) => i };
  const [a, b] = D().randomSplit(ds, [8, 4], { seed: 1 });
  const all = [...a.indices, ...b.indices].sort((p, q) => p - q);
  assert.equal(all, [...Array(12).keys()]);
  assert.equal(D().randomSplit(ds, [8, 4], { seed: 1 })[0].indices, a.indices, 'same seed, same split');
  // floor(12 * 0.3) = floor(3.5999...) = 3 in float64, as in PyTorch; the remainder goes round-robin from the first
  assert.equal(D().randomSplit(ds, [0.5, 0.3, 0.2]).map((s) => s.length), [7, 3, 2]);
  assert.equal(D().randomSplit(ds, [0.34, 0.33, 0.33]).map((s) => s.length), [5, 4, 3], 'remainder dealt round-robin');
  // 4 patients x 3 samples
  const groups = D().randomSplit(ds, [3, 1], { seed: 5, groupBy: (i) => Math.floor(i / 3) });
  assert.is(groups[1].length, 3);
  const pat = (s) => new Set(s.indices.map((i) => Math.floor(i / 3)));
  for (const p of pat(groups[1])) assert.not.ok(pat(groups[0]).has(p), 'a patient is in one subset only');
  assert.is(a.get(0), a.indices[0]);
  assertThrowsWith(() => D().randomSplit(ds, [5, 5]), ['randomSplit', 'sum', '12 samples']);
  assertThrowsWith(() => new (D().DataLoader)(ds, { batchSize: 0 }), ['DataLoader', 'batchSize']);
});

// ---- normalisation --------------------------------------------------------------------------------------------------------

/** Float64 per-group statistics: groups are contiguous runs of `per` values. */
function groupsOf(ref, per) {
  return Array.from({ length: ref.data.length / per }, (_, g) => Array.from(ref.data.subarray(g * per, (g + 1) * per)));
}

test('normalizeMinMax and normalizeZScore match float64 references (per sample, channel-wise, masked)', async () => {
  const r = rng(11);
  const shape = [3, 2, 5, 7];
  const ref = Ref.random(shape, r, -3, 5).f32();
  const x = ref.toTensor();
  for (const channelWise of [false, true]) {
    const per = channelWise ? 35 : 70;
    const out = new Float64Array(ref.data.length);
    groupsOf(ref, per).forEach((g, k) => {
      const mn = Math.min(...g);
      const mx = Math.max(...g);
      g.forEach((v, i) => (out[k * per + i] = ((v - mn) / (mx - mn)) * 4 - 2));
    });
    await assertClose(D().normalizeMinMax(x, { min: -2, max: 2, channelWise }), new Ref(out, shape), { rtol: 1e-5, atol: 1e-5, msg: `minmax cw=${channelWise}` });
    const z = new Float64Array(ref.data.length);
    groupsOf(ref, per).forEach((g, k) => {
      const m = g.reduce((s, v) => s + v, 0) / g.length;
      const sd = Math.sqrt(g.reduce((s, v) => s + (v - m) ** 2, 0) / g.length);
      g.forEach((v, i) => (z[k * per + i] = (v - m) / sd));
    });
    await assertClose(D().normalizeZScore(x, { channelWise }), new Ref(z, shape), { rtol: 1e-4, atol: 1e-5, msg: `zscore cw=${channelWise}` });
  }
  // masked: statistics over the mask only, values outside unchanged; mask [N, 1, H, W] broadcast over channels
  const maskRef = new Ref(Array.from({ length: 3 * 35 }, () => (r.next() < 0.6 ? 1 : 0)), [3, 1, 5, 7]);
  const zm = new Float64Array(ref.data.length);
  for (let n = 0; n < 3; n++) {
    const idx = [];
    for (let i = 0; i < 70; i++) if (maskRef.data[n * 35 + (i % 35)]) idx.push(n * 70 + i);
    const m = idx.reduce((s, i) => s + ref.data[i], 0) / idx.length;
    const sd = Math.sqrt(idx.reduce((s, i) => s + (ref.data[i] - m) ** 2, 0) / idx.length);
    for (let i = 0; i < 70; i++) zm[n * 70 + i] = ref.data[n * 70 + i];
    for (const i of idx) zm[i] = (ref.data[i] - m) / sd;
  }
  const mask = maskRef.toTensor();
  await assertClose(D().normalizeZScore(x, { mask }), new Ref(zm, shape), { rtol: 1e-4, atol: 1e-5, msg: 'masked zscore' });
  // constant samples: min-max gives min, z-score gives 0
  const c = vg.full([2, 1, 3, 3], 4);
  assert.equal([...(await D().normalizeMinMax(c, { min: 0.5 }).data())], Array(18).fill(0.5));
  assert.equal([...(await D().normalizeZScore(c).data())], Array(18).fill(0));
  assertThrowsWith(() => D().normalizeZScore(vg.zeros([4, 4])), ['normalizeZScore', 'rank 3 to 5', '[4, 4]']);
});

test('clipPercentile: np.percentile (linear) per sample, clip and optional rescale', async () => {
  const r = rng(12);
  const shape = [2, 1, 9, 11];
  const ref = Ref.random(shape, r, 0, 10).f32();
  const x = ref.toTensor();
  const pct = (sorted, q) => {
    const k = (q / 100) * (sorted.length - 1);
    const i = Math.floor(k);
    return i + 1 < sorted.length ? sorted[i] + (k - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
  };
  const clipped = new Float64Array(ref.data.length);
  const scaled = new Float64Array(ref.data.length);
  groupsOf(ref, 99).forEach((g, k) => {
    const s = [...g].sort((p, q) => p - q);
    const lo = pct(s, 2.5);
    const hi = pct(s, 97.5);
    g.forEach((v, i) => {
      clipped[k * 99 + i] = Math.min(hi, Math.max(lo, v));
      scaled[k * 99 + i] = ((clipped[k * 99 + i] - lo) / (hi - lo)) * 2 - 1;
    });
  });
  await assertClose(await D().clipPercentile(x, 2.5, 97.5), new Ref(clipped, shape), { rtol: 1e-6, atol: 1e-5 });
  await assertClose(await D().clipPercentile(x, 2.5, 97.5, { bMin: -1, bMax: 1 }), new Ref(scaled, shape), { rtol: 1e-5, atol: 1e-5 });
});

// ---- crop and pad ---------------------------------------------------------------------------------------------------------

/** Ref of an arange with shape. */
const arangeRef = (shape) => new Ref(Array.from({ length: size(shape) }, (_, i) => i), shape);

/** out[c] = ref[map(c)] (map returns input coordinates or null for a constant). */
function remap(ref, outShape, map, value = 0) {
  return new Ref(
    Array.from({ length: size(outShape) }, (_, i) => {
      const c = map(unravel(i, outShape));
      return c === null ? value : ref.get(c);
    }),
    outShape,
  );
}

test('centerCrop, padTo (every vg.pad mode; symmetric and end), resizeWithPadOrCrop: exact', async () => {
  const shape = [2, 1, 5, 6];
  const ref = arangeRef(shape);
  const x = ref.toTensor();
  // MONAI: start = floor(n / 2) - floor(size / 2): H 5 -> 2 starts at 1, W 6 -> 3 starts at 2
  await assertClose(D().centerCrop(x, [2, 3]), remap(ref, [2, 1, 2, 3], ([n, c, i, j]) => [n, c, i + 1, j + 2]), { rtol: 0, atol: 0 });
  // torch.nn.functional.pad's index rules
  const modes = {
    constant: () => null,
    replicate: (i, n) => Math.min(n - 1, Math.max(0, i)),
    reflect: (i, n) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i),
    circular: (i, n) => ((i % n) + n) % n,
  };
  for (const [mode, f] of Object.entries(modes))
    for (const method of ['symmetric', 'end']) {
      // H 5 -> 8 (before 1 symmetric), W 6 -> 10 (before 2 symmetric; 'end' puts 4 after)
      const [bh, bw] = method === 'symmetric' ? [1, 2] : [0, 0];
      const want = remap(ref, [2, 1, 8, 10], ([n, c, i, j]) => {
        const si = i - bh;
        const sj = j - bw;
        if (mode === 'constant') return si < 0 || si >= 5 || sj < 0 || sj >= 6 ? null : [n, c, si, sj];
        return [n, c, f(si, 5), f(sj, 6)];
      }, -1);
      await assertClose(D().padTo(x, [8, 10], { mode, method, value: -1 }), want, { rtol: 0, atol: 0, msg: `${mode} ${method}` });
    }
  // reflect cannot mirror more than the axis holds (PyTorch's rule)
  assertThrowsWith(() => D().padTo(x, [8, 20], { mode: 'reflect' }), ['pad', 'reflect padding (7, 7) of dim 3', 'smaller than its size 6']);
  // dims already large enough are left alone; resizeWithPadOrCrop pads H and crops W
  assert.equal(D().padTo(x, [3, 3]).shape, shape);
  const rz = D().resizeWithPadOrCrop(x, [7, 4]);
  await assertClose(rz, remap(ref, [2, 1, 7, 4], ([n, c, i, j]) => (i < 1 || i > 5 ? null : [n, c, i - 1, j + 1])), { rtol: 0, atol: 0 });
  assertThrowsWith(() => D().centerCrop(x, [6, 3]), ['centerCrop', 'larger', 'padTo']);
});

test('randomCrop: per-sample windows, identical for image and label, seeded', async () => {
  const ref = arangeRef([3, 2, 9, 10]);
  const img = ref.toTensor();
  const labRef = arangeRef([3, 9, 10]);
  const lab = labRef.toTensor({ dtype: 'i32' });
  const [ci, cl] = D().randomCrop([img, lab], [4, 5], { seed: 9 });
  assert.equal(ci.shape, [3, 2, 4, 5]);
  assert.equal(cl.shape, [3, 4, 5]);
  assert.is(cl.dtype, 'i32');
  const a = await ci.data();
  const l = await cl.data();
  const starts = new Set();
  for (let n = 0; n < 3; n++) {
    // label value at the window's corner gives its offset
    const corner = l[n * 20] - n * 90;
    const [i0, j0] = [Math.floor(corner / 10), corner % 10];
    starts.add(corner);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++) {
        assert.is(l[n * 20 + i * 5 + j], labRef.get([n, i0 + i, j0 + j]));
        for (let c = 0; c < 2; c++) assert.is(a[((n * 2 + c) * 4 + i) * 5 + j], ref.get([n, c, i0 + i, j0 + j]));
      }
  }
  assert.ok(starts.size > 1, 'samples get their own windows');
  const again = D().randomCrop(lab, [4, 5], { seed: 9 });
  assert.equal([...(await again.data())], [...l], 'same seed, same windows');
});

// ---- augmentations --------------------------------------------------------------------------------------------------------

/** numpy/torch rot90 of the last two dims of a [.., H, W] ref, k times (from the first axis towards the second). */
function rot90Ref(ref, k) {
  let cur = ref;
  for (let t = 0; t < k; t++) {
    const s = cur.shape;
    const [H, W] = s.slice(-2);
    const outShape = [...s.slice(0, -2), W, H];
    const src = cur;
    cur = remap(src, outShape, (c) => [...c.slice(0, -2), c[c.length - 1], W - 1 - c[c.length - 2]]);
  }
  return cur;
}

const flipRef = (ref, dims) => remap(ref, ref.shape, (c) => c.map((v, d) => (dims.includes(d) ? ref.shape[d] - 1 - v : v)));

/** Index of the candidate (list of Refs for one sample) equal to `got`, or -1. */
function whichCandidate(got, cands) {
  return cands.findIndex((c) => c.data.every((v, i) => v === got[i]));
}

function sampleOf(ref, n) {
  const per = size(ref.shape.slice(1));
  return new Ref(ref.data.subarray(n * per, (n + 1) * per), [1, ...ref.shape.slice(1)]);
}

test('randomFlip and randomRot90: each sample is an exact flip / rotation, the same one for image and label', async () => {
  const N = 12;
  const ref = arangeRef([N, 2, 6, 6]);
  const labRef = new Ref(Array.from({ length: N * 36 }, (_, i) => (i * 7) % 5), [N, 6, 6]);
  const img = ref.toTensor();
  const lab = labRef.toTensor({ dtype: 'i32' });
  const flips = [[], [2], [3], [2, 3]];
  const [fi, fl] = D().randomFlip([img, lab], { seed: 3 });
  assert.is(fl.dtype, 'i32');
  const [a, l] = [await fi.data(), await fl.data()];
  const used = new Set();
  for (let n = 0; n < N; n++) {
    const k = whichCandidate(a.subarray(n * 72, (n + 1) * 72), flips.map((d) => flipRef(sampleOf(ref, n), d)));
    assert.ok(k >= 0, `sample ${n} is a flip of its input`);
    const kl = whichCandidate(l.subarray(n * 36, (n + 1) * 36), flips.map((d) => flipRef(sampleOf(labRef, n), d.map((v) => v - 1))));
    assert.is(kl, k, `sample ${n}: label flipped as the image`);
    used.add(k);
  }
  assert.is(used.size, 4, 'all four flip patterns occur in 12 samples at p = 0.5');
  const [ri, rl] = D().randomRot90([img, lab], { seed: 4, prob: 0.8 });
  const [b, m] = [await ri.data(), await rl.data()];
  const ks = new Set();
  for (let n = 0; n < N; n++) {
    const k = whichCandidate(b.subarray(n * 72, (n + 1) * 72), [0, 1, 2, 3].map((q) => rot90Ref(sampleOf(ref, n), q)));
    assert.ok(k >= 0, `sample ${n} is a rotation of its input`);
    assert.is(whichCandidate(m.subarray(n * 36, (n + 1) * 36), [0, 1, 2, 3].map((q) => rot90Ref(sampleOf(labRef, n), q))), k);
    ks.add(k);
  }
  assert.ok(ks.size >= 3, `several k drawn: ${[...ks]}`);
  assertThrowsWith(() => D().randomRot90(vg.zeros([2, 1, 4, 5]), { prob: 1, seed: 1 }), ['randomRot90', 'equal sizes', '4 and 5']);
});

test('warpAffine: a quarter turn and an integer shift in voxel coordinates are exact', async () => {
  const ref = arangeRef([1, 1, 5, 5]);
  const x = ref.toTensor();
  // output (i, j) reads A (p - c) + c = (j, 2c - i) = (j, 4 - i) with A = [[0, 1], [-1, 0]]: torch.rot90(x, 1)
  const rot = D().warpAffine(x, [[[0, 1, 0], [-1, 0, 0]]], { mode: 'nearest' });
  await assertClose(rot, rot90Ref(ref, 1), { rtol: 0, atol: 0 });
  const shifted = D().warpAffine(x, [[[1, 0, 2], [0, 1, -1]]]);
  // f32 rounding of the normalised grid moves positions by ~1e-6 voxel: bilinear is exact to that
  await assertClose(shifted, remap(ref, [1, 1, 5, 5], ([n, c, i, j]) => (i + 2 < 5 && j - 1 >= 0 ? [n, c, i + 2, j - 1] : null)), { rtol: 1e-5, atol: 1e-4 });
});

/** Float image equal to the label (cast), warped with nearest, must equal the warped label; labels stay in the set. */
async function checkLabelConsistent(aug, nd) {
  const r = rng(21);
  const spatial = nd === 2 ? [17, 20] : [7, 9, 8];
  const N = 3;
  const labRef = new Ref(Array.from({ length: N * size(spatial) }, (_, i) => ((i >> 2) * 7 + (i % 3)) % 4), [N, ...spatial]);
  const lab = labRef.toTensor({ dtype: 'i32' });
  const asImg = labRef.toTensor().reshape([N, 1, ...spatial]);
  const img = Ref.random([N, 2, ...spatial], r, 0, 1).toTensor();
  const [wi, wl, wc] = aug([img, lab, asImg], ['bilinear', 'nearest', 'nearest']);
  assert.equal(wi.shape, img.shape);
  assert.equal(wl.shape, lab.shape);
  assert.is(wl.dtype, 'i32');
  const l = await wl.data();
  assert.ok(l.every((v) => v >= 0 && v <= 3), 'labels stay in the label set');
  assert.equal([...(await wc.data())], [...l], 'the label and the nearest-warped float copy moved together');
  assert.not.equal([...l], [...labRef.data], 'the warp did something');
}

test('randomAffine: labels nearest and in the label set, image and label share the transform, zero ranges are the identity (2-D and 3-D)', async () => {
  for (const nd of [2, 3]) {
    await checkLabelConsistent((ts, modes) => D().randomAffine(ts, { rotate: 0.4, scale: 0.15, translate: 2, shear: 0.1, seed: 5, modes }), nd);
    const ref = Ref.random(nd === 2 ? [2, 1, 6, 7] : [2, 1, 4, 6, 5], rng(3), 0, 1).f32();
    const x = ref.toTensor();
    await assertClose(D().randomAffine(x, { seed: 1 }), ref, { rtol: 1e-5, atol: 1e-5, msg: 'identity, bilinear (grid round-off ~1e-6 voxel)' });
    await assertClose(D().randomAffine(x, { seed: 1, mode: 'nearest' }), ref, { rtol: 0, atol: 0, msg: 'identity, nearest' });
  }
  const [a, b] = [0, 1].map(() => D().randomAffine(vg.rand([2, 1, 8, 8], { seed: 2 }), { rotate: 1, seed: 7 }));
  assert.equal([...(await a.data())], [...(await b.data())], 'seeded');
});

test('randomElastic: label-consistent, magnitude 0 is exactly the identity, displacements bounded by magnitude', async () => {
  for (const nd of [2, 3]) await checkLabelConsistent((ts, modes) => D().randomElastic(ts, { magnitude: 3, controlPoints: 4, seed: 8, modes }), nd);
  const ref = Ref.random([2, 1, 12, 13], rng(4), 0, 1).f32();
  await assertClose(D().randomElastic(ref.toTensor(), { magnitude: 0, seed: 1 }), ref, { rtol: 0, atol: 0 });
  // warp an index image with nearest: each output pulls from within `magnitude` voxels (+ 0.5 rounding) per axis
  const [H, W, m] = [20, 24, 2.5];
  const idx = arangeRef([1, 1, H, W]);
  const out = await D().randomElastic(idx.toTensor(), { magnitude: m, controlPoints: 5, seed: 3, mode: 'nearest' }).data();
  let moved = 0;
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const v = out[i * W + j];
      const [si, sj] = [Math.floor(v / W), v % W];
      assert.ok(Math.abs(si - i) <= m + 0.5 && Math.abs(sj - j) <= m + 0.5, `(${i}, ${j}) pulled from (${si}, ${sj})`);
      if (si !== i || sj !== j) moved++;
    }
  assert.ok(moved > H * W * 0.3, 'most pixels move');
});

test('intensityJitter: fixed gamma matches the float64 formula; contrast keeps each mean; brightness shifts each sample by one constant', async () => {
  const shape = [3, 1, 4, 5];
  const ref = Ref.random(shape, rng(5), 0.1, 2).f32();
  const x = ref.toTensor();
  const want = new Float64Array(ref.data.length);
  groupsOf(ref, 20).forEach((g, k) => {
    const mn = Math.min(...g);
    const range = Math.max(...g) - mn;
    g.forEach((v, i) => (want[k * 20 + i] = ((v - mn) / (range + 1e-7)) ** 1.7 * range + mn));
  });
  await assertClose(D().intensityJitter(x, { gamma: [1.7, 1.7], seed: 1 }), new Ref(want, shape), { rtol: 1e-5, atol: 1e-5 });
  const c = await D().intensityJitter(x, { contrast: 0.5, seed: 2 }).data();
  const b = await D().intensityJitter(x, { brightness: 0.3, seed: 2 }).data();
  groupsOf(ref, 20).forEach((g, k) => {
    const mean = g.reduce((s, v) => s + v, 0) / 20;
    const got = Array.from(c.subarray(k * 20, (k + 1) * 20));
    assert.ok(Math.abs(got.reduce((s, v) => s + v, 0) / 20 - mean) < 1e-5, 'mean kept');
    const f = (got[0] - mean) / (g[0] - mean);
    assert.ok(f >= 0.5 - 1e-4 && f <= 1.5 + 1e-4, `contrast factor ${f} in [0.5, 1.5]`);
    got.forEach((v, i) => assert.ok(Math.abs(v - mean - f * (g[i] - mean)) < 1e-5, 'one factor per sample'));
    const shift = b[k * 20] - g[0];
    assert.ok(Math.abs(shift) <= 0.3 + 1e-6);
    g.forEach((v, i) => assert.ok(Math.abs(b[k * 20 + i] - v - shift) < 1e-5, 'one shift per sample'));
  });
});

test('gaussianBlur: separable float64 reference (scipy kernel, truncate 4, zero padding), 2-D anisotropic and 3-D', async () => {
  const blurRef = (ref, sigmas) => {
    let cur = ref;
    const nd = sigmas.length;
    sigmas.forEach((s, a) => {
      if (s === 0) return;
      const r = Math.floor(4 * s + 0.5);
      const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * s * s)));
      const tot = w.reduce((p, v) => p + v, 0);
      const d = cur.shape.length - nd + a;
      const src = cur;
      cur = new Ref(
        Array.from({ length: src.data.length }, (_, i) => {
          const c = unravel(i, src.shape);
          let acc = 0;
          for (let k = -r; k <= r; k++) {
            const q = c[d] + k;
            if (q < 0 || q >= src.shape[d]) continue;
            const cc = [...c];
            cc[d] = q;
            acc += (w[k + r] / tot) * src.get(cc);
          }
          return acc;
        }),
        src.shape,
      );
    });
    return cur;
  };
  const r = rng(6);
  const ref2 = Ref.random([2, 2, 9, 14], r, 0, 1).f32();
  await assertClose(D().gaussianBlur(ref2.toTensor(), [0.8, 1.7]), blurRef(ref2, [0.8, 1.7]), { rtol: 1e-5, atol: 1e-6 });
  const ref3 = Ref.random([1, 1, 5, 6, 7], r, 0, 1).f32();
  await assertClose(D().gaussianBlur(ref3.toTensor(), 1), blurRef(ref3, [1, 1, 1]), { rtol: 1e-5, atol: 1e-6 });
  await assertClose(D().gaussianBlur(ref2.toTensor(), [0, 0]), ref2, { rtol: 0, atol: 0, msg: 'sigma 0 is the identity' });
});

test('cutMix: box area matches the ratio, pixels and labels come from the right batch', async () => {
  const [N, H, W] = [4, 20, 30];
  const A = vg.full([N, 2, H, W], 1);
  const B = vg.full([N, 2, H, W], 2);
  const la = vg.full([N, H, W], 5, { dtype: 'i32' });
  const lb = vg.full([N, H, W], 7, { dtype: 'i32' });
  const { images, labels, mask, boxes } = D().cutMix(A, la, B, lb, { ratio: 0.3, seed: 4 });
  assert.equal(mask.shape, [N, 1, H, W]);
  const [im, lab, m] = [await images.data(), await labels.data(), await mask.data()];
  for (let n = 0; n < N; n++) {
    const { start, size: sz } = boxes[n];
    assert.equal(sz, [Math.round(H * Math.sqrt(0.3)), Math.round(W * Math.sqrt(0.3))]);
    assert.ok(Math.abs((sz[0] * sz[1]) / (H * W) - 0.3) < 0.02, 'area ratio');
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const inside = i >= start[0] && i < start[0] + sz[0] && j >= start[1] && j < start[1] + sz[1];
        assert.is(m[(n * H + i) * W + j], inside ? 1 : 0);
        assert.is(lab[(n * H + i) * W + j], inside ? 7 : 5);
        for (let c = 0; c < 2; c++) assert.is(im[((n * 2 + c) * H + i) * W + j], inside ? 2 : 1);
      }
  }
  assert.ok(new Set(boxes.map((b) => b.start.join())).size > 1, 'boxes differ per sample');
});

test('compose chains seeded steps without leaking intermediates', async () => {
  const x = vg.rand([2, 1, 8, 8], { seed: 1 });
  const lab = vg.zeros([2, 8, 8], { dtype: 'i32' });
  const aug = D().compose([(t, s) => D().randomFlip(t, { seed: s }), (t, s) => D().randomAffine(t, { rotate: 0.3, seed: s })]);
  const before = vg.memory().liveTensors;
  const [a1, l1] = aug([x, lab], { seed: 3 });
  assert.is(vg.memory().liveTensors, before + 2, 'only the two results are new');
  const [a2] = aug([x, lab], { seed: 3 });
  assert.equal([...(await a1.data())], [...(await a2.data())]);
  assert.is(l1.dtype, 'i32');
});

test.run();
