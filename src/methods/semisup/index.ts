// vg.methods.semisup: the shared machinery of the semi-supervised segmentation methods (ACTION, ACTION++, MONA, mean teacher).
export { simplexCentres, assignCentres, atsTemperature, type AtsOptions } from './geometry.js';
export { MemoryBank, type MemoryBankOptions } from './bank.js';
export { GlobalProjector, Predictor, LocalProjector, LocalPredictor, RepresentationHead, type HeadOptions } from './heads.js';
export {
  supervisedSegLoss,
  pseudoLabels,
  confidenceWeightedCE,
  relationKL,
  adaptiveAnatomicalContrast,
  nearestNeighbourLoss,
  equivarianceKL,
  type PseudoLabels,
  type AdaptiveContrastInputs,
} from './losses.js';
export { anatomicalContrast, memoryBankContrast, pixelRows, type ContrastSample, type AnatomicalContrastOptions, type MemoryContrastOptions } from './contrast.js';
export { strongView, randomDiffeomorphism, randomAffineWarp, randomTpsWarp, thinPlateSpline, type StrongView, type StrongViewOptions } from './augment.js';
