/**
 * A Waterbirds-like spurious-correlation benchmark built from Fashion-MNIST (Debian's dataset-fashion-mnist):
 * - label y: 0 = "top" (t-shirt, pullover, coat, shirt), 1 = "footwear" (sandal, sneaker, ankle boot); trousers,
 *   dresses and bags are left out;
 * - attribute a (the "background"): the garment is drawn bright on a coloured background, 0 = "land" (olive) or
 *   1 = "water" (blue), with a small per-image jitter of the colour;
 * - a agrees with y (footwear on water, tops on land) in a chosen fraction of each label's samples: 95% in the
 *   pretraining and training splits, 50% in validation and test; the group g = 2y + a is for evaluation only;
 * - a caption per image from templates naming the fine class, sometimes the coarse label, and the background.
 * The split is exact per label (round(p · n_y) samples agree), drawn with a seeded generator.
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';
import { readIdx } from '../io/idx.js';
import { Rng, deriveSeed } from './random.js';

/** Fashion-MNIST class → [label, fine word] (classes absent here are not used). */
const FINE: Record<number, [number, string]> = {
  0: [0, 'tshirt'],
  2: [0, 'pullover'],
  4: [0, 'coat'],
  6: [0, 'shirt'],
  5: [1, 'sandal'],
  7: [1, 'sneaker'],
  9: [1, 'boot'],
};
export const SPURIOUS_LABEL_WORDS = ['top', 'footwear'] as const;
export const SPURIOUS_ATTRIBUTE_WORDS = ['land', 'water'] as const;
/** Background colours (RGB in [0, 1]) of the two attribute values. */
const BACKGROUND: [number, number, number][] = [
  [0.45, 0.4, 0.15],
  [0.1, 0.3, 0.75],
];

const CAPTION_TEMPLATES = [
  'a photo of a {fine} on {bg}',
  'a {fine} on {bg}',
  'a picture of a {fine} , a kind of {label} , on {bg}',
  'a {label} on {bg}',
  'a photo of a {fine}',
  'a {fine} , a kind of {label}',
];
/** Zero-shot prompt templates (the class word fills {}), averaged per class. */
export const ZERO_SHOT_TEMPLATES = ['a photo of a {}', 'a {}', 'a picture of a {}'];

/** Every word of the captions and prompts (the WordTokenizer vocabulary). */
export const SPURIOUS_CAPTION_WORDS: readonly string[] = [
  ...new Set([
    ...CAPTION_TEMPLATES.flatMap((t) => t.split(' ')).filter((w) => /^[a-z]+$/.test(w)),
    ...ZERO_SHOT_TEMPLATES.flatMap((t) => t.split(' ')).filter((w) => /^[a-z]+$/.test(w)),
    ...Object.values(FINE).map(([, w]) => w),
    ...SPURIOUS_LABEL_WORDS,
    ...SPURIOUS_ATTRIBUTE_WORDS,
  ]),
];

export interface SpuriousSplit {
  /** [N, 3, 28, 28] in [-1, 1], row-major. */
  images: Float32Array;
  labels: Int32Array;
  /** The background attribute (0 land, 1 water). */
  attributes: Int32Array;
  /** 2 · label + attribute. */
  groups: Int32Array;
  /** The Fashion-MNIST class. */
  classes: Int32Array;
  captions: string[];
  /** Index of each sample in its Fashion-MNIST file. */
  sourceIndex: Int32Array;
  readonly length: number;
}

export interface SpuriousSplitOptions {
  /** Fraction of each label's samples whose attribute agrees with the label. */
  agreement: number;
  seed: number;
}

/**
 * One split from Fashion-MNIST pixels ([count, 28, 28] u8) and classes, using the samples at `indices` whose class
 * is one of the seven kept.
 */
export function makeSpuriousSplit(pixels: Uint8Array, classes: ArrayLike<number>, indices: readonly number[], opts: SpuriousSplitOptions): SpuriousSplit {
  const op = 'makeSpuriousSplit';
  const p = opts.agreement;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail(op, `agreement must be a fraction in [0, 1], got ${describe(p)}`);
  if (pixels.length !== classes.length * 784) fail(op, `pixels must hold 28 × 28 bytes per class entry: ${pixels.length} bytes for ${classes.length} classes`);
  const kept = indices.filter((i) => FINE[classes[i]] !== undefined);
  const rng = new Rng(deriveSeed(opts.seed, 1));
  const n = kept.length;
  const labels = new Int32Array(n);
  const attributes = new Int32Array(n);
  kept.forEach((src, k) => (labels[k] = FINE[classes[src]][0]));
  for (const y of [0, 1]) {
    const members = [...labels.keys()].filter((k) => labels[k] === y);
    const order = rng.permutation(members.length);
    const agree = Math.round(p * members.length);
    order.forEach((o, r) => (attributes[members[o]] = r < agree ? y : 1 - y));
  }
  const images = new Float32Array(n * 3 * 784);
  const captions: string[] = [];
  kept.forEach((src, k) => {
    const a = attributes[k];
    const bg = BACKGROUND[a].map((c) => Math.min(1, Math.max(0, c + 0.08 * (rng.next() - 0.5))));
    for (let px = 0; px < 784; px++) {
      const g = pixels[src * 784 + px] / 255;
      for (let c = 0; c < 3; c++) images[(k * 3 + c) * 784 + px] = 2 * (g + (1 - g) * bg[c]) - 1;
    }
    const [y, fine] = FINE[classes[src]];
    const t = CAPTION_TEMPLATES[Math.floor(rng.next() * CAPTION_TEMPLATES.length)];
    captions.push(t.replace('{fine}', fine).replace('{label}', SPURIOUS_LABEL_WORDS[y]).replace('{bg}', SPURIOUS_ATTRIBUTE_WORDS[a]));
  });
  return {
    images,
    labels,
    attributes,
    groups: labels.map((y, k) => 2 * y + attributes[k]),
    classes: Int32Array.from(kept, (i) => classes[i]),
    captions,
    sourceIndex: Int32Array.from(kept),
    length: n,
  };
}

export interface SpuriousFashionOptions {
  /** Folder of the four IDX .gz files; default Debian's /usr/share/datasets/fashion-mnist. */
  dir?: string;
  /** Fashion-MNIST train images used for each split, in this order (before dropping the unused classes). */
  pretrain?: number;
  train?: number;
  val?: number;
  /** Fashion-MNIST test images used for the test split. */
  test?: number;
  /** Agreement of pretraining and training splits (default 0.95); validation and test use 0.5. */
  agreement?: number;
  seed?: number;
}

export interface SpuriousFashion {
  pretrain: SpuriousSplit;
  train: SpuriousSplit;
  val: SpuriousSplit;
  test: SpuriousSplit;
}

/** The four splits from the Fashion-MNIST files (train file: pretrain, train, val in disjoint ranges; test file: test). */
export async function loadSpuriousFashion(opts: SpuriousFashionOptions = {}): Promise<SpuriousFashion> {
  const op = 'loadSpuriousFashion';
  const dir = opts.dir ?? '/usr/share/datasets/fashion-mnist';
  const [nPre, nTrain, nVal, nTest] = [opts.pretrain ?? 30000, opts.train ?? 20000, opts.val ?? 10000, opts.test ?? 10000];
  for (const [k, v] of Object.entries({ pretrain: nPre, train: nTrain, val: nVal, test: nTest }))
    if (!Number.isInteger(v) || v < 0) fail(op, `${k} must be a non-negative integer, got ${describe(v)}`);
  if (nPre + nTrain + nVal > 60000) fail(op, `pretrain + train + val must be at most the 60000 training images, got ${nPre + nTrain + nVal}`);
  if (nTest > 10000) fail(op, `test must be at most the 10000 test images, got ${nTest}`);
  const seed = opts.seed ?? 0;
  const p = opts.agreement ?? 0.95;
  const read = async (name: string) => (await readIdx(`${dir}/${name}-idx${name.includes('labels') ? 1 : 3}-ubyte.gz`)).data as Uint8Array;
  const [trainPixels, trainClasses, testPixels, testClasses] = await Promise.all(
    ['train-images', 'train-labels', 't10k-images', 't10k-labels'].map(read),
  );
  const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  return {
    pretrain: makeSpuriousSplit(trainPixels, trainClasses, range(0, nPre), { agreement: p, seed: deriveSeed(seed, 0) }),
    train: makeSpuriousSplit(trainPixels, trainClasses, range(nPre, nTrain), { agreement: p, seed: deriveSeed(seed, 1) }),
    val: makeSpuriousSplit(trainPixels, trainClasses, range(nPre + nTrain, nVal), { agreement: 0.5, seed: deriveSeed(seed, 2) }),
    test: makeSpuriousSplit(testPixels, testClasses, range(0, nTest), { agreement: 0.5, seed: deriveSeed(seed, 3) }),
  };
}
