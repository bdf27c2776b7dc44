/**
 * ACTION++'s class geometry and temperature schedule, host-side (tiny: K classes, one number per step).
 * - simplexCentres: K unit vectors in R^d with pairwise cosine -1/(K-1), the optimum of the paper's uniformity loss
 *   for d >= K-1 (the official code optimises it with Adam and loads optimal_{K}_{d}.npy, which its release lacks).
 * - assignCentres: the Hungarian assignment of class means to centres, by brute force over the K! permutations.
 * - atsTemperature: the anatomical-aware temperature scheduler, a cosine between tauMin and tauMax.
 */
import { fail } from '../../engine/errors.js';

/**
 * K centres of the regular simplex on S^{d-1}, rows of a [K, d] array: the standard basis of R^K centred (e_c - 1/K)
 * and normalised, embedded in the first K coordinates (an orthonormal change of basis would do as well).
 * Needs d >= K (the centred vectors span K-1 dimensions but are written in K coordinates).
 */
export function simplexCentres(classes: number, dims: number): Float64Array[] {
  if (!Number.isInteger(classes) || classes < 2) fail('simplexCentres', `classes must be an integer >= 2, got ${String(classes)}`);
  if (!Number.isInteger(dims) || dims < classes) fail('simplexCentres', `dims must be an integer >= classes (${classes}), got ${String(dims)}`);
  const norm = Math.sqrt((classes - 1) / classes);
  return Array.from({ length: classes }, (_, c) => {
    const v = new Float64Array(dims);
    for (let k = 0; k < classes; k++) v[k] = ((k === c ? 1 : 0) - 1 / classes) / norm;
    return v;
  });
}

function* permutations(n: number): Generator<number[]> {
  const a = Array.from({ length: n }, (_, i) => i);
  // Heap's algorithm: every permutation once
  const c = new Array<number>(n).fill(0);
  yield a.slice();
  let i = 0;
  while (i < n) {
    if (c[i] < i) {
      const j = i % 2 === 0 ? 0 : c[i];
      [a[j], a[i]] = [a[i], a[j]];
      yield a.slice();
      c[i]++;
      i = 0;
    } else c[i++] = 0;
  }
}

/**
 * The permutation π maximising Σ_c score[c][π(c)] (the code's linear_sum_assignment(-Φ Ψᵀ); for unit vectors the
 * paper's min Σ ||ψ_π(c) − φ_c||² is the same), by brute force over all K! permutations (K <= 8: 40,320).
 * Returns π as an array: class c gets centre π[c]. Ties keep the first permutation in Heap's order.
 */
export function assignCentres(score: readonly (ArrayLike<number>)[]): number[] {
  const k = score.length;
  if (k < 1 || k > 8 || score.some((row) => row.length !== k))
    fail('assignCentres', `score must be a square K x K array with 1 <= K <= 8 (brute force over K! permutations), got ${k} rows of lengths [${score.map((r) => r.length).join(', ')}]`);
  let best: number[] = [];
  let bestValue = -Infinity;
  for (const p of permutations(k)) {
    let v = 0;
    for (let c = 0; c < k; c++) v += score[c][p[c]];
    if (v > bestValue) {
      bestValue = v;
      best = p;
    }
  }
  return best;
}

export interface AtsOptions {
  /** τ⁻ (paper: 0.1; the code's TSC uses 0.07). */
  tauMin?: number;
  /** τ⁺ (paper and code: 1.0). */
  tauMax?: number;
  /** Period as a fraction of the run (paper's best 1.0: one cycle; the code's default --T 0.1: ten cycles). */
  period?: number;
}

/**
 * ACTION++'s ATS: τ(t) = τ⁻ + ½(1 + cos(2π t / (period · total)))(τ⁺ − τ⁻): τ⁺ at t = 0, τ⁻ half a period later.
 * t counts iterations (the paper) or epochs (the code), with total in the same unit.
 */
export function atsTemperature(t: number, total: number, opts: AtsOptions = {}): number {
  const tauMin = opts.tauMin ?? 0.1;
  const tauMax = opts.tauMax ?? 1.0;
  const period = opts.period ?? 1.0;
  if (!(total > 0) || !(period > 0)) fail('atsTemperature', `total and period must be > 0, got total ${total}, period ${period}`);
  if (!(tauMin > 0 && tauMax >= tauMin)) fail('atsTemperature', `need 0 < tauMin <= tauMax, got tauMin ${tauMin}, tauMax ${tauMax}`);
  return tauMin + 0.5 * (1 + Math.cos((2 * Math.PI * t) / (period * total))) * (tauMax - tauMin);
}
