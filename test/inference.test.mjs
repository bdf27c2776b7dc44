// vg.inference: padToMultiple (MONAI DivisiblePad, symmetric) and slidingWindowInference (MONAI's window placement,
// importance map and blending), against float64 references written from MONAI's algorithm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

// ---- float64 references -------------------------------------------------------------------------------------------

/**
 * Window starts along one dim, transcribed from MONAI (monai/inferers/utils.py _get_scan_interval and
 * monai/data/utils.py dense_patch_slices): interval = int(roi * (1 - overlap)) (1 if that is 0; roi if roi == size);
 * scan_num = first d with d * interval + roi >= size, plus one; start_d = d * interval - max(d * interval + roi - size, 0).
 */
function monaiStarts(n, roi, overlap) {
  const interval = roi === n ? roi : Math.trunc(roi * (1 - overlap)) || 1;
  const num = Math.ceil(n / interval);
  let scan = 0;
  while (scan < num && scan * interval + roi < n) scan++;
  return Array.from({ length: scan + 1 }, (_, d) => d * interval - Math.max(d * interval + roi - n, 0));
}

/** MONAI's compute_importance_map in float64: separable Gaussian (sigma = scale * roi), clamped at max(min, 1e-3). */
function importanceMap(roi, mode, sigmaScale) {
  const map = new Float64Array(size(roi)).fill(1);
  if (mode === 'gaussian')
    for (let i = 0; i < map.length; i++) {
      const c = unravel(i, roi);
      for (let d = 0; d < roi.length; d++) {
        const s = (Array.isArray(sigmaScale) ? sigmaScale[d] : sigmaScale) * roi[d];
        map[i] *= Math.exp(-((c[d] - (roi[d] - 1) / 2) ** 2) / (2 * s * s));
      }
    }
  const lo = Math.max(Math.min(...map), 1e-3);
  return map.map((v) => Math.max(v, lo));
}

/** Pads spatial dims of a Ref like torch.nn.functional.pad (constant / replicate / reflect / circular). */
function refPadSpatial(x, widths, mode, value = 0) {
  const nsp = widths.length;
  const first = x.shape.length - nsp;
  const shape = x.shape.map((n, i) => (i < first ? n : n + widths[i - first][0] + widths[i - first][1]));
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, shape);
    let inside = true;
    const src = c.map((v, d) => {
      if (d < first) return v;
      const n = x.shape[d];
      const s = v - widths[d - first][0];
      if (s >= 0 && s < n) return s;
      if (mode === 'constant') inside = false;
      if (mode === 'replicate') return Math.min(n - 1, Math.max(0, s));
      if (mode === 'circular') return ((s % n) + n) % n;
      return s < 0 ? -s : 2 * (n - 1) - s;
    });
    out[i] = inside ? x.get(src) : value;
  }
  return new Ref(out, shape);
}

/** Crops (lo, hi) from the spatial dims of a Ref. */
function refCrop(y, widths) {
  const first = y.shape.length - widths.length;
  const shape = y.shape.map((n, i) => (i < first ? n : n - widths[i - first][0] - widths[i - first][1]));
  return new Ref(Array.from({ length: size(shape) }, (_, i) => y.get(unravel(i, shape).map((v, d) => (d < first ? v : v + widths[d - first][0])))), shape);
}

/** Extracts window [b, :, s0:s0+r0, ...] of a Ref as a [1, C, ...roi] Ref. */
function refWindow(x, b, starts, roi) {
  const shape = [1, x.shape[1], ...roi];
  return new Ref(Array.from({ length: size(shape) }, (_, i) => {
    const c = unravel(i, shape);
    return x.get([b, c[1], ...c.slice(2).map((v, d) => v + starts[d])]);
  }), shape);
}

/** The whole of MONAI's sliding_window_inference in float64, with a per-window float64 predictor. */
function refSlidingWindow(x, roi, predict, { overlap = 0.25, mode = 'constant', sigmaScale = 0.125, padMode = 'constant', cval = 0 } = {}) {
  const spatial = x.shape.slice(2);
  const widths = spatial.map((n, d) => {
    const extra = Math.max(roi[d] - n, 0);
    return [Math.floor(extra / 2), extra - Math.floor(extra / 2)];
  });
  const xp = refPadSpatial(x, widths, padMode, cval);
  const image = xp.shape.slice(2);
  const perDim = image.map((n, d) => monaiStarts(n, roi[d], overlap));
  let wins = [[]];
  for (const s of perDim) wins = wins.flatMap((w) => s.map((v) => [...w, v]));
  const imp = importanceMap(roi, mode, sigmaScale);
  let out = null;
  const count = new Float64Array(size(image));
  const ist = stridesOf(image);
  for (let b = 0; b < x.shape[0]; b++)
    for (const w of wins) {
      const p = predict(refWindow(xp, b, w, roi));
      const cout = p.shape[1];
      out ??= new Ref(new Float64Array(x.shape[0] * cout * size(image)), [x.shape[0], cout, ...image]);
      for (let i = 0; i < p.data.length; i++) {
        const c = unravel(i, p.shape);
        const local = c.slice(2);
        const li = local.reduce((o, v, d) => o + v * stridesOf(roi)[d], 0);
        const gi = local.reduce((o, v, d) => o + (v + w[d]) * ist[d], 0);
        out.data[(b * cout + c[1]) * size(image) + gi] += imp[li] * p.data[i];
        if (b === 0 && c[1] === 0) count[gi] += imp[li];
      }
    }
  for (let i = 0; i < out.data.length; i++) out.data[i] /= count[i % count.length];
  return refCrop(out, widths);
}

/** A float64 conv (stride 1, zero padding `pad`, no bias) for [1, Cin, ...] Refs, 2-D or 3-D. */
function refConv(x, w, pad) {
  const [, cin, ...sp] = x.shape;
  const [cout, , ...k] = w.shape;
  const shape = [1, cout, ...sp];
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, shape);
    let s = 0;
    for (let j = 0; j < cin * size(k); j++) {
      const kc = unravel(j, [cin, ...k]);
      const pos = kc.slice(1).map((v, d) => c[2 + d] + v - pad);
      if (pos.every((v, d) => v >= 0 && v < sp[d])) s += w.get([c[1], ...kc]) * x.get([0, kc[0], ...pos]);
    }
    out[i] = s;
  }
  return new Ref(out, shape);
}

// the non-local test predictor: [x0 * m, x1 * m, x0 + x1] with m the window mean over all its channels, so every
// window contributes a different value and blending weights, positions and order all show in the output
function refMixPredict(p) {
  const m = p.data.reduce((a, b) => a + b, 0) / p.data.length;
  const vol = size(p.shape.slice(2));
  const out = new Float64Array(3 * vol);
  for (let i = 0; i < vol; i++) {
    out[i] = p.data[i] * m;
    out[vol + i] = p.data[vol + i] * m;
    out[2 * vol + i] = p.data[i] + p.data[vol + i];
  }
  return new Ref(out, [1, 3, ...p.shape.slice(2)]);
}
const dimsAfter1 = (t) => Array.from({ length: t.ndim - 1 }, (_, i) => i + 1);
function mixPredict(w) {
  return vg.tidy(() => {
    const m = vg.mean(w, { dim: dimsAfter1(w), keepdim: true });
    const x0 = vg.slice(w, 1, 0, 1);
    const x1 = vg.slice(w, 1, 1, 2);
    return vg.cat([vg.mul(x0, m), vg.mul(x1, m), vg.add(x0, x1)], 1);
  });
}

// ---- window placement -----------------------------------------------------------------------------------------------

test('windowStarts: the starts MONAI places (size 100, roi 32, overlap 0.25 -> interval 24)', () => {
  assert.equal(monaiStarts(100, 32, 0.25), [0, 24, 48, 68]);
  assert.equal(vg.inference.windowStarts([100], [32], 0.25), [[0, 24, 48, 68]]);
  // sweep: sizes, windows and overlaps including interval 1 (overlap near 1), roi == size, roi - 1
  for (const n of [1, 7, 32, 33, 63, 64, 65, 96, 100, 127])
    for (const roi of [1, 5, 16, 32, 64])
      for (const ov of [0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.99]) {
        if (roi > n) continue;
        assert.equal(vg.inference.windowStarts([n], [roi], ov)[0], monaiStarts(n, roi, ov), `n=${n} roi=${roi} overlap=${ov}`);
      }
});

test('slidingWindowInference: windows reach the predictor at MONAI positions, in MONAI order, batch outermost', async () => {
  const shape = [2, 1, 9, 11, 10];
  const roi = [4, 6, 5];
  // value = flat index, so a window's first element names its batch item and start
  const x = vg.tensor(Float32Array.from({ length: size(shape) }, (_, i) => i), shape);
  const seen = [];
  const out = await vg.inference.slidingWindowInference(x, roi, async (w) => {
    const d = await w.data();
    for (let k = 0; k < w.shape[0]; k++) seen.push(unravel(d[k * size(roi)], shape));
    return w;
  }, { overlap: 0.4, swBatchSize: 3 });
  const per = [9, 11, 10].map((n, d) => monaiStarts(n, roi[d], 0.4));
  const expected = [];
  for (let b = 0; b < 2; b++) for (const z of per[0]) for (const y of per[1]) for (const xx of per[2]) expected.push([b, 0, z, y, xx]);
  assert.equal(seen, expected);
  out.dispose();
  x.dispose();
});

// ---- blending -----------------------------------------------------------------------------------------------------

for (const [mode, overlap] of [['constant', 0.25], ['constant', 0.5], ['gaussian', 0.25], ['gaussian', 0.7]])
  test(`slidingWindowInference: identity predictor returns the input (${mode}, overlap ${overlap}, 2-D and 3-D)`, async () => {
    const r = rng(3);
    for (const [shape, roi] of [[[2, 3, 13, 17], [5, 8]], [[1, 2, 9, 10, 11], [4, 7, 5]]]) {
      const ref = Ref.random(shape, r).f32();
      const x = ref.toTensor();
      const out = await vg.inference.slidingWindowInference(x, roi, (w) => w, { mode, overlap, swBatchSize: 2 });
      // sum(w * x) / sum(w): a few f32 roundings (WGSL division alone allows 2.5 ulp), so 2e-6 relative
      await assertClose(out, ref, { rtol: 2e-6, atol: 0, msg: `${mode} ${shape}` });
      out.dispose();
      x.dispose();
    }
  });

for (const [mode, sigmaScale] of [['constant', 0.125], ['gaussian', 0.125], ['gaussian', [0.3, 0.1, 0.2]]])
  test(`slidingWindowInference: blended non-local predictor vs float64 MONAI reference (3-D, ${mode}, sigmaScale ${sigmaScale})`, async () => {
    const r = rng(5);
    const shape = [2, 2, 11, 9, 13];
    const roi = [6, 4, 7];
    const ref = Ref.random(shape, r, 0, 2).f32();
    const x = ref.toTensor();
    const out = await vg.inference.slidingWindowInference(x, roi, mixPredict, { mode, sigmaScale, overlap: 0.5, swBatchSize: 4 });
    await assertClose(out, refSlidingWindow(ref, roi, refMixPredict, { mode, sigmaScale, overlap: 0.5 }), { rtol: 1e-5, atol: 1e-6 });
    out.dispose();
    x.dispose();
  });

test('slidingWindowInference: 2-D gaussian with batch 3, odd sizes, one window per call', async () => {
  const r = rng(6);
  const shape = [3, 2, 23, 17];
  const roi = [8, 9];
  const ref = Ref.random(shape, r).f32();
  const x = ref.toTensor();
  const out = await vg.inference.slidingWindowInference(x, roi, mixPredict, { mode: 'gaussian', overlap: 0.3 });
  await assertClose(out, refSlidingWindow(ref, roi, refMixPredict, { mode: 'gaussian', overlap: 0.3 }), { rtol: 1e-5, atol: 1e-6 });
  out.dispose();
  x.dispose();
});

test('slidingWindowInference: gaussian importance map (sigma = 0.125 roi, clamp at 1e-3) seen through two windows', async () => {
  // a 1 x 40 image with roi 1 x 32 at overlap 0.75 has windows at 0 and 8; a predictor giving 1 in the first window and
  // 0 in the second returns w0 / (w0 + w1) where they overlap: the weights themselves, independent of the data
  const x = vg.zeros([1, 1, 1, 40]);
  let calls = 0;
  const out = await vg.inference.slidingWindowInference(x, [1, 32], (w) => (calls++ === 0 ? vg.onesLike(w) : vg.zerosLike(w)), { mode: 'gaussian', overlap: 0.75 });
  assert.is(calls, 2);
  const imp = importanceMap([32], 'gaussian', 0.125);
  const expected = Array.from({ length: 40 }, (_, i) => (i < 8 ? 1 : i >= 32 ? 0 : imp[i] / (imp[i] + imp[i - 8])));
  await assertClose(out, new Ref(expected, [1, 1, 1, 40]), { rtol: 1e-5, atol: 1e-7 });
  // the clamp matters here: the raw Gaussian falls to 3.6e-4 at the window edge
  assert.ok(Math.exp(-((0 - 15.5) ** 2) / (2 * 4 * 4)) < 1e-3 && imp[0] === 1e-3);
  out.dispose();
  x.dispose();
});

test('slidingWindowInference: a 3x3x3 conv predictor equals the full-volume conv wherever every window holds its receptive field', async () => {
  const r = rng(8);
  const shape = [1, 2, 12, 10, 11];
  const roi = [6, 5, 7];
  const overlap = 0.5;
  const xr = Ref.random(shape, r).f32();
  const wr = Ref.random([3, 2, 3, 3, 3], r).f32();
  const x = xr.toTensor();
  const w = wr.toTensor();
  const out = await vg.inference.slidingWindowInference(x, roi, (win) => vg.conv3d(win, w, { padding: 1 }), { overlap, mode: 'gaussian' });
  const full = refConv(xr, wr, 1);
  const got = await out.data();
  const per = shape.slice(2).map((n, d) => monaiStarts(n, roi[d], overlap));
  // a voxel is exact when, in every window covering it, it is at least one voxel from each window face that is not
  // also the volume's face (there, zero padding is the same inside and outside the window)
  const safe = (v, d) => per[d].filter((s) => v >= s && v < s + roi[d]).every((s) => (v - s >= 1 || s === 0) && (s + roi[d] - 1 - v >= 1 || s + roi[d] === shape[2 + d]));
  let checked = 0;
  for (let i = 0; i < got.length; i++) {
    const c = unravel(i, out.shape);
    if (!c.slice(2).every((v, d) => safe(v, d))) continue;
    checked++;
    assert.ok(Math.abs(got[i] - full.data[i]) <= 1e-5 + 1e-5 * Math.abs(full.data[i]), `voxel ${c}: ${got[i]} vs ${full.data[i]}`);
  }
  assert.ok(checked > got.length / 5, `only ${checked} of ${got.length} voxels checked`);
  for (const t of [out, x, w]) t.dispose();
});

test('slidingWindowInference: input smaller than the window is padded (constant cval, replicate) and cropped back', async () => {
  const r = rng(9);
  const shape = [1, 2, 5, 9, 4];
  const roi = [8, 6, 7];
  const ref = Ref.random(shape, r).f32();
  const x = ref.toTensor();
  for (const [padMode, cval] of [['constant', 2.5], ['replicate', 0], ['reflect', 0]]) {
    const out = await vg.inference.slidingWindowInference(x, roi, mixPredict, { padMode, cval, overlap: 0.25, mode: 'gaussian' });
    assert.equal(out.shape, [1, 3, 5, 9, 4]);
    await assertClose(out, refSlidingWindow(ref, roi, refMixPredict, { padMode, cval, overlap: 0.25, mode: 'gaussian' }), { rtol: 1e-5, atol: 1e-6, msg: padMode });
    out.dispose();
  }
  // roiSize entries <= 0 take the image size (MONAI's fall_back_tuple): one window along that dim
  const out = await vg.inference.slidingWindowInference(x, [-1, 4, 0], mixPredict);
  await assertClose(out, refSlidingWindow(ref, [5, 4, 4], refMixPredict), { rtol: 1e-5, atol: 1e-6 });
  out.dispose();
  x.dispose();
});

test('slidingWindowInference: progress, leak-free, and errors that say what to fix', async () => {
  const x = vg.rand([1, 1, 10, 10], { seed: 1 });
  const before = vg.memory();
  const calls = [];
  const out = await vg.inference.slidingWindowInference(x, 4, (w) => vg.mul(w, 2), { progress: (d, t) => calls.push([d, t]), swBatchSize: 4 });
  // 10 with roi 4, overlap 0.25: interval 3, starts 0 3 6 -> 9 windows in calls of 4, 4, 1
  assert.equal(calls, [[4, 9], [8, 9], [9, 9]]);
  out.dispose();
  await vg.sync();
  assert.is(vg.memory().liveTensors, before.liveTensors);
  assert.is(vg.memory().bytesInUse, before.bytesInUse);

  const swi = vg.inference.slidingWindowInference;
  const flat = vg.zeros([4, 4]);
  await assertRejects(() => swi(flat, 2, (w) => w), ['slidingWindowInference', 'rank 4 or 5', '[4, 4]']);
  flat.dispose();
  await assertRejects(() => swi(x, [4, 4, 4], (w) => w), ['roiSize', '2 integers']);
  await assertRejects(() => swi(x, 4, (w) => w, { overlap: 1 }), ['overlap', '[0, 1)']);
  await assertRejects(() => swi(x, 4, (w) => w, { mode: 'hann' }), ['mode', "'gaussian'"]);
  await assertRejects(() => swi(x, 4, (w) => vg.slice(w, 2, 0, 2)), ['predictor must return', '[1, C\', 4, 4]', '[1, 1, 2, 4]']);
  await vg.sync();
  assert.is(vg.memory().liveTensors, before.liveTensors, 'a failing predictor leaks nothing');
  x.dispose();
});

async function assertRejects(fn, fragments) {
  try {
    await fn();
  } catch (e) {
    for (const f of fragments) assert.ok(String(e.message).includes(f), `"${e.message}" lacks "${f}"`);
    return;
  }
  assert.unreachable('expected a rejection');
}

// ---- padToMultiple --------------------------------------------------------------------------------------------------

test('padToMultiple: MONAI DivisiblePad sizes and symmetric split, values for every mode, cropBack of other channel counts', async () => {
  const r = rng(11);
  const ref = Ref.random([2, 3, 13, 7, 9], r).f32();
  const x = ref.toTensor();
  for (const [mode, value] of [['constant', 0], ['constant', -1.5], ['replicate', 0], ['reflect', 0], ['circular', 0]]) {
    const p = vg.inference.padToMultiple(x, [8, 4, 3], { mode, value });
    // 13 -> 16 (1 before, 2 after), 7 -> 8 (0, 1), 9 stays
    assert.equal(p.padding, [[1, 2], [0, 1], [0, 0]]);
    assert.equal(p.spatialShape, [13, 7, 9]);
    await assertClose(p.tensor, refPadSpatial(ref, p.padding, mode, value), { rtol: 0, atol: 0, msg: mode });
    const logits = vg.mul(vg.slice(p.tensor, 1, 0, 2), 3);
    const back = p.cropBack(logits);
    assert.equal(back.shape, [2, 2, 13, 7, 9]);
    await assertClose(back, refCrop(new Ref(await logits.data(), logits.shape), p.padding), { rtol: 0, atol: 0 });
    for (const t of [p.tensor, logits, back]) t.dispose();
  }
  const q = vg.inference.padToMultiple(vg.zeros([1, 1, 32, 17]), 16);
  assert.equal(q.padding, [[0, 0], [7, 8]]);
  assert.equal(q.tensor.shape, [1, 1, 32, 32]);
  assertThrowsWith(() => q.cropBack(vg.zeros([1, 1, 32, 31])), ['cropBack', '[32, 32]', '[1, 1, 32, 31]']);
  assertThrowsWith(() => vg.inference.padToMultiple(x, [8, 4]), ['padToMultiple', 'multiple', '3 positive integers']);
  assertThrowsWith(() => vg.inference.padToMultiple(vg.zeros([1, 1, 3, 3]), 8, { mode: 'reflect' }), ['reflect', 'size above']);
  assertThrowsWith(() => vg.inference.padToMultiple(vg.zeros([3, 3]), 8), ['padToMultiple', 'rank 4 or 5']);
  x.dispose();
});

test('padToMultiple: gradients flow through reflect and replicate padding and cropBack', async () => {
  const r = rng(12);
  for (const mode of ['reflect', 'replicate', 'circular', 'constant'])
    await gradcheck((a) => {
      const p = vg.inference.padToMultiple(a, [4, 3], { mode });
      return p.cropBack(vg.mul(p.tensor, p.tensor));
    }, [Ref.random([1, 2, 5, 4], r)], { msg: mode });
  for (const mode of ['reflect', 'replicate'])
    await gradcheck((a) => vg.inference.padToMultiple(a, [4, 3], { mode }).tensor, [Ref.random([1, 2, 5, 4], r)], { msg: mode });
});

test.run();
