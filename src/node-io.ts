/** Node entry point of `voxgrad/io`: vg.io's functions with `fs` registered for paths (sharing the engine of `voxgrad`). */
import './io/files-node.js';

export * from './io/index.js';
