// vg.data: datasets, the loader, transforms, augmentations and the embedded phantom.
export type { Dataset } from './dataset.js';
export * from './loader.js';
export * from './transforms.js';
export * from './augment.js';
export * from './phantom.js';
export { Rng, deriveSeed } from './random.js';
