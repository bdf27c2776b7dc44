/**
 * Loaders for the two spurious-correlation benchmarks of the group-robustness papers, read from their published
 * layouts, for users who have them (nothing is downloaded):
 * - Waterbirds (Sagawa et al. 2020): `root/metadata.csv` with columns img_filename, y (0 landbird, 1 waterbird),
 *   split (0 train, 1 val, 2 test) and place (0 land, 1 water); image paths relative to root.
 * - CelebA: `root/list_attr_celeba.txt` (a count line, the attribute names, then `file v1 v2 ...` with ±1 values),
 *   `root/list_eval_partition.txt` (`file 0|1|2`), images in `root/img_align_celeba/`. Label and spurious attribute
 *   are options (default Blond_Hair and Male, the benchmark's).
 * Every item has a label y, a spurious attribute a and the group g = 2·y + a (the convention of the papers' code), so
 * the four groups are Waterbirds' landbird/land, landbird/water, waterbird/land, waterbird/water and CelebA's
 * non-blond/female, non-blond/male, blond/female, blond/male.
 *
 * The images are JPEG, and voxgrad has no JPEG decoder: pass `decode` (bytes → RGB or RGBA pixels; in Node e.g. a
 * wrapper around an image library of your choice). In a browser the default decodes with the platform
 * (createImageBitmap, then an OffscreenCanvas's getImageData); in Node without `decode`, get() fails with an error
 * naming the option. The metadata alone (labels, groups, splits, counts) needs no decoder.
 * Items: the image resized so its shorter side is `size` (bilinear), centre-cropped to size × size, scaled to [0, 1]
 * and normalised per channel with `mean` / `std` (default CLIP's), as [3, size, size] f32; the caller owns it.
 */
import { fail } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { readBytes } from '../io/files.js';
import { div, interpolate, permute, reshape, sub, tensor } from '../ops.js';
import { centerCrop } from './transforms.js';
import type { Dataset } from './dataset.js';

/** Decoded pixels: rows top to bottom, `channels` bytes per pixel (RGB or RGBA; alpha is ignored). */
export interface DecodedImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

export type ImageDecoder = (bytes: Uint8Array, path: string) => DecodedImage | Promise<DecodedImage>;

export type GroupSplit = 'train' | 'val' | 'test';

export interface GroupDatasetOptions {
  /** Which split (default 'train'). */
  split?: GroupSplit;
  /** Decoder of the image files (JPEG); default: the browser's, none in Node (see the module comment). */
  decode?: ImageDecoder;
  /** Output side (default 224, CLIP's). */
  size?: number;
  /** Per-channel normalisation after scaling to [0, 1] (default CLIP's: mean 0.4815, 0.4578, 0.4082; std 0.2686, 0.2613, 0.2758). */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

export interface CelebAOptions extends GroupDatasetOptions {
  /** The attribute that is the label (default 'Blond_Hair'). */
  target?: string;
  /** The spurious attribute (default 'Male'). */
  spurious?: string;
}

export interface GroupItem {
  /** [3, size, size] f32, normalised. */
  image: Tensor;
  label: number;
  attribute: number;
  /** 2 · label + attribute. */
  group: number;
  /** The image file's path (root joined with the metadata's file name). */
  path: string;
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
const SPLITS: Record<GroupSplit, number> = { train: 0, val: 1, test: 2 };
const WATERBIRDS_LAYOUT = 'root/metadata.csv (img_filename, y, split, place) and the image files it names';
const CELEBA_LAYOUT = 'root/list_attr_celeba.txt, root/list_eval_partition.txt and root/img_align_celeba/<file>.jpg';

const join = (root: string, name: string) => `${root.replace(/\/+$/, '')}/${name.replace(/^\/+/, '')}`;

async function readText(op: string, path: string, layout: string): Promise<string> {
  try {
    return new TextDecoder().decode(await readBytes(op, path));
  } catch (e) {
    return fail(op, `cannot read ${path} (${(e as Error).message}); expected the layout ${layout}`);
  }
}

/** The platform's decoder (browsers, workers): createImageBitmap + OffscreenCanvas. */
async function platformDecode(bytes: Uint8Array): Promise<DecodedImage> {
  const bitmap = await createImageBitmap(new Blob([bytes as BlobPart]));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const { data, width, height } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  bitmap.close();
  return { data, width, height, channels: 4 };
}

function checkCommon(op: string, opts: GroupDatasetOptions) {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object, got ${describe(opts)}`);
  const split = opts.split ?? 'train';
  if (!Object.hasOwn(SPLITS, split)) fail(op, `split must be 'train', 'val' or 'test', got ${describe(split)}`);
  const size = opts.size ?? 224;
  if (!Number.isInteger(size) || size < 1) fail(op, `size must be a positive integer, got ${describe(size)}`);
  if (opts.decode !== undefined && typeof opts.decode !== 'function') fail(op, `decode must be a function (bytes, path) => { width, height, channels, data }, got ${describe(opts.decode)}`);
  const triple = (name: 'mean' | 'std', v: unknown, dflt: readonly number[]) => {
    if (v === undefined) return [...dflt];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => Number.isFinite(x) && (name === 'mean' || x > 0)))
      fail(op, `${name} must be three ${name === 'std' ? 'positive ' : ''}numbers (R, G, B), got ${describe(v)}`);
    return [...v] as number[];
  };
  return { split, size, decode: opts.decode ?? null, mean: triple('mean', opts.mean, CLIP_MEAN), std: triple('std', opts.std, CLIP_STD) };
}

/** Base of both loaders: the split's rows, their labels/attributes/groups, and decoding into normalised tensors. */
abstract class GroupDataset implements Dataset<GroupItem> {
  readonly labels: Int32Array;
  readonly attributes: Int32Array;
  readonly groups: Int32Array;

  protected constructor(
    private readonly op: string,
    readonly paths: readonly string[],
    labels: number[],
    attributes: number[],
    private readonly o: ReturnType<typeof checkCommon>,
  ) {
    this.labels = Int32Array.from(labels);
    this.attributes = Int32Array.from(attributes);
    this.groups = this.labels.map((y, i) => 2 * y + this.attributes[i]);
  }

  get length(): number {
    return this.paths.length;
  }

  /** Items per group [g0, g1, g2, g3]. */
  groupCounts(): number[] {
    const c = [0, 0, 0, 0];
    for (const g of this.groups) c[g]++;
    return c;
  }

  async get(index: number): Promise<GroupItem> {
    const op = this.op;
    if (!Number.isInteger(index) || index < 0 || index >= this.length) fail(op, `index must be an integer in [0, ${this.length}), got ${describe(index)}`);
    const path = this.paths[index];
    const bytes = await readBytes(op, path);
    let decode = this.o.decode;
    if (!decode) {
      if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function')
        fail(op, `${path}: voxgrad has no JPEG decoder and this platform has no createImageBitmap; pass the option decode: (bytes, path) => ({ width, height, channels, data })`);
      decode = platformDecode;
    }
    const img = await decode(bytes, path);
    const { width: W, height: H, channels: C, data } = img ?? ({} as DecodedImage);
    if (!Number.isInteger(W) || !Number.isInteger(H) || W < 1 || H < 1 || (C !== 3 && C !== 4) || !(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== W * H * C)
      fail(op, `decode(${path}) must return { width, height, channels: 3 | 4, data: Uint8Array of width·height·channels bytes }, got ${describe(img)}`);
    const rgb = new Float32Array(W * H * 3);
    for (let p = 0; p < W * H; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * C + c] / 255;
    const s = this.o.size;
    // the shorter side to `size`, the other in proportion (at least `size`), then the centre crop: CLIP's preprocessing
    const scale = s / Math.min(W, H);
    const outH = Math.max(s, Math.round(H * scale));
    const outW = Math.max(s, Math.round(W * scale));
    const image = tidy(() => {
      const chw = reshape(permute(tensor(rgb, [H, W, 3]), [2, 0, 1]), [1, 3, H, W]);
      const resized = outH === H && outW === W ? chw : interpolate(chw, { size: [outH, outW], mode: 'bilinear', alignCorners: false });
      const cropped = reshape(centerCrop(resized, [s, s]), [3, s, s]);
      return div(sub(cropped, tensor(this.o.mean, [3, 1, 1])), tensor(this.o.std, [3, 1, 1]));
    });
    return { image, label: this.labels[index], attribute: this.attributes[index], group: this.groups[index], path };
  }
}

const intField = (op: string, where: string, name: string, v: string | undefined, allowed: readonly number[]) => {
  const n = Number(v);
  if (v === undefined || v.trim() === '' || !allowed.includes(n)) fail(op, `${where}: ${name} must be one of ${allowed.join(', ')}, got ${describe(v)}`);
  return n;
};

export class WaterbirdsDataset extends GroupDataset {
  private constructor(paths: string[], labels: number[], attributes: number[], o: ReturnType<typeof checkCommon>) {
    super('WaterbirdsDataset', paths, labels, attributes, o);
  }

  /** Reads root/metadata.csv and keeps the rows of the split (images are read by get()). */
  static async open(root: string, opts: GroupDatasetOptions = {}): Promise<WaterbirdsDataset> {
    const op = 'WaterbirdsDataset';
    if (typeof root !== 'string') fail(op, `root must be the path or URL of the folder holding metadata.csv, got ${describe(root)}`);
    const o = checkCommon(op, opts);
    const file = join(root, 'metadata.csv');
    const lines = (await readText(op, file, WATERBIRDS_LAYOUT)).split(/\r?\n/).filter((l) => l.trim() !== '');
    const header = (lines[0] ?? '').split(',').map((h) => h.trim());
    const col = Object.fromEntries(['img_filename', 'y', 'split', 'place'].map((k) => [k, header.indexOf(k)]));
    const missing = Object.keys(col).filter((k) => col[k] < 0);
    if (missing.length) fail(op, `${file}: the header lacks ${missing.join(', ')} (got ${header.join(', ')}); expected the layout ${WATERBIRDS_LAYOUT}`);
    const want = SPLITS[o.split];
    const paths: string[] = [];
    const labels: number[] = [];
    const places: number[] = [];
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].split(',');
      const where = `${file} line ${i + 1}`;
      if (intField(op, where, 'split', f[col.split], [0, 1, 2]) !== want) continue;
      labels.push(intField(op, where, 'y', f[col.y], [0, 1]));
      places.push(intField(op, where, 'place', f[col.place], [0, 1]));
      paths.push(join(root, f[col.img_filename].trim()));
    }
    return new WaterbirdsDataset(paths, labels, places, o);
  }
}

export class CelebADataset extends GroupDataset {
  private constructor(paths: string[], labels: number[], attributes: number[], o: ReturnType<typeof checkCommon>) {
    super('CelebADataset', paths, labels, attributes, o);
  }

  /** Reads the attribute and partition lists and keeps the split's images (read by get()). */
  static async open(root: string, opts: CelebAOptions = {}): Promise<CelebADataset> {
    const op = 'CelebADataset';
    if (typeof root !== 'string') fail(op, `root must be the path or URL of the CelebA folder, got ${describe(root)}`);
    const o = checkCommon(op, opts);
    const target = opts.target ?? 'Blond_Hair';
    const spurious = opts.spurious ?? 'Male';
    const attrFile = join(root, 'list_attr_celeba.txt');
    const partFile = join(root, 'list_eval_partition.txt');
    const attrLines = (await readText(op, attrFile, CELEBA_LAYOUT)).split(/\r?\n/).filter((l) => l.trim() !== '');
    const names = (attrLines[1] ?? '').trim().split(/\s+/);
    const ti = names.indexOf(target);
    const si = names.indexOf(spurious);
    if (ti < 0 || si < 0) fail(op, `${attrFile}: no attribute '${ti < 0 ? target : spurious}' among ${names.length} names (${names.slice(0, 6).join(', ')}, ...); expected the layout ${CELEBA_LAYOUT}`);
    const count = Number(attrLines[0]);
    if (!Number.isInteger(count) || count !== attrLines.length - 2) fail(op, `${attrFile}: the first line says ${attrLines[0].trim()} images but ${attrLines.length - 2} rows follow`);
    const partition = new Map<string, number>();
    for (const [i, line] of (await readText(op, partFile, CELEBA_LAYOUT)).split(/\r?\n/).entries()) {
      if (line.trim() === '') continue;
      const [name, p] = line.trim().split(/\s+/);
      partition.set(name, intField(op, `${partFile} line ${i + 1}`, 'the partition', p, [0, 1, 2]));
    }
    const want = SPLITS[o.split];
    const paths: string[] = [];
    const labels: number[] = [];
    const attrs: number[] = [];
    for (let i = 2; i < attrLines.length; i++) {
      const f = attrLines[i].trim().split(/\s+/);
      const where = `${attrFile} line ${i + 1}`;
      if (f.length !== names.length + 1) fail(op, `${where}: ${f.length - 1} values for ${names.length} attributes`);
      const p = partition.get(f[0]);
      if (p === undefined) fail(op, `${f[0]} (${where}) is not in ${partFile}`);
      if (p !== want) continue;
      labels.push(intField(op, where, target, f[ti + 1], [-1, 1]) > 0 ? 1 : 0);
      attrs.push(intField(op, where, spurious, f[si + 1], [-1, 1]) > 0 ? 1 : 0);
      paths.push(join(root, `img_align_celeba/${f[0]}`));
    }
    return new CelebADataset(paths, labels, attrs, o);
  }
}
