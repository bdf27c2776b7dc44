/**
 * voxgrad: tensors, reverse-mode autodiff and WGSL kernels on WebGPU, in Node (Dawn) and in browsers.
 * This is the platform-neutral entry; src/node.ts adds the Dawn adapter provider for Node.
 */
import { loseDevice } from './engine/device.js';
import { checkNumerics } from './engine/numerics.js';
import { setBindingLimit } from './engine/binding.js';
import { cacheStats } from './engine/runtime.js';
import { opStats, resetOpStats } from './engine/op.js';
import { simulateOutOfMemory } from './engine/pool.js';
import { kernelLayouts } from './engine/runtime.js';
import './tensor-methods.js';

export * from './ops.js';
export { Tensor, tidy, keep, setCpuForwardThreshold, type DType, type TypedArray, type NestedArray } from './engine/tensor.js';
export { VoxgradError } from './engine/errors.js';
export { init, backendInfo, destroyDevice as destroy, type BackendInfo, type InitOptions } from './engine/device.js';
export { noGrad, isGradEnabled } from './engine/autograd.js';
export { listOps, type OpInfo, type OpStat } from './engine/op.js';
/**
 * Diagnostics: per-op forward and backward call counts (cheap counters, always on); checkNumerics(true), which names
 * the first op (or backward rule) whose output holds NaN/Infinity, at the next read back (a debug mode); fault
 * injection for testing recovery code: simulateOutOfMemory(n) (the next n allocations report out-of-memory) and
 * loseDevice() (destroys the GPUDevice as a driver reset would); and setBindingLimit(bytes | null), which lowers the
 * storage-binding size ops plan with, for testing their split paths on small tensors; kernelLayouts(), the kernels built
 * so far with the binding and uniform layouts read from their WGSL; cacheStats(), the runtime's pipeline and bind-group
 * cache sizes (long-run memory checks).
 */
export const debug = { opStats, resetOpStats, checkNumerics, simulateOutOfMemory, loseDevice, setBindingLimit, kernelLayouts, cacheStats };
export { sync, setBatchSize, pipelinesReady, dispatches } from './engine/runtime.js';
export { profile, type ProfileReport, type KernelTiming } from './engine/profiler.js';
export { tune, tuningState, resetTuning, type TuneOptions, type TuneResult } from './engine/tuner.js';
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
