/**
 * Data of the semi-supervised segmentation recipes:
 * - cardiacPhantomSplit: the embedded 2-D cardiac phantom split by subject 70/10/20 (ACDC's patient split of the
 *   papers: 70 training, 10 validation, 20 test patients), the first N training subjects labelled (1, 3, 7 as the
 *   papers' 1 %, 5 %, 10 %), the other training subjects unlabelled.
 * - leftAtriumPhantom: a procedural 3-D left-atrium-like volume (a lobed body with pulmonary-vein stubs and an
 *   appendage) with the 2-D phantom's nuisances (smooth bias field, Rician noise, partial volume at the edges) and a
 *   binary label, for the VNet setting (LA 2018 in the papers).
 */
import { fail } from '../engine/errors.js';
import { tensor } from '../kernels/creation.js';
import { tidy, type Tensor } from '../engine/tensor.js';
import { cast } from '../kernels/elementwise.js';
import { interpolate } from '../kernels/interpolate.js';
import { div, maximum, round, sub } from '../kernels/math.js';
import { max, min } from '../kernels/reduce.js';
import { cat, reshape, stack } from '../kernels/shape.js';
import { ACDCDataset, LADataset } from './medical-datasets.js';
import { cardiacPhantomArrays } from './phantom.js';
import { Rng, deriveSeed } from './random.js';

export interface SemiSegSplitOptions {
  /** Labelled training subjects (the papers: 1, 3 or 7 ACDC patients). */
  labeled: number;
  /** Subjects in all (default 100: 70 train, 10 validation, 20 test). */
  subjects?: number;
  /** Image size (square). */
  size?: number;
  /** Cine frames per subject, every one a 2-D slice with its label (default 4; ED is frame 0). */
  frames?: number;
  /** Offsets the subject seeds, so different splits draw different subjects (default 0). */
  seed?: number;
}

/** Images [n, 1, H, W] f32 and labels [n, H, W] i32 of a list of subjects. */
export interface SliceSet {
  image: Tensor;
  label: Tensor;
  subjects: number[];
  /** Frames per subject (consecutive rows of image and label belong to one subject). */
  frames: number;
}

export interface SemiSegSplit {
  labeled: SliceSet;
  /** The other training subjects (their labels kept only for the fully supervised upper bound). */
  unlabeled: SliceSet;
  val: SliceSet;
  test: SliceSet;
}

/** The subject seeds of each part: 70 / 10 / 20 % of `subjects`, in order (the papers take the first N training patients as labelled). */
export function splitSubjects(subjects: number, labeled: number): { labeled: number[]; unlabeled: number[]; val: number[]; test: number[] } {
  const op = 'splitSubjects';
  if (!Number.isInteger(subjects) || subjects < 10) fail(op, `subjects must be an integer >= 10, got ${String(subjects)}`);
  const nTrain = Math.round(subjects * 0.7);
  const nVal = Math.round(subjects * 0.1);
  if (!Number.isInteger(labeled) || labeled < 1 || labeled > nTrain) fail(op, `labeled must be an integer in [1, ${nTrain}] (the training subjects), got ${String(labeled)}`);
  const ids = Array.from({ length: subjects }, (_, i) => i);
  return { labeled: ids.slice(0, labeled), unlabeled: ids.slice(labeled, nTrain), val: ids.slice(nTrain, nTrain + nVal), test: ids.slice(nTrain + nVal) };
}

function phantomSlices(ids: number[], size: number, frames: number, seedBase: number): SliceSet {
  const n = ids.length * frames;
  const image = new Float32Array(n * size * size);
  const label = new Int32Array(n * size * size);
  ids.forEach((id, i) => {
    const a = cardiacPhantomArrays({ size, frames, seed: deriveSeed(seedBase, id) });
    image.set(a.image, i * frames * size * size);
    label.set(a.label, i * frames * size * size);
  });
  return { image: tensor(image, [n, 1, size, size]), label: tensor(label, [n, size, size], { dtype: 'i32' }), subjects: ids, frames };
}

/** The phantom's semi-supervised split (see the file header); the caller disposes every tensor. */
export function cardiacPhantomSplit(opts: SemiSegSplitOptions): SemiSegSplit {
  const size = opts.size ?? 64;
  const frames = opts.frames ?? 4;
  if (!Number.isInteger(frames) || frames < 2 || frames > 50) fail('cardiacPhantomSplit', `frames must be an integer in [2, 50], got ${String(opts.frames)}`);
  const parts = splitSubjects(opts.subjects ?? 100, opts.labeled);
  const base = deriveSeed(0x5e95, opts.seed ?? 0);
  return {
    labeled: phantomSlices(parts.labeled, size, frames, base),
    unlabeled: phantomSlices(parts.unlabeled, size, frames, base),
    val: phantomSlices(parts.val, size, frames, base),
    test: phantomSlices(parts.test, size, frames, base),
  };
}

export interface LeftAtriumPhantomOptions {
  /** Volume size [D, H, W] (default [32, 32, 32]). */
  shape?: readonly number[];
  seed?: number;
  /** Rician noise sigma relative to the blood intensity (default 0.05). */
  noise?: number;
}

/**
 * One left-atrium-like volume: image [D, H, W] f32 in about [0, 1], label [D, H, W] i32 (1 inside the atrium).
 * The body is an ellipsoid whose radius carries low-order spherical-harmonic-like lobes; four pulmonary-vein stubs
 * (cylinders leaving the back wall) and an appendage (a small ellipsoid at the front) are part of the label, as in
 * LA 2018. Around it: a darker tissue background with smooth texture, a bright aorta-like tube (not labelled), a
 * multiplicative bias field and Rician noise. Partial volume: a one-voxel linear ramp at every boundary.
 */
export function leftAtriumPhantomArrays(opts: LeftAtriumPhantomOptions = {}): { image: Float32Array; label: Int32Array; shape: [number, number, number] } {
  const shape = opts.shape ?? [32, 32, 32];
  if (shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 8)) fail('leftAtriumPhantom', `shape must be [D, H, W] of integers >= 8, got ${JSON.stringify(opts.shape)}`);
  const [D, H, W] = shape;
  const noise = opts.noise ?? 0.05;
  const rng = new Rng(deriveSeed(opts.seed ?? 0, 0x1a));
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  // normalised coordinates in [-1, 1] per axis
  const c = [u(-0.12, 0.12), u(-0.12, 0.12), u(-0.12, 0.12)];
  const r = [u(0.32, 0.42), u(0.3, 0.4), u(0.34, 0.46)];
  const lobes = Array.from({ length: 4 }, () => ({ a: u(-0.12, 0.12), dir: [rng.normal(), rng.normal(), rng.normal()] }));
  for (const l of lobes) {
    const n = Math.hypot(...l.dir);
    l.dir = l.dir.map((v) => v / n);
  }
  // veins leave the back (+z side in D) of the body at four corners, the appendage sits at the front left
  const veins = [-1, 1].flatMap((sy) => [-1, 1].map((sx) => ({ y: c[1] + sy * r[1] * u(0.35, 0.6), x: c[2] + sx * r[2] * u(0.45, 0.7), rad: u(0.07, 0.1), len: u(0.25, 0.4) })));
  const app = { c: [c[0] - r[0] * 0.7, c[1] - r[1] * 0.6, c[2] + r[2] * 0.8], r: [u(0.1, 0.14), u(0.08, 0.12), u(0.12, 0.18)] };
  const aorta = { y: c[1] + u(-0.2, 0.2), x: c[2] - r[2] - u(0.15, 0.25), rad: u(0.1, 0.14) };
  const bias = Array.from({ length: 3 }, () => ({ k: [u(0.5, 1.5), u(0.5, 1.5), u(0.5, 1.5)], p: u(0, 6.283), a: u(0.05, 0.12) }));
  const texture = Array.from({ length: 4 }, () => ({ k: [u(2, 5), u(2, 5), u(2, 5)], p: u(0, 6.283), a: u(0.01, 0.03) }));
  const blood = u(0.75, 0.9);
  const tissue = u(0.25, 0.35);
  const step = 2 / Math.min(D, H, W); // one voxel in normalised units
  const image = new Float32Array(D * H * W);
  const label = new Int32Array(D * H * W);
  const ramp = (depth: number) => Math.min(1, Math.max(0, depth / step + 0.5));
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const p = [(2 * z + 1) / D - 1, (2 * y + 1) / H - 1, (2 * x + 1) / W - 1];
        const d = [(p[0] - c[0]) / r[0], (p[1] - c[1]) / r[1], (p[2] - c[2]) / r[2]];
        const rho = Math.hypot(...d) || 1e-9;
        let scale = 1;
        for (const l of lobes) scale += l.a * ((d[0] * l.dir[0] + d[1] * l.dir[1] + d[2] * l.dir[2]) / rho) ** 2;
        // depth inside the body along the ray, in normalised units (approximate: scaled by the mean radius)
        let depth = (scale - rho) * (r[0] + r[1] + r[2]) / 3;
        for (const v of veins) {
          const along = p[0] - c[0];
          if (along > 0 && along < r[0] + v.len) depth = Math.max(depth, v.rad - Math.hypot(p[1] - v.y, p[2] - v.x));
        }
        const ad = Math.hypot((p[0] - app.c[0]) / app.r[0], (p[1] - app.c[1]) / app.r[1], (p[2] - app.c[2]) / app.r[2]);
        depth = Math.max(depth, (1 - ad) * Math.min(...app.r));
        const inside = ramp(depth);
        const aortaIn = ramp(aorta.rad - Math.hypot(p[1] - aorta.y, p[2] - aorta.x));
        let t = tissue;
        for (const w of texture) t += w.a * Math.sin(w.k[0] * p[0] * 3 + w.k[1] * p[1] * 3 + w.k[2] * p[2] * 3 + w.p);
        let v = inside * blood + (1 - inside) * (aortaIn * blood * 0.95 + (1 - aortaIn) * t);
        let b = 0;
        for (const f of bias) b += f.a * Math.sin(f.k[0] * p[0] + f.k[1] * p[1] + f.k[2] * p[2] + f.p);
        v *= Math.exp(b);
        // Rician: magnitude of the signal plus complex Gaussian noise
        const re = v + noise * rng.normal();
        const im = noise * rng.normal();
        const i = (z * H + y) * W + x;
        image[i] = Math.min(1.5, Math.hypot(re, im));
        label[i] = depth > 0 ? 1 : 0;
      }
  return { image, label, shape: [D, H, W] };
}

/** Subjects of the 3-D phantom as [n, 1, D, H, W] images and [n, D, H, W] labels (one volume per subject seed). */
export function leftAtriumPhantoms(ids: readonly number[], opts: Omit<LeftAtriumPhantomOptions, 'seed'> & { seed?: number } = {}): SliceSet {
  const shape = opts.shape ?? [32, 32, 32];
  const voxels = shape[0] * shape[1] * shape[2];
  const image = new Float32Array(ids.length * voxels);
  const label = new Int32Array(ids.length * voxels);
  ids.forEach((id, i) => {
    const a = leftAtriumPhantomArrays({ ...opts, shape, seed: deriveSeed(opts.seed ?? 0, id) });
    image.set(a.image, i * voxels);
    label.set(a.label, i * voxels);
  });
  return { image: tensor(image, [ids.length, 1, ...shape]), label: tensor(label, [ids.length, ...shape], { dtype: 'i32' }), subjects: [...ids], frames: 1 };
}

/** ACDC's labelled patients in the papers' splits (SSL4MIS's train lists): 1 → 099; 3 → + 038, 050; 7 → + 100, 058, 021, 049. */
export const ACDC_LABELED_PATIENTS = ['patient099', 'patient038', 'patient050', 'patient100', 'patient058', 'patient021', 'patient049'] as const;

export interface FolderSplitOptions {
  labeled: number;
  /** Images are resized to size × size (2-D) or size³ (3-D): bilinear/trilinear for images, nearest for labels. */
  size: number;
}

/** Resizes [X, Y(, Z)] items to the target grid, images min-max normalised to [0, 1] (per image, as the papers). */
function resizeItem(image: Tensor, label: Tensor, size: number): { image: Tensor; label: Tensor } {
  const nd = image.ndim;
  const grid = new Array<number>(nd).fill(size);
  return tidy(() => {
    const img = interpolate(reshape(image, [1, 1, ...image.shape]), { size: grid, mode: nd === 3 ? 'trilinear' : 'bilinear', alignCorners: false });
    const lo = min(img);
    const span = maximum(sub(max(img), lo), 1e-6);
    const lab = interpolate(reshape(cast(label, 'f32'), [1, 1, ...label.shape]), { size: grid, mode: 'nearest' });
    return { image: div(sub(img, lo), span), label: cast(round(reshape(lab, grid)), 'i32') };
  });
}

async function loadItems(ds: { get(i: number): Promise<{ image: Tensor; label: Tensor | null }> }, indices: number[], size: number, patients: string[]): Promise<SliceSet> {
  const images: Tensor[] = [];
  const labels: Tensor[] = [];
  for (const i of indices) {
    const it = await ds.get(i);
    if (!it.label) fail('semiseg', `item ${i} has no label`);
    const r = resizeItem(it.image, it.label, size);
    images.push(r.image);
    labels.push(r.label);
    it.image.dispose();
    it.label.dispose();
  }
  const out = tidy(() => ({ image: cat(images, 0), label: stack(labels, 0) }));
  for (const t of [...images, ...labels]) t.dispose();
  return { ...out, subjects: patients.map((_, k) => k), frames: 0 };
}

/**
 * The ACDC release (the `training` folder of 100 patients, ED and ES frames) as 2-D slices for the semi-supervised
 * recipe: the papers' labelled patients (ACDC_LABELED_PATIENTS, first `labeled` of them), and of the other patients
 * in ID order the last 20 % for testing, the 10 % before them held out (validation), the rest unlabelled. The
 * papers' exact validation and test lists are SSL4MIS's files, not reproduced here.
 */
export async function acdcSemiSegSplit(root: string, opts: FolderSplitOptions): Promise<{ labeled: SliceSet; unlabeled: SliceSet; test: SliceSet }> {
  const op = 'acdcSemiSegSplit';
  if (!Number.isInteger(opts.labeled) || opts.labeled < 1 || opts.labeled > ACDC_LABELED_PATIENTS.length)
    fail(op, `labeled must be 1 to ${ACDC_LABELED_PATIENTS.length} (the papers' labelled patients: ${ACDC_LABELED_PATIENTS.join(', ')}), got ${String(opts.labeled)}`);
  const ds = await ACDCDataset.open(root, { slices: true });
  const labeledIds = ACDC_LABELED_PATIENTS.slice(0, opts.labeled) as readonly string[];
  const missing = labeledIds.filter((p) => !ds.patients.includes(p));
  if (missing.length) fail(op, `${root} lacks the labelled patient(s) ${missing.join(', ')} of the papers' split`);
  return splitFolder(ds, labeledIds, opts.size);
}

/** The LA 2018 cases (lgemri.nrrd + laendo.nrrd per folder) as volumes: the first `labeled` cases in name order labelled, the last 20 % tested. */
export async function laSemiSegSplit(root: string, opts: FolderSplitOptions): Promise<{ labeled: SliceSet; unlabeled: SliceSet; test: SliceSet }> {
  const ds = await LADataset.open(root);
  const names = [...ds.patients].sort();
  const nTest = Math.max(1, Math.round(names.length * 0.2));
  if (!Number.isInteger(opts.labeled) || opts.labeled < 1 || opts.labeled > names.length - nTest - 1)
    fail('laSemiSegSplit', `labeled must be an integer in [1, ${names.length - nTest - 1}] (training cases, keeping one unlabelled), got ${String(opts.labeled)}`);
  return splitFolder(ds, names.slice(0, opts.labeled), opts.size, 0);
}

async function splitFolder(
  ds: { patients: string[]; length: number; patientOf(i: number): string; get(i: number): Promise<{ image: Tensor; label: Tensor | null }> },
  labeledIds: readonly string[],
  size: number,
  valFraction = 0.1,
): Promise<{ labeled: SliceSet; unlabeled: SliceSet; test: SliceSet }> {
  const rest = ds.patients.filter((p) => !labeledIds.includes(p)).sort();
  const total = ds.patients.length;
  const nTest = Math.max(1, Math.round(total * 0.2));
  const nVal = Math.round(total * valFraction);
  const test = rest.slice(rest.length - nTest);
  const unlabeled = rest.slice(0, Math.max(0, rest.length - nTest - nVal));
  if (!unlabeled.length) fail('semiseg', `${total} patients leave no unlabelled training patient after ${labeledIds.length} labelled, ${nVal} validation and ${nTest} test patients`);
  const indicesOf = (ids: readonly string[]) => Array.from({ length: ds.length }, (_, i) => i).filter((i) => ids.includes(ds.patientOf(i)));
  return {
    labeled: await loadItems(ds, indicesOf(labeledIds), size, [...labeledIds]),
    unlabeled: await loadItems(ds, indicesOf(unlabeled), size, unlabeled),
    test: await loadItems(ds, indicesOf(test), size, test),
  };
}
