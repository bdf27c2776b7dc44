/** Every public op, in one namespace (re-exported by index.ts and used by the tensor methods). */
export * from './kernels/math.js';
export { cast, type Operand } from './kernels/elementwise.js';
export { sum, mean, max, min, argmax, argmin, variance as var, variance, std, logsumexp, type ReduceOptions, type VarOptions } from './kernels/reduce.js';
export {
  reshape,
  view,
  flatten,
  squeeze,
  unsqueeze,
  permute,
  transpose,
  expand,
  broadcastTo,
  slice,
  narrow,
  split,
  flip,
  cat,
  stack,
  pad,
  clone,
  type PadOptions,
} from './kernels/shape.js';
export { gather, scatterAdd, indexSelect, oneHot } from './kernels/indexing.js';
export { matmul, bmm, linear } from './kernels/matmul.js';
export {
  softmax,
  logSoftmax,
  crossEntropy,
  nllLoss,
  mseLoss,
  l1Loss,
  bceWithLogits,
  klDiv,
  type Reduction,
  type NllOptions,
  type CrossEntropyOptions,
  type BceOptions,
} from './kernels/nn.js';
export { tensor, full, zeros, ones, zerosLike, onesLike, fullLike, arange, type CreateOptions } from './kernels/creation.js';
export { rand, randn, uniform, normal, manualSeed, type RandomOptions } from './kernels/random.js';
export * from './kernels/conv.js';
export * from './kernels/pool.js';
export * from './kernels/interpolate.js';
export * from './kernels/norm.js';
export * from './kernels/spatial.js';
export { scaledDotProductAttention, type ScaledDotProductAttentionOptions } from './nn/functional-attention.js';
export { cumsum } from './kernels/cumsum.js';
export { sort, argsort, topk, type SortOptions, type TopkOptions, type SortResult } from './kernels/sort.js';
