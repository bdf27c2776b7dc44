// vg.metrics.pca and symmetricEigen on data whose principal axes are known by construction, and the figure pieces
// that draw projections (vg.io.scatterPlot, vg.io.legend): pixel positions and colours, draw order, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);

/** A random orthonormal basis of R^n (Gram-Schmidt on random vectors), as rows. */
function orthonormal(n, r) {
  const rows = [];
  while (rows.length < n) {
    const v = Array.from(r.array(n));
    for (const u of rows) {
      const d = v.reduce((s, x, i) => s + x * u[i], 0);
      for (let i = 0; i < n; i++) v[i] -= d * u[i];
    }
    const len = Math.hypot(...v);
    if (len > 1e-3) rows.push(v.map((x) => x / len));
  }
  return rows;
}

test('symmetricEigen: the eigenpairs of Q·diag(λ)·Qᵀ, sorted by decreasing λ', () => {
  const n = 7;
  const Q = orthonormal(n, rng(3));
  const lambda = [5, -2, 0.5, 3, 1e-3, 9, -7];
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = Q.reduce((s, q, k) => s + q[i] * lambda[k] * q[j], 0);
  const { values, vectors } = vg.metrics.symmetricEigen(A, n);
  const sorted = [...lambda].sort((a, b) => b - a);
  values.forEach((v, i) => assert.ok(Math.abs(v - sorted[i]) < 1e-10, `eigenvalue ${i}: ${v} vs ${sorted[i]}`));
  vectors.forEach((v, i) => {
    const q = Q[lambda.indexOf(sorted[i])];
    const dot = Math.abs(v.reduce((s, x, k) => s + x * q[k], 0));
    assert.ok(Math.abs(dot - 1) < 1e-10, `eigenvector ${i} is ±the constructed one: |cos| = ${dot}`);
  });
});

test('pca: axes, variances, mean and projection of data with known principal axes', async () => {
  const r = rng(7);
  const N = 400;
  const D = 6;
  const U = orthonormal(D, r);
  const sd = [4, 2, 1, 0.5, 0.25, 0.1];
  const centre = Array.from(r.array(D, -3, 3));
  // scores with exactly zero mean and unit variance (divisor N − 1) per axis, uncorrelated across axes: the rows of
  // a random N × D matrix orthonormalised by Gram-Schmidt after centring, scaled by √(N − 1)
  const cols = [];
  for (let a = 0; a < D; a++) {
    let v = Array.from(r.array(N));
    const m = v.reduce((s, x) => s + x, 0) / N;
    v = v.map((x) => x - m);
    for (const c of cols) {
      const d = v.reduce((s, x, i) => s + x * c[i], 0);
      v = v.map((x, i) => x - d * c[i]);
    }
    const len = Math.hypot(...v);
    cols.push(v.map((x) => x / len));
  }
  const X = new Float32Array(N * D);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < D; j++) X[i * D + j] = centre[j] + U.reduce((s, u, a) => s + sd[a] * Math.sqrt(N - 1) * cols[a][i] * u[j], 0);
  const x = vg.tensor(X, [N, D]);
  const p = await vg.metrics.pca(x, { components: 3 });
  const comps = await p.components.data();
  const mean = await p.mean.data();
  const proj = await p.projected.data();
  assert.equal(p.projected.shape, [N, 3]);
  assert.equal(p.components.shape, [3, D]);
  for (let a = 0; a < 3; a++) {
    assert.ok(Math.abs(p.explainedVariance[a] - sd[a] ** 2) < 1e-3 * sd[a] ** 2, `variance ${a}: ${p.explainedVariance[a]} vs ${sd[a] ** 2}`);
    const total = sd.reduce((s, v) => s + v * v, 0);
    assert.ok(Math.abs(p.explainedVarianceRatio[a] - sd[a] ** 2 / total) < 1e-4, `ratio ${a}`);
    const c = Array.from(comps.subarray(a * D, (a + 1) * D));
    // the sign rule: the largest-magnitude coefficient is positive
    const big = c.reduce((b, v) => (Math.abs(v) > Math.abs(b) ? v : b), 0);
    assert.ok(big > 0, `axis ${a}: largest coefficient ${big} must be positive`);
    const sign = Math.sign(U[a].reduce((b, v) => (Math.abs(v) > Math.abs(b) ? v : b), 0));
    c.forEach((v, j) => assert.ok(Math.abs(v - sign * U[a][j]) < 1e-4, `axis ${a}[${j}]: ${v} vs ${sign * U[a][j]}`));
  }
  centre.forEach((c, j) => assert.ok(Math.abs(mean[j] - c) < 1e-4 * (1 + Math.abs(c)), `mean ${j}`));
  // projection = (x − mean) · componentsᵀ, in float64 on the host from the returned axes
  for (let i = 0; i < N; i += 37)
    for (let a = 0; a < 3; a++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += (X[i * D + j] - mean[j]) * comps[a * D + j];
      assert.ok(Math.abs(proj[i * 3 + a] - s) < 1e-3, `projection [${i}, ${a}]: ${proj[i * 3 + a]} vs ${s}`);
    }
  for (const t of [x, p.projected, p.components, p.mean]) t.dispose();
});

test('pca: errors name the argument', async () => {
  const x = vg.zeros([5, 3]);
  const one = vg.zeros([1, 3]);
  const flat = vg.zeros([6]);
  for (const [input, opts, fragments] of [
    [flat, {}, ['pca', 'x must be an f32 [N, D]', '[6]']],
    [one, {}, ['pca', 'N ≥ 2', '[1, 3]']],
    [x, { components: 4 }, ['pca', 'components must be an integer in [1, 3]', '4']],
  ]) {
    let err = null;
    await vg.metrics.pca(input, opts).catch((e) => (err = e));
    assertThrowsWith(() => {
      if (err) throw err;
    }, fragments);
  }
  for (const t of [x, one, flat]) t.dispose();
});

test('scatterPlot: points land where the shared scale puts them, rarer classes drawn on top', async () => {
  const colors = [[255, 0, 0], [0, 0, 255], [0, 200, 0]];
  // class 0 three times, class 1 once at the same place as a class-0 point: class 1 is rarer, so it shows
  const pts = vg.tensor([0, 0, 1, 1, 1, 0, 0, 0, 0.5, 0.25], [5, 2]);
  const img = await vg.io.scatterPlot(pts, [0, 0, 0, 1, 2], { size: 64, radius: 1, margin: 6, colors });
  assert.equal(img.shape, [64, 64, 3]);
  const px = await img.data();
  const at = (x, y) => Array.from(px.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
  // inner = 64 − 2·(6 + 1 + 1) = 48 pixels for a span of 1 around the centre (0.5, 0.5); y up
  assert.equal(at(8, 56), [0, 0, 255], '(0, 0): class 1 drawn over class 0');
  assert.equal(at(9, 57), [0, 0, 255], 'radius 1: a 3×3 dot');
  assert.equal(at(56, 8), [255, 0, 0], '(1, 1)');
  assert.equal(at(56, 56), [255, 0, 0], '(1, 0)');
  assert.equal(at(32, 44), [0, 200, 0], '(0.5, 0.25): y = 32 + 0.25·48');
  assert.equal(at(30, 30), [255, 255, 255], 'background');
  assert.equal(at(0, 20), [160, 160, 160], 'frame');
  for (const t of [pts, img]) t.dispose();
});

test('scatterPlot and legend: errors name the argument; legend rows', async () => {
  const pts = vg.tensor([0, 0, 1, 1], [2, 2]);
  const bad = vg.zeros([2, 3]);
  for (const [args, fragments] of [
    [[bad, [0, 0]], ['scatterPlot', 'points must be an f32 [N, 2]', '[2, 3]']],
    [[pts, [0]], ['scatterPlot', 'one entry per point (2)']],
    [[pts, [0, -1]], ['scatterPlot', 'classes[1] must be an integer ≥ 0', '-1']],
    [[pts, [0, 1], { size: 8 }], ['scatterPlot', 'size must be an integer ≥ 16', '8']],
    [[pts, [0, 1], { colors: [[0, 0, 300]] }], ['scatterPlot', 'colors[0]', '[r, g, b]']],
  ]) {
    let err = null;
    await vg.io.scatterPlot(...args).catch((e) => (err = e));
    assertThrowsWith(() => {
      if (err) throw err;
    }, fragments);
  }
  assertThrowsWith(() => vg.io.legend([]), ['legend', 'entries must be a non-empty list']);
  assertThrowsWith(() => vg.io.legend([{ label: 'a', color: [1, 2] }]), ['legend', 'entries[0].color', '[r, g, b]']);
  const key = vg.io.legend([{ label: 'ab', color: [10, 20, 30] }, { label: 'c', color: [40, 50, 60] }]);
  // two rows of 10 pixels; a 7-pixel box, 2 pixels, then the text (2 glyphs: 11 pixels)
  assert.equal(key.shape, [20, 7 + 2 + 11, 3]);
  const px = await key.data();
  const at = (x, y) => Array.from(px.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3));
  assert.equal(at(3, 4), [10, 20, 30]);
  assert.equal(at(3, 14), [40, 50, 60]);
  let ink = 0;
  for (let y = 0; y < 10; y++) for (let x = 9; x < 20; x++) if (at(x, y).every((v) => v === 0)) ink++;
  assert.ok(ink > 10, `the first label is drawn in black (${ink} pixels)`);
  for (const t of [pts, bad, key]) t.dispose();
});

test.run();
