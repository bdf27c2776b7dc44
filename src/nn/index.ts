/** vg.nn: modules and layers (torch.nn), and vg.nn.init. */
export { Module } from './module.js';
export * from './layers.js';
export * as init from './init.js';
export * from './pooling.js';
export { MultiheadAttention, TransformerBlock, WindowAttention, Mlp, type MultiheadAttentionOptions, type MultiheadAttentionForwardOptions, type TransformerBlockOptions } from './attention.js';
export * as functional from './functional.js';
export { spectralNorm, spectralNormSigma, type SpectralNormOptions } from './spectral-norm.js';
