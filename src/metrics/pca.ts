/**
 * Principal component analysis of the rows of x [N, D]: centring, the covariance Xcᵀ·Xc / (N − 1) and the projection
 * run on the GPU; the D × D eigendecomposition runs on the host in float64 (cyclic Jacobi rotations), as D is small
 * (embeddings: tens to hundreds). Components are sorted by decreasing variance; an eigenvector's sign is arbitrary,
 * so each is flipped to make its largest-magnitude coefficient positive (the same data always gives the same axes).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectTensor } from '../kernels/common.js';
import { matmul, mean, mul, sub, tensor, transpose } from '../ops.js';

export interface PcaOptions {
  /** Number of principal axes kept (default 2, at most D). */
  components?: number;
}

export interface PcaResult {
  /** [N, k]: the centred rows' coordinates along the axes. */
  projected: Tensor;
  /** [k, D]: unit principal axes, by decreasing variance. */
  components: Tensor;
  /** [D]: the column means subtracted before projecting. */
  mean: Tensor;
  /** The variance along each kept axis (covariance eigenvalue, divisor N − 1). */
  explainedVariance: number[];
  /** explainedVariance / the total variance (trace of the covariance). */
  explainedVarianceRatio: number[];
}

/** Eigenvalues (descending) and unit eigenvectors (rows) of a symmetric matrix a [n × n], row-major, by cyclic Jacobi. */
export function symmetricEigen(a: Float64Array, n: number): { values: number[]; vectors: number[][] } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  const off = () => {
    let s = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s += A[i * n + j] ** 2;
    return s;
  };
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += A[i] ** 2;
  for (let sweep = 0; sweep < 100 && off() > 1e-30 * Math.max(scale, 1e-300); sweep++)
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        // the rotation that zeroes A[p][q] (Golub & Van Loan, symmetric Schur decomposition)
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p];
          const akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k];
          const aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p];
          const vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[j * n + j] - A[i * n + i]);
  return { values: order.map((i) => A[i * n + i]), vectors: order.map((i) => Array.from({ length: n }, (_, k) => V[k * n + i])) };
}

/** PCA of the rows of x [N, D] (f32, N ≥ 2). */
export async function pca(x: Tensor, opts: PcaOptions = {}): Promise<PcaResult> {
  const op = 'pca';
  const t = expectTensor(op, 'x', x);
  if (t.ndim !== 2 || t.dtype !== 'f32' || t.shape[0] < 2) fail(op, `x must be an f32 [N, D] tensor with N ≥ 2 rows, got ${t.dtype} ${fmtShape(t.shape)}`);
  const [N, D] = t.shape;
  const k = opts.components ?? 2;
  if (!Number.isInteger(k) || k < 1 || k > D) fail(op, `components must be an integer in [1, ${D}] (D), got ${describe(k)}`);
  const mu = mean(t, { dim: 0 });
  const cov = tidy(() => {
    const xc = sub(t, mu);
    return mul(matmul(transpose(xc, 0, 1), xc), 1 / (N - 1));
  });
  const c = Float64Array.from(await cov.data());
  cov.dispose();
  const { values, vectors } = symmetricEigen(c, D);
  const axes = vectors.slice(0, k).map((v) => {
    const big = v.reduce((b, x) => (Math.abs(x) > Math.abs(b) ? x : b), 0);
    return big < 0 ? v.map((x) => -x) : v;
  });
  const components = tensor(axes.flat(), [k, D]);
  const projected = tidy(() => matmul(sub(t, mu), transpose(components, 0, 1)));
  const total = values.reduce((s, v) => s + v, 0);
  const explainedVariance = values.slice(0, k);
  return { projected, components, mean: mu, explainedVariance, explainedVarianceRatio: explainedVariance.map((v) => (total > 0 ? v / total : 0)) };
}
