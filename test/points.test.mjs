// Point sampling (pointSample, pointUncertainty, uncertainPoints, uncertainGridPoints): against PyTorch fixtures
// (test/fixtures/gen_point.py: detectron2's point_sample in 2-D and 3-D with both alignCorners, bilinear with input
// and point gradients, nearest; PointRend's grid choice of the top-k uncertain cells), against a float64 JS
// reference of the training-time choice fed the same random draw, finite differences, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, distinct, gradcheck, gradcheck64, rng, setup, size, stridesOf, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('point');

/** float64 point_sample of x [B, C, *S] at p [B, N, d] in [0, 1] (zero padding, alignCorners false) → [B, C, N]. */
function refPointSample(x, p) {
  const [b, c, ...spatial] = x.shape;
  const d = spatial.length;
  const n = p.shape[1];
  const st = stridesOf(spatial);
  const cells = size(spatial);
  const out = new Float64Array(b * c * n);
  for (let bi = 0; bi < b; bi++)
    for (let j = 0; j < n; j++) {
      // axis a of the map (D, H, W order) reads coordinate d - 1 - a (x is W)
      const pos = spatial.map((s, a) => p.data[(bi * n + j) * d + (d - 1 - a)] * s - 0.5);
      const lo = pos.map(Math.floor);
      for (let corner = 0; corner < 1 << d; corner++) {
        let w = 1;
        let off = 0;
        let inside = true;
        for (let a = 0; a < d; a++) {
          const up = (corner >> a) & 1;
          const i = lo[a] + up;
          w *= up ? pos[a] - lo[a] : 1 - (pos[a] - lo[a]);
          if (i < 0 || i >= spatial[a]) inside = false;
          off += i * st[a];
        }
        if (!inside) continue;
        for (let ci = 0; ci < c; ci++) out[(bi * c + ci) * n + j] += w * x.data[(bi * c + ci) * cells + off];
      }
    }
  return new Ref(out, [b, c, n]);
}

test('pointSample matches PyTorch point_sample (2-D and 3-D, both alignCorners): values, input and point gradients', async () => {
  for (const [ci, c] of CASES.filter((c) => c.op === 'pointSample').entries()) {
    const msg = `case ${ci} (input [${c.x.shape}], alignCorners ${c.alignCorners})`;
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const p = fixtureRef(c.p).toTensor({ requiresGrad: true });
    const out = vg.pointSample(x, p, { alignCorners: c.alignCorners });
    await assertClose(out, fixtureRef(c.out), { rtol: 1e-5, atol: 1e-6, msg: `${msg} forward` });
    const g = fixtureRef(c.g).toTensor();
    const loss = out.mul(g).sum();
    loss.backward();
    await assertClose(x.grad, fixtureRef(c.gx), { rtol: 1e-5, atol: 1e-5, msg: `${msg} input gradient` });
    await assertClose(p.grad, fixtureRef(c.gp), { rtol: 1e-4, atol: 1e-4, msg: `${msg} point gradient` });
    const near = vg.pointSample(x, p, { alignCorners: c.alignCorners, mode: 'nearest' });
    await assertClose(near, fixtureRef(c.nearest), { rtol: 0, atol: 0, msg: `${msg} nearest` });
    for (const t of [x, p, out, g, loss, near]) t.dispose();
  }
});

test('pointSample: finite differences against a float64 reference (input and points, 2-D and 3-D)', async () => {
  const r = rng(3);
  for (const shape of [
    [2, 3, 6, 5],
    [1, 2, 3, 4, 5],
  ]) {
    const d = shape.length - 2;
    const x = Ref.random(shape, r);
    const p = Ref.random([shape[0], 8, d], r, 0.02, 0.98);
    await gradcheck64((a, q) => vg.pointSample(a, q), refPointSample, [x, p], { msg: `input [${shape}]` });
  }
});

test('pointUncertainty and uncertainGridPoints match PointRend (fixtures: 2-D, 3-D, k clamped to the grid)', async () => {
  for (const [ci, c] of CASES.filter((c) => c.op === 'uncertainGridPoints').entries()) {
    const msg = `case ${ci} (logits [${c.logits.shape}], k ${c.k})`;
    const logits = fixtureRef(c.logits).toTensor();
    const u = vg.pointUncertainty(logits);
    await assertClose(u, fixtureRef(c.u), { rtol: 0, atol: 0, msg: `${msg} uncertainty` });
    const { indices, coords } = vg.uncertainGridPoints(logits, c.k);
    assert.is(indices.dtype, 'i32', `${msg} indices dtype`);
    await assertClose(indices, fixtureRef(c.indices), { rtol: 0, atol: 0, msg: `${msg} indices` });
    await assertClose(coords, fixtureRef(c.coords), { rtol: 1e-6, atol: 0, msg: `${msg} coords` });
    for (const t of [logits, u, indices, coords]) t.dispose();
  }
});

test('pointUncertainty: finite differences (the gradient reaches the best and second-best logits)', async () => {
  const x = distinct([2, 4, 3, 5], rng(5));
  await gradcheck((t) => vg.pointUncertainty(t), [x], { eps: 1e-3 });
});

/** float64 reference of uncertainPoints given its random draw [B, over·n + n - kept, d]. */
function refUncertainPoints(logits, draw, n, over, kept) {
  const [b, , d] = draw.shape;
  const rows = draw.shape[1];
  const cand = over * n;
  const out = [];
  for (let bi = 0; bi < b; bi++) {
    const pts = new Ref(draw.data.slice(bi * rows * d, (bi * rows + cand) * d), [1, cand, d]);
    const one = new Ref(logits.data.slice(bi * size(logits.shape.slice(1)), (bi + 1) * size(logits.shape.slice(1))), [1, ...logits.shape.slice(1)]);
    const s = refPointSample(one, pts);
    const classes = logits.shape[1];
    const unc = Array.from({ length: cand }, (_, j) => {
      const v = Array.from({ length: classes }, (_, ci) => s.data[ci * cand + j]).sort((a, b2) => b2 - a);
      return { j, u: v[1] - v[0] };
    });
    unc.sort((a, b2) => b2.u - a.u || a.j - b2.j);
    for (let t = 0; t < kept; t++) out.push(...pts.data.slice(unc[t].j * d, unc[t].j * d + d));
    out.push(...draw.data.slice((bi * rows + cand) * d, (bi + 1) * rows * d));
  }
  return new Ref(out, [b, n, d]);
}

test('uncertainPoints: the most uncertain oversampled candidates, then uniform points (float64 reference, 2-D and 3-D)', async () => {
  const r = rng(9);
  for (const [shape, n, opts] of [
    [[2, 3, 12, 10], 40, { seed: 4 }],
    [[2, 4, 12, 10], 33, { seed: 5, oversample: 2, importance: 0.5 }],
    [[1, 2, 4, 6, 5], 25, { seed: 6 }],
    [[1, 3, 8, 8], 16, { seed: 7, importance: 1 }],
    [[1, 3, 8, 8], 16, { seed: 8, importance: 0 }],
  ]) {
    const over = opts.oversample ?? 3;
    const kept = Math.floor((opts.importance ?? 0.75) * n);
    const logits = Ref.random(shape, r, -3, 3).f32();
    const lt = logits.toTensor();
    const got = vg.uncertainPoints(lt, n, opts);
    const drawT = vg.rand([shape[0], over * n + n - kept, shape.length - 2], { seed: opts.seed });
    const draw = new Ref(await drawT.data(), drawT.shape);
    // candidate uncertainties differ by far more than f32 round-off here; a near-tie would show as a swapped row
    await assertClose(got, refUncertainPoints(logits, draw, n, over, kept), { rtol: 0, atol: 0, msg: `logits [${shape}], n ${n}` });
    for (const t of [lt, got, drawT]) t.dispose();
  }
});

test('uncertainPoints is deterministic for a seed, and its points carry no gradient', async () => {
  const logits = vg.randn([1, 3, 16, 16], { seed: 1 }).requiresGrad_();
  const a = vg.uncertainPoints(logits, 64, { seed: 3 });
  const b = vg.uncertainPoints(logits, 64, { seed: 3 });
  assert.equal(Array.from(await a.data()), Array.from(await b.data()));
  assert.is(a.requiresGrad, false);
  const all = await a.data();
  assert.ok(all.every((v) => v >= 0 && v < 1), 'points lie in [0, 1)');
  for (const t of [logits, a, b]) t.dispose();
});

test('point sampling ops: clear errors for bad input', () => {
  const x = vg.zeros([2, 3, 4, 5]);
  const p = vg.zeros([2, 7, 2]);
  assertThrowsWith(() => vg.pointSample(x, vg.zeros([2, 7, 3])), ['pointSample', 'coords', '[B, N, 2]', '[2, 7, 3]']);
  assertThrowsWith(() => vg.pointSample(x, vg.zeros([1, 7, 2])), ['pointSample', 'B = 2']);
  assertThrowsWith(() => vg.pointSample(vg.zeros([3, 4]), p), ['pointSample', 'input']);
  assertThrowsWith(() => vg.pointSample(x, p, { align: true }), ['pointSample', "unknown option 'align'"]);
  assertThrowsWith(() => vg.pointUncertainty(vg.zeros([2, 1, 4, 5])), ['pointUncertainty', 'at least 2 classes']);
  assertThrowsWith(() => vg.uncertainPoints(x, 0), ['uncertainPoints', 'n must be a positive integer']);
  assertThrowsWith(() => vg.uncertainPoints(x, 8, { importance: 1.5 }), ['uncertainPoints', 'importance', '[0, 1]']);
  assertThrowsWith(() => vg.uncertainPoints(x, 8, { oversample: 0.5 }), ['uncertainPoints', 'oversample']);
  assertThrowsWith(() => vg.uncertainGridPoints(x, -1), ['uncertainGridPoints', 'k must be a positive integer']);
  for (const t of [x, p]) t.dispose();
});

test.run();
