/** Node entry point: registers Dawn (the `webgpu` package) as the adapter provider, then the whole library. */
import './engine/gpu-node.js';

export * from './index.js';
