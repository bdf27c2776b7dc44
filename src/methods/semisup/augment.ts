/**
 * The strong view of ACTION / ACTION++ / MONA fine-tuning, built from an unlabelled batch and its teacher
 * pseudo-labels: CutMix with the next image of the batch (labels and confidences mixed with the same box), then per
 * image with p = 0.5 each an intensity jitter and a Gaussian blur, then with p = 0.5 for the whole batch an
 * AdvMorph-style random diffeomorphism. The official code warps only the image with the morph; here the labels and
 * confidences follow it (`warpLabels`, default true: the paper's intent that a label describes its pixel).
 * Also MONA's random affine warp for the equivariance term.
 */
import { noGrad } from '../../engine/autograd.js';
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
  /** Skip CutMix (ablations). */
  cutmix?: boolean;
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
      if ((opts.cutmix ?? true) && n > 1) {
        // mix each image with the next one of the batch (i + 1 mod N), labels and confidences with the same box
        const next = tensor(Array.from({ length: n }, (_, i) => (i + 1) % n), [n], { dtype: 'i32' });
        const pair = cat([unsqueeze(lab, 1), unsqueeze(conf, 1)], 1);
        const mixed = cutMix(img, pair, indexSelect(img, 0, next), indexSelect(pair, 0, next), { seed: rng.int(0, 2 ** 31) });
        img = mixed.images;
        lab = squeeze(slice(mixed.labels, 1, 0, 1), 1);
        conf = squeeze(slice(mixed.labels, 1, 1, 2), 1);
      }
      const pick = (p: number) => tensor(Array.from({ length: n }, () => (rng.next() < p ? 1 : 0)), [n, ...Array(img.ndim - 1).fill(1)]);
      img = intensityJitter(img, { brightness: 0.1, contrast: 0.25, gamma: [0.75, 1.25], prob: 0.5, seed: rng.int(0, 2 ** 31) });
      const blurred = gaussianBlur(img, rng.uniform(0.15, 1.15));
      img = where(pick(0.5), blurred, img);
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

/**
 * MONA's random warp T for the equivariance term (its RandTPS in 'affine' mode without the 5x5 control-point jitter):
 * rotation U(−60°, 60°), scale with inverse in (1/1.2, 1/0.8), translation U(−0.1, 0.1), horizontal mirror with
 * p = 0.5. Returns a function applying the same T to any [N, C, H, W] batch (bilinear, zeros outside).
 */
export function randomAffineWarp(n: number, height: number, width: number, seed: number): (x: Tensor) => Tensor {
  const rng = new Rng(seed);
  const thetas = Array.from({ length: n }, () => {
    const a = rng.uniform(-Math.PI / 3, Math.PI / 3);
    const s = rng.uniform(1 / 1.2, 1 / 0.8);
    const mirror = rng.next() < 0.5 ? -1 : 1;
    const [tx, ty] = [rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)];
    return [mirror * s * Math.cos(a), -s * Math.sin(a), tx, mirror * s * Math.sin(a), s * Math.cos(a), ty];
  });
  return (x: Tensor) =>
    tidy(() => {
      const grid = noGrad(() => affineGrid(tensor(thetas.flat(), [n, 2, 3]), [n, x.shape[1], height, width], { alignCorners: false }));
      return gridSample(x, grid, { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false });
    });
}
