/**
 * Every public op, in one namespace (re-exported by index.ts; the tensor methods in tensor-methods.ts are built from
 * the same functions). A kernel file whose exports are all public is re-exported whole, so an op added to it needs no
 * line here; the others list their public names.
 */
export * from './kernels/math.js';
export { cast, type Operand } from './kernels/elementwise.js';
export * from './kernels/reduce.js';
export { variance as var } from './kernels/reduce.js';
export * from './kernels/shape.js';
export * from './kernels/pad.js';
export * from './kernels/indexing.js';
export * from './kernels/matmul.js';
export * from './kernels/nn.js';
export { tensor, full, zeros, ones, zerosLike, onesLike, fullLike, arange, type CreateOptions } from './kernels/creation.js';
export { rand, randn, uniform, normal, manualSeed, randint, multinomial, type RandomOptions, type RandintOptions, type MultinomialOptions } from './kernels/random.js';
export * from './kernels/conv.js';
export * from './kernels/pool.js';
export { interpolate, type InterpolateMode, type InterpolateOptions } from './kernels/interpolate.js';
export * from './kernels/norm.js';
export * from './kernels/dropout.js';
export * from './kernels/spatial.js';
export * from './kernels/cumsum.js';
export * from './kernels/sort.js';
export * from './kernels/contrastive.js';
export { scaledDotProductAttention, type ScaledDotProductAttentionOptions } from './kernels/attention.js';
export { backward, grad, valueAndGrad, type GradOptions } from './kernels/backward.js';
