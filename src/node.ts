/** Node entry point: registers Dawn (the `webgpu` package) as the adapter provider, `fs` for vg.io and the tuner's cache file, then the whole library. */
import './engine/gpu-node.js';
import './io/files-node.js';
import './engine/tuner-node.js';

export * from './index.js';
