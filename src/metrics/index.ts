// vg.metrics: evaluation metrics computed on the GPU (definitions and conventions: docs/metrics.md).
export { distanceTransform, type DistanceTransformOptions, type EdtMethod } from './edt.js';
export { type Binary, type LabelOptions, type Multi, type PerLabelResult } from './common.js';
export { dice, jaccard, type OverlapOptions } from './overlap.js';
export { hausdorff, hd, hd95, asd, assd, surfaceDistances, type SurfaceOptions, type Hd95Options, type AssdOptions, type SurfaceDistances } from './surface.js';
export { jacobianFoldingFraction, logJacobianStats, type JacobianMetricOptions, type LogJacobianOptions } from './registration.js';
export { groupAccuracies, worstGroupAccuracy, averageAccuracy, type GroupAccuracies, type AverageAccuracyOptions } from './classification.js';
export { pairedTTest, pearsonCorrelation, auroc, type TTestResult } from './stats.js';
export { compareRuns, type RunResults, type CompareRunsOptions } from './compare.js';
export { linearSumAssignment, type Assignment } from './assignment.js';
export { pca, symmetricEigen, type PcaOptions, type PcaResult } from './pca.js';
