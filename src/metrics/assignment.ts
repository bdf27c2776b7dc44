/**
 * vg.metrics.linearSumAssignment: the optimal assignment of rows to columns of a cost matrix (scipy's
 * linear_sum_assignment), by the Hungarian method with row/column potentials and shortest augmenting paths
 * (Kuhn–Munkres in its O(n²m) form). Host-side: the matrices it serves (clusters × centroids) are small.
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';

export interface Assignment {
  /** Row indices, ascending (every row when rows ≤ columns, else the assigned rows). */
  rowInd: number[];
  /** The column assigned to each entry of rowInd. */
  colInd: number[];
  /** Sum of the chosen costs. */
  cost: number;
}

/**
 * Minimum-cost (or, with `maximize`, maximum) assignment of a rectangular cost matrix given as rows of numbers:
 * min(rows, columns) pairs, each row and column used at most once, as scipy.optimize.linear_sum_assignment.
 */
export function linearSumAssignment(cost: readonly (readonly number[])[], opts: { maximize?: boolean } = {}): Assignment {
  const op = 'linearSumAssignment';
  if (!Array.isArray(cost)) fail(op, `cost must be an array of rows (numbers), got ${describe(cost)}`);
  const n0 = cost.length;
  const m0 = n0 ? cost[0].length : 0;
  cost.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== m0) fail(op, `cost must be rectangular: row ${i} has ${Array.isArray(row) ? row.length : describe(row)} entries, row 0 has ${m0}`);
    row.forEach((v, j) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(op, `cost[${i}][${j}] must be a finite number, got ${describe(v)}`);
    });
  });
  if (n0 === 0 || m0 === 0) return { rowInd: [], colInd: [], cost: 0 };
  // the solver wants rows ≤ columns and a minimisation
  const transposed = n0 > m0;
  const [n, m] = transposed ? [m0, n0] : [n0, m0];
  const sign = opts.maximize ? -1 : 1;
  const a = (i: number, j: number) => sign * (transposed ? cost[j][i] : cost[i][j]);
  // 1-based potentials u (rows), v (columns); p[j] = row matched to column j (0: none); way[j] = previous column on the path
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(m + 1).fill(Infinity);
    const used = new Uint8Array(m + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = -1;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    // augment along the path back to the virtual column 0
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const pairs: [number, number][] = [];
  for (let j = 1; j <= m; j++) if (p[j] !== 0) pairs.push(transposed ? [j - 1, p[j] - 1] : [p[j] - 1, j - 1]);
  pairs.sort((x, y) => x[0] - y[0]);
  const rowInd = pairs.map(([r]) => r);
  const colInd = pairs.map(([, c]) => c);
  return { rowInd, colInd, cost: pairs.reduce((s, [r, c]) => s + cost[r][c], 0) };
}
