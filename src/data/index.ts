// vg.data: datasets, the loader, transforms, augmentations and the embedded phantom.
export type { Dataset } from './dataset.js';
export * from './loader.js';
export * from './transforms.js';
export * from './augment.js';
export * from './phantom.js';
export { Rng, deriveSeed } from './random.js';
export { ACDCDataset, CAMUSDataset, LADataset, ACDC_LABELS, CAMUS_LABELS, type ACDCItem, type ACDCInfo, type ACDCOptions, type CAMUSItem, type CAMUSInfo, type CAMUSOptions, type LAItem, type LAOptions } from './medical-datasets.js';
export * from './registration.js';
export { PHANTOM_SITES, siteFrames, type PhantomSite } from './sites.js';
export { makeSpuriousSplit, loadSpuriousFashion, SPURIOUS_CAPTION_WORDS, SPURIOUS_LABEL_WORDS, SPURIOUS_ATTRIBUTE_WORDS, ZERO_SHOT_TEMPLATES, type SpuriousSplit, type SpuriousSplitOptions, type SpuriousFashion, type SpuriousFashionOptions } from './spurious-fashion.js';
export * from './semiseg.js';
export { WaterbirdsDataset, CelebADataset, type GroupItem, type GroupSplit, type GroupDatasetOptions, type CelebAOptions, type DecodedImage, type ImageDecoder } from './group-datasets.js';
export { ORGAN_PHANTOM_LABELS, organPhantom, organPhantomArrays, organPhantomSlices, type OrganPhantomOptions, type OrganPhantomArrays } from './organ-phantom.js';
