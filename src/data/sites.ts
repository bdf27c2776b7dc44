/**
 * Five "sites" of the cardiac phantom for multi-site (incremental) training: the same anatomy model rendered with a
 * site-specific intensity curve (a gamma on the [0, 1] image), Rician noise level, bias-field strength, resolution
 * (an average-pool by `blur` pixels and bilinear upsampling back: a coarser acquisition on the same grid) and field of
 * view (the phantom's fov in mm: the heart fills more or less of the image). Subjects differ per seed; a site is a
 * rendering protocol, not a population.
 */
import { tidy, type Tensor } from '../engine/tensor.js';
import { fail } from '../engine/errors.js';
import { interpolate } from '../kernels/interpolate.js';
import { clamp, pow } from '../kernels/math.js';
import { avgPool2d } from '../kernels/pool.js';
import { cat, unsqueeze } from '../kernels/shape.js';
import { cardiacPhantom } from './phantom.js';

export interface PhantomSite {
  name: string;
  /** Intensity curve: out = clamp(image, 0, 1)^gamma. */
  gamma: number;
  /** Rician noise sigma (the phantom's `noise`). */
  noise: number;
  /** Bias-field strength (the phantom's `biasField`). */
  biasField: number;
  /** Field of view in mm (the phantom's `fov`; 160 is its default cardiac crop). */
  fov: number;
  /** Resolution loss: average-pool by this many pixels, then bilinear back (1: none). */
  blur: number;
}

export const PHANTOM_SITES: readonly PhantomSite[] = [
  { name: 'A', gamma: 1, noise: 0.03, biasField: 0.1, fov: 160, blur: 1 },
  { name: 'B', gamma: 0.6, noise: 0.06, biasField: 0.3, fov: 180, blur: 1 },
  { name: 'C', gamma: 1.6, noise: 0.02, biasField: 0.2, fov: 140, blur: 2 },
  { name: 'D', gamma: 0.8, noise: 0.1, biasField: 0.45, fov: 200, blur: 1 },
  { name: 'E', gamma: 2.2, noise: 0.05, biasField: 0.15, fov: 150, blur: 4 },
];

/**
 * ED and ES frames of `count` subjects (seeds firstSeed..) rendered as `site`: image [2·count, 1, S, S], label
 * [2·count, S, S], and the pixel spacing in mm (the site's fov / S).
 */
export function siteFrames(site: PhantomSite, firstSeed: number, count: number, size: number): { image: Tensor; label: Tensor; spacing: [number, number] } {
  if (!Number.isInteger(site.blur) || site.blur < 1 || size % site.blur)
    fail('siteFrames', `site ${site.name}: blur must be a positive integer dividing the size ${size}, got ${site.blur}`);
  const images: Tensor[] = [];
  const labels: Tensor[] = [];
  for (let i = 0; i < count; i++) {
    const p = cardiacPhantom({ size, frames: 2, seed: firstSeed + i, noise: site.noise, biasField: site.biasField, fov: site.fov });
    images.push(p.image);
    labels.push(p.label);
  }
  const out = tidy(() => {
    let image = pow(clamp(unsqueeze(cat(images, 0), 1), 0, 1), site.gamma);
    if (site.blur > 1) image = interpolate(avgPool2d(image, site.blur), { size: [size, size], mode: 'bilinear', alignCorners: false });
    return { image, label: cat(labels, 0), spacing: [site.fov / size, site.fov / size] as [number, number] };
  });
  for (const t of [...images, ...labels]) t.dispose();
  return out;
}
