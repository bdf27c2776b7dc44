/**
 * Batched GPU augmentations for [N, C, H, W] and [N, C, D, H, W] batches, composed from existing ops (flip, where,
 * affineGrid + gridSample, interpolate + spatialTransform, conv): each call draws its parameters per sample from a
 * seeded host generator (and GPU Philox streams for elastic fields), so a seed reproduces it exactly.
 *
 * Spatial augmentations take one tensor or a list [image, label, ...] and apply the same transform to each: the
 * first fixes N and the spatial shape ([N, C, *spatial]); the others are [N, C', *spatial] or [N, *spatial] (a label
 * map without channel dim). Integer tensors (label maps) are resampled with 'nearest' and keep their dtype, so
 * their values stay in the label set; float tensors use `mode` (default 'bilinear'), or `modes[i]` per tensor.
 * Results are new tensors in the same form as given; the inputs are left alone.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { cast } from '../kernels/elementwise.js';
import { interpolate } from '../kernels/interpolate.js';
import { add, div, mul, pow, sub, where } from '../kernels/math.js';
import { conv2d, conv3d } from '../kernels/conv.js';
import { uniform } from '../kernels/random.js';
import { max, mean, min } from '../kernels/reduce.js';
import { clone, flip, reshape, transpose } from '../kernels/shape.js';
import { affineGrid, gridSample, spatialTransform, type GridSampleMode, type GridSamplePadding } from '../kernels/spatial.js';
import { Rng, deriveSeed, seedOrNext } from './random.js';

type Tensors = Tensor | readonly Tensor[];

interface Group {
  list: Tensor[];
  nd: 2 | 3;
  N: number;
  spatial: number[];
}

function group(op: string, tensors: Tensors): Group {
  const list: Tensor[] = tensors instanceof Tensor ? [tensors] : Array.isArray(tensors) ? [...tensors] : [];
  if (list.length === 0) fail(op, `expects a tensor or a non-empty list of tensors, got ${describe(tensors)}`);
  list.forEach((t, i) => expectTensor(op, `tensors[${i}]`, t));
  const first = list[0];
  if (first.ndim !== 4 && first.ndim !== 5)
    fail(op, `tensors[0] must be a batch [N, C, H, W] or [N, C, D, H, W], got shape ${fmtShape(first.shape)}`);
  const nd = (first.ndim - 2) as 2 | 3;
  const spatial = first.shape.slice(2);
  for (const [i, t] of list.entries()) {
    if ((t.ndim !== nd + 2 && t.ndim !== nd + 1) || t.shape[0] !== first.shape[0] || t.shape.slice(t.ndim - nd).join() !== spatial.join())
      fail(op, `tensors[${i}] ${fmtShape(t.shape)} must be [N, C, *spatial] or [N, *spatial] with tensors[0]'s N = ${first.shape[0]} and spatial shape ${fmtShape(spatial)}`);
  }
  return { list, nd, N: first.shape[0], spatial };
}

function ret<T extends Tensors>(given: T, out: Tensor[]): T {
  return (given instanceof Tensor ? out[0] : out) as unknown as T;
}

function checkProb(op: string, p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail(op, `prob must be a number in [0, 1], got ${describe(p)}`);
  return p;
}

/** A per-axis list of non-negative ranges from a number (every axis) or a list of `n`. */
function ranges(op: string, name: string, v: number | readonly number[] | undefined, n: number): number[] {
  const r = v === undefined ? Array(n).fill(0) : typeof v === 'number' ? Array(n).fill(v) : [...v];
  if (r.length !== n || !r.every((x) => typeof x === 'number' && x >= 0 && Number.isFinite(x)))
    fail(op, `${name} must be a number >= 0 or a list of ${n} of them, got ${describe(v)}`);
  return r;
}

/** A per-sample condition [N, 1, ...] (rank `rank`) for vg.where. */
function sampleMask(flags: readonly boolean[], rank: number): Tensor {
  return tensor(flags.map((f) => (f ? 1 : 0)), [flags.length, ...Array(rank - 1).fill(1)]);
}

/** Picks per sample between `yes` (flag set) and `no`: whole-batch ops, then one select. */
function select(flags: readonly boolean[], yes: Tensor, no: Tensor): Tensor {
  if (flags.every(Boolean)) return yes;
  if (!flags.some(Boolean)) return no;
  return where(sampleMask(flags, yes.ndim), yes, no);
}

function modesFor(op: string, g: Group, mode: GridSampleMode | undefined, modes: readonly GridSampleMode[] | undefined): GridSampleMode[] {
  if (modes !== undefined && (!Array.isArray(modes) || modes.length !== g.list.length))
    fail(op, `modes must list one mode per tensor (${g.list.length}), got ${describe(modes)}`);
  return g.list.map((t, i) => {
    const m = modes?.[i] ?? (t.dtype === 'f32' ? (mode ?? 'bilinear') : 'nearest');
    if (m !== 'bilinear' && m !== 'nearest') fail(op, `mode must be 'bilinear' or 'nearest', got ${describe(m)}`);
    if (t.dtype !== 'f32' && m !== 'nearest') fail(op, `tensors[${g.list.indexOf(t)}] is ${t.dtype} (a label map): it can only be resampled with 'nearest'`);
    return m;
  });
}

/** Resamples every tensor of the group with `sample` (which takes and returns f32 [N, C, *spatial]). */
function resample(g: Group, modes: GridSampleMode[], sample: (x: Tensor, mode: GridSampleMode) => Tensor): Tensor[] {
  return g.list.map((t, i) =>
    tidy(() => {
      const x = cast(t.ndim === g.nd + 1 ? reshape(t, [g.N, 1, ...g.spatial]) : t, 'f32');
      const y = sample(x, modes[i]);
      // nearest moves whole values, so integer labels come back exact
      return reshape(t.dtype === 'f32' ? y : cast(y, t.dtype), t.shape);
    }),
  );
}

// ---- flips and rotations by 90 degrees (exact permutations) ------------------------------------------------------------

export interface RandomFlipOptions {
  /** Probability of flipping each sample along each axis, independently (nnU-Net's mirroring; default 0.5). */
  prob?: number;
  /** Spatial axes that may flip (0 = first spatial dim); default all. */
  spatialAxis?: number | readonly number[];
  seed?: number;
}

function spatialAxes(op: string, v: number | readonly number[] | undefined, nd: number): number[] {
  const axes = v === undefined ? Array.from({ length: nd }, (_, i) => i) : typeof v === 'number' ? [v] : [...v];
  for (const a of axes) if (!Number.isInteger(a) || a < 0 || a >= nd) fail(op, `spatial axes must be integers in [0, ${nd}), got ${describe(v)}`);
  return axes;
}

/** Flips each sample along each allowed spatial axis with probability `prob`. */
export function randomFlip<T extends Tensors>(tensors: T, opts: RandomFlipOptions = {}): T {
  const op = 'randomFlip';
  const g = group(op, tensors);
  const prob = checkProb(op, opts.prob ?? 0.5);
  const axes = spatialAxes(op, opts.spatialAxis, g.nd);
  const rng = new Rng(seedOrNext(opts.seed));
  const flags = axes.map(() => Array.from({ length: g.N }, () => rng.next() < prob));
  const out = g.list.map((t) =>
    tidy(() => {
      let y = t;
      axes.forEach((a, k) => {
        if (flags[k].some(Boolean)) y = select(flags[k], flip(y, [t.ndim - g.nd + a]), y);
      });
      return y === t ? clone(t) : y;
    }),
  );
  return ret(tensors, out);
}

export interface RandomRot90Options {
  /** Probability that a sample is rotated (default 0.5); a rotated sample turns k * 90 degrees, k uniform in 1..maxK. */
  prob?: number;
  maxK?: number;
  /** The two spatial axes of the rotation plane (default [0, 1]); they must have equal sizes. */
  spatialAxes?: readonly [number, number];
  seed?: number;
}

/** torch.rot90(x, k, dims) per sample, as MONAI's RandRotate90 (rotation from the first axis towards the second). */
export function randomRot90<T extends Tensors>(tensors: T, opts: RandomRot90Options = {}): T {
  const op = 'randomRot90';
  const g = group(op, tensors);
  const prob = checkProb(op, opts.prob ?? 0.5);
  const maxK = opts.maxK ?? 3;
  if (!Number.isInteger(maxK) || maxK < 1) fail(op, `maxK must be a positive integer, got ${describe(maxK)}`);
  const [a, b] = spatialAxes(op, (opts.spatialAxes ?? [0, 1]) as number[], g.nd);
  if (opts.spatialAxes && opts.spatialAxes.length !== 2) fail(op, `spatialAxes must be two distinct spatial axes, got ${describe(opts.spatialAxes)}`);
  if (a === b) fail(op, `spatialAxes must be two distinct spatial axes, got [${a}, ${b}]`);
  const rng = new Rng(seedOrNext(opts.seed));
  const ks = Array.from({ length: g.N }, () => (rng.next() < prob ? 1 + rng.int(0, maxK) : 0) % 4);
  if (g.spatial[a] !== g.spatial[b] && ks.some((k) => k % 2 === 1))
    fail(op, `rotating by 90 degrees swaps spatial axes ${a} and ${b} of sizes ${g.spatial[a]} and ${g.spatial[b]}: the batch needs equal sizes there (crop or pad first)`);
  const out = g.list.map((t) =>
    tidy(() => {
      const da = t.ndim - g.nd + a;
      const db = t.ndim - g.nd + b;
      const variant = (k: number): Tensor =>
        k === 1 ? transpose(flip(t, [db]), da, db) : k === 2 ? flip(t, [da, db]) : transpose(flip(t, [da]), da, db);
      let y = t;
      for (const k of [1, 2, 3]) {
        const flags = ks.map((v) => v === k);
        if (flags.some(Boolean)) y = select(flags, variant(k), y);
      }
      return y === t ? clone(t) : y;
    }),
  );
  return ret(tensors, out);
}

// ---- affine ----------------------------------------------------------------------------------------------------------

export interface WarpOptions {
  /** Interpolation of float tensors (default 'bilinear'); integer tensors always use 'nearest'. */
  mode?: GridSampleMode;
  /** Per-tensor modes, overriding `mode` (e.g. 'nearest' for a float one-hot label). */
  modes?: readonly GridSampleMode[];
  paddingMode?: GridSamplePadding;
}

/**
 * Warps each sample by its own affine map in voxel coordinates about the volume centre c = (size - 1) / 2, as a
 * pull: output voxel p reads the input at A (p - c) + c + t. `matrices[n]` is nd rows of nd + 1 numbers [A | t] in
 * spatial-axis order (H, W in 2-D; D, H, W in 3-D). Runs as affineGrid + gridSample (alignCorners false).
 */
export function warpAffine<T extends Tensors>(tensors: T, matrices: readonly (readonly (readonly number[])[])[], opts: WarpOptions = {}): T {
  const op = 'warpAffine';
  const g = group(op, tensors);
  const { nd } = g;
  if (!Array.isArray(matrices) || matrices.length !== g.N || !matrices.every((m) => Array.isArray(m) && m.length === nd && m.every((r) => Array.isArray(r) && r.length === nd + 1 && r.every(Number.isFinite))))
    fail(op, `matrices must hold one ${nd} x ${nd + 1} matrix [A | t] per sample (${g.N}), got ${describe(matrices)}`);
  const modes = modesFor(op, g, opts.mode, opts.modes);
  // spatial order -> gridSample's x-first order; q = p - c equals g * n / 2 in normalised units (alignCorners false)
  const xyz = (i: number) => nd - 1 - i;
  const half = g.spatial.map((n) => n / 2);
  const theta: number[] = [];
  for (const m of matrices)
    for (let r = 0; r < nd; r++) {
      const i = xyz(r);
      for (let c = 0; c < nd; c++) theta.push((m[i][xyz(c)] * half[xyz(c)]) / half[i]);
      theta.push(m[i][nd] / half[i]);
    }
  const out = tidy(() => {
    const grid = affineGrid(tensor(theta, [g.N, nd, nd + 1]), [g.N, 1, ...g.spatial], { alignCorners: false });
    return resample(g, modes, (x, mode) => gridSample(x, grid, { mode, paddingMode: opts.paddingMode ?? 'zeros', alignCorners: false }));
  });
  return ret(tensors, out);
}

export interface RandomAffineOptions extends WarpOptions {
  /** Probability that a sample is transformed (default 1); the others are resampled by the identity. */
  prob?: number;
  /**
   * Rotation range in radians, angle uniform in [-r, r]: one number in 2-D; in 3-D one number or three, the
   * rotations about spatial axes 0, 1, 2 (D, H, W), applied in that order.
   */
  rotate?: number | readonly number[];
  /** Scale range per spatial axis: factor uniform in [1 - s, 1 + s] (MONAI's scale_range). */
  scale?: number | readonly number[];
  /** Translation range per spatial axis in voxels: uniform in [-t, t]. */
  translate?: number | readonly number[];
  /** Shear range, one per off-diagonal pair: 2-D one number (both shears) or 2; 3-D one or 6. */
  shear?: number | readonly number[];
  seed?: number;
}

function matmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}

/** A random rotation, scale, shear and translation per sample (MONAI's RandAffine), via warpAffine. */
export function randomAffine<T extends Tensors>(tensors: T, opts: RandomAffineOptions = {}): T {
  const op = 'randomAffine';
  const g = group(op, tensors);
  const { nd } = g;
  const prob = checkProb(op, opts.prob ?? 1);
  const rot = ranges(op, 'rotate', opts.rotate, nd === 2 ? 1 : 3);
  const scale = ranges(op, 'scale', opts.scale, nd);
  const trans = ranges(op, 'translate', opts.translate, nd);
  const shear = ranges(op, 'shear', opts.shear, nd * (nd - 1));
  const rng = new Rng(seedOrNext(opts.seed));
  const eye = (): number[][] => Array.from({ length: nd }, (_, i) => Array.from({ length: nd }, (_, j) => (i === j ? 1 : 0)));
  const matrices = Array.from({ length: g.N }, () => {
    if (!(rng.next() < prob)) return eye().map((r) => [...r, 0]);
    const u = (r: number) => (r > 0 ? rng.uniform(-r, r) : 0);
    const S = eye().map((r, i) => r.map((v) => v * (1 + u(scale[i]))));
    const H = eye();
    let k = 0;
    for (let i = 0; i < nd; i++) for (let j = 0; j < nd; j++) if (i !== j) H[i][j] = u(shear[k++]);
    let A = matmul(H, S);
    // 2-D: the single rotation of the (H, W) plane; 3-D: about axis a, in the plane of the other two
    for (let a = rot.length - 1; a >= 0; a--) {
      const th = u(rot[a]);
      const R = eye();
      const [p, q] = nd === 2 ? [0, 1] : [0, 1, 2].filter((x) => x !== a);
      R[p][p] = Math.cos(th);
      R[p][q] = -Math.sin(th);
      R[q][p] = Math.sin(th);
      R[q][q] = Math.cos(th);
      A = matmul(R, A);
    }
    return A.map((r, i) => [...r, u(trans[i])]);
  });
  return warpAffine(tensors, matrices, opts);
}

// ---- elastic -----------------------------------------------------------------------------------------------------------

export interface RandomElasticOptions extends WarpOptions {
  /** Probability that a sample is deformed (default 1). */
  prob?: number;
  /** Control points per spatial axis of the coarse random grid (default 7, TorchIO's; at least 2). */
  controlPoints?: number | readonly number[];
  /** Displacement range at the control points, in voxels: uniform in [-m, m] per axis (default 4). */
  magnitude?: number;
  /** How positions pulled from outside read (default 'border', so edges do not turn black). */
  paddingMode?: GridSamplePadding;
  seed?: number;
}

/**
 * A smooth random displacement per sample: uniform random displacements on a coarse grid of control points,
 * upsampled (bi/trilinear, alignCorners true) to the full grid, then warped with spatialTransform (voxel units,
 * channel i along spatial axis i, docs/conventions.md). Magnitude 0 is the exact identity.
 */
export function randomElastic<T extends Tensors>(tensors: T, opts: RandomElasticOptions = {}): T {
  const op = 'randomElastic';
  const g = group(op, tensors);
  const prob = checkProb(op, opts.prob ?? 1);
  const magnitude = opts.magnitude ?? 4;
  if (typeof magnitude !== 'number' || !(magnitude >= 0) || !Number.isFinite(magnitude)) fail(op, `magnitude must be a finite number >= 0 (voxels), got ${describe(magnitude)}`);
  const cp = ranges(op, 'controlPoints', opts.controlPoints ?? 7, g.nd);
  if (!cp.every((c) => Number.isInteger(c) && c >= 2)) fail(op, `controlPoints must be integers >= 2, got ${describe(opts.controlPoints)}`);
  const modes = modesFor(op, g, opts.mode, opts.modes);
  const seed = seedOrNext(opts.seed);
  const rng = new Rng(seed);
  const flags = Array.from({ length: g.N }, () => rng.next() < prob);
  const out = tidy(() => {
    const coarse = uniform([g.N, g.nd, ...cp], -magnitude, magnitude, { seed: deriveSeed(seed, 1) });
    let flow = interpolate(coarse, { size: g.spatial, mode: g.nd === 2 ? 'bilinear' : 'trilinear', alignCorners: true });
    if (!flags.every(Boolean)) flow = mul(flow, sampleMask(flags, flow.ndim));
    return resample(g, modes, (x, mode) => spatialTransform(x, flow, { mode, paddingMode: opts.paddingMode ?? 'border' }));
  });
  return ret(tensors, out);
}

// ---- intensity -------------------------------------------------------------------------------------------------------

export interface IntensityJitterOptions {
  /** Additive shift range: b uniform in [-brightness, brightness] (default 0: off). */
  brightness?: number;
  /** Contrast range: (x - mean) * c + mean with c uniform in [1 - contrast, 1 + contrast] (default 0: off). */
  contrast?: number;
  /** Gamma range [lo, hi] (MONAI's RandAdjustContrast): x rescaled to [0, 1] by its min and max, ^ gamma, scaled back. */
  gamma?: readonly [number, number] | null;
  /** Probability that a sample is jittered (default 1). */
  prob?: number;
  seed?: number;
}

/** Per-sample gamma, then contrast, then brightness on a float batch [N, C, *spatial]; statistics per sample. */
export function intensityJitter(x: Tensor, opts: IntensityJitterOptions = {}): Tensor {
  const op = 'intensityJitter';
  expectTensor(op, 'x', x);
  expectFloat(op, 'x', x);
  if (x.ndim < 3) fail(op, `x must be a batch [N, C, *spatial], got shape ${fmtShape(x.shape)}`);
  const prob = checkProb(op, opts.prob ?? 1);
  const [brightness, contrast] = [opts.brightness ?? 0, opts.contrast ?? 0];
  if (!(brightness >= 0) || !(contrast >= 0 && contrast <= 1)) fail(op, `brightness must be >= 0 and contrast in [0, 1], got ${brightness} and ${contrast}`);
  const gamma = opts.gamma ?? null;
  if (gamma !== null && !(Array.isArray(gamma) && gamma.length === 2 && gamma[0] > 0 && gamma[0] <= gamma[1]))
    fail(op, `gamma must be a range [lo, hi] with 0 < lo <= hi, got ${describe(gamma)}`);
  const N = x.shape[0];
  const rng = new Rng(seedOrNext(opts.seed));
  const params = Array.from({ length: N }, () => {
    const on = rng.next() < prob;
    const gm = gamma ? rng.uniform(gamma[0], gamma[1]) : 1;
    const c = rng.uniform(1 - contrast, 1 + contrast);
    const b = rng.uniform(-brightness, brightness);
    return on ? { gm, c, b } : { gm: 1, c: 1, b: 0 };
  });
  const col = (v: number[]) => tensor(v, [N, ...Array(x.ndim - 1).fill(1)]);
  const dim = Array.from({ length: x.ndim - 1 }, (_, i) => i + 1);
  return tidy(() => {
    let y = x;
    if (gamma) {
      const mn = min(y, { dim, keepdim: true });
      const range = sub(max(y, { dim, keepdim: true }), mn);
      y = add(mul(pow(div(sub(y, mn), add(range, 1e-7)), col(params.map((p) => p.gm))), range), mn);
    }
    if (contrast > 0) {
      const m = mean(y, { dim, keepdim: true });
      y = add(mul(sub(y, m), col(params.map((p) => p.c))), m);
    }
    if (brightness > 0) y = add(y, col(params.map((p) => p.b)));
    return y === x ? clone(x) : y;
  });
}

export interface GaussianBlurOptions {
  /** Kernel radius = floor(truncate * sigma + 0.5) voxels (scipy.ndimage's rule; default 4). */
  truncate?: number;
}

/**
 * Gaussian smoothing of a float batch [N, C, *spatial] (1 to 3 spatial dims) with sigma in voxels (one number or
 * one per spatial axis; 0 leaves an axis alone): separable 1-D convolutions with a normalised sampled Gaussian,
 * zero padding outside the image.
 */
export function gaussianBlur(x: Tensor, sigma: number | readonly number[], opts: GaussianBlurOptions = {}): Tensor {
  const op = 'gaussianBlur';
  expectTensor(op, 'x', x);
  expectFloat(op, 'x', x);
  if (x.ndim !== 4 && x.ndim !== 5) fail(op, `x must be a batch [N, C, H, W] or [N, C, D, H, W], got shape ${fmtShape(x.shape)}`);
  const nd = x.ndim - 2;
  const sig = ranges(op, 'sigma', sigma, nd);
  const truncate = opts.truncate ?? 4;
  if (!(truncate > 0)) fail(op, `truncate must be > 0, got ${describe(truncate)}`);
  const spatial = x.shape.slice(2);
  return tidy(() => {
    let y = reshape(x, [x.shape[0] * x.shape[1], 1, ...spatial]);
    sig.forEach((s, a) => {
      if (s === 0) return;
      const r = Math.floor(truncate * s + 0.5);
      const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * s * s)));
      const total = w.reduce((p, v) => p + v, 0);
      const shape = [1, 1, ...spatial.map((_, i) => (i === a ? 2 * r + 1 : 1))];
      const padding = spatial.map((_, i) => (i === a ? r : 0));
      const k = tensor(w.map((v) => v / total), shape);
      y = nd === 2 ? conv2d(y, k, { padding }) : conv3d(y, k, { padding });
    });
    return reshape(y, x.shape);
  });
}

// ---- CutMix -----------------------------------------------------------------------------------------------------------

export interface CutMixOptions {
  /** Fraction of each image's area (volume) the box covers: box side n_i * ratio^(1/nd), rounded (default 0.5). */
  ratio?: number;
  seed?: number;
}

export interface CutMixResult {
  images: Tensor;
  labels: Tensor;
  /** [N, 1, *spatial] f32, 1 inside the box, where images and labels come from the B batch. */
  mask: Tensor;
  /** Per sample, the box's start and size per spatial axis. */
  boxes: { start: number[]; size: number[] }[];
}

/**
 * CutMix as used by semi-supervised segmentation (e.g. UniMatch, CPS): a random box per sample is pasted from the B
 * batch into the A batch, in the images and the labels alike (labels [N, *spatial] or [N, C, *spatial], any dtype).
 */
export function cutMix(imagesA: Tensor, labelsA: Tensor, imagesB: Tensor, labelsB: Tensor, opts: CutMixOptions = {}): CutMixResult {
  const op = 'cutMix';
  const g = group(op, [imagesA, labelsA, imagesB, labelsB]);
  if (imagesB.shape.join() !== imagesA.shape.join() || labelsB.shape.join() !== labelsA.shape.join() || imagesB.dtype !== imagesA.dtype || labelsB.dtype !== labelsA.dtype)
    fail(op, `the B batch must match the A batch: images ${fmtShape(imagesA.shape)} vs ${fmtShape(imagesB.shape)}, labels ${fmtShape(labelsA.shape)} vs ${fmtShape(labelsB.shape)}`);
  const ratio = opts.ratio ?? 0.5;
  if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1)) fail(op, `ratio must be a number in (0, 1], got ${describe(ratio)}`);
  const rng = new Rng(seedOrNext(opts.seed));
  const boxes = Array.from({ length: g.N }, () => {
    const size = g.spatial.map((n) => Math.min(n, Math.max(1, Math.round(n * ratio ** (1 / g.nd)))));
    return { start: size.map((s, i) => rng.int(0, g.spatial[i] - s + 1)), size };
  });
  const mask = tidy(() => {
    // the box indicator as a product of one broadcast 1-D indicator per axis
    const axes = g.spatial.map((n, a) => {
      const v = boxes.flatMap((b) => Array.from({ length: n }, (_, i) => (i >= b.start[a] && i < b.start[a] + b.size[a] ? 1 : 0)));
      return tensor(v, [g.N, 1, ...g.spatial.map((d, i) => (i === a ? d : 1))]);
    });
    return axes.slice(1).reduce((m, t) => mul(m, t), axes[0]);
  });
  const images = where(mask, imagesB, imagesA);
  const labels = tidy(() => where(labelsA.ndim === g.nd + 1 ? reshape(mask, labelsA.shape) : mask, labelsB, labelsA));
  return { images, labels, mask, boxes };
}

// ---- composition ------------------------------------------------------------------------------------------------------

/** One step of a pipeline: takes the tensors and a seed, returns new tensors (it must not dispose its inputs). */
export type AugmentStep = (tensors: Tensor[], seed: number) => Tensor[];

/**
 * Chains augmentation steps into one: step i gets a seed derived from (seed, i), intermediate results are disposed,
 * the inputs are left alone. compose([(t, s) => randomFlip(t, { seed: s }), (t, s) => randomAffine(t, { seed: s, rotate: 0.3 })]).
 */
export function compose(steps: readonly AugmentStep[]): (tensors: Tensor[], opts?: { seed?: number }) => Tensor[] {
  if (!Array.isArray(steps) || !steps.every((s) => typeof s === 'function')) fail('compose', `steps must be a list of functions, got ${describe(steps)}`);
  return (tensors, opts = {}) => {
    const base = seedOrNext(opts.seed);
    let cur = tensors;
    steps.forEach((step, i) => {
      const next = step(cur, deriveSeed(base, i));
      if (cur !== tensors) for (const t of cur) if (!next.includes(t)) t.dispose();
      cur = next;
    });
    return cur === tensors ? tensors.map((t) => clone(t)) : cur;
  };
}
