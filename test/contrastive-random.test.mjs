// randint and multinomial on the GPU (shaders/random_int.wgsl): chi-square goodness of fit with fixed seeds against
// the exact distributions (bounds at p = 1e-6, so a biased or shifted draw fails), ranges, zero-weight categories,
// draws without replacement (distinct, pair frequencies of successive draws), seeding, and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, markReferenceComparison, setup, vg } from './helpers.mjs';

test.before(setup);

/** Upper 1e-6 quantile of chi-square with k degrees of freedom (Wilson–Hilferty; z = 4.753). */
const chiBound = (k) => k * (1 - 2 / (9 * k) + 4.753 * Math.sqrt(2 / (9 * k))) ** 3;

/** Chi-square statistic of observed counts against expected probabilities (cells of probability 0 must be empty). */
function chiSquare(counts, probs, total, msg) {
  let stat = 0;
  let df = -1;
  probs.forEach((p, i) => {
    if (p === 0) {
      assert.is(counts[i] ?? 0, 0, `${msg}: category ${i} has probability 0 but was drawn ${counts[i]} times`);
      return;
    }
    df++;
    stat += ((counts[i] ?? 0) - total * p) ** 2 / (total * p);
  });
  if (df > 0) assert.ok(stat < chiBound(df), `${msg}: chi-square ${stat.toFixed(1)} above the 1e-6 bound ${chiBound(df).toFixed(1)} (df ${df})`);
  return stat;
}

function histogram(values, offset = 0) {
  const counts = [];
  for (const v of values) counts[v - offset] = (counts[v - offset] ?? 0) + 1;
  return counts;
}

test('randint: uniform over [low, high) (chi-square), negative bounds, a wide range, seeds', async () => {
  for (const [low, high, n, seed] of [[0, 10, 200_000, 1], [-7, 6, 130_000, 2], [3, 4, 1000, 3]]) {
    const t = vg.randint(low, high, [n], { seed });
    assert.is(t.dtype, 'i32');
    const v = await t.data();
    const range = high - low;
    assert.ok(v.every((x) => x >= low && x < high), `randint(${low}, ${high}) out of range`);
    chiSquare(histogram(v, low), Array(range).fill(1 / range), n, `randint(${low}, ${high}) seed ${seed}`);
    t.dispose();
  }
  // a range near 2^32: the top and bottom halves are equally likely
  const wide = await vg.randint(-(2 ** 31), 2 ** 31 - 1, [40_000], { seed: 4 }).data();
  const negatives = wide.filter((x) => x < 0).length;
  chiSquare([negatives, wide.length - negatives], [0.5, 0.5], wide.length, 'randint over the i32 range');
  // the same seed gives the same draw, another seed another; the global generator advances
  const a = await vg.randint(0, 1000, [64], { seed: 9 }).data();
  const b = await vg.randint(0, 1000, [64], { seed: 9 }).data();
  const c = await vg.randint(0, 1000, [64], { seed: 10 }).data();
  assert.equal(Array.from(a), Array.from(b));
  assert.not.equal(Array.from(a), Array.from(c));
  vg.manualSeed(5);
  const g1 = await vg.randint(0, 1000, [64]).data();
  const g2 = await vg.randint(0, 1000, [64]).data();
  vg.manualSeed(5);
  assert.equal(Array.from(await vg.randint(0, 1000, [64]).data()), Array.from(g1));
  assert.not.equal(Array.from(g1), Array.from(g2));
  assert.equal((await vg.randint(0, 3, [2, 0]).data()).length, 0);
  markReferenceComparison();
});

test('multinomial with replacement: category frequencies (chi-square), unnormalised rows, zero weights never drawn', async () => {
  const rows = [
    [1, 2, 3, 4, 0],
    [0, 0, 5, 0, 0.5],
  ];
  const n = 60_000;
  const w = vg.tensor(rows.flat(), [2, 5]);
  const s = vg.multinomial(w, n, { replacement: true, seed: 11 });
  assert.equal(s.shape, [2, n]);
  assert.is(s.dtype, 'i32');
  const v = await s.data();
  rows.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0);
    chiSquare(histogram(v.subarray(r * n, (r + 1) * n)), row.map((x) => x / total), n, `row ${r}`);
  });
  // a 1-D input, many categories
  const many = Array.from({ length: 300 }, (_, i) => (i % 7) + (i % 3 === 0 ? 0 : 1));
  const total = many.reduce((a, b) => a + b, 0);
  const s1 = vg.tensor(many).multinomial(90_000, { replacement: true, seed: 12 });
  assert.equal(s1.shape, [90_000]);
  chiSquare(histogram(await s1.data()), many.map((x) => x / total), 90_000, '300 categories');
  markReferenceComparison();
  for (const t of [w, s, s1]) t.dispose();
});

test('multinomial without replacement: distinct draws, the first draw and the ordered pairs follow successive sampling', async () => {
  const p = [0.1, 0.2, 0.3, 0.4];
  // many rows of the same weights: each row is one independent draw of 2
  const B = 40_000;
  const w = vg.tensor(Array.from({ length: B }, () => p).flat(), [B, 4]);
  const s = vg.multinomial(w, 2, { seed: 13 });
  const v = await s.data();
  const pairs = new Array(16).fill(0);
  for (let b = 0; b < B; b++) {
    assert.ok(v[2 * b] !== v[2 * b + 1], `row ${b} drew ${v[2 * b]} twice`);
    pairs[v[2 * b] * 4 + v[2 * b + 1]]++;
  }
  // P(first i, then j) = p_i p_j / (1 - p_i)
  const expected = pairs.map((_, k) => {
    const [i, j] = [Math.floor(k / 4), k % 4];
    return i === j ? 0 : (p[i] * p[j]) / (1 - p[i]);
  });
  chiSquare(pairs, expected, B, 'ordered pairs without replacement');
  // all categories of positive weight before any of zero weight; a full permutation
  const z = await vg.multinomial(vg.tensor([0, 3, 0, 1, 2]), 3, { seed: 14 }).data();
  assert.equal([...z].sort(), [1, 3, 4]);
  const perm = await vg.multinomial(vg.ones([50]), 50, { seed: 15 }).data();
  assert.equal([...perm].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  markReferenceComparison();
  for (const t of [w, s]) t.dispose();
});

test('bad input: randint and multinomial name the argument', () => {
  assertThrowsWith(() => vg.randint(5, 5, [3]), ['randint', 'low=5', 'high=5']);
  assertThrowsWith(() => vg.randint(0, 1.5, [3]), ['randint', 'high=1.5']);
  assertThrowsWith(() => vg.randint(0, 3, [-1]), ['randint']);
  assertThrowsWith(() => vg.randint(0, 3, [2], { seed: -1 }), ['randint', 'seed']);
  const w = vg.ones([2, 3]);
  assertThrowsWith(() => vg.multinomial(w, 4), ['multinomial', '4 samples', '3 categories', 'replacement']);
  assertThrowsWith(() => vg.multinomial(w, -1), ['multinomial', 'numSamples']);
  assertThrowsWith(() => vg.multinomial(vg.ones([2, 2, 2]), 1), ['multinomial', '[C] or [B, C]', '[2, 2, 2]']);
  assertThrowsWith(() => vg.multinomial(w, 1, { replace: true }), ['multinomial', "unknown option 'replace'"]);
  assertThrowsWith(() => vg.multinomial(vg.ones([3], { dtype: 'i32' }), 1), ['multinomial', 'f32', 'i32']);
  w.dispose();
});

test.run();
