// vg.models: the architectures of the papers' recipes.
export { UNet2D, type UNet2DOptions } from './unet.js';
export { VxmDense, VxmUnet, VarianceEstimator, ScoringNet, DEFAULT_VXM_FEATURES, type VxmDenseOptions, type VxmDenseOutput, type VxmUnetOptions, type VxmBackboneOptions, type VxmFeatures } from './voxelmorph.js';
export { RegNet, type RegNetOptions, type RegNetOutput } from './regnet.js';
export { TransMorph, type TransMorphConfig, type TransMorphOptions, type TransMorphOutput } from './transmorph.js';
export { Morse, MoEHead, PointHead, morsePointWeight, type MorseOptions, type MoEHeadOptions, type PointHeadOptions } from './morse.js';
export { ResNet, type ResNetDepth, type ResNetOptions } from './resnet.js';
export { ItlDecoder, ResILNet, type ItlDecoderOptions, type ResILNetOptions } from './itl.js';
export { CLIP, VisionTransformer, ModifiedResNet, AttentionPool2d, Bottleneck, ResidualAttentionBlock, ClipTransformer, QuickGELU, TokenEmbedding, loadClip, clipConfigFromStateDict, clipStateDictFromHuggingFace, type ClipConfig, type ClipOptions, type LoadClipOptions } from './clip.js';
export { UNet2DFeatures, concatFeatureMaps, type SegFeatures } from './unet2d-features.js';
export { VNet, type VNetOptions, type VNetFeatures } from './vnet.js';
export { CATformer, CastDiscriminator, type CATformerOptions, type CATformerOutput, type CastDiscriminatorOptions } from './castformer.js';
