/**
 * The embedded 2D+t cardiac short-axis phantom: a procedural, seeded stand-in for a cine-MR (bSSFP) mid-ventricular
 * slice with ACDC-style labels, for segmentation and registration out of the box.
 *
 * Scene (millimetres, image x to the right and y down, the RV on the image left as in ACDC):
 * - LV: a bright blood pool inside a dark myocardial ring. Endo- and epicardial radii carry 2nd/3rd-order Fourier
 *   shape terms; two papillary muscles (myocardium-dark, labelled LV cavity as ACDC does) touch the wall.
 * - RV: a bright crescent, an ellipse wrapped around the septal side of the LV, minus the LV, with a thin dark free
 *   wall (labelled background, as ACDC does).
 * - Surroundings: mediastinal tissue with smooth texture, pericardial fat blobs (bright), lungs (dark, with vessel
 *   dots), the descending aorta (bright), a vertebral body, the chest wall with subcutaneous fat, sometimes the liver.
 * - Motion: ED (frame 0) to ES (frame `es`) and back, following a raised-cosine phase c(t). The LV cavity radius
 *   shrinks by 22-34% (area by ~40-55%), the myocardium keeps ~92-100% of its area so the wall thickens, the RV
 *   crescent flattens and narrows, the heart twists by up to ±5 degrees and drifts by up to 2 mm, and the shape terms
 *   wobble non-rigidly.
 * - Imaging: partial volume at every edge (a one-voxel linear ramp), a smooth multiplicative bias field, Rician noise.
 * Every parameter is drawn from a generator seeded by `seed` (per-subject variation of position, size,
 * orientation, wall thickness, contraction and intensities) and the whole image is computed in float64 JS, so a
 * seed gives the same bits on every run. Generation is host-side (~5 ms per 128 x 128 frame).
 */
import { fail } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import type { Dataset } from './dataset.js';
import { Rng, deriveSeed } from './random.js';
import { clamp01, disc, ellipse, lerp } from './shapes.js';

export interface PhantomOptions {
  /** Image size in pixels (square; default 128). The field of view stays `fov` mm, so smaller sizes are coarser. */
  size?: number;
  /** Number of cine frames (2 to 50; default 10). Frame 0 is ED. */
  frames?: number;
  /** ES frame index (default round(0.35 * frames), at least 1). */
  es?: number;
  /** Subject seed (default 0): every seed is a different subject. */
  seed?: number;
  /** Rician noise sigma relative to a blood intensity of ~0.9 (default 0.04; 0: none). */
  noise?: number;
  /** Strength of the multiplicative bias field: |log bias| up to about this (default 0.25; 0: none). */
  biasField?: number;
  /** Field of view in mm (default 160: a cardiac crop, 1.25 mm pixels at size 128; spacing fov / size). */
  fov?: number;
  /** Draw papillary muscles in the LV cavity (default true). */
  papillary?: boolean;
}

/** A phantom as host arrays: image [T, H, W] f32, label [T, H, W] i32 (ACDC: 0 bg, 1 RV, 2 LV myo, 3 LV cavity). */
export interface PhantomArrays {
  image: Float32Array;
  label: Int32Array;
  shape: [number, number, number];
  ed: 0;
  es: number;
  /** Pixel spacing [sy, sx] in mm. */
  spacing: [number, number];
}

export interface Phantom {
  /** [T, H, W] f32, roughly in [0, 1] (blood ~0.9, myocardium ~0.27, lung ~0.04, before bias and noise). */
  image: Tensor;
  /** [T, H, W] i32: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity (ACDC's convention). */
  label: Tensor;
  ed: 0;
  es: number;
  spacing: [number, number];
}

/** A disc-like shape with radius r(phi) = r0 (1 + sum_n a_n cos(n (phi - p_n))), n = 2, 3. */
interface Harmonics {
  a2: number;
  p2: number;
  a3: number;
  p3: number;
}

/** Relative radius factor at direction (c, s) = (cos phi, sin phi). */
function shapeFactor(h: Harmonics, c: number, s: number): number {
  const c2 = c * c - s * s;
  const s2 = 2 * c * s;
  const c3 = c * (4 * c * c - 3);
  const s3 = s * (3 - 4 * s * s);
  return 1 + h.a2 * (c2 * Math.cos(2 * h.p2) + s2 * Math.sin(2 * h.p2)) + h.a3 * (c3 * Math.cos(3 * h.p3) + s3 * Math.sin(3 * h.p3));
}

function checkOptions(op: string, o: PhantomOptions) {
  const size = o.size ?? 128;
  const frames = o.frames ?? 10;
  const seed = o.seed ?? 0;
  if (!Number.isInteger(size) || size < 16 || size > 1024) fail(op, `size must be an integer in [16, 1024], got ${describe(o.size)}`);
  if (!Number.isInteger(frames) || frames < 2 || frames > 50) fail(op, `frames must be an integer in [2, 50], got ${describe(o.frames)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) fail(op, `seed must be an integer in [0, 2^53 - 1], got ${describe(o.seed)}`);
  const es = o.es ?? Math.max(1, Math.round(0.35 * frames));
  if (!Number.isInteger(es) || es < 1 || es >= frames) fail(op, `es must be an integer in [1, ${frames - 1}], got ${describe(o.es)}`);
  const noise = o.noise ?? 0.04;
  const biasField = o.biasField ?? 0.25;
  const fov = o.fov ?? 160;
  if (!(noise >= 0 && noise <= 1)) fail(op, `noise must be a number in [0, 1], got ${describe(o.noise)}`);
  if (!(biasField >= 0 && biasField <= 2)) fail(op, `biasField must be a number in [0, 2], got ${describe(o.biasField)}`);
  if (!(fov >= 100 && fov <= 500)) fail(op, `fov must be a number of mm in [100, 500], got ${describe(o.fov)}`);
  return { size, frames, seed, es, noise, biasField, fov, papillary: o.papillary ?? true };
}

/** The cardiac phantom as host arrays (no GPU needed): see cardiacPhantom. */
export function cardiacPhantomArrays(opts: PhantomOptions = {}): PhantomArrays {
  const { size, frames: T, seed, es, noise, biasField, fov, papillary } = checkOptions('cardiacPhantom', opts);
  const rng = new Rng(deriveSeed(seed, 0xca4d));
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  const sp = fov / size;
  const edge = 1.2 * sp; // partial-volume ramp width (mm)
  const ramp = (d: number) => clamp01(0.5 + d / edge);

  // ---- subject -------------------------------------------------------------------------------------------------------
  const lv = { x: u(0, 16), y: u(-10, 10) };
  const rvAngle = Math.PI + Math.PI / 6 + u(-0.45, 0.45); // RV direction from the LV centre: image left, slightly up
  const rEndoEd = u(19, 27);
  const rEpiEd = rEndoEd + u(6.5, 10);
  const shrink = u(0.22, 0.34);
  const rEndoEs = rEndoEd * (1 - shrink);
  const rEpiEs = Math.sqrt(rEndoEs ** 2 + (rEpiEd ** 2 - rEndoEd ** 2) * u(0.92, 1));
  const endoShape: Harmonics = { a2: u(0, 0.06), p2: u(0, Math.PI), a3: u(0, 0.035), p3: u(0, Math.PI) };
  const epiShape: Harmonics = { a2: u(0, 0.04), p2: u(0, Math.PI), a3: u(0, 0.025), p3: u(0, Math.PI) };
  const wobble = { a: u(-0.5, 0.5), p: u(-0.3, 0.3) };
  const twist = u(-0.09, 0.09);
  const drift = { x: u(-2, 2), y: u(-2, 2) };
  // RV crescent: outer extent rEpi + h along the RV direction, inner extent inner * rEpi (inside the LV, removed)
  const rvH = u(10, 18);
  const rvHEs = rvH * (1 - u(0.25, 0.45));
  const rvInner = u(-0.2, 0.35);
  const rvB = u(1.05, 1.4);
  const rvBEs = rvB * (1 - u(0.08, 0.18));
  const rvWall = u(2.5, 4);
  // intensities (bSSFP: blood and fat bright, myocardium dark, lung darkest)
  const blood = u(0.82, 0.95);
  const rvBlood = blood * u(0.92, 1);
  const myo = u(0.22, 0.32);
  const fat = u(0.75, 0.9);
  const tissue = u(0.3, 0.38);
  const lung = u(0.03, 0.06);
  const pap = lerp(myo, blood, u(0.1, 0.3));
  const papAngles = [rvAngle + Math.PI + u(0.5, 0.9), rvAngle + Math.PI - u(0.5, 0.9)];
  const papR = [u(2.5, 4), u(2.5, 4)];
  const fatBlobs = [
    { ang: rvAngle + u(1.0, 1.4), r: u(3, 6) },
    { ang: rvAngle - u(1.0, 1.4), r: u(3, 6) },
    { ang: rvAngle + Math.PI + u(-1.2, 1.2), r: u(3, 7) },
  ];

  // ---- static surroundings, in mm relative to the image centre ----------------------------------------------------------
  const H = size;
  const W = size;
  const bg = new Float64Array(H * W);
  const bias = new Float64Array(H * W);
  const px = (j: number) => (j + 0.5 - W / 2) * sp;
  const py = (i: number) => (i + 0.5 - H / 2) * sp;
  const lungL = ellipse(lv.x + rEpiEd + u(32, 42), lv.y + u(0, 15), u(28, 36), u(55, 75), u(-0.4, 0.1));
  const lungRx = lv.x - rEpiEd - u(62, 75);
  const lungRy = lv.y + u(5, 20);
  const lungR = ellipse(lungRx, lungRy, u(28, 36), u(55, 75), u(-0.1, 0.4));
  const aortaAng = Math.PI / 2 + u(-0.2, 0.35);
  const aortaD = rEpiEd + u(14, 22);
  const ax = lv.x + aortaD * Math.cos(aortaAng);
  const ay = lv.y + aortaD * Math.sin(aortaAng);
  const aorta = disc(ax, ay, u(9, 12));
  const spine = disc(ax - u(12, 20), ay + u(16, 24), u(13, 17));
  const chest = { y0: lv.y - rEpiEd - u(28, 42), k: u(0.002, 0.006), fat: u(8, 14), muscle: u(10, 16) };
  const liver = rng.next() < 0.5 ? ellipse(lv.x - u(30, 50), lv.y + rEpiEd + u(35, 55), u(45, 60), u(25, 35), u(-0.3, 0.3)) : null;
  const waves = Array.from({ length: 4 }, () => ({ kx: u(-0.08, 0.08), ky: u(-0.08, 0.08), ph: u(0, 2 * Math.PI), amp: u(0.01, 0.025) }));
  // vessel dots in the lungs: drawn where they land inside lung
  const vessels = Array.from({ length: 12 }, () => {
    const left = rng.next() < 0.5;
    const ang = u(0, 2 * Math.PI);
    const rr = Math.sqrt(rng.next()) * 45;
    const [vx, vy] = left ? [lv.x + rEpiEd + 37, lv.y + 8] : [lungRx, lungRy];
    return disc(vx + rr * 0.6 * Math.cos(ang), vy + rr * Math.sin(ang), u(1.2, 2.5));
  });
  const bc = Array.from({ length: 5 }, () => u(-1, 1));
  const bnorm = bc.reduce((s, v) => s + Math.abs(v), 0) || 1;
  for (let i = 0; i < H; i++) {
    const y = py(i);
    for (let j = 0; j < W; j++) {
      const x = px(j);
      let v = tissue;
      for (const w of waves) v += w.amp * Math.cos(w.kx * x + w.ky * y + w.ph);
      if (liver) v = lerp(v, tissue + 0.1, ramp(liver(x, y)));
      const inLung = Math.max(ramp(lungL(x, y)), ramp(lungR(x, y)));
      if (inLung > 0) {
        let lv2 = lung;
        for (const ves of vessels) lv2 = lerp(lv2, tissue * 0.7, ramp(ves(x, y)));
        v = lerp(v, lv2, inLung);
      }
      v = lerp(v, tissue + 0.15, ramp(spine(x, y)));
      v = lerp(v, blood * 0.85, ramp(aorta(x, y)));
      const yc = chest.y0 - chest.k * (x - lv.x) ** 2; // chest wall: muscle, then subcutaneous fat, then air
      v = lerp(v, tissue + 0.05, ramp(yc - y));
      v = lerp(v, fat, ramp(yc - chest.muscle - y));
      v = lerp(v, 0.02, ramp(yc - chest.muscle - chest.fat - y));
      bg[i * W + j] = v;
      const X = x / (fov / 2);
      const Y = y / (fov / 2);
      bias[i * W + j] = Math.exp((biasField * (bc[0] * X + bc[1] * Y + bc[2] * X * Y + bc[3] * (X * X - 0.5) + bc[4] * (Y * Y - 0.5))) / bnorm);
    }
  }

  // ---- frames ----------------------------------------------------------------------------------------------------------
  const image = new Float32Array(T * H * W);
  const label = new Int32Array(T * H * W);
  for (let t = 0; t < T; t++) {
    const c = t <= es ? 0.5 * (1 - Math.cos((Math.PI * t) / es)) : 0.5 * (1 + Math.cos((Math.PI * (t - es)) / (T - es)));
    const cx = lv.x + c * drift.x;
    const cy = lv.y + c * drift.y;
    const rot = twist * c;
    const rEndo = lerp(rEndoEd, rEndoEs, c);
    const rEpi = lerp(rEpiEd, rEpiEs, c);
    const endo: Harmonics = { ...endoShape, a2: endoShape.a2 * (1 + wobble.a * c), p2: endoShape.p2 + wobble.p * c + rot };
    const epi: Harmonics = { ...epiShape, a2: epiShape.a2 * (1 - wobble.a * c), p2: epiShape.p2 - wobble.p * c + rot, p3: epiShape.p3 + rot };
    endo.p3 += rot;
    const rvAng = rvAngle + rot;
    const h = lerp(rvH, rvHEs, c);
    const inner = rvInner * rEpi;
    const rvA = (rEpi + h - inner) / 2;
    const rvD = (rEpi + h + inner) / 2;
    const rvBt = lerp(rvB, rvBEs, c) * rEpi;
    const rv = ellipse(cx + rvD * Math.cos(rvAng), cy + rvD * Math.sin(rvAng), rvA, rvBt, rvAng);
    const paps = papAngles.map((a, k) => {
      const r = papR[k] * (1 + 0.3 * c);
      const d = rEndo - 0.7 * r;
      return disc(cx + d * Math.cos(a + rot), cy + d * Math.sin(a + rot), r);
    });
    const fats = fatBlobs.map((f) => {
      const d = rEpi + 0.5 * f.r;
      return disc(cx + d * Math.cos(f.ang + rot), cy + d * Math.sin(f.ang + rot), f.r);
    });
    const noiseRng = new Rng(deriveSeed(seed, 0x5e1d, t));
    const reach = rEpi * 1.6 + h + 2 * rvWall + 10; // beyond this distance from the LV the heart draws nothing
    for (let i = 0; i < H; i++) {
      const y = py(i);
      for (let j = 0; j < W; j++) {
        const x = px(j);
        const o = i * W + j;
        let v = bg[o];
        let lab = 0;
        const dx = x - cx;
        const dy = y - cy;
        const rho = Math.sqrt(dx * dx + dy * dy);
        if (rho < reach) {
          const cs = rho > 0 ? dx / rho : 1;
          const sn = rho > 0 ? dy / rho : 0;
          const dEndo = rEndo * shapeFactor(endo, cs, sn) - rho;
          const dEpi = rEpi * shapeFactor(epi, cs, sn) - rho;
          const dRv = rv(x, y);
          for (const f of fats) v = lerp(v, fat, ramp(f(x, y)));
          v = lerp(v, myo, ramp(dRv + rvWall));
          v = lerp(v, rvBlood, ramp(dRv));
          v = lerp(v, myo, ramp(dEpi));
          const mCav = ramp(dEndo);
          v = lerp(v, blood, mCav);
          if (papillary && mCav > 0) for (const p of paps) v = lerp(v, pap, mCav * ramp(p(x, y)));
          lab = dEndo > 0 ? 3 : dEpi > 0 ? 2 : dRv > 0 ? 1 : 0;
        }
        v *= bias[o];
        if (noise > 0) {
          // Rician magnitude of a complex signal with Gaussian noise in both channels (one Box-Muller pair)
          const r = noise * Math.sqrt(-2 * Math.log(1 - noiseRng.next()));
          const a = 2 * Math.PI * noiseRng.next();
          const re = v + r * Math.cos(a);
          const im = r * Math.sin(a);
          v = Math.sqrt(re * re + im * im);
        }
        image[t * H * W + o] = v;
        label[t * H * W + o] = lab;
      }
    }
  }
  return { image, label, shape: [T, H, W], ed: 0, es, spacing: [sp, sp] };
}

/**
 * A procedural 2D+t cardiac short-axis cine phantom (see the file header): image [T, H, W] f32, label [T, H, W]
 * i32 with ACDC's labels, ED at frame 0 and ES at `es`. `cardiacPhantom({ seed: k })` is subject k, bit-identical
 * on every run. The caller owns (and disposes) both tensors.
 */
export function cardiacPhantom(opts: PhantomOptions = {}): Phantom {
  const a = cardiacPhantomArrays(opts);
  return { image: tensor(a.image, a.shape), label: tensor(a.label, a.shape, { dtype: 'i32' }), ed: 0, es: a.es, spacing: a.spacing };
}

export interface PhantomDatasetOptions extends Omit<PhantomOptions, 'seed' | 'frames' | 'es'> {
  /** A count n (subjects seed, seed + 1, ..., seed + n - 1; default 20) or the list of subject seeds. */
  subjects?: number | readonly number[];
  /** The first subject's seed when `subjects` is a count (default 0). Held-out data: another range of seeds. */
  seed?: number;
  /** 'ed-es' (default): the ED and ES frames of each subject; 'all': every cine frame. */
  frames?: 'ed-es' | 'all';
  /** Cine frames generated per subject with frames 'all' (default 10). */
  cineFrames?: number;
  /**
   * 'segmentation' (default): samples { image [1, H, W] f32, label [H, W] i32, subject, frame }.
   * 'registration': pairs { fixed, moving [1, H, W] f32, fixedLabel, movingLabel [H, W] i32, subject, movingFrame }
   * with ED fixed and ES (or, with frames 'all', each later frame) moving.
   */
  task?: 'segmentation' | 'registration';
  /** Subjects whose arrays are cached on the host (default 64; least recently used evicted). */
  cacheSubjects?: number;
}

export interface PhantomSegmentationSample {
  image: Tensor;
  label: Tensor;
  subject: number;
  frame: number;
}

export interface PhantomRegistrationSample {
  fixed: Tensor;
  moving: Tensor;
  fixedLabel: Tensor;
  movingLabel: Tensor;
  subject: number;
  movingFrame: number;
}

/**
 * The phantom as a Dataset of 2-D samples for the DataLoader. Each get() returns fresh tensors the caller owns.
 * `subjectOf(index)` gives the subject of a sample, for patient-level splits (randomSplit's groupBy).
 */
export class PhantomDataset<S = PhantomSegmentationSample | PhantomRegistrationSample> implements Dataset<S> {
  readonly subjects: readonly number[];
  readonly task: 'segmentation' | 'registration';
  readonly frames: 'ed-es' | 'all';
  private readonly cine: number;
  private readonly phantom: PhantomOptions;
  private readonly cacheSize: number;
  private readonly cache = new Map<number, PhantomArrays>();

  constructor(opts: PhantomDatasetOptions = {}) {
    const op = 'PhantomDataset';
    const { subjects = 20, seed = 0, frames = 'ed-es', cineFrames = 10, task = 'segmentation', cacheSubjects = 64, ...phantom } = opts;
    if (typeof subjects === 'number') {
      if (!Number.isInteger(subjects) || subjects < 1) fail(op, `subjects must be a positive integer or a list of seeds, got ${describe(subjects)}`);
      if (!Number.isSafeInteger(seed) || seed < 0) fail(op, `seed must be an integer in [0, 2^53 - 1], got ${describe(seed)}`);
      this.subjects = Array.from({ length: subjects }, (_, i) => seed + i);
    } else if (Array.isArray(subjects) && subjects.length > 0) this.subjects = [...subjects];
    else fail(op, `subjects must be a positive integer or a non-empty list of seeds, got ${describe(subjects)}`);
    if (frames !== 'ed-es' && frames !== 'all') fail(op, `frames must be 'ed-es' or 'all', got ${describe(frames)}`);
    if (task !== 'segmentation' && task !== 'registration') fail(op, `task must be 'segmentation' or 'registration', got ${describe(task)}`);
    this.frames = frames;
    this.task = task;
    this.cine = frames === 'ed-es' ? 2 : cineFrames;
    this.phantom = phantom;
    this.cacheSize = cacheSubjects;
    checkOptions(op, { ...phantom, frames: this.cine }); // fail now, not at the first get()
  }

  /** Samples per subject. */
  private get perSubject(): number {
    return this.task === 'segmentation' ? this.cine : this.cine - 1;
  }

  get length(): number {
    return this.subjects.length * this.perSubject;
  }

  /** The subject seed of sample `index`. */
  subjectOf(index: number): number {
    return this.subjects[Math.floor(index / this.perSubject)];
  }

  /** The host arrays of a subject (cached). */
  arrays(subject: number): PhantomArrays {
    let a = this.cache.get(subject);
    if (a) this.cache.delete(subject);
    else a = cardiacPhantomArrays({ ...this.phantom, frames: this.cine, seed: subject });
    this.cache.set(subject, a); // most recently used last
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as number);
    return a;
  }

  get(index: number): S {
    if (!Number.isInteger(index) || index < 0 || index >= this.length)
      fail('PhantomDataset.get', `index must be an integer in [0, ${this.length}), got ${describe(index)}`);
    const subject = this.subjectOf(index);
    const k = index % this.perSubject;
    const a = this.arrays(subject);
    const [, H, W] = a.shape;
    const img = (t: number) => tensor(a.image.subarray(t * H * W, (t + 1) * H * W), [1, H, W]);
    const lab = (t: number) => tensor(a.label.subarray(t * H * W, (t + 1) * H * W), [H, W], { dtype: 'i32' });
    if (this.task === 'segmentation') {
      const frame = this.frames === 'ed-es' ? (k === 0 ? a.ed : a.es) : k;
      return { image: img(frame), label: lab(frame), subject, frame } as S;
    }
    const moving = this.frames === 'ed-es' ? a.es : k + 1;
    return { fixed: img(a.ed), moving: img(moving), fixedLabel: lab(a.ed), movingLabel: lab(moving), subject, movingFrame: moving } as S;
  }
}
