/** Node entry point: registers Dawn (the `webgpu` package) as the adapter provider and `fs` for vg.io, then the whole library. */
import './engine/gpu-node.js';
import './io/files-node.js';

export * from './index.js';
