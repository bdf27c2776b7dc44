// normalize, cosineSimilarity, cosineSimilarityMatrix: against PyTorch fixtures (test/fixtures/gen_contrastive.py:
// zero rows and eps clamps, broadcasting, batched matrices; forward and the inputs' gradients), float64 finite
// differences, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, stridesOf, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('contrastive');
const TOL = { rtol: 1e-5, atol: 1e-6 };

const byOp = (op) => CASES.filter((c) => c.op === op);

test('normalize matches F.normalize: forward and input gradient (zero rows, a large eps, several dims)', async () => {
  assert.ok(byOp('normalize').length >= 5, 'fixture cases present');
  for (const c of byOp('normalize')) {
    const msg = `normalize x [${c.x.shape}] dim ${c.dim} eps ${c.eps}`;
    const x = fixtureRef(c.x).toTensor({ requiresGrad: true });
    const y = vg.normalize(x, { dim: c.dim, eps: c.eps });
    await assertClose(y, fixtureRef(c.out), { ...TOL, msg });
    y.backward(fixtureRef(c.g).toTensor());
    await assertClose(x.grad, fixtureRef(c.gx), { rtol: 1e-4, atol: 1e-5, msg: `${msg} gradient` });
    x.dispose();
    y.dispose();
  }
});

test('cosineSimilarity matches F.cosine_similarity: forward and both gradients (zero rows, broadcasting, eps)', async () => {
  assert.ok(byOp('cosineSimilarity').length >= 4, 'fixture cases present');
  for (const c of byOp('cosineSimilarity')) {
    const msg = `cosineSimilarity a [${c.a.shape}] b [${c.b.shape}] dim ${c.dim} eps ${c.eps}`;
    const a = fixtureRef(c.a).toTensor({ requiresGrad: true });
    const b = fixtureRef(c.b).toTensor({ requiresGrad: true });
    const y = vg.cosineSimilarity(a, b, { dim: c.dim, eps: c.eps });
    await assertClose(y, fixtureRef(c.out), { ...TOL, msg });
    // (no gradient stored where a norm is clamped: torch 1.13's backward is wrong there; float64 checks it below)
    if (c.g) {
      y.backward(fixtureRef(c.g).toTensor());
      await assertClose(a.grad, fixtureRef(c.ga), { rtol: 1e-4, atol: 1e-5, msg: `${msg} gradient of a` });
      await assertClose(b.grad, fixtureRef(c.gb), { rtol: 1e-4, atol: 1e-5, msg: `${msg} gradient of b` });
    }
    for (const t of [a, b, y]) t.dispose();
  }
  assert.ok(byOp('cosineSimilarity').filter((c) => c.g).length >= 2, 'gradient fixtures present');
});

test('cosineSimilarityMatrix matches the normalised product in PyTorch: [N, D]×[M, D] and batched', async () => {
  assert.ok(byOp('cosineSimilarityMatrix').length >= 2, 'fixture cases present');
  for (const c of byOp('cosineSimilarityMatrix')) {
    const msg = `cosineSimilarityMatrix a [${c.a.shape}] b [${c.b.shape}]`;
    const a = fixtureRef(c.a).toTensor({ requiresGrad: true });
    const b = fixtureRef(c.b).toTensor({ requiresGrad: true });
    const y = vg.cosineSimilarityMatrix(a, b);
    await assertClose(y, fixtureRef(c.out), { ...TOL, msg });
    y.backward(fixtureRef(c.g).toTensor());
    await assertClose(a.grad, fixtureRef(c.ga), { rtol: 1e-4, atol: 1e-5, msg: `${msg} gradient of a` });
    await assertClose(b.grad, fixtureRef(c.gb), { rtol: 1e-4, atol: 1e-5, msg: `${msg} gradient of b` });
    for (const t of [a, b, y]) t.dispose();
  }
});

/** Float64 unit vectors of the rows of a [rows, D] Ref (norm clamped at eps). */
function unitRows(x, eps) {
  const D = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / D; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x.data[r * D + d] ** 2;
    const n = Math.max(Math.sqrt(s), eps);
    for (let d = 0; d < D; d++) out[r * D + d] = x.data[r * D + d] / n;
  }
  return out;
}

/** Float64 cosine matrix of a [(B,) N, D] and b [(B,) M, D], each norm clamped at eps. */
function refCosineMatrix(a, b, eps = 1e-8) {
  const [N, D] = a.shape.slice(-2);
  const M = b.shape[b.shape.length - 2];
  const B = a.shape.length === 3 ? a.shape[0] : 1;
  const an = unitRows(a, eps);
  const bn = unitRows(b, eps);
  const out = new Float64Array(B * N * M);
  for (let z = 0; z < B; z++)
    for (let i = 0; i < N; i++)
      for (let j = 0; j < M; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += an[(z * N + i) * D + d] * bn[(z * M + j) * D + d];
        out[(z * N + i) * M + j] = s;
      }
  return new Ref(out, a.shape.length === 3 ? [B, N, M] : [N, M]);
}

/** Float64 normalize along the last dim. */
const refNormalizeLast = (x, eps) => new Ref(unitRows(x, eps), x.shape);

test('float64 finite differences: normalize, cosineSimilarity, cosineSimilarityMatrix', async () => {
  const r = rng(3);
  await gradcheck64((x) => vg.normalize(x, { dim: -1 }), (x) => refNormalizeLast(x, 1e-12), [Ref.random([4, 6], r)], { msg: 'normalize' });
  const refCos = (a, b, eps = 1e-8) => {
    const m = refCosineMatrix(a, b, eps);
    const n = a.shape[0];
    return new Ref(Array.from({ length: n }, (_, i) => m.data[i * n + i]), [n]);
  };
  await gradcheck64((a, b) => vg.cosineSimilarity(a, b, { dim: 1 }), refCos, [Ref.random([5, 4], r), Ref.random([5, 4], r)], { msg: 'cosineSimilarity' });
  // norms on both sides of eps = 0.6: the clamped rows' gradient (where torch 1.13's backward is wrong)
  const small = new Ref(Ref.random([6, 4], r).data.map((v, i) => (Math.floor(i / 4) % 2 ? 0.2 * v : v)), [6, 4]);
  await gradcheck64((a, b) => vg.cosineSimilarity(a, b, { dim: 1, eps: 0.6 }), (a, b) => refCos(a, b, 0.6), [small, Ref.random([6, 4], r)], {
    msg: 'cosineSimilarity with clamped norms',
  });
  await gradcheck64((a, b) => vg.cosineSimilarityMatrix(a, b), refCosineMatrix, [Ref.random([5, 3], r), Ref.random([4, 3], r)], { msg: 'cosine matrix' });
  await gradcheck64((a, b) => vg.cosineSimilarityMatrix(a, b), refCosineMatrix, [Ref.random([2, 3, 4], r), Ref.random([2, 5, 4], r)], { msg: 'batched cosine matrix' });
});

test('a long vector dim and many rows against float64 (the reduction and the matmul tiles)', async () => {
  const r = rng(4);
  const a = Ref.random([70, 300], r).f32();
  const b = Ref.random([130, 300], r).f32();
  const [ta, tb] = [a.toTensor(), b.toTensor()];
  const y = vg.cosineSimilarityMatrix(ta, tb);
  await assertClose(y, refCosineMatrix(a, b), { rtol: 1e-5, atol: 2e-6, msg: 'cosine matrix 70×130×300' });
  const n = vg.normalize(ta, { dim: 1 });
  await assertClose(n, refNormalizeLast(a, 1e-12), { rtol: 1e-5, atol: 1e-6, msg: 'normalize 70×300' });
  assert.equal(stridesOf(n.shape), [300, 1]);
  for (const t of [ta, tb, y, n]) t.dispose();
});

/** Float64 k nearest rows per query of a similarity matrix Ref [Q, K]: largest first, lower row first on ties. */
function refTopRows(sim, k) {
  const [Q, K] = sim.shape;
  const values = [];
  const indices = [];
  for (let i = 0; i < Q; i++) {
    const order = Array.from({ length: K }, (_, j) => j).sort((a, b) => sim.data[i * K + b] - sim.data[i * K + a] || a - b);
    for (const j of order.slice(0, k)) {
      values.push(sim.data[i * K + j]);
      indices.push(j);
    }
  }
  return { values: new Ref(values, [Q, k]), indices };
}

/** Float64 dot-product matrix of a [N, D] and b [M, D]. */
function refDots(a, b) {
  const [N, D] = a.shape;
  const M = b.shape[0];
  const out = new Float64Array(N * M);
  for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) for (let d = 0; d < D; d++) out[i * M + j] += a.data[i * D + d] * b.data[j * D + d];
  return new Ref(out, [N, M]);
}

test('knn: the k nearest bank rows by cosine and by dot product, one tile or many (merged), against float64', async () => {
  const r = rng(5);
  const q = Ref.random([40, 24], r).f32();
  const bank = Ref.random([500, 24], r).f32();
  const [tq, tb] = [q.toTensor(), bank.toTensor()];
  for (const metric of ['cosine', 'dot'])
    for (const tile of [undefined, 37, 8]) {
      const k = 8;
      const msg = `knn ${metric} tile ${tile ?? 'whole'}`;
      const sim = metric === 'cosine' ? refCosineMatrix(q, bank) : refDots(q, bank);
      const want = refTopRows(sim, k);
      const got = vg.knn(tq, tb, k, { metric, tile });
      await assertClose(got.values, want.values, { rtol: 1e-5, atol: 2e-6, msg: `${msg} values` });
      const idx = await got.indices.data();
      // indices must agree wherever float64 separates neighbours by more than f32 round-off
      for (let i = 0; i < 40; i++)
        for (let j = 0; j < k; j++) {
          const v = want.values.data[i * k + j];
          const rowSim = sim.data.slice(i * 500, (i + 1) * 500);
          const close = rowSim.filter((s) => Math.abs(s - v) < 1e-5).length;
          if (close === 1) assert.is(idx[i * k + j], want.indices[i * k + j], `${msg}: query ${i}, neighbour ${j}`);
        }
      got.values.dispose();
      got.indices.dispose();
    }
  // ties: equal bank rows come back lower row first, across tiles too
  const dup = vg.tensor([1, 0, 0, 1, 1, 0, 1, 0], [4, 2]);
  const one = vg.tensor([1, 0], [1, 2]);
  const tied = vg.knn(one, dup, 3, { tile: 3 });
  assert.equal(Array.from(await tied.indices.data()), [0, 2, 3]);
  for (const t of [tq, tb, dup, one, tied.values, tied.indices]) t.dispose();
});

test('knn: float64 finite differences of the values, with respect to query and bank, tiled', async () => {
  const r = rng(6);
  await gradcheck64(
    (a, b) => vg.knn(a, b, 3, { tile: 4 }).values,
    (a, b) => refTopRows(refCosineMatrix(a, b), 3).values,
    [Ref.random([3, 5], r), Ref.random([10, 5], r)],
    { msg: 'knn cosine values' },
  );
});

test('bad input: clear errors naming the op and argument', () => {
  const a = vg.zeros([3, 4]);
  const b = vg.zeros([5, 3]);
  assertThrowsWith(() => vg.normalize(a, { dim: 2 }), ['normalize', 'dim']);
  assertThrowsWith(() => vg.normalize(a, { eps: -1 }), ['normalize', 'eps', '-1']);
  assertThrowsWith(() => vg.normalize(a, { p: 1 }), ['normalize', "unknown option 'p'"]);
  assertThrowsWith(() => vg.normalize(vg.zeros([3], { dtype: 'i32' })), ['normalize', 'f32', 'i32']);
  assertThrowsWith(() => vg.cosineSimilarity(a, b), ['cosineSimilarity', 'x1 [3, 4]', 'x2 [5, 3]', 'vector dim 1']);
  assertThrowsWith(() => vg.cosineSimilarity(a, 3), ['cosineSimilarity', 'x2 must be a Tensor', 'number 3']);
  assertThrowsWith(() => vg.cosineSimilarityMatrix(a, b), ['cosineSimilarityMatrix', '[3, 4]', '[5, 3]', 'same D']);
  assertThrowsWith(() => vg.cosineSimilarityMatrix(vg.zeros([2, 3, 4]), vg.zeros([3, 5, 4])), ['cosineSimilarityMatrix', '[2, 3, 4]', '[3, 5, 4]']);
  assertThrowsWith(() => vg.knn(a, vg.zeros([6, 4]), 7), ['knn', 'k', '[1, 6]', '7']);
  assertThrowsWith(() => vg.knn(a, vg.zeros([6, 4]), 2, { metric: 'l2' }), ['knn', 'metric', 'l2']);
  assertThrowsWith(() => vg.knn(a, vg.zeros([6, 4]), 2, { tile: 1 }), ['knn', 'tile', '>= k']);
  assertThrowsWith(() => vg.knn(a, b, 2), ['knn', '[3, 4]', '[5, 3]']);
  for (const t of [a, b]) t.dispose();
});

test.run();
