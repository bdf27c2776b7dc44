/**
 * A multi-structure phantom for multi-organ segmentation (Synapse-like label sets): a procedural, seeded stand-in for
 * a contrast CT axial slice through the lower thorax, where the heart, the descending aorta, the vertebra, both lungs
 * and the liver dome share one slice. Not an anatomical model: shapes are ellipses, discs and a crescent, with CT-like
 * intensity ordering (lung < fat < soft tissue ≈ myocardium < liver < contrast blood < bone).
 *
 * Scene (millimetres, image x to the right = the patient's left, y down = posterior, as radiological axial views):
 * - Body: an elliptical cross-section with subcutaneous fat and a muscle layer; air outside.
 * - Lungs: two tilted ellipses, the heart, aorta, vertebra and liver carved out of them.
 * - Heart, anterior and to the patient's left: LV cavity (bright) inside a myocardial ring with a 2nd-order shape
 *   term, RV cavity a crescent anterior-right of the LV.
 * - Descending aorta (bright disc) left-anterior of the vertebral body; the vertebral body (bone, a darker core) with
 *   the spinal canal behind it (not labelled).
 * - Liver dome at the patient's right posterior base, under the right lung.
 * - Imaging: a one-pixel partial-volume ramp at every edge, a smooth intensity drift, Gaussian noise.
 * Labels, in drawing priority: 7 vertebra > 4 aorta > 1 LV cavity > 2 myocardium > 3 RV cavity > 5 liver > 6 lungs.
 * Every parameter is drawn from a generator seeded by `seed`; the slice is computed in float64 JS, so a seed gives
 * the same bits on every run.
 */
import { fail } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { Rng, deriveSeed } from './random.js';
import { clamp01, disc, ellipse, lerp } from './shapes.js';

/** Label names of organPhantom, index = label value (0 background). */
export const ORGAN_PHANTOM_LABELS = ['background', 'LV cavity', 'myocardium', 'RV cavity', 'aorta', 'liver', 'lungs', 'vertebra'] as const;

export interface OrganPhantomOptions {
  /** Image size in pixels (square; default 64); the field of view stays `fov` mm. */
  size?: number;
  /** Subject seed (default 0). */
  seed?: number;
  /** Gaussian noise sigma (default 0.03; intensities roughly in [0, 1]). */
  noise?: number;
  /** Field of view in mm (default 340; spacing fov / size). */
  fov?: number;
}

export interface OrganPhantomArrays {
  /** [H, W] f32. */
  image: Float32Array;
  /** [H, W] i32, ORGAN_PHANTOM_LABELS. */
  label: Int32Array;
  shape: [number, number];
  /** Pixel spacing [sy, sx] in mm. */
  spacing: [number, number];
}

function checkOptions(op: string, o: OrganPhantomOptions) {
  if (o === null || typeof o !== 'object') fail(op, `options must be an object like { size: 64, seed: 0 }, got ${describe(o)}`);
  const size = o.size ?? 64;
  const seed = o.seed ?? 0;
  const noise = o.noise ?? 0.03;
  const fov = o.fov ?? 340;
  if (!Number.isInteger(size) || size < 16 || size > 1024) fail(op, `size must be an integer in [16, 1024], got ${describe(o.size)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) fail(op, `seed must be an integer in [0, 2^53 - 1], got ${describe(o.seed)}`);
  if (typeof noise !== 'number' || !(noise >= 0 && noise <= 1)) fail(op, `noise must be a number in [0, 1], got ${describe(o.noise)}`);
  if (typeof fov !== 'number' || !(fov >= 200 && fov <= 600)) fail(op, `fov must be a number of mm in [200, 600], got ${describe(o.fov)}`);
  return { size, seed, noise, fov };
}

/** The multi-structure phantom slice as host arrays (no GPU needed): see organPhantom. */
export function organPhantomArrays(opts: OrganPhantomOptions = {}): OrganPhantomArrays {
  const { size, seed, noise, fov } = checkOptions('organPhantom', opts);
  const rng = new Rng(deriveSeed(seed, 0x0a9a));
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  const sp = fov / size;
  const ramp = (d: number) => clamp01(0.5 + d / (1.2 * sp));

  // ---- subject --------------------------------------------------------------------------------------------------------
  const body = ellipse(u(-5, 5), u(-5, 5), u(140, 158), u(100, 118), u(-0.05, 0.05));
  const fatDepth = u(8, 16);
  const muscleDepth = fatDepth + u(6, 12);
  const lungR = ellipse(u(-85, -70), u(-10, 5), u(42, 55), u(62, 78), u(-0.25, 0.05));
  const lungL = ellipse(u(70, 85), u(-10, 5), u(40, 52), u(60, 75), u(-0.05, 0.25));
  const hx = u(10, 28);
  const hy = u(-30, -12);
  const rEndo = u(15, 22);
  const rEpi = rEndo + u(7, 12);
  const shape = { a: u(0, 0.08), p: u(0, Math.PI) };
  const rvAng = Math.PI + u(0.35, 0.85); // from the LV centre towards the patient's right and anterior (image up-left)
  const rvDist = rEpi + u(0, 6);
  const rv = ellipse(hx + rvDist * Math.cos(rvAng), hy + rvDist * Math.sin(rvAng), u(16, 22), rEpi * u(1.1, 1.4), rvAng);
  const lvEpi = (x: number, y: number, r: number) => {
    const dx = x - hx;
    const dy = y - hy;
    const rho = Math.hypot(dx, dy);
    const ph = Math.atan2(dy, dx);
    return r * (1 + shape.a * Math.cos(2 * (ph - shape.p))) - rho;
  };
  const vy = u(52, 66);
  const vertebra = disc(u(-4, 4), vy, u(14, 19));
  const canal = disc(u(-2, 2), vy + u(24, 28), u(6, 8));
  const aorta = disc(u(14, 26), vy - u(24, 32), u(9, 13));
  const liver = ellipse(u(-95, -65), u(40, 60), u(45, 60), u(28, 40), u(-0.3, 0.2));
  // CT-like intensities (a soft-tissue window mapped to [0, 1]); each subject varies a little
  const I = {
    air: 0.0,
    fat: u(0.18, 0.26),
    tissue: u(0.42, 0.5),
    myo: u(0.46, 0.54),
    liver: u(0.58, 0.66),
    blood: u(0.74, 0.84),
    lung: u(0.03, 0.07),
    bone: u(1.0, 1.1),
  };
  const drift = { kx: u(-0.01, 0.01), ky: u(-0.01, 0.01), amp: u(0.0, 0.04) };

  // ---- raster ----------------------------------------------------------------------------------------------------------
  const H = size;
  const W = size;
  const image = new Float32Array(H * W);
  const label = new Int32Array(H * W);
  const noiseRng = new Rng(deriveSeed(seed, 0x5e1d));
  for (let i = 0; i < H; i++) {
    const y = (i + 0.5 - H / 2) * sp;
    for (let j = 0; j < W; j++) {
      const x = (j + 0.5 - W / 2) * sp;
      const dBody = body(x, y);
      const dEpi = lvEpi(x, y, rEpi);
      const dEndo = lvEpi(x, y, rEndo);
      const dRv = Math.min(rv(x, y), -dEpi);
      const dAorta = aorta(x, y);
      const dVert = vertebra(x, y);
      const dLiver = liver(x, y);
      // lungs stop a few mm short of the organs they touch (pleura and mediastinal fat)
      const organs = Math.max(dEpi, rv(x, y), dAorta, dVert, dLiver) + 4;
      const dLung = Math.min(Math.max(lungR(x, y), lungL(x, y)), -organs, dBody - muscleDepth);
      let v = lerp(I.air, I.fat, ramp(dBody));
      v = lerp(v, I.tissue, ramp(dBody - fatDepth));
      v = lerp(v, I.liver, ramp(Math.min(dLiver, dBody - muscleDepth)));
      v = lerp(v, I.lung, ramp(dLung));
      v = lerp(v, I.blood * 0.96, ramp(dRv));
      v = lerp(v, I.myo, ramp(dEpi));
      v = lerp(v, I.blood, ramp(dEndo));
      v = lerp(v, I.blood, ramp(dAorta));
      v = lerp(v, I.bone, ramp(dVert));
      v = lerp(v, 0.88 * I.bone, ramp(dVert - 5)); // cancellous core
      v = lerp(v, I.tissue * 0.8, ramp(canal(x, y)));
      v += drift.amp * Math.sin(drift.kx * x + drift.ky * y);
      if (noise > 0) v += noise * noiseRng.normal();
      const o = i * W + j;
      image[o] = v;
      label[o] = dVert > 0 ? 7 : dAorta > 0 ? 4 : dEndo > 0 ? 1 : dEpi > 0 ? 2 : dRv > 0 ? 3 : dLiver > 0 && dBody > muscleDepth ? 5 : dLung > 0 ? 6 : 0;
    }
  }
  return { image, label, shape: [H, W], spacing: [sp, sp] };
}

/**
 * A multi-structure phantom slice (see the file header): image [H, W] f32 and label [H, W] i32 with
 * ORGAN_PHANTOM_LABELS (0 background, 1 LV cavity, 2 myocardium, 3 RV cavity, 4 aorta, 5 liver, 6 lungs, 7 vertebra).
 * `organPhantom({ seed: k })` is subject k, bit-identical on every run. The caller owns both tensors.
 */
export function organPhantom(opts: OrganPhantomOptions = {}): { image: Tensor; label: Tensor; spacing: [number, number] } {
  const a = organPhantomArrays(opts);
  return { image: tensor(a.image, a.shape), label: tensor(a.label, a.shape, { dtype: 'i32' }), spacing: a.spacing };
}

/** Subjects firstSeed .. firstSeed + count - 1 as a batch: image [count, 1, S, S], label [count, S, S]. */
export function organPhantomSlices(firstSeed: number, count: number, opts: Omit<OrganPhantomOptions, 'seed'> = {}): { image: Tensor; label: Tensor; spacing: [number, number] } {
  if (!Number.isInteger(count) || count < 1) fail('organPhantomSlices', `count must be a positive integer, got ${describe(count)}`);
  const slices = Array.from({ length: count }, (_, k) => organPhantomArrays({ ...opts, seed: firstSeed + k }));
  const [H, W] = slices[0].shape;
  const image = new Float32Array(count * H * W);
  const label = new Int32Array(count * H * W);
  slices.forEach((s, k) => (image.set(s.image, k * H * W), label.set(s.label, k * H * W)));
  return { image: tensor(image, [count, 1, H, W]), label: tensor(label, [count, H, W], { dtype: 'i32' }), spacing: slices[0].spacing };
}
