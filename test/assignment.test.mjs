// vg.metrics.linearSumAssignment against brute force over every injective row → column map (square, wide, tall,
// integer ties, maximize, negative costs), scipy's output conventions, and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);

/** Best total over all assignments of min(n, m) pairs (float64, by enumeration). */
function bruteForce(cost, maximize) {
  const n = cost.length;
  const m = cost[0].length;
  const k = Math.min(n, m);
  let best = maximize ? -Infinity : Infinity;
  const usedR = new Array(n).fill(false);
  const usedC = new Array(m).fill(false);
  // choose k rows (tall: a subset) and distinct columns for them
  const rec = (row, taken, s) => {
    if (taken === k) {
      best = maximize ? Math.max(best, s) : Math.min(best, s);
      return;
    }
    if (row === n || n - row < k - taken) return;
    if (n > m) rec(row + 1, taken, s); // leave this row out
    usedR[row] = true;
    for (let c = 0; c < m; c++)
      if (!usedC[c]) {
        usedC[c] = true;
        rec(row + 1, taken + 1, s + cost[row][c]);
        usedC[c] = false;
      }
    usedR[row] = false;
  };
  rec(0, 0, 0);
  return best;
}

function checkValid(res, n, m, cost) {
  const k = Math.min(n, m);
  assert.is(res.rowInd.length, k);
  assert.equal(res.rowInd, [...res.rowInd].sort((a, b) => a - b), 'rows ascending');
  assert.is(new Set(res.rowInd).size, k, 'distinct rows');
  assert.is(new Set(res.colInd).size, k, 'distinct columns');
  res.colInd.forEach((c) => assert.ok(c >= 0 && c < m));
  const s = res.rowInd.reduce((acc, r, i) => acc + cost[r][res.colInd[i]], 0);
  assert.ok(Math.abs(s - res.cost) < 1e-9, 'cost is the sum of the chosen entries');
}

test('linearSumAssignment is optimal against brute force (random, ties, rectangular, maximize)', () => {
  const r = rng(16);
  let cases = 0;
  for (const [n, m] of [[1, 1], [2, 2], [3, 3], [5, 5], [7, 7], [3, 6], [6, 3], [4, 7], [7, 2], [1, 5], [5, 1]])
    for (const kind of ['real', 'ties', 'negative'])
      for (const maximize of [false, true]) {
        const cost = Array.from({ length: n }, () =>
          Array.from({ length: m }, () => (kind === 'ties' ? Math.floor(r.next() * 3) : kind === 'negative' ? r.next() * 20 - 10 : r.next() * 100)),
        );
        const res = vg.metrics.linearSumAssignment(cost, { maximize });
        checkValid(res, n, m, cost);
        const best = bruteForce(cost, maximize);
        assert.ok(Math.abs(res.cost - best) < 1e-9, `${n}x${m} ${kind} maximize=${maximize}: got ${res.cost}, optimum ${best}`);
        cases++;
      }
  assert.is(cases, 66);
});

test('linearSumAssignment: scipy example, identity, empty', () => {
  // scipy.optimize.linear_sum_assignment docs: [[4, 1, 3], [2, 0, 5], [3, 2, 2]] → rows [0, 1, 2], cols [1, 0, 2], cost 5
  assert.equal(vg.metrics.linearSumAssignment([[4, 1, 3], [2, 0, 5], [3, 2, 2]]), { rowInd: [0, 1, 2], colInd: [1, 0, 2], cost: 5 });
  const eye = [[0, 1, 1], [1, 0, 1], [1, 1, 0]];
  assert.equal(vg.metrics.linearSumAssignment(eye, { maximize: true }).cost, 3); // a derangement
  assert.equal(vg.metrics.linearSumAssignment([]), { rowInd: [], colInd: [], cost: 0 });
});

test('linearSumAssignment rejects bad matrices', () => {
  assertThrowsWith(() => vg.metrics.linearSumAssignment([[1, 2], [3]]), ['linearSumAssignment', 'rectangular', 'row 1 has 1']);
  assertThrowsWith(() => vg.metrics.linearSumAssignment([[1, NaN]]), ['linearSumAssignment', 'cost[0][1]', 'finite']);
  assertThrowsWith(() => vg.metrics.linearSumAssignment([[Infinity]]), ['linearSumAssignment', 'finite']);
  assertThrowsWith(() => vg.metrics.linearSumAssignment('x'), ['linearSumAssignment', 'array of rows']);
});

test.run();
