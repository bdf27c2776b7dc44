/**
 * The strong view of ACTION / ACTION++ / MONA fine-tuning, built from an unlabelled batch and its teacher
 * pseudo-labels: CutMix with the next image of the batch (labels and confidences mixed with the same box), then per
 * image with p = 0.5 each an intensity jitter and a Gaussian blur, then with p = 0.5 for the whole batch an
 * AdvMorph-style random diffeomorphism. The official code warps only the image with the morph; here the labels and
 * confidences follow it (`warpLabels`, default true: the paper's intent that a label describes its pixel).
 * Also MONA's random warps for the equivariance term (affine, and the thin-plate spline of RandTPS).
 */
import { noGrad } from '../../engine/autograd.js';
import { fail } from '../../engine/errors.js';
import type { Tensor } from '../../engine/tensor.js';
import { tidy } from '../../engine/tensor.js';
import { cast } from '../../kernels/elementwise.js';
import { tensor } from '../../kernels/creation.js';
import { indexSelect } from '../../kernels/indexing.js';
import { mul, round, where } from '../../kernels/math.js';
import { randn } from '../../kernels/random.js';
import { cat, slice, squeeze, unsqueeze } from '../../kernels/shape.js';
import { interpolate } from '../../kernels/interpolate.js';
import { affineGrid, gridSample, integrateVelocity, spatialTransform } from '../../kernels/spatial.js';
import { cutMix, gaussianBlur, intensityJitter } from '../../data/augment.js';
import { Rng } from '../../data/random.js';

export interface StrongViewOptions {
  seed: number;
  /** AdvMorph's displacement scale ε in voxels (AdvChain: 1.5). */
  morphEpsilon?: number;
  /** Apply the random morph to the labels and confidences too (default true; the official code warps only images). */
  warpLabels?: boolean;
  /** Skip CutMix, the intensity jitter or the blur (ablations; each part's random draws are made either way). */
  cutmix?: boolean;
  jitter?: boolean;
  blur?: boolean;
  /** Probability of the random morph for the batch (AdvChain as the papers call it: 0.5). */
  morphProbability?: number;
}

export interface StrongView {
  image: Tensor;
  label: Tensor;
  confidence: Tensor;
}

/**
 * AdvMorph-style random diffeomorphism: a normal random velocity on a grid 1/8 of the image per axis, smoothed
 * (Gaussian σ = 1), scaled so its largest component is ε voxels, upsampled and integrated by scaling and squaring
 * (8 steps). Returns the displacement [N, nd, *spatial] in voxels.
 */
export function randomDiffeomorphism(shape: readonly number[], opts: { epsilon?: number; seed: number }): Tensor {
  const [n, , ...spatial] = shape;
  const coarse = spatial.map((s) => Math.max(2, Math.round(s / 8)));
  return noGrad(() =>
    tidy(() => {
      const v = gaussianBlur(randn([n, spatial.length, ...coarse], { seed: opts.seed }), 1);
      const mode = spatial.length === 3 ? 'trilinear' : 'bilinear';
      const up = interpolate(v, { size: spatial, mode, alignCorners: true });
      // ε over a unit-variance field: AdvChain scales the smoothed noise by ε (not by its maximum), so do the same
      return integrateVelocity(mul(up, opts.epsilon ?? 1.5), 8);
    }),
  );
}

/** The strong view of an unlabelled batch (image [N, 1, *sp], pseudo-label [N, *sp] i32, confidence [N, *sp]). */
export function strongView(image: Tensor, label: Tensor, confidence: Tensor, opts: StrongViewOptions): StrongView {
  const rng = new Rng(opts.seed);
  const n = image.shape[0];
  return noGrad(() =>
    tidy(() => {
      let img = image;
      let lab = cast(label, 'f32');
      let conf = confidence;
      const cutmixSeed = rng.int(0, 2 ** 31);
      if ((opts.cutmix ?? true) && n > 1) {
        // mix each image with the next one of the batch (i + 1 mod N), labels and confidences with the same box
        const next = tensor(Array.from({ length: n }, (_, i) => (i + 1) % n), [n], { dtype: 'i32' });
        const pair = cat([unsqueeze(lab, 1), unsqueeze(conf, 1)], 1);
        const mixed = cutMix(img, pair, indexSelect(img, 0, next), indexSelect(pair, 0, next), { seed: cutmixSeed });
        img = mixed.images;
        lab = squeeze(slice(mixed.labels, 1, 0, 1), 1);
        conf = squeeze(slice(mixed.labels, 1, 1, 2), 1);
      }
      const pick = (p: number) => tensor(Array.from({ length: n }, () => (rng.next() < p ? 1 : 0)), [n, ...Array(img.ndim - 1).fill(1)]);
      const jitterSeed = rng.int(0, 2 ** 31);
      if (opts.jitter ?? true) img = intensityJitter(img, { brightness: 0.1, contrast: 0.25, gamma: [0.75, 1.25], prob: 0.5, seed: jitterSeed });
      const sigma = rng.uniform(0.15, 1.15);
      const blurMask = pick(0.5);
      if (opts.blur ?? true) img = where(blurMask, gaussianBlur(img, sigma), img);
      if (rng.next() < (opts.morphProbability ?? 0.5)) {
        const flow = randomDiffeomorphism(img.shape, { epsilon: opts.morphEpsilon, seed: rng.int(0, 2 ** 31) });
        img = spatialTransform(img, flow);
        if (opts.warpLabels ?? true) {
          lab = squeeze(spatialTransform(unsqueeze(lab, 1), flow, { mode: 'nearest' }), 1);
          conf = squeeze(spatialTransform(unsqueeze(conf, 1), flow), 1);
        }
      }
      return { image: img, label: cast(round(lab), 'i32'), confidence: conf };
    }),
  );
}

/** A random similarity with mirror, as RandTPS draws it: the 2 x 3 map [a, b, tx; c, d, ty] of normalised coordinates. */
function randomSimilarity(rng: Rng): number[] {
  const a = rng.uniform(-Math.PI / 3, Math.PI / 3);
  const s = rng.uniform(1 / 1.2, 1 / 0.8);
  const mirror = rng.next() < 0.5 ? -1 : 1;
  const [tx, ty] = [rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)];
  return [mirror * s * Math.cos(a), -s * Math.sin(a), tx, mirror * s * Math.sin(a), s * Math.cos(a), ty];
}

/** Applies one sampling grid [N, H, W, 2] (normalised, alignCorners false) to any [N, C, H, W] batch: bilinear, zeros outside. */
function sampleWith(grid: () => Tensor): (x: Tensor) => Tensor {
  return (x: Tensor) =>
    tidy(() => gridSample(x, noGrad(grid), { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false }));
}

/**
 * MONA's random affine warp T for the equivariance term (RandTPS's similarity without the control-point jitter):
 * rotation U(−60°, 60°), scale with inverse in (1/1.2, 1/0.8), translation U(−0.1, 0.1), horizontal mirror with
 * p = 0.5. Returns a function applying the same T to any [N, C, H, W] batch (bilinear, zeros outside).
 */
export function randomAffineWarp(n: number, height: number, width: number, seed: number): (x: Tensor) => Tensor {
  const rng = new Rng(seed);
  const thetas = Array.from({ length: n }, () => randomSimilarity(rng));
  return sampleWith(() => affineGrid(tensor(thetas.flat(), [n, 2, 3]), [n, 1, height, width], { alignCorners: false }));
}

/** r² log r², the 2-D thin-plate kernel (0 at r = 0). */
const tpsKernel = (r2: number) => (r2 > 0 ? r2 * Math.log(r2) : 0);

/**
 * The thin-plate spline f with f(from[k]) = to[k] for every control point and minimal bending energy (an affine part
 * plus Σ w_k U(|p − from_k|)); float64 on the host, solved by Gaussian elimination with partial pivoting. With `to` an
 * affine image of `from`, f is that affine map.
 */
export function thinPlateSpline(from: readonly (readonly [number, number])[], to: readonly (readonly [number, number])[]): (x: number, y: number) => [number, number] {
  const k = from.length;
  if (k < 3 || to.length !== k) fail('thinPlateSpline', `needs at least 3 control points and as many targets, got ${k} and ${to.length}`);
  const m = k + 3;
  // [K P; Pᵀ 0] [w; a] = [to; 0], both coordinates at once (two right-hand sides)
  const A = Array.from({ length: m }, () => new Float64Array(m + 2));
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) A[i][j] = tpsKernel((from[i][0] - from[j][0]) ** 2 + (from[i][1] - from[j][1]) ** 2);
    const p = [1, from[i][0], from[i][1]];
    for (let c = 0; c < 3; c++) A[i][k + c] = A[k + c][i] = p[c];
    A[i][m] = to[i][0];
    A[i][m + 1] = to[i][1];
  }
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(A[r][col]) > Math.abs(A[piv][col])) piv = r;
    if (Math.abs(A[piv][col]) < 1e-12) fail('thinPlateSpline', 'the control points are degenerate (all on one line, or repeated)');
    [A[col], A[piv]] = [A[piv], A[col]];
    for (let r = 0; r < m; r++) {
      if (r === col) continue;
      const f = A[r][col] / A[col][col];
      if (f) for (let c = col; c < m + 2; c++) A[r][c] -= f * A[col][c];
    }
  }
  const sol = A.map((row, i) => [row[m] / row[i], row[m + 1] / row[i]]);
  return (x, y) => {
    let fx = sol[k][0] + sol[k + 1][0] * x + sol[k + 2][0] * y;
    let fy = sol[k][1] + sol[k + 1][1] * x + sol[k + 2][1] * y;
    for (let i = 0; i < k; i++) {
      const u = tpsKernel((x - from[i][0]) ** 2 + (y - from[i][1]) ** 2);
      fx += sol[i][0] * u;
      fy += sol[i][1] * u;
    }
    return [fx, fy];
  };
}

/**
 * MONA's RandTPS in its 'affine' mode: a 5 x 5 grid of control points on [−1, 1]², each jittered by U(−σ, σ)
 * (σ = 0.01), moved by the random similarity of randomAffineWarp (same draws, then the jitter); the thin-plate spline
 * through them gives the sampling grid. σ = 0 is randomAffineWarp exactly.
 */
export function randomTpsWarp(n: number, height: number, width: number, seed: number, opts: { sigma?: number } = {}): (x: Tensor) => Tensor {
  const sigma = opts.sigma ?? 0.01;
  const rng = new Rng(seed);
  const thetas = Array.from({ length: n }, () => randomSimilarity(rng));
  const control = Array.from({ length: 25 }, (_, i) => [-1 + (i % 5) / 2, -1 + Math.floor(i / 5) / 2] as const);
  const grid = new Float32Array(n * height * width * 2);
  thetas.forEach((t, b) => {
    const moved = control.map(([x, y]) => {
      const [jx, jy] = [x + rng.uniform(-sigma, sigma), y + rng.uniform(-sigma, sigma)];
      return [t[0] * jx + t[1] * jy + t[2], t[3] * jx + t[4] * jy + t[5]] as const;
    });
    const f = thinPlateSpline(control, moved);
    for (let i = 0; i < height; i++)
      for (let j = 0; j < width; j++) {
        const [gx, gy] = f((2 * j + 1) / width - 1, (2 * i + 1) / height - 1);
        const o = ((b * height + i) * width + j) * 2;
        grid[o] = gx;
        grid[o + 1] = gy;
      }
  });
  return sampleWith(() => tensor(grid, [n, height, width, 2]));
}
