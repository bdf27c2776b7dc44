/**
 * voxgrad: tensors, reverse-mode autodiff and WGSL kernels on WebGPU, in Node (Dawn) and in browsers.
 * This is the platform-neutral entry; src/node.ts adds the Dawn adapter provider for Node.
 */
import { gradOps } from './engine/autograd.js';
import { add, onesLike, zerosLike } from './ops.js';
import './tensor-methods.js';

gradOps.add = (a, b) => add(a, b);
gradOps.onesLike = (t) => onesLike(t);
gradOps.zerosLike = (t) => zerosLike(t);

export * from './ops.js';
export { Tensor, tidy, keep, setCpuForwardThreshold, type DType, type TypedArray, type NestedArray } from './engine/tensor.js';
export { VoxgradError } from './engine/errors.js';
export { init, backendInfo, destroyDevice as destroy, type BackendInfo, type InitOptions } from './engine/device.js';
export { noGrad, grad, valueAndGrad, backward, isGradEnabled, type GradOptions } from './engine/autograd.js';
export { sync, setBatchSize, pipelinesReady, dispatches } from './engine/runtime.js';
export { profile, type ProfileReport, type KernelTiming } from './engine/profiler.js';
export { memory, setPoolLimit, emptyCache, type MemoryInfo } from './engine/memory.js';
export * as optim from './optim/index.js';
export * as nn from './nn/index.js';
export * as io from './io/index.js';
export * as data from './data/index.js';
export * as metrics from './metrics/index.js';
export * as models from './models/index.js';
export * as inference from './inference/index.js';
export * as train from './train/index.js';
export * as methods from './methods/index.js';
