// vg.data: datasets, the loader, transforms, augmentations and the embedded phantom.
export type { Dataset } from './dataset.js';
