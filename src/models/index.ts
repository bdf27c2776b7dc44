// vg.models: the architectures of the papers' recipes.
export { UNet2D, type UNet2DOptions } from './unet.js';
export { VxmDense, VxmUnet, VarianceEstimator, ScoringNet, DEFAULT_VXM_FEATURES, type VxmDenseOptions, type VxmDenseOutput, type VxmUnetOptions, type VxmBackboneOptions, type VxmFeatures } from './voxelmorph.js';
export { RegNet, type RegNetOptions, type RegNetOutput } from './regnet.js';
export { TransMorph, type TransMorphConfig, type TransMorphOptions, type TransMorphOutput } from './transmorph.js';
export { UNet2DFeatures, concatFeatureMaps, type SegFeatures } from './unet2d-features.js';
export { VNet, type VNetOptions, type VNetFeatures } from './vnet.js';
