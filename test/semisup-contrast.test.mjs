// vg.methods.semisup pixel contrasts (ACTION's anatomical contrast, MONA's memory-bank contrast) against float64
// references rebuilt from their samples, with gradient checks; the sampling rules; the strong view, the random warps
// and the semi-supervised data splits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);
const S = () => vg.methods.semisup;
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const unit = (v) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const logSoftmaxRow = (v) => {
  const m = Math.max(...v);
  const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return v.map((x) => x - lse);
};
/** Pixel rows [N·H·W, D] of a [N, D, H, W] Ref. */
const pixelRows = (rep) => {
  const [n, d, h, w] = rep.shape;
  const out = [];
  for (let b = 0; b < n; b++) for (let p = 0; p < h * w; p++) out.push(Array.from({ length: d }, (_, k) => rep.data[(b * d + k) * h * w + p]));
  return out;
};

test('anatomicalContrast: hard queries per class, graph-sampled negatives of other classes, fused InfoNCE = float64', async () => {
  const r = rng(21);
  const rep = Ref.random([2, 5, 4, 4], r).f32();
  const labels = new Ref(Array.from({ length: 32 }, (_, i) => (i < 3 ? -1 : r.int(0, 3))), [2, 4, 4], 'i32');
  // student probabilities: pixel i's own class gets 0.99 on every 4th pixel (easy), 0.5 elsewhere (hard)
  const probs = new Ref(new Array(2 * 3 * 16).fill(0), [2, 3, 4, 4]);
  for (let b = 0; b < 2; b++)
    for (let p = 0; p < 16; p++) {
      const y = labels.data[b * 16 + p];
      for (let c = 0; c < 3; c++) probs.data[(b * 3 + c) * 16 + p] = y < 0 ? 1 / 3 : c === y ? (p % 4 === 0 ? 0.99 : 0.5) : p % 4 === 0 ? 0.005 : 0.25;
    }
  const [lt, pt] = [labels.toTensor(), probs.toTensor()];
  const opts = { queries: 6, negatives: 5, temperature: 0.5, strongThreshold: 0.97, seed: 3 };
  const rt = rep.toTensor();
  const { loss, sample } = await S().anatomicalContrast(rt, lt, pt, opts);
  assert.ok(sample);
  // every query is a hard pixel of its class; every negative belongs to another valid class
  for (let q = 0; q < sample.queryIndex.length; q++) {
    const i = sample.queryIndex[q];
    assert.is(labels.data[i], sample.queryClass[q]);
    assert.ok(i % 16 % 4 !== 0, 'a hard pixel');
    for (let j = 0; j < 5; j++) {
      const k = sample.negativeIndex[q * 5 + j];
      assert.ok(labels.data[k] >= 0 && labels.data[k] !== sample.queryClass[q], 'negative of another valid class');
    }
  }
  assert.is(sample.queryIndex.length, 6 * sample.classes.length);
  await assertClose(loss, refAnco(rep, rep, labels, sample, 0.5), { rtol: 1e-4, atol: 1e-6 });
  // the same seed and inputs draw the same sample, so the loss is a function of rep for the gradient check
  // anatomicalContrast is async (it reads labels back) and gradcheck64 needs a synchronous fn: replay its sample
  await gradcheck64((x) => replayAnco(x, labels, sample, 0.5), (x) => refAnco(x, rep, labels, sample, 0.5), [rep], {
    msg: 'anatomicalContrast (queries carry the gradient; prototypes and negatives detached)',
  });
  // one class present: 0
  const one = vg.zerosLike(lt);
  const single = await S().anatomicalContrast(rt, one, pt, opts);
  assert.is(await single.loss.item(), 0);
  assert.is(single.sample, null);
  const wrong = vg.zeros([2, 3, 3], { dtype: 'i32' });
  await rejectsWith(() => S().anatomicalContrast(rt, wrong, pt, opts), ['anatomicalContrast', 'labels must be [N, ...spatial] = [2, 4, 4]', '[2, 3, 3]']);
  for (const t of [lt, pt, rt, loss, one, single.loss, wrong]) t.dispose();
});

/** The recipe's loss for a fixed sample: normalised pixel rows, queries gathered, fused InfoNCE over indexed negatives. */
function replayAnco(x, labels, sample, tau) {
  const feats = vg.normalize(x.permute([0, 2, 3, 1]).reshape([-1, x.shape[1]]), { dim: 1 });
  const queries = vg.indexSelect(feats, 0, vg.tensor(Array.from(sample.queryIndex), [sample.queryIndex.length], { dtype: 'i32' }));
  const index = vg.tensor(Array.from(sample.negativeIndex), [sample.queryIndex.length, sample.negatives], { dtype: 'i32' });
  return vg.infoNCE(queries, feats.detach(), protoOf(x, labels, sample), { temperature: tau, negativeIndex: index });
}

/** The detached prototypes of the sample's query classes from a tensor rep (the recipe's computation, outside autodiff). */
function protoOf(x, labels, sample) {
  return vg.noGrad(() => {
    const feats = vg.normalize(x.permute([0, 2, 3, 1]).reshape([-1, x.shape[1]]), { dim: 1 });
    const P = labels.data.length;
    const C = Math.max(...labels.data) + 1;
    const w = new Float32Array(C * P);
    for (let c = 0; c < C; c++) {
      const m = [...labels.data.keys()].filter((i) => labels.data[i] === c);
      for (const i of m) w[c * P + i] = 1 / m.length;
    }
    const protos = vg.normalize(vg.matmul(vg.tensor(w, [C, P]), feats), { dim: 1 });
    return vg.indexSelect(protos, 0, vg.tensor(Array.from(sample.queryClass), [sample.queryClass.length], { dtype: 'i32' }));
  });
}

/**
 * L_anco in float64 from a sample: normalised features; queries from x, prototypes (normalised class means of the
 * normalised features) and negatives from rep0 (detached in the op: the gradient check perturbs x only).
 */
function refAnco(x, rep0, labels, sample, tau) {
  const feats0 = pixelRows(rep0).map(unit);
  const feats = pixelRows(x).map(unit);
  const C = Math.max(...labels.data) + 1;
  const protos = Array.from({ length: C }, (_, c) => {
    const m = feats0.filter((_, i) => labels.data[i] === c);
    return m.length ? unit(m[0].map((_, k) => m.reduce((s, f) => s + f[k], 0) / m.length)) : null;
  });
  let total = 0;
  const Q = sample.queryIndex.length;
  for (let q = 0; q < Q; q++) {
    const f = feats[sample.queryIndex[q]];
    const logits = [dot(f, protos[sample.queryClass[q]])];
    for (let j = 0; j < sample.negatives; j++) logits.push(dot(f, feats0[sample.negativeIndex[q * sample.negatives + j]]));
    total -= logSoftmaxRow(logits.map((v) => v / tau))[0];
  }
  return new Ref([total / Q], []);
}

test('memoryBankContrast: reliable pixels of class c against class c\'s bank, teacher prototype positive', async () => {
  const r = rng(22);
  const D = 4;
  const student = Ref.random([1, D, 2, 4], r).f32();
  const teacher = Ref.random([1, D, 2, 4], r).f32();
  const labels = new Ref([0, 0, 1, 1, 0, 1, 1, 0], [1, 2, 4], 'i32');
  const tp = new Ref(new Array(16).fill(0), [1, 2, 2, 4]);
  for (let p = 0; p < 8; p++) {
    tp.data[labels.data[p] * 8 + p] = 0.8;
    tp.data[(1 - labels.data[p]) * 8 + p] = 0.2;
  }
  const reliable = Uint8Array.from([1, 1, 1, 0, 1, 1, 1, 0]);
  const banks = [0, 1].map(() => new (S().MemoryBank)(6, D));
  const bankRows = [Ref.random([3, D], r).f32(), Ref.random([5, D], r).f32()];
  bankRows.forEach((b, c) => {
    const t = b.toTensor();
    banks[c].enqueue(t);
    t.dispose();
  });
  const [tt, lt, pt] = [teacher.toTensor(), labels.toTensor(), tp.toTensor()];
  const st = student.toTensor();
  const out = await S().memoryBankContrast(st, tt, lt, pt, reliable, banks, { queries: 5, negatives: 4, temperature: 0.5, seed: 9 });
  // float64: replay the sampler (the host generator is deterministic: same seed, same draws, same order)
  const gen = new vg.data.Rng(9);
  const sF = pixelRows(student).map(unit);
  const tF = pixelRows(teacher).map(unit);
  let sum = 0;
  for (let c = 0; c < 2; c++) {
    const pix = [...Array(8).keys()].filter((i) => labels.data[i] === c && reliable[i]);
    const q = Array.from({ length: 5 }, () => pix[gen.int(0, pix.length)]);
    const neg = Array.from({ length: 20 }, () => gen.int(0, banks[c].filled));
    const proto = unit(tF[0].map((_, k) => pix.reduce((s, i) => s + tF[i][k], 0) / pix.length));
    const rowsC = Array.from({ length: bankRows[c].shape[0] }, (_, i) => Array.from(bankRows[c].data.slice(i * D, (i + 1) * D)));
    let lc = 0;
    q.forEach((i, qi) => {
      const logits = [dot(sF[i], proto), ...neg.slice(qi * 4, qi * 4 + 4).map((k) => dot(sF[i], rowsC[k]))];
      lc -= logSoftmaxRow(logits.map((v) => v / 0.5))[0];
    });
    sum += lc / 5;
  }
  await assertClose(out, new Ref([sum / 2], []), { rtol: 1e-4, atol: 1e-6 });
  for (const t of [tt, lt, pt, st, out]) t.dispose();
  banks.forEach((b) => b.dispose());
});

test('strongView: CutMix pairs each image with the next, labels and confidences follow the image', async () => {
  const n = 3, H = 16, W = 16;
  // image b is constant b + 1; its label b; confidence 0.1·(b + 1)
  const img = vg.tensor(Array.from({ length: n * H * W }, (_, i) => Math.floor(i / (H * W)) + 1), [n, 1, H, W]);
  const lab = vg.tensor(Array.from({ length: n * H * W }, (_, i) => Math.floor(i / (H * W))), [n, H, W], { dtype: 'i32' });
  const conf = vg.tensor(Array.from({ length: n * H * W }, (_, i) => 0.1 * (Math.floor(i / (H * W)) + 1)), [n, H, W]);
  for (let seed = 0; seed < 4; seed++) {
    // morph off: the CutMix bookkeeping exactly; morph on: checked below
    const v = S().strongView(img, lab, conf, { seed, cutmix: true, morphProbability: 0 });
    const [l, c] = [await v.label.data(), await v.confidence.data()];
    for (let b = 0; b < n; b++) {
      let fromNext = 0;
      for (let p = 0; p < H * W; p++) {
        const y = l[b * H * W + p];
        // a label from this image or the next (the morph moves pixels but keeps values)
        assert.ok(y === b || y === (b + 1) % n, `image ${b}: label ${y}`);
        if (y === (b + 1) % n) fromNext++;
        assert.ok(Math.abs(c[b * H * W + p] - 0.1 * (y + 1)) < 1e-6, 'confidence comes from the same image as the label');
      }
      assert.ok(fromNext > 0.2 * H * W && fromNext < 0.8 * H * W, `about half the area comes from the next image (${fromNext})`);
    }
    for (const t of [v.image, v.label, v.confidence]) t.dispose();
  }
  // with the morph, labels move with the image (nearest): still one of the two sources, or background pulled in at the border
  const m = S().strongView(img, lab, conf, { seed: 1, morphProbability: 1 });
  const ml = await m.label.data();
  let border = 0;
  ml.forEach((y, i) => {
    const b = Math.floor(i / (H * W));
    assert.ok(y === b || y === (b + 1) % n || y === 0, `morphed label ${y} in image ${b}`);
    if (y === 0 && b !== 0 && b !== n - 1) border++;
  });
  assert.ok(border < 0.2 * H * W, `background pulled in from outside: ${border} pixels`);
  for (const t of [m.image, m.label, m.confidence, img, lab, conf]) t.dispose();
});

test('strongView ablations: with every part off the view is the input; switching one part off leaves the others\' draws', async () => {
  const r = rng(17);
  const n = 2, H = 16, W = 16;
  const img = Ref.random([n, 1, H, W], r, 0, 1).toTensor();
  const lab = vg.tensor(Array.from({ length: n * H * W }, (_, i) => i % 3), [n, H, W], { dtype: 'i32' });
  const conf = vg.full([n, H, W], 0.9);
  const none = S().strongView(img, lab, conf, { seed: 3, cutmix: false, jitter: false, blur: false, morphProbability: 0 });
  assert.equal(Array.from(await none.image.data()), Array.from(await img.data()), 'no part: the plain image');
  assert.equal(Array.from(await none.label.data()), Array.from(await lab.data()), 'no part: the labels');
  // jitter and blur change only intensities: the CutMix box (labels) is the same with or without them
  const full = S().strongView(img, lab, conf, { seed: 3, morphProbability: 0 });
  const cutOnly = S().strongView(img, lab, conf, { seed: 3, jitter: false, blur: false, morphProbability: 0 });
  assert.equal(Array.from(await cutOnly.label.data()), Array.from(await full.label.data()), 'the same CutMix box');
  assert.not.equal(Array.from(await cutOnly.image.data()), Array.from(await full.image.data()), 'jitter or blur changed the full view');
  for (const t of [none, full, cutOnly].flatMap((v) => [v.image, v.label, v.confidence]).concat([img, lab, conf])) t.dispose();
});

test('randomDiffeomorphism is smooth and of the requested scale; randomAffineWarp applies one T to any batch', async () => {
  const flow = S().randomDiffeomorphism([2, 1, 32, 32], { epsilon: 1.5, seed: 4 });
  assert.equal(flow.shape, [2, 2, 32, 32]);
  const f = await flow.data();
  const maxAbs = f.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(maxAbs > 0.05 && maxAbs < 6, `displacement magnitude ${maxAbs}`);
  let jump = 0;
  for (let i = 0; i + 1 < f.length; i++) if ((i + 1) % 32) jump = Math.max(jump, Math.abs(f[i + 1] - f[i]));
  assert.ok(jump < 1, `neighbouring displacements differ by ${jump} < 1 voxel (a diffeomorphism needs < 1)`);
  const warp = S().randomAffineWarp(2, 16, 16, 5);
  const ones = vg.ones([2, 3, 16, 16]);
  const a = warp(ones);
  const b = warp(vg.ones([2, 1, 16, 16]));
  // the same T for both batches: channel 0 of a equals b
  await assertClose(a.slice(1, 0, 1), new Ref(await b.data(), b.shape), { rtol: 0, atol: 1e-6 });
  for (const t of [flow, ones, a, b]) t.dispose();
});

test('thinPlateSpline: passes through its control points, reproduces an affine map, bends between jittered points', () => {
  const from = Array.from({ length: 25 }, (_, i) => [-1 + (i % 5) / 2, -1 + Math.floor(i / 5) / 2]);
  const affine = ([x, y]) => [0.9 * x - 0.3 * y + 0.05, 0.2 * x + 1.1 * y - 0.1];
  const fa = S().thinPlateSpline(from, from.map(affine));
  for (const p of [[0.13, -0.77], [0.9, 0.4], [-0.5, 0.25]]) {
    const [gx, gy] = fa(...p);
    const [wx, wy] = affine(p);
    assert.ok(Math.abs(gx - wx) < 1e-9 && Math.abs(gy - wy) < 1e-9, `affine targets: f(${p}) = ${gx}, ${gy} vs ${wx}, ${wy}`);
  }
  const rng = new vg.data.Rng(3);
  const to = from.map(([x, y]) => [x + rng.uniform(-0.05, 0.05), y + rng.uniform(-0.05, 0.05)]);
  const f = S().thinPlateSpline(from, to);
  from.forEach((p, k) => {
    const [gx, gy] = f(...p);
    assert.ok(Math.abs(gx - to[k][0]) < 1e-9 && Math.abs(gy - to[k][1]) < 1e-9, `control point ${k}`);
  });
  // between control points the jittered spline is not the best-fit affine map: it bends
  const mid = f(0.25, 0.25);
  assert.ok(Math.hypot(mid[0] - 0.25, mid[1] - 0.25) < 0.05 && Math.hypot(mid[0] - 0.25, mid[1] - 0.25) > 0, `f(0.25, 0.25) = ${mid}`);
  assertThrowsWith(() => S().thinPlateSpline([[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 1], [2, 2]]), ['thinPlateSpline', 'degenerate']);
});

test('randomTpsWarp: sigma 0 is randomAffineWarp; the jitter moves pixels by about sigma', async () => {
  const x = vg.rand([2, 3, 16, 16], { seed: 9 });
  const affine = S().randomAffineWarp(2, 16, 16, 5)(x);
  const exact = S().randomTpsWarp(2, 16, 16, 5, { sigma: 0 })(x);
  await assertClose(exact, new Ref(await affine.data(), affine.shape), { rtol: 0, atol: 1e-5 });
  const jittered = await S().randomTpsWarp(2, 16, 16, 5, { sigma: 0.05 })(x).data();
  const a = await affine.data();
  const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - jittered[i])), 0);
  assert.ok(diff > 1e-3 && diff < 1, `jitter changes the warp a little: max |Δ| ${diff}`);
  for (const t of [x, affine, exact]) t.dispose();
});

test('cardiacPhantomSplit: subjects 70 / 10 / 20, the first N training subjects labelled, disjoint', async () => {
  const parts = vg.data.splitSubjects(100, 3);
  assert.equal([parts.labeled.length, parts.unlabeled.length, parts.val.length, parts.test.length], [3, 67, 10, 20]);
  const all = [...parts.labeled, ...parts.unlabeled, ...parts.val, ...parts.test];
  assert.is(new Set(all).size, 100);
  assertThrowsWith(() => vg.data.splitSubjects(100, 71), ['splitSubjects', 'labeled must be an integer in [1, 70]', 'got 71']);
  const s = vg.data.cardiacPhantomSplit({ labeled: 1, subjects: 10, size: 16, frames: 2 });
  assert.equal(s.labeled.image.shape, [2, 1, 16, 16]);
  assert.equal(s.unlabeled.label.shape, [12, 16, 16]);
  assert.equal(s.test.image.shape, [4, 1, 16, 16]);
  const labs = new Set(await s.labeled.label.data());
  assert.equal([...labs].sort(), [0, 1, 2, 3]);
  for (const p of Object.values(s)) (p.image.dispose(), p.label.dispose());
});

test('leftAtriumPhantom: a seeded binary atrium of plausible size, brighter than its surroundings', () => {
  const a = vg.data.leftAtriumPhantomArrays({ shape: [32, 32, 32], seed: 1 });
  const b = vg.data.leftAtriumPhantomArrays({ shape: [32, 32, 32], seed: 1 });
  const c = vg.data.leftAtriumPhantomArrays({ shape: [32, 32, 32], seed: 2 });
  assert.equal(Array.from(a.label), Array.from(b.label));
  assert.not.equal(Array.from(a.label), Array.from(c.label));
  const fg = a.label.reduce((s, v) => s + v, 0) / a.label.length;
  assert.ok(fg > 0.03 && fg < 0.4, `foreground fraction ${fg}`);
  let inside = 0, outside = 0;
  a.label.forEach((l, i) => (l ? (inside += a.image[i]) : (outside += a.image[i])));
  const ratio = inside / (fg * a.label.length) / (outside / ((1 - fg) * a.label.length));
  assert.ok(ratio > 1.5, `atrium/background intensity ratio ${ratio}`);
  assertThrowsWith(() => vg.data.leftAtriumPhantomArrays({ shape: [4, 32, 32] }), ['leftAtriumPhantom', 'shape must be [D, H, W] of integers >= 8']);
});

test.run();
