/**
 * Data for the unsupervised registration methods (the hetero/AdaCS code's ACDC and CAMUS preprocessing, BIM's ACDC pairs):
 *
 * - `phantomPairs` / `RegistrationPhantom`: the embedded cardiac phantom's ED→ES pairs in four seeded variants
 *   (clean, heteroscedastic, speckle, missing-correspondence), each a synthetic stand-in for a nuisance of real
 *   cardiac images that the uncertainty papers target. Not the papers' data: a benchmark where their claims can
 *   show or fail to.
 * - `ch2Deformations`: the Colin27 (ch2) brain template with its AAL atlas, cropped to the brain, resampled to a
 *   small cube and warped by random diffeomorphisms with a known ground-truth displacement (3-D).
 * - `acdcRegistrationPairs` / `camusRegistrationPairs`: the papers' preprocessing of ACDC and CAMUS when the user
 *   points at their folders.
 *
 * Every pair follows the papers' direction and form: moving (source) = ED, fixed (target) = ES; images min–max
 * normalised to [0, 1] per image; `mask` = (moving != 0) | (fixed != 0), the background mask the image losses
 * multiply by (computed inside VoxelMorph's forward in the official code, here once with the data).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { type Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { roundHalfEven } from '../kernels/host-math.js';
import { tensor } from '../kernels/creation.js';
import { interpolate } from '../kernels/interpolate.js';
import { cast } from '../kernels/elementwise.js';
import { add, logicalOr, neg } from '../kernels/math.js';
import { reshape } from '../kernels/shape.js';
import { integrateVelocity, spatialTransform } from '../kernels/spatial.js';
import { readNifti } from '../io/nifti.js';
import { type Affine, type Volume, cropVolume, padVolume, resampleVolume, subgridAffine } from '../io/volume.js';
import type { Dataset } from './dataset.js';
import { ACDCDataset, CAMUSDataset } from './medical-datasets.js';
import { cardiacPhantomArrays } from './phantom.js';
import { Rng, deriveSeed } from './random.js';

// ---- shared helpers -----------------------------------------------------------------------------------------------

/** (v − min) / (max − min) in float64, stored f32; a constant image becomes all zeros. */
/** max − min of the values. */
function range(v: ArrayLike<number>): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  return hi - lo;
}

function minMax(v: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  const out = new Float32Array(v.length);
  if (hi > lo) for (let i = 0; i < v.length; i++) out[i] = (v[i] - lo) / (hi - lo);
  return out;
}

/** The papers' background mask: 1 where either image is non-zero. */
function backgroundMask(a: Float32Array, b: Float32Array): Float32Array {
  const m = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) m[i] = a[i] !== 0 || b[i] !== 0 ? 1 : 0;
  return m;
}

/** The tensors every registration pair holds. */
export interface RegistrationPair {
  /** Source image (ED), [1, *spatial] f32 in [0, 1]. */
  moving: Tensor;
  /** Target image (ES), [1, *spatial] f32 in [0, 1]. */
  fixed: Tensor;
  /** [*spatial] i32 label map of the moving image. */
  movingLabel: Tensor;
  /** [*spatial] i32 label map of the fixed image. */
  fixedLabel: Tensor;
  /** [1, *spatial] f32: (moving != 0) | (fixed != 0). */
  mask: Tensor;
}

function pairTensors(moving: Float32Array, fixed: Float32Array, movingLabel: Int32Array, fixedLabel: Int32Array, spatial: number[]): RegistrationPair {
  return {
    moving: tensor(moving, [1, ...spatial]),
    fixed: tensor(fixed, [1, ...spatial]),
    movingLabel: tensor(movingLabel, spatial, { dtype: 'i32' }),
    fixedLabel: tensor(fixedLabel, spatial, { dtype: 'i32' }),
    mask: tensor(backgroundMask(moving, fixed), [1, ...spatial]),
  };
}

function checkCount(op: string, v: unknown, max: number): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) fail(op, `count must be an integer in [1, ${max}], got ${describe(v)}`);
  return v as number;
}

/** Subject seeds of the fixed splits: train subjects 0 ... 999 999, test subjects 1 000 000 ... 1 999 999. */
export const REGISTRATION_SPLIT_SEEDS = { train: 0, test: 1_000_000 } as const;
const SPLIT_SIZE = 1_000_000;

function splitBase(op: string, split: unknown, seed: unknown, count: number): number {
  if (split !== 'train' && split !== 'test') fail(op, `split must be 'train' or 'test', got ${describe(split)}`);
  if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) + count > SPLIT_SIZE)
    fail(op, `seed must be an integer >= 0 with seed + count <= ${SPLIT_SIZE} (the split's seed range), got seed ${describe(seed)} with count ${count}`);
  return REGISTRATION_SPLIT_SEEDS[split] + (seed as number);
}

// ---- the phantom benchmark -----------------------------------------------------------------------------------------

export const PHANTOM_VARIANTS = ['clean', 'heteroscedastic', 'speckle', 'missing-correspondence'] as const;
export type PhantomVariant = (typeof PHANTOM_VARIANTS)[number];

export interface PhantomPairsOptions {
  /** Pairs (one per subject; default 100). */
  count?: number;
  /** First subject within the split's seed range (default 0): subject = split base + seed + index. */
  seed?: number;
  /** 'train' (default) or 'test': disjoint subject seed ranges (REGISTRATION_SPLIT_SEEDS). */
  split?: 'train' | 'test';
  /** Image size (default 128: the papers' 128 × 128; the phantom's 160 mm field of view). */
  size?: number;
  /** The nuisance (default 'clean'); see RegistrationPhantom. */
  variant?: PhantomVariant;
  /** Nuisance strength in [0, 2] (default 1; 0 leaves the noise and intensity nuisances out). */
  severity?: number;
  /** Pairs kept as host arrays once generated (default 0; about 400 kB per pair at 128²; least recently used evicted). */
  cacheSize?: number;
}

/** A phantom pair as host arrays (row-major [H, W]). */
export interface PhantomPairArrays {
  moving: Float32Array;
  fixed: Float32Array;
  movingLabel: Int32Array;
  fixedLabel: Int32Array;
  mask: Float32Array;
  /** 1 where the variant removed the correspondence between the frames (missing-correspondence), else 0. */
  missing: Float32Array;
  /**
   * The heteroscedastic variant's true noise variance of fixed − moving per pixel (σ_ED² + σ_ES², in the normalised
   * frames' units, ignoring the motion between them); 0 in the other variants.
   */
  noiseVariance: Float32Array;
  shape: [number, number];
  subject: number;
  variant: PhantomVariant;
}

export interface PhantomPair extends RegistrationPair {
  /** [1, H, W] f32: 1 where the pair has no correspondence by construction (missing-correspondence only). */
  missing: Tensor;
  /** [1, H, W] f32: the true noise variance of fixed − moving (heteroscedastic only, else 0). */
  noiseVariance: Tensor;
  subject: number;
  variant: PhantomVariant;
}

const VARIANT_STREAM: Record<PhantomVariant, number> = { clean: 0, heteroscedastic: 0x4e7, speckle: 0x5bec, 'missing-correspondence': 0x3c0d };

/**
 * A smooth random field in [-1, 1]: sum_k a_k cos(kx x + ky y + p_k) / sum_k a_k, k = 1..5, with up to 1.5 periods
 * across the image (x, y in pixels).
 */
function smoothField(rng: Rng, H: number, W: number): Float64Array {
  const waves = Array.from({ length: 5 }, () => {
    const f = (2 * Math.PI * 1.5) / Math.max(H, W);
    return { kx: rng.uniform(-f, f), ky: rng.uniform(-f, f), p: rng.uniform(0, 2 * Math.PI), a: rng.uniform(0.5, 1) };
  });
  const norm = waves.reduce((s, w) => s + w.a, 0);
  const out = new Float64Array(H * W);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      let v = 0;
      for (const w of waves) v += w.a * Math.cos(w.kx * j + w.ky * i + w.p);
      out[i * W + j] = v / norm;
    }
  return out;
}

/** Normalised 1-D Gaussian taps exp(-x² / 2σ²), x = -r..r. */
function gaussianTaps(sigma: number, r: number): Float64Array {
  const k = Float64Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const s = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / s);
}

/**
 * Correlated circular complex Gaussian noise blurred by a separable kernel (ky rows, kx columns), drawn on a grid
 * padded by the kernel radii so every output pixel has the same variance; returns the amplitude |z| (Rayleigh).
 */
function speckleAmplitude(rng: Rng, H: number, W: number, ky: Float64Array, kx: Float64Array): Float64Array {
  const ry = (ky.length - 1) / 2;
  const rx = (kx.length - 1) / 2;
  const Hp = H + 2 * ry;
  const Wp = W + 2 * rx;
  const amp = new Float64Array(H * W).fill(0);
  const parts: Float64Array[] = [];
  for (let c = 0; c < 2; c++) {
    const z = new Float64Array(Hp * Wp);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    const rows = new Float64Array(Hp * W); // columns blurred
    for (let i = 0; i < Hp; i++)
      for (let j = 0; j < W; j++) {
        let s = 0;
        for (let t = 0; t < kx.length; t++) s += kx[t] * z[i * Wp + j + t];
        rows[i * W + j] = s;
      }
    const out = new Float64Array(H * W);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        let s = 0;
        for (let t = 0; t < ky.length; t++) s += ky[t] * rows[(i + t) * W + j];
        out[i * W + j] = s;
      }
    parts.push(out);
  }
  for (let i = 0; i < H * W; i++) amp[i] = Math.hypot(parts[0][i], parts[1][i]);
  return amp;
}

/** A random pixel (flat index) whose label is non-zero, drawn uniformly. */
function randomHeartPixel(rng: Rng, label: Int32Array): number {
  const idx: number[] = [];
  for (let i = 0; i < label.length; i++) if (label[i] !== 0) idx.push(i);
  return idx.length === 0 ? rng.int(0, label.length) : idx[rng.int(0, idx.length)];
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/**
 * The phantom's ED→ES pairs with a named nuisance, one pair per subject (moving = ED, fixed = ES, the papers'
 * direction). The label maps are the phantom's true ACDC labels (0 background, 1 RV, 2 myocardium, 3 LV cavity),
 * the same in every variant: the nuisances change appearance only, never the motion. Each variant is applied to
 * the phantom's raw frames I_ED, I_ES (blood ≈ 0.9, myocardium ≈ 0.27, lung ≈ 0.04, with the phantom's own mild
 * Rician noise and bias field), then each image is min–max normalised. Nuisances are drawn from a generator seeded
 * by (subject, variant), so a pair is bit-identical on every run; s = severity (default 1), x in pixels, and g, g_t
 * are smooth random fields in [-1, 1] (five random plane waves of up to 1.5 periods per image):
 *
 * - `clean`: J_t = I_t.
 * - `heteroscedastic` (input-dependent Gaussian noise, the hetero paper's model): J_t = I_t + σ(x) n_t(x) with
 *   σ(x) = 0.06 s (0.2 + I_t(x)) exp(0.7 g(x)) and n_t iid N(0, 1), independent in ED and ES (g, the coil-like
 *   spatial profile, is shared by both frames). Bright blood is about 5 times noisier than the lung.
 * - `speckle` (echo): J_t = S(x) I_t(x) max(0, 1 − s + s R_t(x) / E[R]) with R_t = |K ∗ (a + ib)|, a, b iid N(0, 1):
 *   fully developed speckle, Rayleigh amplitude (coefficient of variation 0.52 at s = 1), spatially correlated by a
 *   Gaussian point-spread function K (σ 1.5 px laterally, 0.8 px axially, at 128 px; scaled with size),
 *   independent per frame. S is a sector field of view (apex above the image, half-angle 31–39°, far edge an arc
 *   near the image bottom), the same in both frames, zero outside: as in CAMUS the background mask then removes
 *   everything outside the sector.
 * - `missing-correspondence` (AdaCS's target): J_t = G_t(x) [(1 − w_t(x)) I_t(x) + w_t(x) v] (1 − d_t(x)) with
 *   - through-plane appearance change: in one frame (ED or ES at random) a structure that the other frame does not
 *     have, w = min(1, s) · (an ellipse of 4–9 px semi-axes with a one-pixel soft edge, centred on a random heart
 *     pixel), of intensity v opposite to what it covers (dark on blood, bright on tissue);
 *   - acoustic-shadow-like dropout: in one frame (at random) a wedge from a point above the image through a random
 *     heart pixel, half-angle 3.5–7° plus a 2° taper, starting 8–20 px before that pixel with a 3 px ramp,
 *     d = min(1, 0.9 s) · wedge;
 *   - intensity inconsistency: a different smooth gain G_t = exp(0.3 s g_t(x)) in each frame.
 *   `missing` marks the ellipse (weight > 0.5) and the wedge (> 0.5): the regions without correspondence.
 *
 * Sizes in pixels are for 128 × 128 and scale with `size`. Subjects come from fixed seed ranges per split, so a
 * benchmark's test pairs never overlap its training pairs.
 */
export class RegistrationPhantom implements Dataset<PhantomPair> {
  readonly count: number;
  readonly split: 'train' | 'test';
  readonly size: number;
  readonly variant: PhantomVariant;
  readonly severity: number;
  private readonly base: number;
  private readonly cacheSize: number;
  private readonly cache = new Map<number, PhantomPairArrays>();

  constructor(opts: PhantomPairsOptions = {}) {
    const op = 'phantomPairs';
    if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { count: 100, variant: 'speckle' }, got ${describe(opts)}`);
    this.count = checkCount(op, opts.count ?? 100, SPLIT_SIZE);
    this.split = opts.split ?? 'train';
    this.base = splitBase(op, this.split, opts.seed ?? 0, this.count);
    this.size = opts.size ?? 128;
    if (!Number.isInteger(this.size) || this.size < 16 || this.size > 1024) fail(op, `size must be an integer in [16, 1024], got ${describe(opts.size)}`);
    this.variant = opts.variant ?? 'clean';
    if (!PHANTOM_VARIANTS.includes(this.variant)) fail(op, `variant must be one of ${PHANTOM_VARIANTS.map((v) => `'${v}'`).join(', ')}, got ${describe(opts.variant)}`);
    this.severity = opts.severity ?? 1;
    if (typeof this.severity !== 'number' || !(this.severity >= 0 && this.severity <= 2)) fail(op, `severity must be a number in [0, 2], got ${describe(opts.severity)}`);
    this.cacheSize = opts.cacheSize ?? 0;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 0) fail(op, `cacheSize must be a non-negative integer (pairs), got ${describe(opts.cacheSize)}`);
  }

  get length(): number {
    return this.count;
  }

  /** The phantom subject seed of pair `index`. */
  subjectOf(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) fail('RegistrationPhantom.get', `index must be an integer in [0, ${this.count}), got ${describe(index)}`);
    return this.base + index;
  }

  /** Pair `index` as host arrays (no GPU; cached arrays are shared: do not modify them). */
  arrays(index: number): PhantomPairArrays {
    const subject = this.subjectOf(index);
    let a = this.cache.get(index);
    if (a) this.cache.delete(index);
    else a = this.generate(subject);
    if (this.cacheSize > 0) {
      this.cache.set(index, a); // most recently used last
      while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as number);
    }
    return a;
  }

  private generate(subject: number): PhantomPairArrays {
    const H = this.size;
    const W = this.size;
    const n = H * W;
    const ph = cardiacPhantomArrays({ size: this.size, frames: 2, seed: subject });
    const frames = [Float64Array.from(ph.image.subarray(0, n)), Float64Array.from(ph.image.subarray(n, 2 * n))];
    const labels = [ph.label.slice(0, n), ph.label.slice(n, 2 * n)];
    const missing = new Float32Array(n);
    const s = this.severity;
    const scale = this.size / 128;
    const rng = new Rng(deriveSeed(subject, VARIANT_STREAM[this.variant]));
    const noiseVariance = new Float32Array(n);
    if (this.variant === 'heteroscedastic') {
      const g = smoothField(rng, H, W);
      const variances = frames.map(() => new Float64Array(n));
      frames.forEach((J, t) => {
        for (let i = 0; i < n; i++) {
          const sd = 0.06 * s * (0.2 + J[i]) * Math.exp(0.7 * g[i]);
          J[i] += sd * rng.normal();
          variances[t][i] = sd * sd;
        }
      });
      // in the min-max normalised frames' units: the variance of fixed − moving at a pixel, from the noise alone
      const [r0, r1] = frames.map(range);
      for (let i = 0; i < n; i++) noiseVariance[i] = variances[0][i] / (r0 * r0) + variances[1][i] / (r1 * r1);
    } else if (this.variant === 'speckle') {
      const ay = -rng.uniform(0.15, 0.3) * H;
      const ax = W / 2 + rng.uniform(-0.05, 0.05) * W;
      const half = rng.uniform(0.55, 0.68);
      const R = rng.uniform(0.92, 1.05) * H - ay;
      const ky = gaussianTaps(0.8 * scale, Math.ceil(3 * 0.8 * scale));
      const kx = gaussianTaps(1.5 * scale, Math.ceil(3 * 1.5 * scale));
      // E|z| for a circular complex Gaussian of per-component variance v = (Σky²)(Σkx²): sqrt(π v / 2)
      const sq = (k: Float64Array) => k.reduce((a, b) => a + b * b, 0);
      const meanR = Math.sqrt((Math.PI * sq(ky) * sq(kx)) / 2);
      for (const J of frames) {
        const amp = speckleAmplitude(rng, H, W, ky, kx);
        for (let i = 0; i < H; i++)
          for (let j = 0; j < W; j++) {
            const o = i * W + j;
            const inside = Math.hypot(i - ay, j - ax) <= R && Math.abs(Math.atan2(j - ax, i - ay)) <= half;
            J[o] = inside ? J[o] * Math.max(0, 1 - s + (s * amp[o]) / meanR) : 0;
          }
      }
    } else if (this.variant === 'missing-correspondence') {
      const gains = [smoothField(rng, H, W), smoothField(rng, H, W)];
      // through-plane structure in frame a
      const a = rng.next() < 0.5 ? 0 : 1;
      const c = randomHeartPixel(rng, labels[a]);
      const cy = Math.floor(c / W);
      const cx = c % W;
      const ea = rng.uniform(4, 9) * scale;
      const eb = ea * rng.uniform(0.5, 1);
      const th = rng.uniform(0, Math.PI);
      const ellipse = new Float64Array(n);
      let covered = 0;
      let inside = 0;
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          const u = (j - cx) * Math.cos(th) + (i - cy) * Math.sin(th);
          const v = (i - cy) * Math.cos(th) - (j - cx) * Math.sin(th);
          const rho = Math.hypot(u, v);
          // signed distance to the boundary along the ray from the centre (positive inside), one-pixel ramp
          const depth = rho === 0 ? eb : rho / Math.sqrt((u * u) / (ea * ea) + (v * v) / (eb * eb)) - rho;
          const e = clamp01(0.5 + depth);
          ellipse[i * W + j] = e;
          if (e > 0.5) {
            covered += frames[a][i * W + j];
            inside++;
          }
        }
      const value = covered / Math.max(inside, 1) > 0.5 ? rng.uniform(0.03, 0.12) : rng.uniform(0.8, 0.95);
      const wMax = Math.min(1, s);
      // dropout wedge in frame b
      const b = rng.next() < 0.5 ? 0 : 1;
      const t = randomHeartPixel(rng, labels[b]);
      const py = -rng.uniform(0.1, 0.4) * H;
      const px = rng.uniform(0.2, 0.8) * W;
      const ty = Math.floor(t / W);
      const tx = t % W;
      const dir = Math.atan2(tx - px, ty - py);
      const halfW = rng.uniform(0.06, 0.12);
      const taper = 0.035;
      const r0 = Math.hypot(tx - px, ty - py) - rng.uniform(8, 20) * scale;
      const ramp = 3 * scale;
      const dMax = Math.min(1, 0.9 * s);
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          const o = i * W + j;
          let dth = Math.abs(Math.atan2(j - px, i - py) - dir);
          if (dth > Math.PI) dth = 2 * Math.PI - dth;
          const ang = dth <= halfW ? 1 : dth >= halfW + taper ? 0 : 0.5 * (1 + Math.cos((Math.PI * (dth - halfW)) / taper));
          const wedge = ang * clamp01((Math.hypot(j - px, i - py) - r0) / ramp);
          for (let f = 0; f < 2; f++) {
            const w = f === a ? wMax * ellipse[o] : 0;
            const d = f === b ? dMax * wedge : 0;
            frames[f][o] = Math.exp(0.3 * s * gains[f][o]) * ((1 - w) * frames[f][o] + w * value) * (1 - d);
          }
          if ((wMax > 0 && ellipse[o] > 0.5) || (dMax > 0 && wedge > 0.5)) missing[o] = 1;
        }
    }
    const moving = minMax(frames[0]);
    const fixed = minMax(frames[1]);
    return {
      moving,
      fixed,
      movingLabel: labels[0],
      fixedLabel: labels[1],
      mask: backgroundMask(moving, fixed),
      missing,
      noiseVariance,
      shape: [H, W],
      subject,
      variant: this.variant,
    };
  }

  /** Pair `index` as fresh tensors the caller owns. */
  get(index: number): PhantomPair {
    const a = this.arrays(index);
    return {
      ...pairTensors(a.moving, a.fixed, a.movingLabel, a.fixedLabel, a.shape),
      missing: tensor(a.missing, [1, ...a.shape]),
      noiseVariance: tensor(a.noiseVariance, [1, ...a.shape]),
      subject: a.subject,
      variant: a.variant,
    };
  }
}

/** The phantom registration benchmark: see RegistrationPhantom. */
export function phantomPairs(opts: PhantomPairsOptions = {}): RegistrationPhantom {
  return new RegistrationPhantom(opts);
}

// ---- ch2 + AAL with random diffeomorphisms (3-D) -------------------------------------------------------------------

export const CH2_TEMPLATE_DIR = '/usr/share/mricron/templates';

/**
 * Large AAL structures for the ch2 Dice evaluation (AAL label values and names): the four largest left/right pairs
 * of regions, 1100 to 1600 voxels each at 64³ (2.94 mm voxels).
 */
export const CH2_DICE_STRUCTURES = [
  { label: 7, name: 'Frontal_Mid_L' },
  { label: 8, name: 'Frontal_Mid_R' },
  { label: 85, name: 'Temporal_Mid_L' },
  { label: 86, name: 'Temporal_Mid_R' },
  { label: 3, name: 'Frontal_Sup_L' },
  { label: 4, name: 'Frontal_Sup_R' },
  { label: 57, name: 'Postcentral_L' },
  { label: 58, name: 'Postcentral_R' },
] as const;

export interface Ch2TemplateOptions {
  /** Cube side in voxels (default 64). */
  size?: number;
  /** Folder holding ch2.nii.gz and aal.nii.gz (default MRIcron's templates, CH2_TEMPLATE_DIR). */
  dir?: string;
}

/** The template on the cube grid as host arrays. */
export interface Ch2Template {
  /** [size³] f32 in [0, 1]. */
  image: Float32Array;
  /** [size³] i32 AAL labels (0 outside the atlas). */
  label: Int32Array;
  shape: [number, number, number];
  affine: Affine;
  spacing: number[];
}

const templates = new Map<string, Promise<Ch2Template>>();

/**
 * ch2 and its AAL labels cut to the brain: the bounding box of the AAL labels grown to a cube (its largest side plus
 * 4 mm on each end, zero-padded where it leaves the file), resampled to size³ (trilinear for the image, nearest for
 * the labels; the affine follows), the image min–max normalised. Read once per (dir, size) and cached.
 */
export function loadCh2Template(opts: Ch2TemplateOptions = {}): Promise<Ch2Template> {
  const op = 'loadCh2Template';
  const size = opts.size ?? 64;
  if (opts.dir !== undefined && typeof opts.dir !== 'string') fail(op, `dir must be the path of the folder holding ch2.nii.gz and aal.nii.gz, got ${describe(opts.dir)}`);
  const dir = (opts.dir ?? CH2_TEMPLATE_DIR).replace(/\/+$/, '');
  if (!Number.isInteger(size) || size < 8 || size > 256) fail(op, `size must be an integer in [8, 256], got ${describe(opts.size)}`);
  const key = `${dir}:${size}`;
  let p = templates.get(key);
  if (!p) {
    p = buildCh2(dir, size);
    p.catch(() => templates.delete(key));
    templates.set(key, p);
  }
  return p;
}

async function buildCh2(dir: string, size: number): Promise<Ch2Template> {
  const op = 'loadCh2Template';
  const [img, lab] = await Promise.all([readNifti(`${dir}/ch2.nii.gz`), readNifti(`${dir}/aal.nii.gz`, { dtype: 'i32' })]);
  const vols: Volume[] = [img, lab];
  try {
    if (img.tensor.ndim !== 3 || img.tensor.shape.join() !== lab.tensor.shape.join())
      fail(op, `ch2.nii.gz ${fmtShape(img.tensor.shape)} and aal.nii.gz ${fmtShape(lab.tensor.shape)} must be 3-D volumes on the same grid`);
    const shape = img.tensor.shape;
    const L = (await lab.tensor.data()) as Int32Array;
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let x = 0, o = 0; x < shape[0]; x++)
      for (let y = 0; y < shape[1]; y++)
        for (let z = 0; z < shape[2]; z++, o++)
          if (L[o] !== 0)
            [x, y, z].forEach((v, a) => {
              if (v < lo[a]) lo[a] = v;
              if (v > hi[a]) hi[a] = v;
            });
    if (!(lo[0] <= hi[0])) fail(op, `${dir}/aal.nii.gz holds no label`);
    const margin = Math.ceil(4 / Math.min(...img.spacing));
    const side = Math.max(...hi.map((h, a) => h - lo[a] + 1)) + 2 * margin;
    const start = lo.map((l, a) => Math.floor((l + hi[a] + 1 - side) / 2));
    const before = start.map((s) => Math.max(0, -s));
    const after = start.map((s, a) => Math.max(0, s + side - shape[a]));
    const cube = (v: Volume, mode: 'trilinear' | 'nearest') => {
      const padded = padVolume(v, before, after);
      vols.push(padded);
      const c = cropVolume(padded, start.map((s, a) => s + before[a]), [side, side, side]);
      vols.push(c);
      const r = resampleVolume(c, { size: [size, size, size] }, { mode });
      vols.push(r);
      return r;
    };
    const ri = cube(img, 'trilinear');
    const rl = cube(lab, 'nearest');
    const [image, label] = await Promise.all([ri.tensor.data(), rl.tensor.data()]);
    return { image: minMax(image as Float32Array), label: label as Int32Array, shape: [size, size, size], affine: ri.affine, spacing: ri.spacing };
  } finally {
    for (const v of vols) v.tensor.dispose();
  }
}

export interface Ch2DeformationsOptions extends Ch2TemplateOptions {
  /** Pairs (default 100). */
  count?: number;
  /** First pair within the split's seed range (default 0). */
  seed?: number;
  /** 'train' (default) or 'test': disjoint seed ranges (REGISTRATION_SPLIT_SEEDS). */
  split?: 'train' | 'test';
  /** Velocity range at the control points in voxels, uniform in [-m, m] per axis (default 4 at 64³, scaled by size / 64: mean |trueFlow| ≈ 2 voxels, up to ≈ 5). */
  magnitude?: number;
  /** Control points per axis of the coarse velocity grid (default 5). */
  controlPoints?: number;
  /** Also deform the fixed image (default true), so that every pair has a different fixed image. */
  deformFixed?: boolean;
}

export interface Ch2Pair extends RegistrationPair {
  /**
   * [3, D, H, W] f32, voxels, spatialTransform's convention: the displacement that maps the fixed image onto the
   * moving one, movingLabel = spatialTransform(fixedLabel, trueFlow, { mode: 'nearest', paddingMode: 'border' }).
   */
  trueFlow: Tensor;
  /**
   * [3, D, H, W]: the inverse deformation, exp(−v), the flow a registration of moving to fixed should predict
   * (spatialTransform(moving, inverseFlow) ≈ fixed, up to the integration error).
   */
  inverseFlow: Tensor;
  affine: Affine;
  spacing: number[];
  index: number;
}

/**
 * ch2 with random smooth diffeomorphisms: pair k draws velocities v_a, v_b (uniform in [-magnitude, magnitude] on a
 * controlPoints³ grid, upsampled trilinearly with alignCorners, seeded by the pair's seed) and integrates them
 * with 7 scaling-and-squaring steps (integrateVelocity): u_a = exp(v_a), trueFlow u_b = exp(v_b).
 * - fixed = T ∘ (id + u_a) and fixedLabel = nearest(T_label, u_a) (u_a = 0 with deformFixed false);
 * - moving = T ∘ (id + u_a) ∘ (id + u_b), sampled once from the template through the composed displacement
 *   u_b + u_a ∘ (id + u_b), so it is no blurrier than fixed; movingLabel = nearest(fixedLabel, u_b), which makes
 *   the trueFlow relation exact for the labels.
 * Every warp uses border padding (the cube's edge is no image edge). Labels are the AAL values (CH2_DICE_STRUCTURES
 * lists large ones for Dice). Items are computed on the GPU and are the caller's.
 */
export class Ch2Deformations implements Dataset<Ch2Pair> {
  readonly count: number;
  readonly split: 'train' | 'test';
  readonly size: number;
  readonly magnitude: number;
  readonly controlPoints: number;
  readonly deformFixed: boolean;
  private readonly base: number;
  private readonly template: Ch2TemplateOptions;

  constructor(opts: Ch2DeformationsOptions = {}) {
    const op = 'ch2Deformations';
    if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { count: 100, magnitude: 4 }, got ${describe(opts)}`);
    this.count = checkCount(op, opts.count ?? 100, SPLIT_SIZE);
    this.split = opts.split ?? 'train';
    this.base = splitBase(op, this.split, opts.seed ?? 0, this.count);
    this.size = opts.size ?? 64;
    if (!Number.isInteger(this.size) || this.size < 8 || this.size > 256) fail(op, `size must be an integer in [8, 256], got ${describe(opts.size)}`);
    this.magnitude = opts.magnitude ?? (4 * this.size) / 64;
    if (typeof this.magnitude !== 'number' || !(this.magnitude >= 0) || !Number.isFinite(this.magnitude))
      fail(op, `magnitude must be a finite number >= 0 (voxels), got ${describe(opts.magnitude)}`);
    this.controlPoints = opts.controlPoints ?? 5;
    if (!Number.isInteger(this.controlPoints) || this.controlPoints < 2) fail(op, `controlPoints must be an integer >= 2, got ${describe(opts.controlPoints)}`);
    this.deformFixed = opts.deformFixed ?? true;
    this.template = { size: this.size, dir: opts.dir };
  }

  get length(): number {
    return this.count;
  }

  async get(index: number): Promise<Ch2Pair> {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) fail('Ch2Deformations.get', `index must be an integer in [0, ${this.count}), got ${describe(index)}`);
    const t = await loadCh2Template(this.template);
    const S = this.size;
    const cp = this.controlPoints;
    const rng = new Rng(deriveSeed(this.base + index, 0xc42));
    const coarse = () => Float32Array.from({ length: 3 * cp ** 3 }, () => rng.uniform(-this.magnitude, this.magnitude));
    const va = coarse();
    const vb = coarse();
    const sp = [S, S, S];
    return tidy(() => {
      const velocity = (v: Float32Array) => interpolate(tensor(v, [1, 3, cp, cp, cp]), { size: sp, mode: 'trilinear', alignCorners: true });
      const T = tensor(t.image, [1, 1, ...sp]);
      const TL = tensor(Float32Array.from(t.label), [1, 1, ...sp]); // spatialTransform samples f32; AAL values are exact in f32
      const vB = velocity(vb);
      const ub = integrateVelocity(vB);
      const border = { paddingMode: 'border' } as const;
      const nearest = { mode: 'nearest', paddingMode: 'border' } as const;
      let fixed = T;
      let fixedLabel = TL;
      let uab = ub;
      if (this.deformFixed) {
        const ua = integrateVelocity(velocity(va));
        fixed = spatialTransform(T, ua, border);
        fixedLabel = spatialTransform(TL, ua, nearest);
        uab = add(ub, spatialTransform(ua, ub, border));
      }
      const moving = spatialTransform(T, uab, border);
      const movingLabel = spatialTransform(fixedLabel, ub, nearest);
      return {
        moving: reshape(moving, [1, ...sp]),
        fixed: reshape(fixed, [1, ...sp]),
        movingLabel: reshape(cast(movingLabel, 'i32'), sp),
        fixedLabel: reshape(cast(fixedLabel, 'i32'), sp),
        mask: reshape(cast(logicalOr(moving, fixed), 'f32'), [1, ...sp]),
        trueFlow: reshape(ub, [3, ...sp]),
        inverseFlow: reshape(integrateVelocity(neg(vB)), [3, ...sp]),
        affine: t.affine.map((r) => [...r]),
        spacing: [...t.spacing],
        index,
      };
    });
  }
}

/** ch2 registration pairs with known deformations: see Ch2Deformations. */
export function ch2Deformations(opts: Ch2DeformationsOptions = {}): Ch2Deformations {
  return new Ch2Deformations(opts);
}

// ---- ACDC and CAMUS with the papers' preprocessing -----------------------------------------------------------------

/** A pair from a public dataset, with the geometry of what it holds (for writing results as NIfTI). */
export interface CardiacRegistrationPair extends RegistrationPair {
  patient: string;
  /** Voxel-to-world affine of the 2-D grid the pair is on (the crop's or the resized image's). */
  affine: Affine;
  spacing: number[];
}

export interface AcdcRegistrationPair extends CardiacRegistrationPair {
  /** Short-axis slice index. */
  slice: number;
  /** The crop centre (i, j) in the slice's [X, Y] array: the ED myocardium centroid of the middle slice. */
  centre: [number, number];
}

export interface AcdcRegistrationOptions {
  /** ACDC's folder: 'training' (default; the papers train on its 100 patients) or 'testing' (their 50 test patients). */
  split?: 'training' | 'testing';
  /** Patients to load (numbers or 'patientNNN'); default all of the split. */
  patients?: readonly (number | string)[];
  /** Crop side in pixels (default 128). */
  size?: number;
  /** 'myocardium' (default, the papers: seg == 2 as 0/1) or 'all' (ACDC's four labels). */
  labels?: 'myocardium' | 'all';
  /** Decoded volumes kept on the host by the underlying ACDCDataset (default 8). */
  cacheSize?: number;
}


/** A size × size window of a row-major [X, Y] slice starting at (x0, y0), zero outside the slice. */
function cropSlice<A extends Float32Array | Int32Array>(data: A, X: number, Y: number, x0: number, y0: number, size: number): A {
  const out = new (data.constructor as new (n: number) => A)(size * size);
  for (let i = 0; i < size; i++) {
    const x = x0 + i;
    if (x < 0 || x >= X) continue;
    for (let j = 0; j < size; j++) {
      const y = y0 + j;
      if (y >= 0 && y < Y) out[i * size + j] = data[x * Y + y];
    }
  }
  return out;
}

interface AcdcEntry {
  patient: string;
  ed: number;
  es: number;
  mid: number;
  slice: number;
}

/**
 * ACDC as the hetero/AdaCS code prepares it (registration.md §0.1): every short-axis slice is a 2-D pair, moving = ED,
 * fixed = ES (Info.cfg's frames); both cropped to size × size around one centre per patient, the myocardium
 * (label 2) centroid of the middle ED slice (slice floor(Z/2)), rounded half to even, the window
 * [c − size/2, c + size/2) on each in-plane axis, zero where it leaves the image (a middle slice without
 * myocardium falls back to the image centre); each cropped image min–max normalised. Arrays keep nibabel's [X, Y]
 * in-plane order. Items in patient, slice order; `get` is async (files are decoded on demand, cached by the
 * ACDCDataset underneath).
 */
export class AcdcRegistrationPairs implements Dataset<AcdcRegistrationPair> {
  private readonly centres = new Map<string, Promise<[number, number]>>();

  private constructor(
    private readonly ds: ACDCDataset,
    private readonly entries: AcdcEntry[],
    readonly size: number,
    readonly labels: 'myocardium' | 'all',
  ) {}

  static async open(root: string, opts: AcdcRegistrationOptions = {}): Promise<AcdcRegistrationPairs> {
    const op = 'acdcRegistrationPairs';
    if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { split: 'testing' }, got ${describe(opts)}`);
    const size = opts.size ?? 128;
    if (!Number.isInteger(size) || size < 2 || size > 4096) fail(op, `size must be an integer in [2, 4096], got ${describe(opts.size)}`);
    const labels = opts.labels ?? 'myocardium';
    if (labels !== 'myocardium' && labels !== 'all') fail(op, `labels must be 'myocardium' or 'all', got ${describe(opts.labels)}`);
    const ds = await ACDCDataset.open(root, { split: opts.split, patients: opts.patients, slices: true, frames: 'ed-es', cacheSize: opts.cacheSize });
    // items come in patient, phase (ED, ES), slice order: Z ED slices, then Z ES slices per patient
    const counts = new Map<string, { first: number; n: number }>();
    for (let i = 0; i < ds.length; i++) {
      const p = ds.patientOf(i);
      const c = counts.get(p);
      if (c) c.n++;
      else counts.set(p, { first: i, n: 1 });
    }
    const entries: AcdcEntry[] = [];
    for (const [patient, { first, n }] of counts) {
      const Z = n / 2;
      for (let z = 0; z < Z; z++) entries.push({ patient, ed: first + z, es: first + Z + z, mid: first + Math.floor(Z / 2), slice: z });
    }
    return new AcdcRegistrationPairs(ds, entries, size, labels);
  }

  get length(): number {
    return this.entries.length;
  }

  /** The patient of pair `index`. */
  patientOf(index: number): string {
    this.check(index);
    return this.entries[index].patient;
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.entries.length)
      fail('acdcRegistrationPairs.get', `index must be an integer in [0, ${this.entries.length}), got ${describe(index)}`);
  }

  private async slice(index: number, phase: 'ED' | 'ES') {
    const it = await this.ds.get(index);
    try {
      if (it.phase !== phase || it.label === null) fail('acdcRegistrationPairs', `${it.patient} frame ${it.frame}: expected the ${phase} slice with its ground truth (Info.cfg's ED and ES must differ)`);
      const [X, Y] = it.image.shape;
      return { image: (await it.image.data()) as Float32Array, label: (await it.label.data()) as Int32Array, X, Y, affine: it.affine, spacing: it.spacing };
    } finally {
      it.image.dispose();
      it.label?.dispose();
    }
  }

  /** The crop centre of a patient: the rounded ED myocardium centroid of the middle slice. */
  private centre(e: AcdcEntry): Promise<[number, number]> {
    let c = this.centres.get(e.patient);
    if (!c) {
      c = this.slice(e.mid, 'ED').then(({ label, X, Y }) => {
        let si = 0;
        let sj = 0;
        let n = 0;
        for (let i = 0; i < X; i++)
          for (let j = 0; j < Y; j++)
            if (label[i * Y + j] === 2) {
              si += i;
              sj += j;
              n++;
            }
        return n > 0 ? [roundHalfEven(si / n), roundHalfEven(sj / n)] : [Math.floor(X / 2), Math.floor(Y / 2)];
      });
      c.catch(() => this.centres.delete(e.patient));
      this.centres.set(e.patient, c);
    }
    return c;
  }

  async get(index: number): Promise<AcdcRegistrationPair> {
    this.check(index);
    const e = this.entries[index];
    const [centre, ed, es] = await Promise.all([this.centre(e), this.slice(e.ed, 'ED'), this.slice(e.es, 'ES')]);
    const S = this.size;
    const x0 = centre[0] - Math.floor(S / 2);
    const y0 = centre[1] - Math.floor(S / 2);
    const prep = (s: typeof ed) => {
      const label = cropSlice(s.label, s.X, s.Y, x0, y0, S);
      if (this.labels === 'myocardium') for (let i = 0; i < label.length; i++) label[i] = label[i] === 2 ? 1 : 0;
      return { image: minMax(cropSlice(s.image, s.X, s.Y, x0, y0, S)), label };
    };
    const m = prep(ed);
    const f = prep(es);
    return {
      ...pairTensors(m.image, f.image, m.label, f.label, [S, S]),
      patient: e.patient,
      slice: e.slice,
      centre,
      affine: subgridAffine(ed.affine, [x0, y0], [1, 1]),
      spacing: [...ed.spacing],
    };
  }
}

/** ACDC ED→ES slice pairs with the papers' crop and normalisation: see AcdcRegistrationPairs. */
export function acdcRegistrationPairs(root: string, opts: AcdcRegistrationOptions = {}): Promise<AcdcRegistrationPairs> {
  return AcdcRegistrationPairs.open(root, opts);
}

/**
 * scikit-image's resize(image, (outX, outY)) with its defaults before 0.19 (order 1, anti_aliasing when shrinking,
 * mode 'reflect'): a Gaussian of σ = max(0, (in/out − 1)/2) per axis (scipy.ndimage, truncate 4, mirror edges),
 * then linear interpolation at (o + ½)·in/out − ½ with mirrored edges. Float64 throughout.
 */
export function skimageResize(data: ArrayLike<number>, X: number, Y: number, outX: number, outY: number): Float64Array {
  const mirror = (i: number, n: number) => {
    if (n === 1) return 0;
    const period = 2 * (n - 1);
    i = Math.abs(i) % period;
    return i < n ? i : period - i;
  };
  let img = Float64Array.from(data);
  const f = [X / outX, Y / outY];
  for (let a = 0; a < 2; a++) {
    const sigma = Math.max(0, (f[a] - 1) / 2);
    if (sigma <= 1e-15) continue;
    const r = Math.floor(4 * sigma + 0.5);
    const k = gaussianTaps(sigma, r);
    const out = new Float64Array(img.length);
    for (let i = 0; i < X; i++)
      for (let j = 0; j < Y; j++) {
        let s = 0;
        for (let t = -r; t <= r; t++) s += k[t + r] * (a === 0 ? img[mirror(i + t, X) * Y + j] : img[i * Y + mirror(j + t, Y)]);
        out[i * Y + j] = s;
      }
    img = out;
  }
  const taps = (o: number, n: number, fa: number) => {
    const p = (o + 0.5) * fa - 0.5;
    const i0 = Math.floor(p);
    return [mirror(i0, n), mirror(i0 + 1, n), p - i0];
  };
  const tx = Array.from({ length: outX }, (_, o) => taps(o, X, f[0]));
  const ty = Array.from({ length: outY }, (_, o) => taps(o, Y, f[1]));
  const out = new Float64Array(outX * outY);
  for (let i = 0; i < outX; i++) {
    const [x0, x1, wx] = tx[i];
    for (let j = 0; j < outY; j++) {
      const [y0, y1, wy] = ty[j];
      out[i * outY + j] =
        (1 - wx) * ((1 - wy) * img[x0 * Y + y0] + wy * img[x0 * Y + y1]) + wx * ((1 - wy) * img[x1 * Y + y0] + wy * img[x1 * Y + y1]);
    }
  }
  return out;
}

export interface CamusRegistrationPair extends CardiacRegistrationPair {
  view: '2CH' | '4CH';
}

export interface CamusRegistrationOptions {
  /** Views (default both: one pair per view, as the papers). */
  views?: readonly ('2CH' | '4CH')[];
  /** Patients to load (numbers or 'patientNNNN'); default all present. */
  patients?: readonly (number | string)[];
  /** Output side in pixels (default 128). */
  size?: number;
  /** Decoded files kept on the host by the underlying CAMUSDataset (default 8). */
  cacheSize?: number;
}

/**
 * CAMUS as the hetero/AdaCS code prepares it (registration.md §0.1): per patient and view, moving = ED, fixed = ES,
 * each resized to size × size with skimageResize (bilinear with anti-aliasing) and min–max normalised; the
 * myocardium (label 2) mask as round(resize(mask)): the same resize of the 0/1 mask, then > 0.5 (numpy rounds
 * 0.5 to 0). Arrays keep nibabel's [X, Y] order; `affine` is the resized grid's.
 */
export class CamusRegistrationPairs implements Dataset<CamusRegistrationPair> {
  private constructor(
    private readonly ds: CAMUSDataset,
    readonly size: number,
  ) {}

  static async open(root: string, opts: CamusRegistrationOptions = {}): Promise<CamusRegistrationPairs> {
    const op = 'camusRegistrationPairs';
    if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { views: ['4CH'] }, got ${describe(opts)}`);
    const size = opts.size ?? 128;
    if (!Number.isInteger(size) || size < 2 || size > 4096) fail(op, `size must be an integer in [2, 4096], got ${describe(opts.size)}`);
    const ds = await CAMUSDataset.open(root, { views: opts.views, patients: opts.patients, phases: ['ED', 'ES'], cacheSize: opts.cacheSize });
    return new CamusRegistrationPairs(ds, size);
  }

  /** Items in patient, view order (the CAMUSDataset's ED and ES items, two by two). */
  get length(): number {
    return this.ds.length / 2;
  }

  patientOf(index: number): string {
    this.check(index);
    return this.ds.patientOf(2 * index);
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length)
      fail('camusRegistrationPairs.get', `index must be an integer in [0, ${this.length}), got ${describe(index)}`);
  }

  async get(index: number): Promise<CamusRegistrationPair> {
    this.check(index);
    const S = this.size;
    const load = async (i: number) => {
      const it = await this.ds.get(i);
      try {
        if (it.image.ndim !== 2) fail('camusRegistrationPairs', `${it.patient} ${it.view} ${it.phase}: expected a 2-D image, got shape ${fmtShape(it.image.shape)}`);
        const [X, Y] = it.image.shape;
        const img = (await it.image.data()) as Float32Array;
        const lab = (await it.label!.data()) as Int32Array;
        const myo = Float64Array.from(lab, (v) => (v === 2 ? 1 : 0));
        const label = Int32Array.from(skimageResize(myo, X, Y, S, S), (v) => (v > 0.5 ? 1 : 0));
        return { image: minMax(skimageResize(img, X, Y, S, S)), label, it, X, Y };
      } finally {
        it.image.dispose();
        it.label?.dispose();
      }
    };
    const [m, f] = await Promise.all([load(2 * index), load(2 * index + 1)]);
    if (m.X !== f.X || m.Y !== f.Y)
      fail('camusRegistrationPairs', `${m.it.patient} ${m.it.view}: ED is ${m.X} × ${m.Y} but ES is ${f.X} × ${f.Y}; a pair needs one grid`);
    const fx = m.X / S;
    const fy = m.Y / S;
    return {
      ...pairTensors(m.image, f.image, m.label, f.label, [S, S]),
      patient: m.it.patient,
      view: m.it.view,
      affine: subgridAffine(m.it.affine, [(fx - 1) / 2, (fy - 1) / 2], [fx, fy]),
      spacing: [m.it.spacing[0] * fx, m.it.spacing[1] * fy],
    };
  }
}

/** CAMUS ED→ES pairs with the papers' resize and normalisation: see CamusRegistrationPairs. */
export function camusRegistrationPairs(root: string, opts: CamusRegistrationOptions = {}): Promise<CamusRegistrationPairs> {
  return CamusRegistrationPairs.open(root, opts);
}
